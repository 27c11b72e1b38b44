"""RecordService.create_many and match_many: batches give what one record after the other gives."""
import datetime as dt
import random
from decimal import Decimal

import jsonschema
import pytest
import sqlalchemy as sa
from pypinyin import Style, lazy_pinyin

from crm.core import auth, directory as org, importer
from crm.core.errors import Vetoed
from crm.core.fieldtypes import TYPES
from crm.core.mnemonic import mnemonic
from crm.core.registry import Field
from crm.hooks import Veto, hookimpl
from tests.plugin_fixtures import deals_plugin
from tests.statements import statements
from tests.test_import_export import HEADERS, xlsx


class Recorder:
    """Hooks that only look at values: the batch stays a batch."""

    def __init__(self):
        self.calls = []

    @hookimpl
    def crm_before_create(self, ctx, entity, values):
        if entity.name == "deal":
            self.calls.append(("before", values["title"]))
            if values["title"] == "veto me":
                raise Veto("不要这个", field="title")
            values["quantity"] = values.get("quantity") or 1

    @hookimpl
    def crm_after_create(self, ctx, entity, record):
        if entity.name == "deal":
            self.calls.append(("after", record["title"], record["id"]))


class AtMostThree:
    """A hook that reads the database: at most three deals per stage (like a capacity limit)."""

    @hookimpl
    def crm_before_create(self, ctx, entity, values):
        if entity.name == "deal":
            table = ctx.entity("deal").table
            n = ctx.session.execute(sa.select(sa.func.count()).where(table.c.stage == values["stage"],
                                                                      table.c.deleted_at.is_(None))).scalar()
            if n >= 3:
                raise Veto("每个阶段最多三个", field="stage")


class FailsAfter:
    """An after-create hook that refuses one record once it is written."""

    @hookimpl
    def crm_after_create(self, ctx, entity, record):
        if entity.name == "deal" and record["title"] == "bad after":
            raise Veto("写入后拒绝")


def deals(n, **extra):
    return [{"title": f"北京华信科技采购{i}", "amount": f"{i}.555", "quantity": i, "price": "2.5", **extra} for i in range(n)]


def test_batch_gives_the_same_records_as_one_by_one(make_runtime):
    rt = make_runtime(plugins=[deals_plugin()])
    with rt.transaction() as records:
        partner = records.create("partner", {"name": "伙伴"})
    items = deals(3, partners=[partner["id"]], partner_id=partner["id"])
    items[1]["lines"] = [{"product": "螺丝", "qty": 2}, {"product": "螺母", "qty": 3}]
    with rt.transaction() as records:
        one_by_one = [records.create("deal", dict(v)) for v in items]
        batch = records.create_many("deal", [dict(v) for v in items])
    assert [r["code"] for r in one_by_one + batch] == [f"JY202611-{i:03d}" for i in range(1, 7)]
    ignore = {"id", "code", "parent_id"}

    def same(record):
        return {k: ([{c: v for c, v in row.items() if c not in ignore} for row in v] if k == "lines" else v)
                for k, v in record.items() if k not in ignore}
    assert [same(r) for r in batch] == [same(r) for r in one_by_one]
    assert batch[1]["lines"][0]["product"] == "螺丝" and batch[0]["mnemonic"] == "BJHXKJCG0"
    assert batch[2]["amount"] == Decimal("2.56") and batch[2]["total"] == Decimal("5.0")
    with rt.transaction() as records:
        for record in batch:
            assert same(records.get("deal", record["id"])) == same(record)       # as stored
            assert [h["action"] for h in records.history("deal", record["id"])] == ["create"]


def test_bad_items_are_reported_and_the_others_created(make_runtime):
    rt = make_runtime(plugins=[deals_plugin()])
    items = [{"title": "A", "email": "a@x.cn"}, {"amount": "-1"}, {"title": "B", "email": "a@x.cn"},
             {"title": "C", "stage": "nope"}, {"title": "D"}]
    with rt.transaction() as records:
        results = records.create_many("deal", items)
        assert [type(r).__name__ for r in results] == ["dict", "ValidationFailed", "ValidationFailed", "ValidationFailed", "dict"]
        assert set(results[1].fields) == {"title", "amount"}
        assert results[2].fields == {"email": records.message("unique")}     # unique within the batch too
        assert "stage" in results[3].fields
        # numbers without gaps: refused items take none
        assert [results[0]["code"], results[4]["code"]] == ["JY202611-001", "JY202611-002"]
        assert records.create("deal", {"title": "E"})["code"] == "JY202611-003"


def test_hooks_run_per_record_in_order_and_may_veto(make_runtime):
    recorder = Recorder()
    rt = make_runtime(plugins=[deals_plugin(), ("recorder", recorder)])
    with rt.transaction() as records, statements(rt.engine) as seen:
        results = records.create_many("deal", [{"title": f"T{i}"} for i in range(100)] + [{"title": "veto me"}])
        sent = len(seen)
    assert isinstance(results[-1], Vetoed) and results[-1].fields == {"title": "不要这个"}
    assert all(r["quantity"] == 1 for r in results[:-1])                     # the before hook's change is kept
    befores = [c[1] for c in recorder.calls if c[0] == "before"]
    afters = [c[1:] for c in recorder.calls if c[0] == "after"]
    assert befores == [f"T{i}" for i in range(100)] + ["veto me"]
    assert afters == [(r["title"], r["id"]) for r in results[:-1]]
    assert sent < 30        # 100 records in a handful of statements, where create() sends about ten each


def test_hooks_that_read_the_database_see_every_earlier_record(make_runtime):
    rt = make_runtime(plugins=[deals_plugin(), ("limit", AtMostThree())])
    with rt.transaction() as records:
        results = records.create_many("deal", [{"title": f"T{i}"} for i in range(5)])
        later = records.create_many("deal", [{"title": "U", "stage": "won"}, {"title": "V"}])
    assert [isinstance(r, dict) for r in results] == [True, True, True, False, False]
    assert results[3].fields == {"stage": "每个阶段最多三个"}
    assert isinstance(later[0], dict) and isinstance(later[1], Vetoed)
    with rt.transaction() as records:
        assert sorted(d["title"] for d in records.list("deal").items) == ["T0", "T1", "T2", "U"]


def test_a_refusal_after_writing_leaves_only_that_record_out(make_runtime):
    rt = make_runtime(plugins=[deals_plugin(), ("fails", FailsAfter())])
    with rt.transaction() as records:
        results = records.create_many("deal", [{"title": "ok 1"}, {"title": "bad after"}, {"title": "ok 2"}])
    assert isinstance(results[1], Vetoed) and [results[0]["code"], results[2]["code"]] == ["JY202611-001", "JY202611-002"]
    with rt.transaction() as records:
        assert sorted(d["title"] for d in records.list("deal").items) == ["ok 1", "ok 2"]
        assert len(records.list("deal", filters=[("title", "eq", "bad after")]).items) == 0


def test_match_many_finds_keys_within_the_users_scope(runtime):
    with runtime.transaction() as records:
        org.add_user(records.session, "lina", "password-lina", now=records.now(), role_names=["sales_rep"])
        org.add_user(records.session, "wang", "password-wang", now=records.now(), role_names=["sales_rep"])
        lina, wang = (auth.get_user(records.session, username=u) for u in ("lina", "wang"))
        mine = records.create("customer", {"name": "甲公司", "phone": "1", "owner_id": lina["id"]})
        # another rep's (customers without an owner are in the pool, which reps may see)
        records.create("customer", {"name": "甲公司", "phone": "1", "owner_id": wang["id"]})
        other = records.create("customer", {"name": "乙公司", "phone": "2", "owner_id": wang["id"]})
        keys = [("甲公司", "1"), ("乙公司", "2"), ("丙公司", "3")]
        found = records.match_many("customer", ["name", "phone"], keys)
        assert [len(found[k]) for k in keys] == [2, 1, 0] and found[keys[1]][0]["id"] == other["id"]
    with runtime.transaction(user=lina) as records:
        found = records.match_many("customer", ["name", "phone"], keys)
        assert [[r["id"] for r in found[k]] for k in keys] == [[mine["id"]], [], []]


@pytest.mark.parametrize("enabled", ["*", "customer_care"])
def test_import_upsert_and_links_within_one_file(make_runtime, tmp_path, enabled):
    """Rows see the records earlier rows created, in batches as one by one (``*`` has 防撞单 hooks
    that read the database, so its customers are created one by one)."""
    rt = make_runtime(enabled=enabled)
    headers = HEADERS[:4] + ["上级单位"]
    path = xlsx(tmp_path / "u.xlsx", [["总公司", "1", "北京", "A", None],
                                      ["分公司", "2", "北京", "B", "总公司"],          # links to row 2's record
                                      ["总公司", "1", "北京", "C", None]], headers)  # updates row 2's record
    with rt.transaction() as records:
        result = importer.run(records, "customer", path, mode="upsert", match=["name", "phone"])
    assert [o.action for o in result.outcomes] == ["created", "created", "updated"]
    with rt.transaction() as records:
        found = {c["name"]: c for c in records.list("customer").items}
        assert found["总公司"]["level"] == "C" and found["分公司"]["parent_customer_id"] == found["总公司"]["id"]
        assert importer.revert(records, result.import_id) == {"removed": 2, "restored": 1}


def test_mnemonic_is_pypinyins_initials():
    rnd = random.Random(7)
    parts = ["重庆", "长沙", "银行", "行长", "朝阳", "厦门", "音乐", "乐山", "有限公司", "科技", "调度", "ABC", "123", "·", "和平"]
    names = ["".join(rnd.choice(parts) for _ in range(rnd.randint(1, 6))) for _ in range(2000)]
    for name in names + ["重庆市长寿区", "银行行长", "A-1 号"]:
        expected = "".join(c for c in "".join(lazy_pinyin(name, style=Style.FIRST_LETTER, errors=lambda chars: list(chars)))
                           if c.isascii() and c.isalnum()).upper()[:64] or None
        assert mnemonic(name) == expected, name


def test_compiled_input_check_is_never_looser_than_the_validator(make_runtime):
    rt = make_runtime(plugins=[deals_plugin()], upgrade=False)
    values = [None, "", " ", "ABC", "a" * 300, 0, 1, -1, 1.0, 1.5, True, False, "1.5", "-0.5", "1e5", "a@b.cn", "a@b",
              "2026-01-02", "2026-13-45", "2026-01-02T10:00:00", "2026-01-02 10:00", "10:00", [], [1], [1, 1], [1, True],
              ["a", "a"], {}, {"a": 1}, [{"x": 1}], 2 ** 70, "http://x", "13800138000", "+86 (010) 1234-5678转8"]
    for entity in rt.metadata.entities.values():
        validator = rt.input_validator(entity)
        for name in entity.fields:
            for value in values:
                if rt.input_valid(entity, {name: value}):
                    assert not list(validator.iter_errors({name: value})), (entity.name, name, value)
    field = Field("x", {"type": "text", "pattern": "^[A-Z]+$"}, "custom")
    schema = {"type": "object", "properties": {"x": TYPES["text"].json_schema(field)}}
    assert not jsonschema.Draft202012Validator(schema).is_valid({"x": "abc"})


def test_mnemonic_segments_names_as_pypinyin_does():
    from pypinyin.core import Pinyin
    from crm.core.mnemonic import _words
    rnd = random.Random(11)
    chars = list("重庆长沙银行行长朝阳厦门音乐乐山有限公司科技调度和平北京华信") + list("AB12 ·-_\n〇㐀𠀀﨎")
    texts = ["".join(rnd.choice(chars) for _ in range(rnd.randint(1, 14))) for _ in range(3000)]
    for text in texts + ["邯郸群英医药有限公司", "A-1 号", "北京 华信"]:
        assert _words(text) == Pinyin().seg(text), text


def test_bulk_insert_stores_what_sqlalchemys_executemany_stores(database_url):
    from crm.core.bulk import insert_rows
    from sqlalchemy.orm import Session
    metadata = sa.MetaData()
    tables = [sa.Table(name, metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("text", sa.String(20)),
                       sa.Column("day", sa.Date), sa.Column("at", sa.DateTime), sa.Column("amount", sa.Numeric(20, 4)),
                       sa.Column("flag", sa.Boolean), sa.Column("doc", sa.JSON), sa.Column("n", sa.BigInteger))
              for name in ("bulk_a", "bulk_b")]
    engine = sa.create_engine(database_url)
    metadata.create_all(engine)
    rows = [dict(id=i, text=f"第{i}行" if i % 3 else None, day=dt.date(2026, 1, i % 28 + 1), at=dt.datetime(2026, 2, 3, 4, 5, i % 60),
                 amount=Decimal("12.3456") * i if i % 4 else None, flag=bool(i % 2) if i % 5 else None,
                 doc={"i": i, "tags": ["甲", None]} if i % 2 else None, n=2**40 + i) for i in range(1, 40)]
    try:
        with Session(engine) as session:
            session.execute(tables[0].insert(), [dict(r) for r in rows])
            insert_rows(session, tables[1], [dict(r) for r in rows])
            insert_rows(session, tables[1], [dict(rows[0], id=100)])   # one row: SQLAlchemy's own path
            session.commit()
        with engine.connect() as connection:
            a, b = ([tuple(r) for r in connection.execute(sa.select(t).order_by(t.c.id))] for t in tables)
            raw = [tuple(connection.execute(sa.text(f"SELECT doc, amount FROM {t.name} ORDER BY id")).all()) for t in tables]
        assert b[:-1] == a and b[-1][1:] == a[0][1:] and raw[0] == raw[1][:-1]   # JSON null and SQL NULL kept apart too
    finally:
        metadata.drop_all(engine)
        engine.dispose()
