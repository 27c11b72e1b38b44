"""Stored customizations, dictionaries, trees, settings-driven money decimals."""
from decimal import Decimal

import pytest

from crm.core import customizations, dictionaries
from crm.core.errors import ValidationFailed


def test_stored_customization_is_the_last_layer(runtime):
    with runtime.transaction() as records:
        customizations.save(runtime, records.session, "customer-wechat", {
            "extends": "customer", "fields": {"x_wechat": {"type": "text", "label": {"zh_CN": "微信"}}},
            "list_columns": {"$append": ["x_wechat"]}})
    runtime.upgrade()
    customer = runtime.metadata["customer"]
    assert customer.fields["x_wechat"].owner == "custom" and customer.spec["list_columns"][-1] == "x_wechat"
    with runtime.transaction() as records:
        created = records.create("customer", {"name": "微信客户", "x_wechat": "wx123"})
        assert records.list("customer", filters=[("x_wechat", "eq", "wx123")]).items[0]["id"] == created["id"]


def test_invalid_customization_is_refused_and_not_stored(runtime):
    with runtime.transaction() as records:
        with pytest.raises(ValidationFailed) as failed:
            customizations.save(runtime, records.session, "broken", {
                "extends": "customer", "list_columns": {"$append": ["x_missing"]}})
        assert "/list_columns/$append/0" in failed.value.fields
        assert "customization broken" in failed.value.fields["/list_columns/$append/0"]
        assert customizations.list_all(records.session) == []


def test_dictionary_items_are_editable_and_retired_values_refused(runtime):
    with runtime.transaction() as records:
        dictionaries.save_item(runtime.metadata, records.session, "customer_level", "VIP", {"zh_CN": "战略客户", "en": "Strategic"})
        records.create("customer", {"name": "甲", "level": "VIP"})
        dictionaries.save_item(runtime.metadata, records.session, "customer_level", "VIP", {"zh_CN": "战略客户"}, active=False)
    with runtime.transaction() as records:
        with pytest.raises(ValidationFailed) as failed:
            records.create("customer", {"name": "乙", "level": "VIP"})
        assert list(failed.value.fields) == ["level"]
        regions = dictionaries.tree(records.session, "region")
        assert len(regions) == 7 and all(r["children"] for r in regions)


def test_tree_descendants_and_cycles(runtime):
    with runtime.transaction() as records:
        group = records.create("customer", {"name": "集团总部"})
        branch = records.create("customer", {"name": "华东分公司", "parent_customer_id": group["id"]})
        office = records.create("customer", {"name": "杭州办事处", "parent_customer_id": branch["id"]})
        assert records.descendants("customer", group["id"]) == [branch["id"], office["id"]]
        with pytest.raises(ValidationFailed) as failed:
            records.update("customer", group["id"], {"parent_customer_id": office["id"]})
        assert list(failed.value.fields) == ["parent_customer_id"]


def test_money_decimals_follow_system_settings(runtime):
    with runtime.transaction() as records:
        assert records.create("product", {"name": "A", "price": "10.555"})["price"] == Decimal("10.56")
        settings = records.singleton("system_settings")
        records.update("system_settings", settings["id"], {"decimals_product": 0})
        assert records.create("product", {"name": "B", "price": "10.5"})["price"] == Decimal("11")


def test_computed_integer_fields_are_stored_as_integers(make_runtime):
    from crm.hooks import hookimpl

    class Scores:
        @hookimpl
        def crm_metadata(self):
            return [{"name": "risk_note", "label": "风险", "fields": {
                "probability": {"type": "integer"}, "impact": {"type": "integer"},
                "score": {"type": "computed", "result_type": "integer",
                          "expression": {"*": [{"var": "probability"}, {"var": "impact"}]}}}}]

    rt = make_runtime(plugins=[("scores", Scores())])
    with rt.transaction() as records:
        note = records.create("risk_note", {"probability": 3, "impact": 5})
        assert note["score"] == 15 and isinstance(note["score"], int)


def test_a_dictionary_change_made_through_one_app_server_shows_on_the_others(make_runtime):
    """Pages keep the dictionaries between requests (they are read on every page); each app server
    notices a change made through another one, and never a change that was rolled back."""
    from tests.api_fixtures import create_user
    from tests.test_pages import Site
    first, second = make_runtime(), make_runtime(upgrade=False)     # two processes' worth: two engines
    create_user(first, "admin")
    with first.transaction() as records:
        customer = records.create("customer", {"name": "字典缓存客户", "level": "A"})
    here, there = Site(first), Site(second)
    here.login(), there.login()
    url = f"/app/customer/{customer['id']}"
    level_of = lambda site: site.get(url).html.select_one("[data-field='level']").get_text(" ", strip=True)  # noqa: E731
    assert "A 重点客户" in level_of(there) and "A 重点客户" in level_of(here)
    with first.transaction() as records:
        dictionaries.save_item(first.metadata, records.session, "customer_level", "A", {"zh_CN": "战略客户", "en": "Strategic"})
    assert "战略客户" in level_of(there) and "战略客户" in level_of(here)
    with pytest.raises(RuntimeError), first.transaction() as records:
        dictionaries.save_item(first.metadata, records.session, "customer_level", "A", {"zh_CN": "不该出现"})
        raise RuntimeError("rolled back")
    assert "战略客户" in level_of(there) and "战略客户" in level_of(here)


def test_the_dictionary_counter_starts_with_the_first_change_of_an_older_instance(runtime):
    """An instance upgraded from before the counter has no row for it: the first change creates it."""
    import sqlalchemy as sa

    from crm.core.tables import sequences
    with runtime.transaction() as records:
        records.session.execute(sa.delete(sequences).where(sequences.c.key == dictionaries.VERSION_KEY))
    with runtime.transaction() as records:
        assert dictionaries.version(records.session) == 0
        dictionaries.save_item(runtime.metadata, records.session, "customer_level", "VIP", {"zh_CN": "战略客户"})
    with runtime.transaction() as records:
        assert dictionaries.version(records.session) == 1
        assert any(i["value"] == "VIP" for i in dictionaries.all_items(records.session)["customer_level"])


def test_the_pool_keeps_a_connection_per_server_thread(make_runtime):
    """waitress serves 8 requests at once (crm.ini): each keeps its connection for the next one,
    instead of the 3 beyond SQLAlchemy's default pool of 5 being opened and closed every time."""
    def eight_at_once(runtime):
        connections = [runtime.engine.connect() for _ in range(8)]
        dbapi = {c.connection.dbapi_connection for c in connections}  # the objects: ids could be reused
        for c in connections:
            c.close()
        return dbapi

    runtime = make_runtime()
    first = eight_at_once(runtime)
    assert eight_at_once(runtime) == first
    small = make_runtime(**{"crm.database.pool_size": "3"})
    assert small.engine.pool.size() == 3


def test_sqlite_reads_its_file_through_a_memory_map(tmp_path, monkeypatch):
    """Every connection of the pool maps the first GB of the file (a search reading the whole
    table a third faster than through read()); crm.database.sqlite_mmap_mb = 0 turns it off."""
    from crm.core.runtime import Runtime
    monkeypatch.delenv("CRM_DATABASE_URL", raising=False)

    def mapped_bytes(**settings):
        runtime = Runtime({"sqlalchemy.url": f"sqlite:///{tmp_path / 'crm.sqlite'}", "crm.instance_dir": str(tmp_path),
                           "crm.plugins": "", **settings})
        try:
            connections = [runtime.engine.connect() for _ in range(2)]
            sizes = {c.exec_driver_sql("PRAGMA mmap_size").scalar() for c in connections}
            for c in connections:
                c.close()
            return sizes
        finally:
            runtime.dispose()

    assert mapped_bytes() == {1024 * 1024 * 1024}
    assert mapped_bytes(**{"crm.database.sqlite_mmap_mb": "256"}) == {256 * 1024 * 1024}
    assert mapped_bytes(**{"crm.database.sqlite_mmap_mb": "0"}) == {0}


def test_a_postgresql_connection_is_checked_before_use_when_it_waited_in_the_pool(pg_url, monkeypatch):
    """A pooled connection the server closed while it was idle is replaced before a request gets
    it; one used a moment ago is handed out without that round trip (its first statement fails
    if the server closed it meanwhile, and the pool is then made anew)."""
    import sqlalchemy as sa

    from crm.core import runtime as runtime_module
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")

    def close_on_the_server(pid):
        with admin.connect() as connection:
            connection.execute(sa.text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})

    def backend(engine):
        with engine.connect() as connection:
            return connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()

    monkeypatch.setattr(runtime_module, "PING_AFTER_IDLE_SECONDS", 0)
    waited = runtime_module.make_engine(pg_url, pool_size=1)
    monkeypatch.setattr(runtime_module, "PING_AFTER_IDLE_SECONDS", 3600)
    recent = runtime_module.make_engine(pg_url, pool_size=1)
    try:
        first = backend(waited)
        assert backend(waited) == first  # pooled
        close_on_the_server(first)
        assert backend(waited) != first  # checked, replaced, no error

        first = backend(recent)
        close_on_the_server(first)
        with pytest.raises(sa.exc.OperationalError) as failed:
            backend(recent)
        assert failed.value.connection_invalidated
        assert backend(recent) != first
    finally:
        for engine in (waited, recent, admin):
            engine.dispose()


def test_postgresql_cursors_describe_their_columns_only_when_asked(pg_url):
    """The engine's psycopg cursors make cursor.description's columns when one is read
    (crm.core.pg_cursor): the same columns as psycopg's, len() and truth without them."""
    import psycopg

    from crm.core.runtime import make_engine
    engine = make_engine(pg_url, pool_size=1)
    with engine.connect() as connection:
        cursor = connection.connection.dbapi_connection.cursor()
        cursor.execute("SELECT 1 AS one, 'x'::text AS two, now() AS three")
        lazy = cursor.description
        assert len(lazy) == 3 and lazy and lazy._columns is None  # nothing made yet
        stock = psycopg.Cursor.description.fget(cursor)
        assert [(c.name, c.type_code) for c in lazy] == [(c.name, c.type_code) for c in stock] == \
            [("one", 23), ("two", 25), ("three", 1184)]
        assert lazy[-1].name == "three" and [c.name for c in lazy[1:]] == ["two", "three"]
        cursor.execute("SET LOCAL statement_timeout = 0")
        assert cursor.description is None
        cursor.execute("SELECT 1 AS one")
        moved_on = cursor.description
        cursor.execute("SELECT 2 AS two")
        with pytest.raises(psycopg.InterfaceError):
            moved_on[0]
        assert cursor.description[0].name == "two"
        # and through SQLAlchemy, by name, as every query of the CRM reads its rows
        assert connection.exec_driver_sql("SELECT 5 AS five, 6 AS six").mappings().one() == {"five": 5, "six": 6}
    engine.dispose()


def test_json_writes_keys_that_are_not_strings_as_strings():
    """orjson's option for such keys is asked for only when a document has one (it halves its speed)."""
    import datetime as dt
    from decimal import Decimal

    from crm.core.runtime import json_bytes, json_text
    from crm.core.web.api import _json_default
    assert json_bytes({"a": [dt.date(2026, 12, 2)], "b": None}) == b'{"a":["2026-12-02"],"b":null}'
    assert json_text({1: "一", "x": {dt.date(2026, 1, 2): 3}}) == '{"1":"一","x":{"2026-01-02":3}}'
    assert json_bytes({2: Decimal("1.50"), "n": Decimal("3")}, default=_json_default) == b'{"2":1.5,"n":3}'
    with pytest.raises(TypeError):
        json_bytes({1: object()})
