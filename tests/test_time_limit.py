"""A list's count given up past its time (crm.core.time_limit): the page still comes, with what
is known ("50+"), and the transaction goes on."""
import time
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa

from crm.core import records as record_service, time_limit
from crm.core.app import make_app
from crm.core.web.pages import lists
from crm.hooks import hookimpl
from tests.api_fixtures import PASSWORD, create_user
from tests.browser import chromium, login, new_page, playwright_api, served, sqlite_runtime
from tests.test_pages import Site

SQLITE_STEPS = "(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {n}) SELECT count(*) FROM c)"


def slow(dialect, seconds):
    """A statement that takes about ``seconds`` on this database."""
    if dialect == "postgresql":
        return sa.select(sa.text(f"1 FROM pg_sleep({seconds})"))
    return sa.text("SELECT " + SQLITE_STEPS.format(n=int(seconds * 3_000_000)))


def test_a_slow_statement_is_given_up_and_the_transaction_goes_on(runtime):
    dialect = runtime.engine.dialect.name
    with runtime.transaction() as records:
        kept = records.create("customer", {"name": "等待前的客户"})["id"]
        started = time.monotonic()
        assert time_limit.scalar_within(records.session, slow(dialect, 3), 0.1) is None
        assert time.monotonic() - started < 1.5
        after = records.create("customer", {"name": "等待后的客户"})["id"]
        assert time_limit.scalar_within(records.session, sa.select(sa.literal(7)), 0.1) == 7
        started = time.monotonic()
        records.session.execute(slow(dialect, 0.6))  # no time limit left behind: longer than 0.1 s, not stopped
        assert time.monotonic() - started > 0.15
        if dialect == "postgresql":
            assert records.session.execute(sa.text("SHOW statement_timeout")).scalar() == "0"
    with runtime.transaction() as records:
        assert {r["id"] for r in records.list("customer").items} >= {kept, after}


class SlowRows:
    """Makes every customer row slow to test, for the administrator too (a restriction applies to all)."""

    def __init__(self, dialect):
        self.clause = (sa.text("(SELECT 1 FROM pg_sleep(0.002)) = 1") if dialect == "postgresql"
                       else sa.text(SQLITE_STEPS.format(n=20_000) + " > 0"))

    @hookimpl
    def crm_access_restrictions(self, ctx, entity, action, user):
        return [self.clause] if entity.name == "customer" else []


@pytest.fixture
def slow_site(make_runtime, database_url, monkeypatch):
    dialect = "postgresql" if database_url.startswith("postgresql") else "sqlite"
    runtime = make_runtime(plugins=[("slow_rows", SlowRows(dialect))])
    create_user(runtime, "admin", display_name="管理员")
    with runtime.transaction() as records:
        for n in range(60):
            records.create("customer", {"name": f"客户{n:02d}"})
    site = Site(runtime)
    site.login()
    monkeypatch.setattr(record_service, "COUNT_SECONDS", 1e-6)  # the count can never finish in time
    monkeypatch.setattr(lists, "PAGE_COUNT_SECONDS", 1e-6)      # (the list page's own, and what it asks for later)
    monkeypatch.setattr(lists, "COUNT_LATER_SECONDS", 1e-6)
    return site


def test_the_list_page_shows_what_it_has_when_the_count_is_given_up(slow_site):
    page = slow_site.get("/app/customer")
    assert "共 50+ 条" in page.text
    assert len(page.html.select("table.list-table tbody tr")) == 50
    token = slow_site.app.post_json("/api/v1/auth/token", {"username": "admin", "password": PASSWORD}).json["token"]
    body = slow_site.get("/api/v1/customer?count=true", headers={"Authorization": f"Bearer {token}"}).json
    assert body["total"] is None and len(body["items"]) == 50 and body["next_cursor"]
    with slow_site.runtime.transaction() as records:
        listed = records.list("customer", limit=50, count=True)
        assert listed.count_stopped and listed.total is None and listed.count_text == "50+"
        records.create("customer", {"name": "之后的客户"})  # the transaction is intact
        alone = records.list("customer", filters=[("name", "eq", "之后的客户")], count=True)
        assert alone.total == 1 and not alone.count_stopped  # the page held every match: no count run


def test_counts_that_finish_in_time_are_exact(make_runtime):
    runtime = make_runtime()
    with runtime.transaction() as records:
        for n in range(60):
            records.create("customer", {"name": f"客户{n:02d}"})
        page = records.list("customer", limit=50, count=True)
    assert page.total == 60 and not page.count_stopped and page.count_text == "60"


def test_a_list_page_that_gives_its_count_up_asks_for_it_afterwards(slow_site, monkeypatch):
    monkeypatch.setattr(lists, "COUNT_LATER_SECONDS", 30)              # the later count has time enough
    page = slow_site.get("/app/customer?" + urlencode({"q": "客户", "limit": 20}))
    assert "共 20+ 条" in page.text                                    # the page did not wait for its count
    urls = {el["data-count-url"] for el in page.html.select("[data-count-url]")}
    assert len(urls) == 1 and len(page.html.select("[data-count-url]")) == 2   # the title's count and the footer's
    url = urls.pop()
    assert url.startswith("/app/customer/count?") and "q=" in url and "limit=20" in url
    assert slow_site.get(url).json == {"total": 60, "stopped": False, "text": "共 60 条"}
    searched = slow_site.get("/app/customer/count?" + urlencode({"q": "客户5", "limit": 20})).json   # 客户50 … 客户59
    assert searched["total"] == 10 and searched["text"] == "共 10 条"
    following = page.html.select_one("a[rel=next]")
    assert "cursor=" in following["href"]
    second = slow_site.get(following["href"])                              # page 2 counts the same matches
    assert {el["data-count-url"] for el in second.html.select("[data-count-url]")} == {url}
    monkeypatch.setattr(lists, "COUNT_LATER_SECONDS", 1e-6)
    assert slow_site.get(url).json == {"total": None, "stopped": True, "text": None}   # the page keeps "20+"
    few = slow_site.get("/app/customer?" + urlencode({"q": "客户0"}))  # ten matches: the page holds them all
    assert "共 10 条" in few.text and not few.html.select("[data-count-url]")
    assert "/login" in Site(slow_site.runtime).get(url, status=302).location    # not logged in
    slow_site.get("/app/customer/count?" + urlencode({"created_at__gt": "not a date"}), status=400)  # as the page answers it
    slow_site.get("/app/customer?" + urlencode({"created_at__gt": "not a date"}), status=400)


def test_in_the_browser_the_count_comes_after_the_page(tmp_path, monkeypatch):
    """list.js fills in the count the page gave up waiting for (Chromium against waitress, SQLite)."""
    api = playwright_api()
    runtime = sqlite_runtime(tmp_path, extra_plugins=[("slow_rows", SlowRows("sqlite"))])
    create_user(runtime, "admin")
    with runtime.transaction() as records:
        for n in range(60):
            records.create("customer", {"name": f"客户{n:02d}"})
    monkeypatch.setattr(lists, "PAGE_COUNT_SECONDS", 1e-6)
    errors = []
    try:
        with served(make_app(runtime)) as base, chromium(api) as browser:
            page = new_page(browser, errors)
            login(page, base, "admin", PASSWORD)
            page.goto(base + "/app/customer?limit=20")
            page.wait_for_function("document.getElementById('record-count').textContent.indexOf('60') >= 0")
            assert page.locator("#record-count").text_content() == "共 60 条"
            assert page.locator("tbody tr").count() == 20
    finally:
        runtime.dispose()
    assert not errors, errors
