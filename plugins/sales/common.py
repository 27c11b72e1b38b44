"""Small helpers the parts of the sales plugin share: texts in the caller's language, rows read
without access scopes (for sums and checks the service makes on the user's behalf), row locks,
computed fields re-evaluated after a hook changed their inputs, and the customer consistency of
linked sales documents."""
from decimal import Decimal

import sqlalchemy as sa

from crm.core import expressions
from crm.core.registry import text_in
from crm.hooks import Veto

#: link fields of sales documents whose target carries a customer_id of its own
CUSTOMER_LINKS = {"contact_id": "contact", "opportunity_id": "opportunity", "quote_id": "quote", "contract_id": "contract",
                  "sales_order_id": "sales_order", "payment_plan_id": "payment_plan"}


def say(ctx, zh, en):
    """A message in the caller's language (the record service's locale)."""
    return text_in({"zh_CN": zh, "en": en}, ctx.locale or "zh_CN")


def yuan(amount):
    return f"¥{Decimal(amount or 0):,.2f}"


def row(ctx, name, record_id, lock=False):
    """The stored row of a record (deleted or not, whoever may see it), or None. ``lock``: keep
    it locked for the rest of the transaction on PostgreSQL (SQLite writers hold the database)."""
    if not record_id:
        return None
    table = ctx.entity(name).table
    stmt = sa.select(table).where(table.c.id == record_id)
    if lock and ctx.dialect == "postgresql":
        stmt = stmt.with_for_update()
    found = ctx.session.execute(stmt).mappings().first()
    return dict(found) if found else None


def total_of(ctx, name, column, **where):
    """Sum of ``column`` over the live records of ``name`` matching ``where`` (field=value;
    ``exclude`` leaves one id out)."""
    table = ctx.entity(name).table
    exclude = where.pop("exclude", None)
    clauses = [table.c.deleted_at.is_(None)] + [table.c[k] == v for k, v in where.items()]
    if exclude:
        clauses.append(table.c.id != exclude)
    return Decimal(ctx.session.execute(sa.select(sa.func.coalesce(sa.func.sum(table.c[column]), 0)).where(*clauses)).scalar() or 0)


def exists(ctx, name, **where):
    table = ctx.entity(name).table
    clauses = [table.c.deleted_at.is_(None)] + [table.c[k] == v for k, v in where.items()]
    return ctx.session.execute(sa.select(table.c.id).where(*clauses).limit(1)).first() is not None


def reachable(ctx, name, record_id, action):
    """True when the user of ``ctx`` may take ``action`` on this record (the scope of their roles)."""
    entity = ctx.entity(name)
    if not ctx.access.allowed(name, action):
        return False
    clause = ctx.access.clause(entity, action)
    return clause is None or ctx.session.execute(
        sa.select(entity.table.c.id).where(entity.table.c.id == record_id, clause)).first() is not None


def evaluate(entity, field_name, data, today):
    """A computed field's value for ``data``, from the expression in its metadata."""
    field = entity.fields[field_name]
    try:
        return field.ftype.to_python(expressions.evaluate(field.expression, data, today=today), field)
    except (ValueError, TypeError):
        return None


def fill_owner(ctx, entity, values):
    """A new sales document belongs to whoever files it, unless an owner is named."""
    if "owner_id" in entity.fields and not values.get("owner_id") and ctx.user_id:
        values["owner_id"] = ctx.user_id


def same_customer(ctx, entity, merged, changes):
    """Linked documents (contact, opportunity, quote, contract, order, plan) must belong to the
    record's customer; an empty customer is taken from the first of them."""
    customer_id = merged.get("customer_id")
    for field_name, target in CUSTOMER_LINKS.items():
        if field_name not in entity.fields or not merged.get(field_name):
            continue
        linked = row(ctx, target, merged[field_name])
        if linked is None or not linked.get("customer_id"):
            continue
        if not customer_id and "customer_id" in entity.fields:
            customer_id = changes["customer_id"] = merged["customer_id"] = linked["customer_id"]
        elif linked["customer_id"] != customer_id:
            label = entity.fields[field_name].label_in(ctx.locale)
            raise Veto(say(ctx, f"{label}属于另一个客户，请选择本客户的{label}", f"the {label.lower()} belongs to another customer"),
                       field=field_name)
    return customer_id
