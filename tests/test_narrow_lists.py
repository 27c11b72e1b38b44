"""A narrow scope's list planned per owner (PostgreSQL, crm.core.narrow_lists): the same pages, in
the same order, as the plain statement, for every user of a department tree."""
import pytest
import sqlalchemy as sa

from crm.core import access, directory as org, narrow_lists
from tests.statements import statements
from tests.test_access import as_user


@pytest.fixture
def branches(make_runtime, clock):
    """Two 分公司 with a head and three reps each, customers created over several seconds (some
    at the same second: the id breaks the tie), a few in the recycle bin, a few in the pool,
    and records of the other branch (and two of its own) shared with a head."""
    rt = make_runtime()
    ids, owned = {}, {}
    with rt.transaction() as records:
        s, now = records.session, records.now()
        for branch in ("east", "south"):
            dept = org.create_department(s, f"{branch}分公司")
            team = org.create_department(s, f"{branch}销售组", dept)
            ids[f"{branch}_head"] = org.add_user(s, f"{branch}_head", "password-head", now=now, department_id=dept,
                                                 role_names=["sales_manager"])
            s.execute(org.departments.update().where(org.departments.c.id == dept).values(manager_id=ids[f"{branch}_head"]))
            for n in range(3):
                ids[f"{branch}_rep{n}"] = org.add_user(s, f"{branch}_rep{n}", "password-rep", now=now, department_id=team,
                                                       role_names=["sales_rep"])
    reps = [name for name in ids if "_rep" in name]
    for step in range(24):
        with rt.transaction() as records:
            for owner in (reps[step % 6], reps[(step * 5) % 6], None if step % 7 == 0 else reps[(step + 1) % 6]):
                record = records.create("customer", {"name": f"客户{step}-{owner}", "owner_id": ids.get(owner)})
                owned[record["id"]] = owner
        if step % 3:
            clock.advance(seconds=1)
    with rt.transaction() as records:
        binned = [i for i in owned if i % 9 == 0]
        for record_id in binned:
            records.delete("customer", record_id)
        south = [i for i, owner in owned.items() if owner and owner.startswith("south") and i not in binned]
        east = [i for i, owner in owned.items() if owner and owner.startswith("east") and i not in binned]
        for record_id in south[:3] + east[-2:]:  # theirs, and two already in reach: each listed once
            access.share(records.session, "customer", record_id, user_id=ids["east_head"], access="read", now=records.now())
    return rt, ids, owned, binned, south[:3]


def pages(records, size=4, **kwargs):
    """Every record of the list, page by page (the cursor followed to the end)."""
    out, cursor = [], None
    for _ in range(200):
        page = records.list("customer", limit=size, cursor=cursor, **kwargs)
        out += [r["id"] for r in page.items]
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor
    raise AssertionError(f"no end after 200 pages: {out[:20]} …")


def test_a_heads_pages_are_what_the_plain_statement_gives(branches, monkeypatch):
    rt, ids, owned, binned, shared = branches
    with statements(rt.engine) as seen:
        postgresql = rt.engine.dialect.name == "postgresql"
        for head in ("east_head", "south_head"):  # one kept statement, each head's own owners
            branch = head.split("_")[0]
            with as_user(rt, ids, head) as records:
                narrow = pages(records)
                seen.clear()
                assert pages(records, size=50) == narrow
                assert any("per_owner" in s for s in seen) == postgresql  # per owner on PostgreSQL only
                in_bin = pages(records, deleted=True)
                monkeypatch.setattr(narrow_lists, "NARROW_OWNERS", 0)  # the plain statement
                seen.clear()
                plain = pages(records)
                assert not any("per_owner" in s for s in seen)
                assert pages(records, deleted=True) == in_bin
                monkeypatch.undo()
            assert narrow == plain
            expected = {i for i, owner in owned.items() if i not in binned
                        and (owner is None or owner.startswith(branch) or (head == "east_head" and i in shared))}
            assert set(narrow) == expected and len(narrow) == len(expected)
            assert set(in_bin) == {i for i in binned if owned[i] is None or owned[i].startswith(branch)}
            with rt.transaction() as records:  # newest first, the id breaking ties
                t = records.entity("customer").table
                created = dict(records.session.execute(sa.select(t.c.id, t.c.created_at).where(t.c.id.in_(narrow))).all())
            assert narrow == sorted(narrow, key=lambda i: (created[i], i), reverse=True)
            assert len(set(created.values())) < len(created)  # ties were there to break


def test_filtered_lists_per_owner_searches_and_other_orders_plain(branches, monkeypatch):
    rt, ids, owned, binned, shared = branches
    with statements(rt.engine) as seen:
        postgresql = rt.engine.dialect.name == "postgresql"
        east = [str(ids[f"east_rep{n}"]) for n in range(2)]
        filtered = {"filters": [("owner_id", "in", ",".join(east))], "sort": "name"}
        with as_user(rt, ids, "east_head") as records:
            narrow = pages(records, **filtered)
            assert any("per_owner" in s for s in seen) == postgresql
            monkeypatch.setattr(narrow_lists, "NARROW_OWNERS", 0)
            assert pages(records, **filtered) == narrow
            monkeypatch.undo()
            names = {i: records.get("customer", i)["name"] for i in narrow}
            assert set(narrow) == {i for i, owner in owned.items() if i not in binned and owner in ("east_rep0", "east_rep1")}
            assert narrow == sorted(narrow, key=lambda i: (names[i], i))
            seen.clear()
            by_name = pages(records, sort="name")       # no filter, an order no owner index follows
            searched = pages(records, q="客户1")          # a search
            assert not any("per_owner" in s for s in seen)
            assert len(by_name) == len(pages(records)) and searched
            assert all(records.get("customer", i)["name"].startswith("客户1") for i in searched)


def test_a_wide_scope_keeps_the_plain_statement(branches, monkeypatch):
    rt, ids, owned, binned, shared = branches
    with statements(rt.engine) as seen:
        monkeypatch.setattr(narrow_lists, "NARROW_OWNERS", 3)  # the east head reaches 4 people
        with as_user(rt, ids, "east_head") as records:
            assert len(records.access.people_for("department_tree")) == 4
            narrow_or_not = pages(records)
            assert not any("per_owner" in s for s in seen)
        monkeypatch.undo()
        with as_user(rt, ids, "east_head") as records:
            assert pages(records) == narrow_or_not


def test_many_shares_written_into_the_sql(branches, monkeypatch):
    """Shares beyond access.BOUND_IDS are literals in the statement, not parameters: the kept
    statement then differs per share list, and a new share shows at once."""
    rt, ids, owned, binned, shared = branches
    monkeypatch.setattr(access, "BOUND_IDS", 1)
    with as_user(rt, ids, "east_head") as records:
        before = pages(records)
    south = [i for i, owner in owned.items() if owner and owner.startswith("south") and i not in binned and i not in shared]
    with rt.transaction() as records:
        access.share(records.session, "customer", south[0], user_id=ids["east_head"], access="read", now=records.now())
    with as_user(rt, ids, "east_head") as records:
        after = pages(records)
        monkeypatch.setattr(narrow_lists, "NARROW_OWNERS", 0)
        assert pages(records) == after
    assert set(after) == set(before) | {south[0]}


def test_an_entity_without_an_owner_index_keeps_the_plain_statement(branches):
    """Follow-up templates are scoped by their creator, who has no index: per owner, each owner
    would cost a scan of the table."""
    rt, ids, owned, binned, shared = branches
    with rt.transaction() as records:
        entity = records.entity("customer")
        reach = records.access.reach(entity)
    template = rt.metadata["follow_up_template"]
    without = access.Reach(template, (1, 2), (), ())
    with_index = access.Reach(entity, (1, 2), (), ())
    keys = [("created_at", True), ("id", True)]
    assert narrow_lists.is_narrow(with_index, "postgresql", keys, filtered=True, searched=False)
    assert narrow_lists.is_narrow(with_index, "postgresql", keys, filtered=False, searched=False)
    assert not narrow_lists.is_narrow(with_index, "postgresql", keys, filtered=False, searched=True)
    assert not narrow_lists.is_narrow(with_index, "sqlite", keys, filtered=False, searched=False)
    assert not narrow_lists.is_narrow(without, "postgresql", keys, filtered=True, searched=False)
    assert reach.owners is None  # the system: no owner condition, nothing to plan per owner
