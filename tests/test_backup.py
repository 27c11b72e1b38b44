"""crm backup / restore on SQLite and PostgreSQL, through the CLI."""
import io

import pytest
from click.testing import CliRunner

from crm.core import attachments, instance
from crm.core.cli import cli
from crm.core.runtime import Runtime


def test_backup_and_restore_round_trip(tmp_path, database_url, monkeypatch):
    if database_url.startswith("postgresql"):
        import shutil
        if not shutil.which("pg_dump"):
            pytest.skip("pg_dump is not installed")
    monkeypatch.setenv("CRM_DATABASE_URL", database_url)
    folder = tmp_path / "acme"
    runner = CliRunner()
    assert runner.invoke(cli, ["init", str(folder)]).exit_code == 0
    (folder / "custom" / "customer.json").write_text('{"extends": "customer", "fields": {"x_wechat": {"type": "text"}}}')
    assert runner.invoke(cli, ["db", "upgrade", str(folder)]).exit_code == 0
    runtime = Runtime(instance.settings(folder))
    with runtime.transaction() as records:
        kept = records.create("customer", {"name": "备份前的客户", "x_wechat": "wx"})
        attachments.save(records, io.BytesIO(b"contract"), "contract.pdf", entity="customer", record_id=kept["id"])
    runtime.dispose()
    archive = tmp_path / "backup.tar.gz"
    made = runner.invoke(cli, ["backup", str(folder), "--output", str(archive)])
    assert made.exit_code == 0, made.output
    runtime = Runtime(instance.settings(folder))
    with runtime.transaction() as records:           # changes after the backup ...
        records.create("customer", {"name": "备份后的客户"})
        records.delete("customer", kept["id"])
    runtime.dispose()
    for path in (folder / "files").rglob("*"):
        if path.is_file():
            path.unlink()
    (folder / "custom" / "customer.json").unlink()
    restored = runner.invoke(cli, ["restore", str(folder), str(archive), "--yes"])
    assert restored.exit_code == 0, restored.output
    runtime = Runtime(instance.settings(folder))     # ... are gone, and what was there is back
    with runtime.transaction() as records:
        names = [c["name"] for c in records.list("customer").items]
        assert names == ["备份前的客户"] and records.get("customer", kept["id"])["x_wechat"] == "wx"
        [row] = attachments.for_record(records, "customer", kept["id"])
        assert attachments.path_of(records, row).read_bytes() == b"contract"
    runtime.dispose()
    bad = runner.invoke(cli, ["restore", str(folder), str(tmp_path / "nothing.tar.gz"), "--yes"])
    assert bad.exit_code == 1


def test_a_postgresql_instance_in_its_own_schema_backs_up_and_restores_only_that_schema(tmp_path, monkeypatch):
    """Two instances share one database, each in its schema: restoring one leaves the other's
    rows as they are now (a whole-database dump would roll them back or clash with them)."""
    import shutil
    import uuid

    import sqlalchemy as sa

    from tests.conftest import PG_AVAILABLE, PG_URL
    if not PG_AVAILABLE or not shutil.which("pg_dump"):
        pytest.skip("PostgreSQL or pg_dump is not available")
    ours, neighbour = "t_" + uuid.uuid4().hex[:12], "t_" + uuid.uuid4().hex[:12]
    engine = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        for schema in (ours, neighbour):
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        connection.execute(sa.text(f'CREATE TABLE "{neighbour}".notes (text varchar)'))
    try:
        separator = "&" if "?" in PG_URL else "?"
        monkeypatch.setenv("CRM_DATABASE_URL", f"{PG_URL}{separator}options=-csearch_path%3D{ours}")
        folder, runner = tmp_path / "ours", CliRunner()
        assert runner.invoke(cli, ["init", str(folder)]).exit_code == 0
        assert runner.invoke(cli, ["db", "upgrade", str(folder)]).exit_code == 0
        archive = tmp_path / "ours.tar.gz"
        assert runner.invoke(cli, ["backup", str(folder), "--output", str(archive)]).exit_code == 0
        with engine.connect() as connection:
            connection.execute(sa.text(f"INSERT INTO \"{neighbour}\".notes VALUES ('written after the backup')"))
        restored = runner.invoke(cli, ["restore", str(folder), str(archive), "--yes"])
        assert restored.exit_code == 0, restored.output
        with engine.connect() as connection:
            assert connection.execute(sa.text(f'SELECT text FROM "{neighbour}".notes')).scalars().all() == [
                "written after the backup"]
            assert connection.execute(sa.text(
                f"SELECT count(*) FROM information_schema.tables WHERE table_schema = '{ours}' AND table_name = 'customer'"
            )).scalar() == 1
    finally:
        with engine.connect() as connection:
            for schema in (ours, neighbour):
                connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()
