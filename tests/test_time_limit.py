"""A list's count given up past its time (crm.core.time_limit): the page still comes, with what
is known ("50+"), and the transaction goes on."""
import time

import pytest
import sqlalchemy as sa

from crm.core import records as record_service, time_limit
from crm.hooks import hookimpl
from tests.api_fixtures import PASSWORD, create_user
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
