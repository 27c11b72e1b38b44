"""List queries: filters, sort and keyset cursors, turned into SQLAlchemy ``select`` clauses."""
import base64
import datetime as dt
import json
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa

from crm.core.errors import BadRequest
from crm.core.tables import links

OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "contains", "startswith", "isnull")
TEXT_LIKE = {"text", "textarea", "richtext", "email", "phone", "url", "select", "region", "mnemonic", "autonumber"}
UNSORTABLE = {"textarea", "richtext", "json", "multiselect", "links", "table"}
SYSTEM_TYPES = {"id": "integer", "version": "integer", "created_at": "datetime", "updated_at": "datetime",
                "deleted_at": "datetime", "created_by": "user", "updated_by": "user", "deleted_by": "user",
                "parent_id": "integer", "sort_order": "integer"}


def field_type(entity, name):
    if name in entity.fields:
        field = entity.fields[name]
        return field.spec["result_type"] if field.type == "computed" else field.type
    if name in entity.system_fields:
        return SYSTEM_TYPES[name]
    raise BadRequest(f"unknown field {name!r}", {name: "unknown field"})


def parse_value(ftype, raw, name):
    """A filter or cursor value (a string from a URL, or JSON) → the column's Python value."""
    if raw is None:
        return None
    try:
        if ftype in ("integer", "link", "user", "department", "file", "image", "rating"):
            return _in_range(int(raw))
        if ftype in ("decimal", "money", "percent"):
            return _in_range(Decimal(str(raw)))
        if ftype == "boolean":
            if isinstance(raw, bool):
                return raw
            return {"true": True, "1": True, "false": False, "0": False}[str(raw).lower()]
        if ftype == "date":
            return dt.date.fromisoformat(raw[:10]) if isinstance(raw, str) else _of_type(raw, dt.date)
        if ftype == "datetime":
            return dt.datetime.fromisoformat(raw) if isinstance(raw, str) else _of_type(raw, dt.datetime)
        if ftype == "time":
            return dt.time.fromisoformat(raw)
    except (ValueError, KeyError, InvalidOperation, TypeError):
        raise BadRequest(f"bad value {raw!r} for {name}", {name: f"bad value for a {ftype} field"})
    if "\x00" in str(raw):
        raise BadRequest(f"bad value for {name}", {name: "NUL characters are not allowed"})
    return str(raw)


def _in_range(number):
    """Numbers a database column can be compared with: 64-bit integers, finite decimals."""
    if isinstance(number, int) and not -2**63 < number < 2**63:
        raise ValueError("out of range")
    if isinstance(number, Decimal) and (not number.is_finite() or number.adjusted() > 40):
        raise ValueError("out of range")
    return number


def _of_type(value, kind):
    if not isinstance(value, kind):
        raise TypeError(f"not a {kind.__name__}")
    return value


def parse_filters(entity, params):
    """``{"name__contains": "x", "level": "A"}`` → [(field, op, value)]; unknown names are errors."""
    out = []
    for key, raw in params.items():
        name, _, op = key.partition("__")
        op = op or "eq"
        if op not in OPERATORS:
            raise BadRequest(f"unknown filter operator {op!r}", {key: f"operator must be one of {', '.join(OPERATORS)}"})
        out.append((name, op, raw))
    return out


def filter_clause(entity, name, op, raw, dialect=None):
    """The where clause of one filter; ``dialect``: the database's name (see :func:`any_case_like`)."""
    ftype = field_type(entity, name)
    table = entity.table
    if ftype == "links":
        ids = [parse_value("integer", v, name) for v in _split(raw)] if op in ("eq", "in") else None
        if ids is None:
            raise BadRequest(f"operator {op} does not apply to {name}", {name: "use eq or in"})
        return sa.exists().where(links.c.entity == entity.name, links.c.field == name,
                                 links.c.source_id == table.c.id, links.c.target_id.in_(ids))
    if ftype == "table" or name not in table.c:
        raise BadRequest(f"cannot filter on {name}", {name: "not filterable"})
    column = table.c[name]
    if op == "isnull":
        flag = parse_value("boolean", raw, name)
        return column.is_(None) if flag else column.is_not(None)
    if op in ("contains", "startswith"):
        if ftype == "multiselect" and op == "contains":
            return sa.cast(column, sa.Text).like('%"' + escape_like(str(raw)) + '"%', escape="\\")
        if ftype not in TEXT_LIKE:
            raise BadRequest(f"operator {op} needs a text field; {name} is {ftype}", {name: f"{op} needs a text field"})
        pattern = ("%" if op == "contains" else "") + escape_like(str(raw)) + "%"
        return any_case_like(column, pattern, dialect)
    if ftype in ("multiselect", "json"):
        raise BadRequest(f"operator {op} does not apply to {name}", {name: "use contains"})
    if op == "in":
        return column.in_([parse_value(ftype, v, name) for v in _split(raw)])
    value = parse_value(ftype, raw, name)
    if op == "eq":
        return column.is_(None) if value is None else column == value
    if op == "ne":
        return column.is_not(None) if value is None else sa.or_(column != value, column.is_(None))
    return {"gt": column > value, "gte": column >= value, "lt": column < value, "lte": column <= value}[op]


def any_case_like(column, pattern, dialect):
    """``column ILIKE pattern`` (``\\`` escapes), on SQLite as plain LIKE. SQLAlchemy writes ILIKE
    there as ``lower(column) LIKE lower(pattern)``, and SQLite's lower() folds ASCII letters only,
    which its LIKE already ignores the case of (we never set ``PRAGMA case_sensitive_like``): the
    same rows, without a call to lower() per row and field. A quick search reading all 100,000
    customers of the benchmark: 140 → 78 ms. Django's SQLite backend writes icontains so too."""
    return column.like(pattern, escape="\\") if dialect == "sqlite" else column.ilike(pattern, escape="\\")


def _split(raw):
    return raw if isinstance(raw, (list, tuple)) else [v for v in str(raw).split(",") if v != ""]


def escape_like(text):
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def parse_sort(entity, sort):
    """``"-created_at,name"`` → [(name, descending)] with ``id`` added as the last tie-breaker."""
    keys = []
    for part in (sort or entity.default_sort).split(","):
        part = part.strip()
        if not part:
            continue
        name, desc = part.lstrip("-"), part.startswith("-")
        ftype = field_type(entity, name)
        if ftype in UNSORTABLE or name not in entity.table.c:
            raise BadRequest(f"cannot sort by {name}", {name: "not sortable"})
        if name not in [k for k, _ in keys]:
            keys.append((name, desc))
    if "id" not in [k for k, _ in keys]:
        keys.append(("id", keys[-1][1] if keys else False))
    return keys


def order_by(entity, keys):
    return [entity.table.c[n].desc() if d else entity.table.c[n].asc() for n, d in keys]


# --- keyset cursors ------------------------------------------------------------------------

def encode_cursor(keys, row):
    values = [_jsonable(row[name]) for name, _ in keys]
    payload = {"k": [("-" if d else "") + n for n, d in keys], "v": values}
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def _jsonable(value):
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def decode_cursor(entity, keys, cursor):
    try:
        payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        assert payload["k"] == [("-" if d else "") + n for n, d in keys] and len(payload["v"]) == len(keys)
    except Exception:
        raise BadRequest("invalid cursor (it belongs to another sort or is damaged)", {"cursor": "invalid"})
    return [parse_value(field_type(entity, n), v, n) for (n, _), v in zip(keys, payload["v"])]


def after_cursor(entity, keys, values, nulls_large, named=None, nulls_apart=False):
    """Rows strictly after ``values`` in the order ``keys``.

    ``nulls_large``: the dialect sorts NULL after every value ascending (PostgreSQL) or before
    (SQLite); the clause follows the dialect's own order so the sort can use plain indexes.
    ``named``: the values are bound parameters ``<named>_<i>``, so that a statement kept for
    reuse can run with another cursor's values (which NULLs there are changes the clause).
    ``nulls_apart``: leave out the rows without a first key that :func:`nulls_follow` names
    (the caller reads them apart), so that the clause can bound the first key.
    """
    table = entity.table
    if named:
        values = [None if v is None else sa.bindparam(f"{named}_{i}", v, type_=table.c[n].type)
                  for i, ((n, _), v) in enumerate(zip(keys, values))]
    alternatives = []
    for i, (name, desc) in enumerate(keys):
        column, value = table.c[name], values[i]
        null_at_end = nulls_large != desc
        if value is None:
            step = sa.false() if null_at_end else column.is_not(None)
        else:
            step = column < value if desc else column > value
            if null_at_end:
                step = sa.or_(step, column.is_(None))
        prefix = [table.c[n].is_(None) if values[j] is None else table.c[n] == values[j] for j, (n, _) in enumerate(keys[:i])]
        alternatives.append(sa.and_(*prefix, step))
    after = sa.or_(*alternatives)
    (name, desc), first = keys[0], values[0]
    column = table.c[name]
    if first is not None and (nulls_large == desc or not column.nullable or nulls_apart):
        # every row after the cursor is on this side of its first value (no NULLs to come): said
        # alone, the bound lets the sort's index start at the cursor instead of walking to it,
        # which the OR above does not (a deep page read 10,000 rows of the index to skip them)
        return sa.and_(column <= first if desc else column >= first, after)
    return after


def nulls_follow(entity, keys, values, nulls_large):
    """The first key's column when rows without a value in it come after the cursor's ``values``
    (the cursor has a first value, the column is nullable and the dialect sorts NULL to the end
    in the key's direction: a newest-first list on SQLite); else None. Such rows stop
    :func:`after_cursor` from bounding the first key, so a deep page walked the sort's index from
    the top: read them apart instead (``after_cursor(…, nulls_apart=True)`` and ``IS NULL``)."""
    (name, desc), first = keys[0], values[0]
    column = entity.table.c[name]
    return column if first is not None and nulls_large != desc and column.nullable else None
