"""The `crm` command line through its public surface: commands, output and exit codes."""
import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from crm.core.cli import cli
from crm.core.runtime import Runtime
from crm.core import instance


@pytest.fixture
def run(database_url, monkeypatch):
    monkeypatch.setenv("CRM_DATABASE_URL", database_url)
    runner = CliRunner()

    def invoke(*args, input=None):
        return runner.invoke(cli, [str(a) for a in args], input=input, catch_exceptions=False)
    return invoke


def test_init_creates_the_instance_folder_and_database(run, tmp_path):
    result = run("init", tmp_path / "acme", "--admin-password", "s3cret-pass")
    assert result.exit_code == 0, result.output
    folder = tmp_path / "acme"
    assert (folder / "crm.ini").is_file() and (folder / "custom").is_dir() and (folder / "files").is_dir()
    assert "crm.secret = " in (folder / "crm.ini").read_text()
    runtime = Runtime(instance.settings(folder))
    with runtime.transaction() as records:
        assert records.setting("birthday_remind_days") == 7
        from crm.core import auth
        admin = auth.get_user(records.session, username="admin")
        assert admin["is_admin"] and auth.verify_password(admin["password_hash"], "s3cret-pass")
        assert not auth.verify_password(admin["password_hash"], "wrong")
    runtime.dispose()


def test_custom_field_then_db_diff_then_upgrade(run, tmp_path):
    folder = tmp_path / "acme"
    assert run("init", folder).exit_code == 0
    (folder / "custom" / "customer.json").write_text(json.dumps(
        {"extends": "customer", "fields": {"x_wechat": {"type": "text", "label": {"zh_CN": "微信", "en": "WeChat"}}}}))
    diff = run("db", "diff", folder)
    assert diff.exit_code == 0 and "add column customer.x_wechat" in diff.output and "ALTER TABLE" in diff.output
    assert "add column customer.x_wechat" in run("db", "diff", folder).output   # diff changed nothing
    upgrade = run("db", "upgrade", folder)
    assert upgrade.exit_code == 0 and "add column customer.x_wechat" in upgrade.output
    assert run("db", "diff", folder).output.strip() == "no changes"


def test_users_create_and_errors(run, tmp_path):
    folder = tmp_path / "acme"
    run("init", folder)
    ok = run("users", "create", folder, "lina", "--password", "long-enough-1")
    assert ok.exit_code == 0 and "user lina created" in ok.output
    again = run("users", "create", folder, "lina", "--password", "long-enough-1")
    assert again.exit_code == 1 and "exists already" in again.output
    short = run("users", "create", folder, "bob", "--password", "short")
    assert short.exit_code == 1
    prompted = run("users", "create", folder, "carol", input="another-password\n")
    assert prompted.exit_code == 0


def test_invalid_metadata_stops_with_file_and_pointer(run, tmp_path):
    folder = tmp_path / "acme"
    run("init", folder)
    bad = folder / "custom" / "bad.json"
    bad.write_text(json.dumps({"extends": "customer", "fields": {"x_level": {"type": "select"}}}))
    result = run("db", "upgrade", folder)
    assert result.exit_code == 1
    assert str(bad) in result.output and "/fields/x_level" in result.output and "dictionary" in result.output


def test_plugins_list_and_jobs_run(run, tmp_path):
    folder = tmp_path / "acme"
    run("init", folder)
    listed = run("plugins", "list", folder)
    assert listed.exit_code == 0
    assert run("jobs", "run", folder).exit_code == 0


def test_real_command_exit_codes_and_help(tmp_path):
    env = {**os.environ, "CRM_DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite'}"}
    crm = [sys.executable, "-c", "from crm.core.cli import main; main()"]
    usage = subprocess.run(crm + ["users", "create"], capture_output=True, text=True, env=env)
    assert usage.returncode == 2
    missing = subprocess.run(crm + ["db", "upgrade", str(tmp_path / "nowhere")], capture_output=True, text=True, env=env)
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1 and "crm init" in missing.stderr
    for command in (["--help"], ["init", "--help"], ["db", "diff", "--help"], ["users", "create", "--help"],
                    ["plugins", "list", "--help"], ["jobs", "run", "--help"], ["demo", "--help"], ["serve", "--help"]):
        shown = subprocess.run(crm + command, capture_output=True, text=True, env=env)
        assert shown.returncode == 0 and "Usage:" in shown.stdout


def test_demo_fills_an_instance(run, tmp_path):
    folder = tmp_path / "demo"
    result = run("demo", folder, "--customers", "12", "--no-serve")
    assert result.exit_code == 0 and "login: admin / " in result.output and "http://127.0.0.1:6543/" in result.output
    runtime = Runtime(instance.settings(folder))
    with runtime.transaction() as records:
        customers = records.list("customer", limit=100).items
        assert len(customers) == 12
        assert all(c["code"].startswith("KH2") and c["mnemonic"] for c in customers)
        assert records.list("contact", filters=[("customer_id", "eq", customers[0]["id"])]).items
    runtime.dispose()
    assert "password unchanged" in run("demo", folder, "--customers", "12", "--no-serve").output
