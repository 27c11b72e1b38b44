"""系统字典: the editable value lists behind select, multiselect and region fields.

Metadata declares a dictionary and its first items; schema sync inserts the items the database
lacks. From then on the items belong to the instance: labels change, items are added, retired
(``active = false``: existing records keep their value, new input may not use it) or re-ordered.
"""
import weakref

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from crm.core.errors import NotFound, ValidationFailed
from crm.core.tables import dictionary_items, sequences


def items(session, dictionary, include_inactive=False):
    stmt = sa.select(dictionary_items).where(dictionary_items.c.dictionary == dictionary)
    if not include_inactive:
        stmt = stmt.where(dictionary_items.c.active)
    return [dict(r) for r in session.execute(stmt.order_by(dictionary_items.c.position, dictionary_items.c.id)).mappings()]


#: the counter in ``crm_sequences`` that every change of dictionary items moves on (as Odoo's
#: registry signalling does), so that each app server knows when its copy is out of date
VERSION_KEY = "crm.dictionaries.version"
_loaded = weakref.WeakKeyDictionary()   # engine -> (version, {dictionary: [item]})


def version(connection):
    return connection.execute(sa.select(sequences.c.value).where(sequences.c.key == VERSION_KEY)).scalar() or 0


def changed(connection):
    """Call in the transaction that inserts, updates or deletes dictionary items."""
    bump = sa.update(sequences).where(sequences.c.key == VERSION_KEY).values(value=sequences.c.value + 1)
    if connection.execute(bump).rowcount == 0:   # the first change of an instance made before the counter
        dialect = (connection.get_bind() if hasattr(connection, "get_bind") else connection).dialect.name  # Session or Connection
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        connection.execute(insert(sequences).values(key=VERSION_KEY, value=0).on_conflict_do_nothing())
        connection.execute(bump)


def all_items(session):
    """Every item of every dictionary, {dictionary: [item]} in the order of :func:`items`, for
    pages that show many dictionaries. Read once per process and database, and again only when
    the version counter moved (one primary-key look-up per call instead of every item, labels
    parsed from JSON). The result is shared: callers must not change it."""
    engine = session.get_bind().engine
    current = version(session)
    cached = _loaded.get(engine)
    if cached is not None and cached[0] == current:
        return cached[1]
    out = {}
    stmt = sa.select(dictionary_items).order_by(dictionary_items.c.dictionary, dictionary_items.c.position, dictionary_items.c.id)
    for row in session.execute(stmt).mappings():
        out.setdefault(row["dictionary"], []).append(dict(row))
    _loaded[engine] = (current, out)
    return out


def tree(session, dictionary):
    """Items nested by parent_value: [{"value", "label", "children": [...]}]."""
    return nest(items(session, dictionary))


def nest(rows):
    """Items (as :func:`items` returns them) nested by parent_value."""
    nodes = {i["value"]: {**i, "children": []} for i in rows}
    roots = []
    for node in nodes.values():
        (nodes[node["parent_value"]]["children"] if node["parent_value"] in nodes else roots).append(node)
    return roots


def save_item(model, session, dictionary, value, label, parent_value=None, position=None, active=True):
    if dictionary not in model.dictionaries:
        raise NotFound(f"no dictionary {dictionary!r}")
    value = (value or "").strip()
    if not value or len(value) > 64:
        raise ValidationFailed("a value of 1 to 64 characters is required", {"value": "required"})
    if parent_value is not None:
        if not model.dictionaries[dictionary].tree:
            raise ValidationFailed(f"{dictionary} is not a tree", {"parent_value": "flat dictionary"})
        if not any(i["value"] == parent_value for i in items(session, dictionary, True)):
            raise ValidationFailed(f"no item {parent_value!r}", {"parent_value": "unknown"})
    label = label if isinstance(label, dict) else {"zh_CN": str(label)}
    values = dict(label=label, parent_value=parent_value, active=active)
    if position is not None:
        values["position"] = position
    where = (dictionary_items.c.dictionary == dictionary, dictionary_items.c.value == value)
    if session.execute(sa.select(dictionary_items.c.id).where(*where)).first():
        session.execute(dictionary_items.update().where(*where).values(values))
    else:
        last = session.execute(sa.select(sa.func.max(dictionary_items.c.position)).where(dictionary_items.c.dictionary == dictionary)).scalar()
        values.setdefault("position", (last or 0) + 1)
        session.execute(dictionary_items.insert().values(dictionary=dictionary, value=value, owner="custom", **values))
    changed(session)
