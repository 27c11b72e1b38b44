"""Schema sync: custom fields become real columns, nothing is dropped, diff changes nothing."""
import json

import pytest
import sqlalchemy as sa

from crm.core.errors import BadRequest
from tests.plugin_fixtures import deals_plugin
from tests.statements import statements


def columns(runtime, table):
    with runtime.engine.connect() as connection:
        return {c["name"]: c for c in sa.inspect(connection).get_columns(table)}


def indexes(runtime, table):
    with runtime.engine.connect() as connection:
        return {i["name"] for i in sa.inspect(connection).get_indexes(table)}


def test_upgrade_creates_tables_indexes_and_is_idempotent(make_runtime):
    rt = make_runtime(plugins=[deals_plugin()])
    assert {"title", "amount", "version", "deleted_at"} <= set(columns(rt, "deal"))
    assert "lines" not in columns(rt, "deal") and "parent_id" in columns(rt, "deal_line")
    assert {"ix_deal_stage_created_at_id_deleted_at", "ux_deal_code", "ux_deal_email", "ix_deal_partner_id_created_at_id_deleted_at"} <= indexes(rt, "deal")
    plan, _ = rt.upgrade()
    assert plan.empty and plan.summary == []


def test_custom_field_becomes_a_filterable_column_and_removing_it_keeps_data(make_runtime, instance_dir):
    rt = make_runtime(plugins=[deals_plugin()])
    custom = instance_dir / "custom" / "deal.json"
    custom.write_text(json.dumps({"extends": "deal", "fields": {
        "x_wechat": {"type": "text", "label": {"zh_CN": "微信", "en": "WeChat"}, "index": True, "max_length": 50},
        "x_vip": {"type": "boolean"}}}), "utf-8")
    rt2 = make_runtime(plugins=[deals_plugin()], upgrade=False)
    plan, sql = rt2.diff()
    assert "add column deal.x_wechat VARCHAR(50)" in plan.summary
    assert "x_wechat" in sql and "x_wechat" not in columns(rt2, "deal")       # diff changes nothing
    rt2.upgrade()
    assert {"x_wechat", "x_vip"} <= set(columns(rt2, "deal")) and "ix_deal_x_wechat_id_deleted_at" in indexes(rt2, "deal")
    with rt2.transaction() as records:
        records.create("deal", {"title": "A", "x_wechat": "wx_a", "x_vip": True})
        records.create("deal", {"title": "B", "x_wechat": "wx_b"})
        assert [d["title"] for d in records.list("deal", filters=[("x_wechat", "eq", "wx_a")]).items] == ["A"]
        assert [d["title"] for d in records.list("deal", filters=[("x_vip", "eq", "true")]).items] == ["A"]
    custom.unlink()                                   # the field leaves the metadata ...
    rt3 = make_runtime(plugins=[deals_plugin()], upgrade=False)
    plan, _ = rt3.upgrade()
    assert any("x_wechat" in s and "kept" in s for s in plan.skipped)
    assert "x_wechat" in columns(rt3, "deal")         # ... the column and its data stay
    with rt3.engine.connect() as connection:
        assert sorted(connection.execute(sa.text("SELECT x_wechat FROM deal")).scalars()) == ["wx_a", "wx_b"]
    with rt3.transaction() as records:
        assert "x_wechat" not in records.list("deal").items[0]
        with pytest.raises(BadRequest):
            records.list("deal", filters=[("x_wechat", "eq", "wx_a")])
    custom.write_text(json.dumps({"extends": "deal", "fields": {"x_wechat": {"type": "text", "max_length": 50}}}), "utf-8")
    rt4 = make_runtime(plugins=[deals_plugin()])      # ... and comes back with it
    with rt4.transaction() as records:
        assert sorted(d["x_wechat"] for d in records.list("deal").items) == ["wx_a", "wx_b"]


def test_widening_applies_and_narrowing_is_skipped(make_runtime, instance_dir, database_url):
    custom = instance_dir / "custom" / "deal.json"
    custom.write_text(json.dumps({"extends": "deal", "fields": {"x_note": {"type": "text", "max_length": 20}}}), "utf-8")
    make_runtime(plugins=[deals_plugin()])
    custom.write_text(json.dumps({"extends": "deal", "fields": {"x_note": {"type": "text", "max_length": 200}}}), "utf-8")
    rt = make_runtime(plugins=[deals_plugin()], upgrade=False)
    plan, _ = rt.upgrade()
    if database_url.startswith("postgresql"):
        assert plan.summary == ["widen column deal.x_note: VARCHAR(20) → VARCHAR(200)"]
        assert columns(rt, "deal")["x_note"]["type"].length == 200
    custom.write_text(json.dumps({"extends": "deal", "fields": {"x_note": {"type": "text", "max_length": 10}}}), "utf-8")
    rt = make_runtime(plugins=[deals_plugin()], upgrade=False)
    plan, _ = rt.upgrade()
    assert any("x_note" in s and "narrow" in s for s in plan.skipped)
    if database_url.startswith("postgresql"):
        assert columns(rt, "deal")["x_note"]["type"].length == 200


def test_core_tables_match_latest_migration(runtime):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from crm.core.tables import core_metadata
    with runtime.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={
            "include_object": lambda o, name, type_, r, c: type_ != "table" or name in core_metadata.tables})
        diff = [d for d in compare_metadata(context, core_metadata)]
    assert diff == []


def test_derived_indexes_end_with_id_and_deleted_at_and_supersede_the_old_ones(make_runtime, database_url):
    rt = make_runtime(plugins=[deals_plugin()])
    wanted = {"ix_deal_partner_id_created_at_id_deleted_at", "ix_deal_mnemonic_id_deleted_at", "ix_deal_created_at_id_deleted_at",
              "ix_deal_updated_by_updated_at_id_deleted_at"}
    assert wanted <= indexes(rt, "deal")
    assert "ix_deal_line_parent_id_sort_order" in indexes(rt, "deal_line")   # a child table has no recycle bin
    with rt.transaction() as records:
        records.create_many("deal", [{"title": f"D{i}"} for i in range(5)])
    with rt.engine.begin() as connection:   # as an instance made before these indexes had id and deleted_at
        connection.exec_driver_sql("DROP INDEX ix_deal_partner_id_created_at_id_deleted_at")
        connection.exec_driver_sql("CREATE INDEX ix_deal_partner_id_created_at ON deal (partner_id, created_at)")
        connection.exec_driver_sql("CREATE INDEX ix_deal_mnemonic ON deal (mnemonic)")
        connection.exec_driver_sql("CREATE INDEX by_hand_partner ON deal (partner_id)")      # someone's own: kept
        connection.exec_driver_sql("CREATE INDEX ix_deal_amount ON deal (amount)")           # nothing supersedes it: kept
        connection.exec_driver_sql("ANALYZE")
    rt2 = make_runtime(plugins=[deals_plugin()], upgrade=False)
    plan, _ = rt2.upgrade()
    assert plan.summary == [
        "create index ix_deal_partner_id_created_at_id_deleted_at on deal",
        "drop index ix_deal_mnemonic on deal (superseded by ix_deal_mnemonic_id_deleted_at)",
        "drop index ix_deal_partner_id_created_at on deal (superseded by ix_deal_partner_id_created_at_id_deleted_at)",
    ]
    assert sorted(s for s in plan.skipped if "index" in s) == ["index by_hand_partner: no longer in metadata; kept",
                                                                "index ix_deal_amount: no longer in metadata; kept"]
    found = indexes(rt2, "deal")
    assert wanted | {"by_hand_partner", "ix_deal_amount"} <= found
    assert not {"ix_deal_partner_id_created_at", "ix_deal_mnemonic"} & found
    if not database_url.startswith("postgresql"):   # the planner has statistics of the new index as of the others
        with rt2.engine.connect() as connection:
            analyzed = {i for (i,) in connection.exec_driver_sql("SELECT idx FROM sqlite_stat1 WHERE tbl = 'deal'")}
        assert {"ix_deal_partner_id_created_at_id_deleted_at", "ix_deal_amount"} <= analyzed
        assert "ix_deal_partner_id_created_at" not in analyzed
    plan, _ = rt2.upgrade()
    assert plan.summary == []


def test_a_filtered_lists_count_is_read_from_the_index_alone(make_runtime, database_url):
    """The list page's capped count of a filter's matches never reads the table's rows."""
    rt = make_runtime(plugins=[deals_plugin()])
    with rt.transaction() as records:
        partner = records.create("partner", {"name": "P"})
        records.create_many("deal", [{"title": f"D{i}", "partner_id": partner["id"] if i % 2 else None} for i in range(8)])
        records.delete("deal", records.list("deal", filters=[("partner_id", "eq", partner["id"])], limit=1).items[0]["id"])
    with rt.transaction() as records:
        with statements(rt.engine, parameters=True) as sent:
            page = records.list("deal", filters=[("partner_id", "eq", partner["id"])], limit=1, count=True)
        assert page.total == 3                       # four link to the partner, one of them is in the recycle bin
        statement, parameters = next((s, p) for s, p in sent if "count(" in s.lower())
        connection = records.session.connection()
        if database_url.startswith("postgresql"):
            connection.exec_driver_sql("SET LOCAL enable_seqscan = off")   # eight rows: the planner would read the table
            connection.exec_driver_sql("SET LOCAL enable_bitmapscan = off")
            plan = "\n".join(r[0] for r in connection.exec_driver_sql("EXPLAIN " + statement, parameters))
            assert "Index Only Scan using ix_deal_partner_id_created_at_id_deleted_at" in plan, plan
        else:
            plan = " ".join(r[3] for r in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters))
            assert "USING COVERING INDEX ix_deal_partner_id_created_at_id_deleted_at" in plan, plan
