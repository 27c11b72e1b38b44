"""The plugin host and jobs through the public hook API, plus attachments and concurrency."""
import io
import threading
import textwrap

import pytest
import sqlalchemy as sa

from crm.core import attachments, plugins
from crm.core.errors import ConfigurationError
from crm.core.jobs import run_due
from crm.hooks import Job, hookimpl

GADGET = {"name": "gadget", "label": {"zh_CN": "小工具", "en": "Gadget"},
          "fields": {"name": {"type": "text", "required": True},
                     "serial": {"type": "autonumber", "autonumber": "G{YY}-{####}"}}}


class GadgetsPlugin:
    """Contributes an entity, a field on customer, a job, a menu entry and a record hook."""
    label = {"zh_CN": "小工具", "en": "Gadgets"}

    def __init__(self):
        self.created = []
        self.job_runs = 0

    @hookimpl
    def crm_metadata(self):
        return [GADGET, {"extends": "customer", "fields": {"gadgets_count": {"type": "integer", "readonly": True}},
                         "list_columns": {"$append": ["gadgets_count"]}}]

    @hookimpl
    def crm_after_create(self, ctx, entity, record):
        if entity.name == "gadget":
            self.created.append(record["serial"])

    @hookimpl
    def crm_jobs(self):
        def run(ctx):
            self.job_runs += 1
            ctx.create("gadget", {"name": f"daily {ctx.today()}"})
            return {"made": 1}
        return [Job("gadgets.daily", run, label="每日小工具")]

    @hookimpl
    def crm_menu_entries(self):
        return [{"id": "gadgets", "label": {"zh_CN": "小工具"}, "entity": "gadget"}]


class Needy:
    requires = ["gadgets"]


def test_plugin_contributes_entity_field_hook_job_and_menu(make_runtime, clock):
    gadgets = GadgetsPlugin()
    rt = make_runtime(plugins=[("gadgets", gadgets)])
    assert rt.metadata["customer"].fields["gadgets_count"].owner == "gadgets"
    assert rt.metadata["gadget"].owner == "gadgets"
    with rt.transaction() as records:
        records.create("gadget", {"name": "A"})
    assert gadgets.created == ["G26-0001"]
    [row] = [r for r in plugins.describe(rt) if r["name"] == "gadgets"]
    assert row["state"] == "enabled" and row["contributes"]["entities"] == ["gadget"]
    assert row["contributes"]["fields"] == ["customer.gadgets_count"] and row["contributes"]["jobs"] == ["gadgets.daily"]
    assert row["contributes"]["menu"] == ["gadgets"]
    # jobs: once a day, however often `crm jobs run` is called
    only = ("gadgets.daily",)
    assert list(run_due(rt, only)) == [("gadgets.daily", "done ({'made': 1})")]
    assert list(run_due(rt, only)) == [("gadgets.daily", "already ran today")]
    clock.advance(days=1)
    assert list(run_due(rt, only))[0][1].startswith("done")
    assert gadgets.job_runs == 2


def test_people_cannot_write_read_only_fields_but_the_system_can(make_runtime):
    rt = make_runtime(plugins=[("gadgets", GadgetsPlugin())])
    from crm.core.errors import ValidationFailed
    with rt.transaction(user={"id": 1, "is_admin": True}) as records:
        with pytest.raises(ValidationFailed) as failed:
            records.create("customer", {"name": "甲公司", "gadgets_count": 5})
        assert list(failed.value.fields) == ["gadgets_count"]
        customer = records.create("customer", {"name": "甲公司"})
        customer = records.as_system().update("customer", customer["id"], {"gadgets_count": 5})
        assert customer["gadgets_count"] == 5


def test_dependency_order_and_errors():
    host = plugins.PluginHost(enabled=[], extra=[("needy", Needy()), ("gadgets", GadgetsPlugin())])
    assert [p.name for p in host.ordered] == ["gadgets", "needy"]
    with pytest.raises(ConfigurationError, match="requires 'gadgets'"):
        plugins.PluginHost(enabled=[], extra=[("needy", Needy())])
    a, b = type("A", (), {"requires": ["b"]})(), type("B", (), {"requires": ["a"]})()
    with pytest.raises(ConfigurationError, match="cycle"):
        plugins.PluginHost(enabled=[], extra=[("a", a), ("b", b)])
    with pytest.raises(ConfigurationError, match="unknown plugins: nope"):
        plugins.PluginHost(enabled=["nope"])


def test_disabling_a_plugin_loses_no_data(make_runtime):
    rt = make_runtime(plugins=[("gadgets", GadgetsPlugin())])
    with rt.transaction() as records:
        records.create("gadget", {"name": "kept"})
        customer = records.create("customer", {"name": "乙公司"})
        records.as_system().update("customer", customer["id"], {"gadgets_count": 3})
    off = make_runtime(plugins=[("gadgets", GadgetsPlugin())], **{"crm.plugins.disabled": "gadgets"})
    assert "gadget" not in off.metadata and "gadgets_count" not in off.metadata["customer"].fields
    with off.transaction() as records:
        assert "gadgets_count" not in records.get("customer", customer["id"])
        records.update("customer", customer["id"], {"remark": "edited while the plugin was off"})
    on = make_runtime(plugins=[("gadgets", GadgetsPlugin())])
    with on.transaction() as records:
        assert [g["name"] for g in records.list("gadget").items] == ["kept"]
        assert records.get("customer", customer["id"])["gadgets_count"] == 3


def test_plugin_migration_branch(make_runtime, tmp_path):
    versions = tmp_path / "gadget_migrations"
    versions.mkdir()
    (versions / "g001_gadget_log.py").write_text(textwrap.dedent('''
        from alembic import op
        import sqlalchemy as sa
        revision = "g001"
        down_revision = None
        branch_labels = ("gadgets",)
        depends_on = None
        def upgrade():
            op.create_table("gadgets_log", sa.Column("id", sa.Integer, primary_key=True), sa.Column("text", sa.String(100)))
        def downgrade():
            op.drop_table("gadgets_log")
    '''))

    class WithMigrations(GadgetsPlugin):
        @hookimpl
        def crm_migrations(self):
            return str(versions)

    rt = make_runtime(plugins=[("gadgets", WithMigrations())])
    with rt.engine.connect() as connection:
        assert sa.inspect(connection).has_table("gadgets_log")
        heads = set(connection.execute(sa.text("SELECT version_num FROM crm_alembic_version")).scalars())
    assert heads >= {"g001"}
    rt.upgrade()  # idempotent
    off = make_runtime(plugins=[("gadgets", WithMigrations())], **{"crm.plugins.disabled": "gadgets"})
    off.upgrade()  # its revision stays known while the plugin is off
    with off.engine.connect() as connection:
        assert sa.inspect(connection).has_table("gadgets_log")


def test_attachments_are_stored_under_files(runtime, instance_dir):
    with runtime.transaction(user={"id": 1, "is_admin": True}) as records:
        customer = records.create("customer", {"name": "丙公司"})
        row = attachments.save(records, io.BytesIO("合同内容".encode()), "../../合同 2026.pdf", "application/pdf",
                               entity="customer", record_id=customer["id"])
        stored = attachments.path_of(records, row)
        assert stored.read_bytes() == "合同内容".encode() and stored.is_relative_to(instance_dir / "files")
        assert row["filename"] == "合同 2026.pdf" and row["size"] == len("合同内容".encode())
        assert [a["id"] for a in attachments.for_record(records, "customer", customer["id"])] == [row["id"]]


def test_autonumbers_have_no_gaps_under_concurrency(make_runtime, database_url):
    rt = make_runtime(plugins=[("gadgets", GadgetsPlugin())])
    errors = []

    def worker(n):
        try:
            for i in range(5):
                try:
                    with rt.transaction() as records:
                        records.create("gadget", {"name": f"w{n}-{i}"})
                        if i == 2:
                            raise RuntimeError("rolled back: its number must be given back")
                except RuntimeError:
                    pass
        except Exception as e:  # pragma: no cover - shown in the assertion
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with rt.transaction() as records:
        serials = sorted(g["serial"] for g in records.list("gadget", limit=100).items)
    assert serials == [f"G26-{i:04d}" for i in range(1, 25)]
