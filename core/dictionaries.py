"""系统字典: the editable value lists behind select, multiselect and region fields.

Metadata declares a dictionary and its first items; schema sync inserts the items the database
lacks. From then on the items belong to the instance: labels change, items are added, retired
(``active = false``: existing records keep their value, new input may not use it) or re-ordered.
"""
import sqlalchemy as sa

from crm.core.errors import NotFound, ValidationFailed
from crm.core.tables import dictionary_items


def items(session, dictionary, include_inactive=False):
    stmt = sa.select(dictionary_items).where(dictionary_items.c.dictionary == dictionary)
    if not include_inactive:
        stmt = stmt.where(dictionary_items.c.active)
    return [dict(r) for r in session.execute(stmt.order_by(dictionary_items.c.position, dictionary_items.c.id)).mappings()]


def all_items(session):
    """Every item of every dictionary, {dictionary: [item]} in the order of :func:`items` (one
    query for a page that shows many dictionaries; there are hundreds of items, not millions)."""
    out = {}
    stmt = sa.select(dictionary_items).order_by(dictionary_items.c.dictionary, dictionary_items.c.position, dictionary_items.c.id)
    for row in session.execute(stmt).mappings():
        out.setdefault(row["dictionary"], []).append(dict(row))
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
