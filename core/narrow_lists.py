"""A list page within a narrow scope, planned per owner (PostgreSQL).

A department head's list (``owner IN (37 people)``, newest first) is the same statement as the
administrator's with one more condition, but not the same work: the administrator's first page
reads the 51 newest rows of the sort's index, the head's walks that index and skips every row
out of reach, 6,000 of them for a scope holding 1 % of a million customers. PostgreSQL 15 does
not merge per-owner index scans for an ``IN`` list (nor for a ``UNION ALL`` of one select per
owner), so the statement says it itself::

    SELECT t.* FROM t WHERE t.id IN (
        SELECT id FROM (
            SELECT per.* FROM unnest(:owners) AS o(owner)
              CROSS JOIN LATERAL (SELECT id, <sort> FROM t WHERE owner = o.owner AND <where>
                                  ORDER BY <sort> LIMIT :n) AS per
            UNION ALL                                    -- shares and plugin grants, when any
            (SELECT id, <sort> FROM t WHERE <others> AND owner not among them AND <where>
             ORDER BY <sort> LIMIT :n)
        ) AS candidates ORDER BY <sort> LIMIT :n)
    ORDER BY <sort>

Each owner gives at most a page of ids, read from the index ``(owner, <default sort>, id,
deleted_at)`` alone (:func:`crm.core.schema.wanted_indexes` declares it), and only the page's rows are
fetched whole. The branches are disjoint, so the page holds what the plain statement would, in
the same order; the owners are one bound array, so every head's list is one cached statement.

Worth it while the owners are few: each costs an index descent and up to a page of index
entries, so a 公司 head's 371 owners are cheaper the plain way (their records are dense enough
in the sort's index). :data:`NARROW_OWNERS` is that limit. Filtered lists go per owner too
(each owner's matching rows are then read and sorted: at most what the scope holds);
:func:`is_narrow` says when, and why not for searches.
"""
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from crm.core import query
from crm.core.access import owner_field
from crm.core.schema import wanted_indexes

NARROW_OWNERS = 64
OWNERS = "narrow_owners"  # the bound parameter holding them
CURSOR = "narrow_cursor"  # the cursor's values: narrow_cursor_0 …
KEPT = 64  # statements kept per entity


def is_narrow(reach, dialect_name, keys, filtered, searched):
    """Whether to plan this list per owner: on PostgreSQL, for a few owners, when an index on the
    owner gives each owner's records in the list's order (the default sort, by
    :func:`crm.core.schema.wanted_indexes`) or when filters narrow the list; not for a search.

    Measured at a million customers (docs/performance.md, "Fourth pass"): per owner, a list
    costs at most what the scope holds, whatever the size of the table, where PostgreSQL's own
    plan may walk the sort's index through the whole table for a selective filter (level = A
    sorted by name: 46 → 21 ms as a 分公司 head, 34 → 5 ms as a 小组 head) but also finds
    rows sooner for a filter most records pass (status among four of seven: 11 → 19 ms). Without
    filters, in an order no owner index follows, walking the sort's index wins (6 against 19 ms),
    and so does PostgreSQL's plan for a search (13 against 25 ms)."""
    if searched or dialect_name != "postgresql" or not reach.owners or len(reach.owners) > NARROW_OWNERS:
        return False
    if filtered:
        return _owner_index_follows(reach, ())  # each owner's records found by an index, at least
    return _owner_index_follows(reach, keys)


def _owner_index_follows(reach, keys):
    """An index starts with the owner and the sort's columns (``id``, the tie-breaker, may follow)."""
    if len({desc for _, desc in keys}) > 1:
        return False  # mixed directions: no index gives that order
    found = reach.entity.__dict__.setdefault("_owner_sorted", {})
    names = tuple(name for name, _ in keys if name != "id")
    if names not in found:
        wanted = (owner_field(reach.entity), *names)
        found[names] = any(columns[:len(wanted)] == wanted for columns, _, _ in wanted_indexes(reach.entity))
    return found[names]


def page_statement(reach, where, keys, size, cursor=None, reusable=False):
    """The select of up to ``size`` rows of ``reach.entity`` matching ``where`` (every condition
    but the reach's owners and others and the cursor: recycle bin, restrictions, filters) within
    the reach, in the order ``keys`` ([(column, descending)], ``id`` last), after the ``cursor``
    values when given; and the parameters to run it with.

    ``reusable``: ``where`` is the same for every call (a plain list: the recycle-bin state
    alone). Building this statement costs about as much as PostgreSQL takes to run it, so such
    a statement is kept per entity, order, size, shape of the reach's other grants and of the
    cursor, with the owners and the cursor's values as parameters (the others are kept only
    when they hold no parameter of their own)."""
    params = {OWNERS: list(reach.owners)}
    after, shape = [], None
    if cursor is not None:
        after = [query.after_cursor(reach.entity, keys, cursor, nulls_large=True, named=CURSOR)]
        params.update({f"{CURSOR}_{i}": value for i, value in enumerate(cursor) if value is not None})
        shape = tuple(value is None for value in cursor)
    if not reusable:
        return _build(reach, [*where, *after], keys, size), params
    others = sa.or_(*reach.others)._generate_cache_key() if reach.others else None
    if others is not None and others.bindparams:
        return _build(reach, [*where, *after], keys, size), params
    built = reach.entity.__dict__.setdefault("_narrow_pages", {})
    key = (tuple(where), tuple(keys), size, others and others.key, shape)  # clauses by identity
    if key not in built:
        if len(built) >= KEPT:
            built.clear()
        built[key] = _build(reach, [*where, *after], keys, size)
    return built[key], params


def _build(reach, where, keys, size):
    table = reach.entity.table
    owner = reach.owner_column
    columns = [table.c.id, *(table.c[name] for name, _ in keys if name != "id")]

    def order(source):
        return [source.c[name].desc() if desc else source.c[name].asc() for name, desc in keys]

    people = sa.bindparam(OWNERS, type_=postgresql.ARRAY(owner.type))
    owners = sa.func.unnest(people).table_valued("owner").render_derived(name="o")
    per_owner = (sa.select(*columns).where(owner == owners.c.owner, *where)
                 .order_by(*order(table)).limit(size).lateral("per_owner"))
    branches = [sa.select(per_owner).select_from(owners.join(per_owner, sa.true()))]
    if reach.others:
        not_theirs = sa.or_(owner.is_(None), owner != sa.all_(people))
        branches.append(sa.select(*columns).where(sa.or_(*reach.others), not_theirs, *where)
                        .order_by(*order(table)).limit(size))
    candidates = (sa.union_all(*branches) if len(branches) > 1 else branches[0]).subquery("candidates")
    top = sa.select(candidates.c.id).order_by(*order(candidates)).limit(size)
    return sa.select(table).where(table.c.id.in_(top)).order_by(*order(table))
