"""The record service: validation, version, autonumber, mnemonic, audit, recycle bin, copy, merge."""
import datetime as dt
from decimal import Decimal

import orjson
import pytest

from crm.core.errors import BadRequest, Conflict, NotFound, ValidationFailed, Vetoed
from crm.core.records import record_to_json
from crm.hooks import Veto, hookimpl
from tests.plugin_fixtures import deals_plugin
from tests.statements import statements


@pytest.fixture
def rt(make_runtime):
    return make_runtime(plugins=[deals_plugin()])


def test_create_fills_generated_fields_and_reads_back(rt):
    with rt.transaction() as records:
        deal = records.create("deal", {"title": "北京华信科技采购", "amount": "1234.567", "quantity": 3, "price": "9.99"})
    assert deal["id"] and deal["version"] == 1
    assert deal["code"] == "JY202611-001"
    assert deal["mnemonic"] == "BJHXKJCG"
    assert deal["stage"] == "new"                      # default from metadata
    assert deal["amount"] == Decimal("1234.57")         # money rounded half up to 2 places
    assert deal["total"] == Decimal("29.97")            # computed field
    with rt.transaction() as records:
        again = records.get("deal", deal["id"])
    assert again["title"] == "北京华信科技采购" and again["total"] == Decimal("29.97")


def test_validation_reports_every_field(rt):
    with rt.transaction() as records, pytest.raises(ValidationFailed) as failed:
        records.create("deal", {"amount": "-5", "stage": "nope", "closed_on": "2026-13-45", "email": "x", "bogus": 1})
    fields = failed.value.fields
    assert set(fields) == {"title", "amount", "stage", "closed_on", "email", "bogus"}
    assert fields["title"] == "必填"


def test_required_if_condition(rt):
    with rt.transaction() as records:
        with pytest.raises(ValidationFailed) as failed:
            records.create("deal", {"title": "A", "stage": "lost"})
        assert list(failed.value.fields) == ["lost_reason"]
        assert records.create("deal", {"title": "A", "stage": "lost", "lost_reason": "价格"})["lost_reason"] == "价格"


def test_unique_and_links_checked(rt):
    with rt.transaction() as records:
        records.create("deal", {"title": "A", "email": "a@example.com"})
        with pytest.raises(ValidationFailed) as failed:
            records.create("deal", {"title": "B", "email": "a@example.com", "partner_id": 999, "partners": [998]})
    assert set(failed.value.fields) == {"email", "partner_id", "partners"}


def test_stale_version_conflicts_and_changes_nothing(rt):
    with rt.transaction() as records:
        deal = records.create("deal", {"title": "A", "amount": 10})
        records.update("deal", deal["id"], {"amount": 20}, version=1)
    with rt.transaction() as records, pytest.raises(Conflict):
        records.update("deal", deal["id"], {"amount": 30, "title": "stale"}, version=1)
    with rt.transaction() as records:
        now = records.get("deal", deal["id"])
    assert now["amount"] == 20 and now["title"] == "A" and now["version"] == 2


def test_audit_trail_records_field_changes(rt, clock):
    with rt.transaction(user={"id": 7, "is_admin": True}) as records:
        deal = records.create("deal", {"title": "A", "amount": 10})
        clock.advance(minutes=5)
        records.update("deal", deal["id"], {"amount": 20, "title": "B"})
        history = records.history("deal", deal["id"])
    changes = {(h["action"], h["field"]): h for h in history}
    assert changes[("update", "amount")]["old_value"] == 10 and changes[("update", "amount")]["new_value"] == 20
    assert changes[("update", "title")]["new_value"] == "B"
    assert changes[("create", None)]["user_id"] == 7
    assert history[0]["at"] == dt.datetime(2026, 11, 23, 9, 35)


def test_children_and_many_links_are_saved_with_the_record(rt):
    with rt.transaction() as records:
        p1 = records.create("partner", {"name": "甲"})
        p2 = records.create("partner", {"name": "乙"})
        deal = records.create("deal", {"title": "A", "partners": [p1["id"], p2["id"]],
                                       "lines": [{"product": "笔", "qty": 2}, {"product": "纸", "qty": 5}]})
        assert deal["partners"] == [p1["id"], p2["id"]]
        assert [l["product"] for l in deal["lines"]] == ["笔", "纸"]
        kept = deal["lines"][1]
        deal = records.update("deal", deal["id"], {"lines": [{"id": kept["id"], "product": "纸", "qty": 6}], "partners": [p2["id"]]})
        assert [(l["id"], l["qty"]) for l in deal["lines"]] == [(kept["id"], 6)]
        assert deal["partners"] == [p2["id"]]
        with pytest.raises(ValidationFailed) as failed:
            records.update("deal", deal["id"], {"lines": [{"qty": 0}]})
        assert set(failed.value.fields) == {"lines.0.product", "lines.0.qty"}


def test_a_page_shows_each_records_many_links(rt):
    """A page reads the many-links of all its records at once (one list of ids bound as one
    parameter, crm.core.id_lists): each record gets its own, in target order, none gets another's."""
    with rt.transaction() as records:
        partners = [records.create("partner", {"name": f"伙伴{i}"})["id"] for i in range(4)]
        made = {records.create("deal", {"title": f"D{i}", "partners": partners[i % 3:i % 3 + 2][::-1]})["id"]: i
                for i in range(7)}
        records.create("deal", {"title": "none"})
        page = records.list("deal", sort="id", limit=50)
        one = records.list("deal", sort="id", limit=1)
    for record in page.items:
        i = made.get(record["id"])
        assert record["partners"] == (sorted(partners[i % 3:i % 3 + 2]) if i is not None else [])
    assert one.items[0]["partners"] == sorted(partners[0:2])


def test_a_record_reads_only_the_link_and_child_tables_that_hold_its_rows(rt):
    """The record's own statement probes its many-links and child tables: a record without any
    is one statement; one with lines but no partners reads the lines alone, and gets every part
    right whichever tables hold rows (the probe is of this record, not of any record)."""
    with rt.transaction() as records:
        partner = records.create("partner", {"name": "甲"})["id"]
        bare = records.create("deal", {"title": "bare"})["id"]
        lines = records.create("deal", {"title": "lines", "lines": [{"product": "笔", "qty": 2}]})["id"]
        both = records.create("deal", {"title": "both", "partners": [partner], "lines": [{"product": "纸", "qty": 1}]})["id"]
        records.create("deal", {"title": "partners", "partners": [partner]})
        got = {}
        with statements(rt.engine) as seen:
            for record_id in (bare, lines, both):
                seen.clear()
                got[record_id] = (records.get("deal", record_id), len(seen))
    (record, sent) = got[bare]
    assert (record["partners"], record["lines"], sent) == ([], [], 1)
    (record, sent) = got[lines]
    assert (record["partners"], [l["product"] for l in record["lines"]], sent) == ([], ["笔"], 2)
    (record, sent) = got[both]
    assert (record["partners"], [l["product"] for l in record["lines"]], sent) == ([partner], ["纸"], 3)
    assert not any(key.startswith("_") for key in record)


def test_a_list_reads_many_links_only_for_pages_that_have_them(rt):
    """A list page's select probes each row's many-links: a page without any is one statement
    (the row after the page, read for the cursor, has links: they are not read), one where some
    rows have links reads them in one more, and every row gets its own."""
    with rt.transaction() as records:
        partner = records.create("partner", {"name": "甲"})["id"]
        other = records.create("partner", {"name": "乙"})["id"]
        for i in range(4):
            records.create("deal", {"title": f"无{i}"})
        linked = records.create("deal", {"title": "有", "partners": [other, partner]})["id"]
        with statements(rt.engine) as seen:
            bare = records.list("deal", sort="id", limit=4)
            bare_statements = len(seen)
            seen.clear()
            both = records.list("deal", sort="-id", limit=3)
            both_statements = len(seen)
    assert [d["partners"] for d in bare.items] == [[]] * 4 and bare_statements == 1
    assert [(d["id"] == linked, d["partners"]) for d in both.items] == [(True, sorted([partner, other])), (False, []), (False, [])]
    assert both_statements == 2
    assert not any(key.startswith("_") for d in bare.items + both.items for key in d)


def test_records_read_back_have_plain_string_keys_that_orjson_writes_at_once(rt):
    """SQLAlchemy names result columns with ``quoted_name`` (a str subclass) and orjson refuses
    those as keys: every API document then failed once and was written again by orjson's slow
    way for keys that are not strings. Records of a list, a detail and their child rows have
    plain keys, and their JSON values (money among them) write without that option."""
    with rt.transaction() as records:
        deal_id = records.create("deal", {"title": "甲", "amount": "1234.50", "lines": [{"product": "笔", "qty": 2}]})["id"]
        listed = records.list("deal").items
        record = records.get("deal", deal_id)
    for one in (listed[0], record, record["lines"][0]):
        assert {type(key) for key in one} == {str}
    document = orjson.loads(orjson.dumps([record_to_json(rt.metadata, rt.metadata["deal"], r, iso_dates=False)
                                          for r in (listed[0], record)]))
    assert [d["amount"] for d in document] == [1234.5, 1234.5]
    assert document[1]["lines"][0]["qty"] == 2


def test_delete_moves_to_recycle_bin_and_restore_brings_back(rt):
    with rt.transaction(user={"id": 3, "is_admin": True}) as records:
        deal = records.create("deal", {"title": "A"})
        records.delete("deal", deal["id"])
        with pytest.raises(NotFound):
            records.get("deal", deal["id"])
        assert records.list("deal").items == []
        bin_ = records.trash("deal")
        assert [(t["record_id"], t["title"], t["deleted_by"]) for t in bin_] == [(deal["id"], "A", 3)]
        restored = records.restore("deal", deal["id"])
        assert restored["title"] == "A" and records.trash("deal") == []
        assert [d["id"] for d in records.list("deal").items] == [deal["id"]]


def test_copy_makes_new_numbers(rt):
    with rt.transaction() as records:
        deal = records.create("deal", {"title": "A", "email": "a@example.com", "lines": [{"product": "笔"}]})
        copy = records.copy("deal", deal["id"])
    assert copy["id"] != deal["id"] and copy["code"] == "JY202611-002"
    assert copy["email"] is None and [l["product"] for l in copy["lines"]] == ["笔"]


def test_merge_repoints_every_link_and_keeps_history(rt):
    with rt.transaction() as records:
        keep = records.create("partner", {"name": "华为", "city": "深圳"})
        dup = records.create("partner", {"name": "华为技术", "city": None})
        d1 = records.create("deal", {"title": "A", "partner_id": dup["id"], "partners": [dup["id"], keep["id"]]})
        d2 = records.create("deal", {"title": "B", "partners": [dup["id"]]})
        merged = records.merge("partner", keep["id"], dup["id"], {"name": "华为技术有限公司"})
        assert merged["name"] == "华为技术有限公司" and merged["city"] == "深圳"
        assert records.get("deal", d1["id"])["partner_id"] == keep["id"]
        assert records.get("deal", d1["id"])["partners"] == [keep["id"]]
        assert records.get("deal", d2["id"])["partners"] == [keep["id"]]
        with pytest.raises(NotFound):
            records.get("partner", dup["id"])
        actions = [h["action"] for h in records.history("partner", keep["id"])]
        assert "merge" in actions and "update" in actions


def test_list_filters_sort_search_and_keyset_pages(rt, clock):
    with rt.transaction() as records:
        for i in range(23):
            clock.advance(minutes=1)
            records.create("deal", {"title": f"单{i:02d}", "amount": i % 5, "stage": ["new", "won"][i % 2]})
        records.create("deal", {"title": "上海贝尔", "amount": None})
        page = records.list("deal", filters=[("stage", "eq", "won")], sort="-amount,title", limit=4, count=True)
        assert page.total == 11
        seen = []
        while True:
            seen += [(d["amount"], d["title"]) for d in page.items]
            if not page.next_cursor:
                break
            page = records.list("deal", filters=[("stage", "eq", "won")], sort="-amount,title", limit=4, cursor=page.next_cursor)
        assert len(seen) == 11 and seen == sorted(seen, key=lambda x: (-x[0], x[1]))
        # NULLs take part in keyset paging too
        for sort in ("amount", "-amount"):  # NULLs first one way, last the other (and per database)
            everything, cursor = [], None
            while True:
                page = records.list("deal", sort=sort, limit=5, cursor=cursor)
                everything += [d["id"] for d in page.items]
                cursor = page.next_cursor
                if not cursor:
                    break
            assert len(everything) == 24 == len(set(everything))
        assert [d["title"] for d in records.list("deal", q="SHBE").items] == ["上海贝尔"]   # pinyin initials
        assert [d["title"] for d in records.list("deal", q="贝尔").items] == ["上海贝尔"]
        assert len(records.list("deal", filters=[("amount", "gte", "3"), ("stage", "in", "new,won")]).items) == 8
        assert len(records.list("deal", filters=[("amount", "isnull", "true")]).items) == 1
        with pytest.raises(BadRequest):
            records.list("deal", filters=[("nope", "eq", "1")])
        with pytest.raises(BadRequest):
            records.list("deal", sort="title", cursor="garbage")


def test_search_and_contains_ignore_the_case_of_latin_letters_and_take_wildcards_literally(rt):
    """On SQLite as plain LIKE (no lower() per row and field: query.any_case_like), on PostgreSQL
    as ILIKE: the same matches on both."""
    with rt.transaction() as records:
        for title in ("ABC Trading 上海", "abc trading 北京", "Abacus", "100%_off 促销", "1000 off"):
            records.create("deal", {"title": title, "stage": "new"})
        titles = lambda page: sorted(d["title"] for d in page.items)  # noqa: E731
        with statements(rt.engine) as seen:
            found = records.list("deal", q="aBc tRADING")
        assert titles(found) == ["ABC Trading 上海", "abc trading 北京"]
        if rt.engine.dialect.name == "sqlite":
            assert not any("lower(" in text for text in seen)
        assert titles(records.list("deal", filters=[("title", "contains", "TRADING")])) == ["ABC Trading 上海", "abc trading 北京"]
        assert titles(records.list("deal", filters=[("title", "startswith", "aba")])) == ["Abacus"]
        assert titles(records.list("deal", q="0%_O")) == ["100%_off 促销"]            # % and _ as themselves
        assert titles(records.list("deal", filters=[("title", "contains", "%")])) == ["100%_off 促销"]
        assert records.group_counts("deal", "stage", filters=[("title", "contains", "abc")]) == [("new", 2)]


def test_keyset_pages_reach_the_rows_without_a_sort_value_in_order(rt):
    """Where the database sorts NULLs to the end of the sort's direction (descending on SQLite,
    ascending on PostgreSQL), a page after a cursor reads the rows with a value from the cursor's
    value on and those without apart: page by page, every size, with and without a filter, the
    rows come in the order one page of all of them has, NULLs included and once each."""
    with rt.transaction() as records:
        for i, price in enumerate(["3", None, "1", "3", None, "2", None, "5", "3"]):
            records.create("deal", {"title": f"单{i}", "price": price, "stage": "won" if i % 3 else "new"})
        for sort in ("price", "-price", "-price,title"):
            for filters in ([], [("stage", "eq", "won")]):
                whole = [d["id"] for d in records.list("deal", sort=sort, filters=filters, limit=100).items]
                for size in (1, 2, 3, 4):
                    paged, cursor = [], None
                    while True:
                        page = records.list("deal", sort=sort, filters=filters, limit=size, cursor=cursor)
                        paged += [d["id"] for d in page.items]
                        cursor = page.next_cursor
                        if not cursor:
                            break
                    assert paged == whole, (sort, filters, size)
                assert len(whole) == (9 if not filters else 6)


class VetoPlugin:
    @hookimpl
    def crm_before_update(self, ctx, entity, old, changes):
        if entity.name == "deal" and changes.get("stage") == "won":
            ctx.create("partner", {"name": "side effect"})   # written in the same transaction ...
            raise Veto("赢单需要审批", field="stage")           # ... and rolled back with it


def test_veto_rolls_back_the_whole_operation(make_runtime):
    rt = make_runtime(plugins=[deals_plugin(), ("vetoer", VetoPlugin())])
    with rt.transaction() as records:
        deal = records.create("deal", {"title": "A"})
        with pytest.raises(Vetoed) as vetoed:
            records.update("deal", deal["id"], {"stage": "won"})
        assert vetoed.value.fields == {"stage": "赢单需要审批"}
        assert records.get("deal", deal["id"])["stage"] == "new"
        assert records.list("partner").items == []
        assert [h["action"] for h in records.history("deal", deal["id"])] == ["create"]
