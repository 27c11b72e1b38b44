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
