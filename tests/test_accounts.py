"""Accounts through their public surfaces (HTTP pages, the REST API, the CLI), on SQLite and
PostgreSQL: the lockout after repeated failed logins, a user's own password change, an
administrator's password reset, and API tokens (created once, hashed at rest, revoked, expiring)."""
import datetime as dt
import hashlib
import re

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from crm.core import auth
from crm.core.cli import cli
from crm.core.tables import api_tokens, users
from tests.api_fixtures import PASSWORD, create_user
from tests.test_pages import Site

LOCKOUT = {"crm.login.max_failures": "3", "crm.login.lockout_minutes": "10"}


def user_row(runtime, username):
    with runtime.transaction(write=False) as records:
        return auth.get_user(records.session, username=username)


@pytest.fixture
def office(make_runtime):
    """An administrator and the sales rep 李娜 (username lina), lockout after 3 failures for 10 minutes."""
    runtime = make_runtime(**LOCKOUT)
    create_user(runtime, "admin", display_name="管理员")
    create_user(runtime, "lina", admin=False, display_name="李娜")
    return runtime


def login_api(site, username, password, status, **extra):
    return site.app.post_json("/api/v1/auth/token", {"username": username, "password": password, **extra}, status=status)


# --- lockout -------------------------------------------------------------------------------------

def test_web_login_locks_after_repeated_failures_and_unlocks_after_the_lock_time(office, clock):
    site = Site(office)
    for attempt in (1, 2):
        page = site.login("lina", "wrong-password")
        assert page.status_int == 200 and "用户名或密码错误" in page.text and "锁定" not in page.text
        assert user_row(office, "lina")["failed_logins"] == attempt   # committed although the login failed
    locked = site.login("lina", "wrong-password")
    assert "登录失败次数过多" in locked.text and "2026-11-23 09:40" in locked.text
    assert "登录失败次数过多" in site.login("lina").text             # the right password does not help now
    assert site.get("/app", status=302).location.startswith("http://localhost/login")
    for _ in range(5):  # an unknown name never reads as locked: nothing tells whether it exists
        assert "用户名或密码错误" in site.login("nobody-here", "wrong-password").text
    clock.advance(minutes=10, seconds=1)
    assert site.login("lina").status_int == 302
    assert "李娜" in site.get("/app").text
    row = user_row(office, "lina")
    assert row["failed_logins"] == 0 and row["locked_until"] is None


def test_a_right_password_resets_the_count(office):
    site = Site(office)
    site.login("lina", "wrong-password")
    site.login("lina", "wrong-password")
    assert site.login("lina").status_int == 302
    assert user_row(office, "lina")["failed_logins"] == 0
    other = Site(office)
    other.login("lina", "wrong-password")
    other.login("lina", "wrong-password")
    assert other.login("lina").status_int == 302     # two more failures: not three in a row


def test_api_login_locks_with_a_json_error(office, clock):
    site = Site(office)
    for _ in range(2):
        assert login_api(site, "lina", "wrong-password", 401).json["error"]["code"] == "unauthorized"
    assert user_row(office, "lina")["failed_logins"] == 2           # the 401 rolled back the request, not the count
    error = login_api(site, "lina", "wrong-password", 403).json["error"]
    assert error["code"] == "account_locked" and "2026-11-23 09:40" in error["message"]
    assert login_api(site, "lina", PASSWORD, 403).json["error"]["code"] == "account_locked"
    for _ in range(4):
        assert login_api(site, "ghost", "wrong-password", 401).json["error"]["code"] == "unauthorized"
    clock.advance(minutes=11)
    assert login_api(site, "lina", PASSWORD, 200).json["user"]["username"] == "lina"


def test_web_and_api_failures_count_together_and_a_lockout_can_be_turned_off(office, make_runtime):
    site = Site(office)
    site.login("lina", "wrong-password")
    login_api(site, "lina", "wrong-password", 401)
    assert login_api(site, "lina", "wrong-password", 403).json["error"]["code"] == "account_locked"
    relaxed = make_runtime(**{"crm.login.max_failures": "0"})
    create_user(relaxed, "wang", admin=False)
    other = Site(relaxed)
    for _ in range(8):
        login_api(other, "wang", "wrong-password", 401)
    assert login_api(other, "wang", PASSWORD, 200)


def test_bad_lockout_settings_stop_at_once(office):
    from crm.core import logins
    from crm.core.errors import ConfigurationError
    with pytest.raises(ConfigurationError, match="crm.login.max_failures"):
        logins.Policy.from_settings({"crm.login.max_failures": "many"})
    with pytest.raises(ConfigurationError, match="crm.login.lockout_minutes"):
        logins.Policy.from_settings({"crm.login.lockout_minutes": "-5"})


# --- passwords -----------------------------------------------------------------------------------

def password_form(site, current, new, again=None):
    return site.app.post("/app/account/password", {"current_password": current, "password": new,
                                                   "password_again": new if again is None else again,
                                                   "csrf_token": site.csrf}, status="*")


def test_password_change_needs_the_current_password_and_ends_other_sessions(office):
    here, elsewhere = Site(office), Site(office)
    here.login("lina")
    elsewhere.login("lina")
    page = here.get("/app/account")
    assert "修改密码" in page.text and page.html.select_one("#password-form input[name=csrf_token]")

    wrong = password_form(here, "not-my-password", "new-password-1")
    assert wrong.status_int == 422 and "当前密码不正确" in wrong.text
    assert user_row(office, "lina")["failed_logins"] == 1               # a wrong current password counts
    assert "两次输入的密码不一致" in password_form(here, PASSWORD, "new-password-1", "new-password-2").text
    assert "至少 8 个字符" in password_form(here, PASSWORD, "short").text
    assert "不能与当前密码相同" in password_form(here, PASSWORD, PASSWORD).text
    assert auth.verify_password(user_row(office, "lina")["password_hash"], PASSWORD)   # nothing changed yet

    done = password_form(here, PASSWORD, "new-password-1")
    assert done.status_int == 302 and "密码已修改" in here.get("/app/account").text
    stored = user_row(office, "lina")
    assert stored["password_hash"].startswith("$argon2") and "new-password-1" not in stored["password_hash"]
    assert elsewhere.get("/app", status=302).location.startswith("http://localhost/login")   # the other session ended
    assert "李娜" in here.get("/app").text                                                   # this one goes on
    assert "用户名或密码错误" in Site(office).login("lina").text
    assert Site(office).login("lina", "new-password-1").status_int == 302


def test_admin_resets_a_password_which_ends_the_users_sessions_and_lifts_a_lock(office):
    lina = Site(office)
    lina.login("lina")
    for _ in range(3):
        Site(office).login("lina", "wrong-password")
    assert user_row(office, "lina")["locked_until"] is not None
    admin = Site(office)
    admin.login("admin")
    user_id = user_row(office, "lina")["id"]
    page = admin.get(f"/app/admin/users/{user_id}")
    assert "登录失败次数过多" in page.text and page.html.select_one("#unlock")
    short = admin.app.post(f"/app/admin/users/{user_id}/password", {"password": "short", "password_again": "short",
                                                                    "csrf_token": admin.csrf}, status=422)
    assert "至少 8 个字符" in short.text
    admin.post(f"/app/admin/users/{user_id}/password", {"password": "reset-by-admin", "password_again": "reset-by-admin"})
    row = user_row(office, "lina")
    assert row["locked_until"] is None and auth.verify_password(row["password_hash"], "reset-by-admin")
    assert lina.get("/app", status=302)                                  # her old session ended
    assert Site(office).login("lina", "reset-by-admin").status_int == 302


# --- API tokens -----------------------------------------------------------------------------------

def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_tokens_are_shown_once_stored_as_a_hash_used_and_revoked_from_the_account_page(office, clock):
    site = Site(office)
    site.login("lina")
    made = site.app.post("/app/account/tokens", {"name": "报表脚本", "expires": "30", "csrf_token": site.csrf})
    assert made.status_int == 200 and made.headers["Cache-Control"] == "no-store"
    token = made.html.select_one("#new-token code").text
    assert token.startswith("crm_") and "2026-12-23 09:30" in made.text
    with office.transaction(write=False) as records:
        row = dict(records.session.execute(sa.select(api_tokens)).mappings().one())
    assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest() and token not in str(row)
    assert token not in site.get("/app/account").text                   # shown once only
    assert site.app.get("/api/v1/meta/entities", headers=bearer(token)).status_int == 200

    assert site.app.post("/app/account/tokens", {"name": "", "csrf_token": site.csrf}, status=422)
    assert site.app.post("/app/account/tokens", {"name": "x", "expires": "7000", "csrf_token": site.csrf}, status=422)

    listed = site.get("/app/account")
    row_html = listed.html.select_one(f"#token-table tr[data-token='{row['id']}']")
    assert "报表脚本" in row_html.text and "启用" in row_html.text
    site.post(row_html.select_one("form")["action"], {})
    site.app.get("/api/v1/meta/entities", headers=bearer(token), status=401)
    assert "已撤销" in site.get("/app/account").html.select_one(f"#token-table tr[data-token='{row['id']}']").text


def test_tokens_expire(office, clock):
    site = Site(office)
    answer = login_api(site, "lina", PASSWORD, 200, expires_in_days=2, name="夜间同步").json
    assert answer["expires_at"] == "2026-11-25T09:30:00"
    assert login_api(site, "lina", PASSWORD, 400, expires_in_days=0).json["error"]["fields"] == {
        "expires_in_days": "a whole number of days from 1 to 3650"}
    forever = login_api(site, "lina", PASSWORD, 200).json
    assert forever["expires_at"] is None
    site.app.get("/api/v1/meta/entities", headers=bearer(answer["token"]), status=200)
    clock.advance(days=2)
    site.app.get("/api/v1/meta/entities", headers=bearer(answer["token"]), status=401)
    site.app.get("/api/v1/meta/entities", headers=bearer(forever["token"]), status=200)
    site.login("lina")
    states = {tr.select("td")[0].text: tr.select("td")[4].text for tr in site.get("/app/account").html.select("#token-table tbody tr")}
    assert states == {"夜间同步": "已过期", "api": "启用"}


def test_an_admin_revokes_anyones_token_but_a_user_only_their_own(office):
    site = Site(office)
    theirs = login_api(site, "lina", PASSWORD, 200).json["token"]
    mine = login_api(site, "admin", PASSWORD, 200).json["token"]
    with office.transaction(write=False) as records:
        ids = dict(records.session.execute(sa.select(users.c.username, api_tokens.c.id).join(users, users.c.id == api_tokens.c.user_id)).all())
    lina = Site(office)
    lina.login("lina")
    lina.post(f"/app/account/tokens/{ids['admin']}/revoke", {}, status=404)     # not hers
    lina.app.get("/api/v1/meta/entities", headers=bearer(mine), status=200)
    admin = Site(office)
    admin.login("admin")
    user_id = user_row(office, "lina")["id"]
    page = admin.get(f"/app/admin/users/{user_id}")
    form = page.html.select_one(f"#token-table tr[data-token='{ids['lina']}'] form")
    admin.post(form["action"], {})
    admin.app.get("/api/v1/meta/entities", headers=bearer(theirs), status=401)
    admin.post(form["action"], {}, status=404)                                   # revoked already


@pytest.fixture
def cli_run(database_url, monkeypatch, tmp_path):
    monkeypatch.setenv("CRM_DATABASE_URL", database_url)
    runner = CliRunner()
    folder = tmp_path / "acme"

    def invoke(*args, input=None):
        return runner.invoke(cli, [str(a) for a in args], input=input, catch_exceptions=False)
    assert invoke("init", folder).exit_code == 0
    assert invoke("users", "create", folder, "lina", "--password", PASSWORD).exit_code == 0
    return invoke, folder


def test_tokens_with_the_cli(cli_run):
    run, folder = cli_run
    made = run("tokens", "create", folder, "lina", "--name", "备份脚本", "--expires-days", "5")
    assert made.exit_code == 0
    token = made.stdout.strip()
    assert re.fullmatch(r"crm_[\w-]+", token) and "not shown again" in made.stderr
    listed = run("tokens", "list", folder, "lina")
    assert listed.exit_code == 0 and "备份脚本" in listed.output and "active" in listed.output and token not in listed.output
    assert "lina" in run("tokens", "list", folder).output
    token_id = int(listed.output.split()[0])
    from crm.core import instance
    from crm.core.runtime import Runtime
    from crm.core import tokens
    runtime = Runtime(instance.settings(folder))
    try:
        with runtime.transaction(write=False) as records:
            assert tokens.lookup(records.session, token, now=records.now())[0]["username"] == "lina"
        assert run("tokens", "revoke", folder, token_id).exit_code == 0
        with runtime.transaction(write=False) as records:
            assert tokens.lookup(records.session, token, now=records.now()) is None
    finally:
        runtime.dispose()
    assert "revoked" in run("tokens", "list", folder, "lina").output
    again = run("tokens", "revoke", folder, token_id)
    assert again.exit_code == 1 and "no live token" in again.stderr
    ghost = run("tokens", "create", folder, "ghost")
    assert ghost.exit_code == 1 and "no user 'ghost'" in ghost.stderr
    assert run("tokens", "revoke", folder, "abc").exit_code == 2
    assert run("tokens", "create", folder, "lina", "--expires-days", "0").exit_code == 2
    for command in (("tokens",), ("tokens", "create"), ("tokens", "list"), ("tokens", "revoke")):
        assert run(*command, "--help").exit_code == 0


def test_users_password_and_unlock_with_the_cli(cli_run):
    run, folder = cli_run
    from crm.core import instance
    from crm.core.runtime import Runtime
    runtime = Runtime(instance.settings(folder))
    try:
        with runtime.transaction() as records:
            records.session.execute(users.update().where(users.c.username == "lina").values(
                failed_logins=2, locked_until=dt.datetime(2100, 1, 1)))
        assert run("users", "unlock", folder, "lina").exit_code == 0
        assert user_row(runtime, "lina")["locked_until"] is None
        assert run("users", "password", folder, "lina", input="short\n").exit_code == 1
        assert run("users", "password", folder, "lina", input="a-new-long-one\n").exit_code == 0
        assert auth.verify_password(user_row(runtime, "lina")["password_hash"], "a-new-long-one")
        assert run("users", "unlock", folder, "ghost").exit_code == 1
    finally:
        runtime.dispose()
