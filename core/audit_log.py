"""The audit trail: who changed what, when, field by field (table ``crm_audit``)."""
import datetime as dt
from decimal import Decimal

import sqlalchemy as sa

from crm.core.bulk import insert_rows
from crm.core.fieldtypes import FieldType
from crm.core.tables import audit


def _json(value):
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items() if k not in ("parent_id",)}
    return value


def _value(entity, name, value):
    field = entity.fields.get(name)
    if field is not None and field.type not in ("table", "links"):
        return field.ftype.to_json(value)
    return _json(value)


def _enabled(entity):
    return entity.spec.get("audit", True)


def _insert(ctx, rows):
    if rows:
        insert_rows(ctx.session, audit, rows)


def _row(ctx, entity, record_id, action, field=None, old=None, new=None, note=None):
    return dict(entity=entity.name, record_id=record_id, action=action, field=field, old_value=old,
                new_value=new, user_id=ctx.user_id, at=ctx.now(), note=note)


def created(ctx, entity, record):
    created_many(ctx, entity, [record])


def created_many(ctx, entity, records):
    """One ``create`` row per record, written with one executemany (imports create thousands)."""
    if _enabled(entity):
        convert = _conversions(entity)
        base = _row(ctx, entity, None, "create")   # one time for the batch, as the records' created_at
        rows = []
        for record in records:
            new = {}
            for k, v in record.items():
                how = convert.get(k, _SKIP)
                if how is _SKIP or v is None or v == [] or v == "":
                    continue
                new[k] = v if how is None else how(v)
            rows.append({**base, "record_id": record["id"], "new_value": new})
        _insert(ctx, rows)


_SKIP = object()


def _conversions(entity):
    """Field name → what :func:`_value` does with its values (None: nothing), once per entity:
    the create rows of an import convert 40 values per record."""
    plan = entity.__dict__.get("_audit_conversions")
    if plan is None:
        plan = {}
        for name, field in entity.fields.items():
            if field.type in ("table", "links"):
                plan[name] = _json
            else:
                plan[name] = None if type(field.ftype).to_json is FieldType.to_json else field.ftype.to_json
        entity.__dict__["_audit_conversions"] = plan
    return plan


def updated(ctx, entity, old, new, changed):
    if _enabled(entity):
        _insert(ctx, [_row(ctx, entity, new["id"], "update", name, _value(entity, name, old.get(name)),
                                _value(entity, name, new.get(name))) for name in sorted(changed)])


def event(ctx, entity, record_id, action, note=None):
    if _enabled(entity):
        _insert(ctx, [_row(ctx, entity, record_id, action, note=note)])


def history(ctx, entity, record_id, hidden=frozenset()):
    """The record's audit rows, newest first; hidden fields (for everyone, or for this user) are left out."""
    stmt = sa.select(audit).where(audit.c.entity == entity.name, audit.c.record_id == record_id).order_by(audit.c.id.desc())
    rows = []
    for row in ctx.session.execute(stmt).mappings():
        row = dict(row)
        def shown(name):
            return name not in hidden and not (name in entity.fields and entity.fields[name].hidden)
        if row["field"] and not shown(row["field"]):
            continue
        if row["action"] == "create" and isinstance(row["new_value"], dict):
            row["new_value"] = {k: v for k, v in row["new_value"].items() if shown(k)}
        rows.append(row)
    return rows
