"""The points service (客户积分): every change of a customer's points goes through here.

- :func:`accrue` applies one rule to one source record (idempotent: one ledger entry per rule,
  source entity, source id and occasion, enforced by a unique index on ``dedupe_key`` and checked
  before writing);
- :func:`redeem` (积分消费) and :func:`adjust` (手工调整, permission ``points.adjust`` and a reason)
  refuse to take a balance below zero;
- :func:`expire` (the daily job) writes off what is left of credits past their expiry date.

Each function works in the caller's transaction through its record service ``ctx``. The
customer's row is locked first (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite writers hold the
database lock), so concurrent changes of one customer's points are serialised and the balance
kept in ``customer.points_balance`` always equals the sum of the ledger.

Credits (accruals and positive adjustments) are kept as lots with their ``remaining`` points;
debits (redemptions, negative adjustments) use the lots that expire soonest first, so expiry
only ever writes off points nobody has used.
"""
import calendar
import datetime as dt
from decimal import ROUND_DOWN, Decimal, InvalidOperation

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from crm.core import expressions
from crm.core.errors import Forbidden, NotFound, ValidationFailed
from crm.core.records import transaction_cache

ADJUST = "points.adjust"
LEDGER, RULE = "points_ledger", "points_rule"
RULES_CACHE = "points.active_rules"
#: event → the entity whose records trigger it (``record``: the rule's ``source_entity``)
EVENT_SOURCES = {"customer_created": "customer", "referral": "customer", "follow_up_visit": "follow_up",
                 "birthday": "contact", "record": None}


def add_months(day, months):
    """``day`` plus ``months`` calendar months; the 31st becomes the month's last day."""
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


# --- reading -----------------------------------------------------------------------------------

def balance(ctx, customer_id):
    """The customer's balance (the customer must be visible to ``ctx``)."""
    return ctx.get("customer", customer_id).get("points_balance") or 0


def ledger(ctx, customer_id, limit=100):
    """The customer's ledger, newest first, through ``ctx`` (so access applies)."""
    return ctx.list(LEDGER, filters=[("customer_id", "eq", customer_id)], sort="-id", limit=limit).items


def active_rules(ctx, event=None):
    """The active rules, read once per transaction (every record saved asks for them) and again
    after a rule was written."""
    cache = transaction_cache(ctx.session)
    if RULES_CACHE not in cache:
        table = ctx.entity(RULE).table
        stmt = sa.select(table).where(table.c.deleted_at.is_(None), table.c.active.is_(True)).order_by(table.c.id)
        cache[RULES_CACHE] = [dict(r) for r in ctx.session.execute(stmt).mappings()]
    return [dict(r) for r in cache[RULES_CACHE] if not event or r["event"] == event]


def forget_rules(ctx):
    transaction_cache(ctx.session).pop(RULES_CACHE, None)


def in_use(ctx):
    """True once an implementer has configured a rule (active or not)."""
    table = ctx.entity(RULE).table
    return ctx.session.execute(sa.select(table.c.id).where(table.c.deleted_at.is_(None)).limit(1)).first() is not None


def accrual_on(ctx):
    """The system setting ``points_enabled`` (积分累积开启), default on."""
    table = ctx.entity("system_settings").table
    value = ctx.session.execute(sa.select(table.c.points_enabled).where(table.c.deleted_at.is_(None))
                                .order_by(table.c.id).limit(1)).scalar()
    return value is not False


# --- writing -----------------------------------------------------------------------------------

def _row(ctx, name, record_id):
    table = ctx.entity(name).table
    row = ctx.session.execute(sa.select(table).where(table.c.id == record_id)).mappings().first()
    return dict(row) if row else None


def _lock_customer(ctx, customer_id):
    """Lock the customer's row for the rest of the transaction; its balance."""
    table = ctx.entity("customer").table
    stmt = sa.select(table.c.id, table.c.points_balance).where(table.c.id == customer_id, table.c.deleted_at.is_(None))
    if ctx.dialect == "postgresql":
        stmt = stmt.with_for_update()
    row = ctx.session.execute(stmt).first()
    if row is None:
        raise NotFound(f"no customer {customer_id}")
    return row.points_balance or 0


def _key_used(ctx, key):
    table = ctx.entity(LEDGER).table
    return ctx.session.execute(sa.select(table.c.id).where(table.c.dedupe_key == key)).first() is not None


def _consume(ctx, customer_id, points):
    """Take ``points`` from the customer's lots, soonest expiring first."""
    table = ctx.entity(LEDGER).table
    lots = ctx.session.execute(sa.select(table.c.id, table.c.remaining).where(
        table.c.customer_id == customer_id, table.c.remaining > 0, table.c.deleted_at.is_(None))
        .order_by(table.c.expires_on.is_(None), table.c.expires_on, table.c.id)).all()
    for lot_id, remaining in lots:
        if points <= 0:
            break
        used = min(points, remaining)
        ctx.session.execute(table.update().where(table.c.id == lot_id).values(remaining=remaining - used))
        points -= used


def _write(ctx, customer_id, points, kind, *, lot=None, **values):
    """One ledger entry and the new balance. ``lot``: the credit an expiry writes off."""
    current = _lock_customer(ctx, customer_id)
    if values.get("dedupe_key") and _key_used(ctx, values["dedupe_key"]):
        return None
    new = current + points
    if new < 0:
        message = f"积分不足：当前余额 {current}，不能扣减 {-points} / not enough points: the balance is {current}"
        raise ValidationFailed(message, {"points": message})
    if points < 0 and lot is None:
        _consume(ctx, customer_id, -points)
    elif lot is not None:
        table = ctx.entity(LEDGER).table
        ctx.session.execute(table.update().where(table.c.id == lot).values(remaining=0))
    entry = ctx.as_system().create(LEDGER, {**{k: v for k, v in values.items() if v is not None}, "customer_id": customer_id,
                                   "points": points, "kind": kind, "balance_after": new,
                                   "remaining": points if points > 0 else None})
    if ctx.user_id:  # who did it, in the system columns, though the entry was written by the service
        ctx.set_derived(LEDGER, entry["id"], {"created_by": ctx.user_id, "updated_by": ctx.user_id})
        entry = {**entry, "created_by": ctx.user_id, "updated_by": ctx.user_id}
    ctx.set_derived("customer", customer_id, {"points_balance": new})
    return entry


def _whole(points, field="points"):
    try:
        value = Decimal(str(points))
    except (InvalidOperation, ValueError):
        value = None
    if value is None or value != value.to_integral_value():
        raise ValidationFailed("积分必须是整数 / points must be a whole number", {field: "whole number"})
    return int(value)


def _require_customer(ctx, customer_id, action):
    """The customer, when the user may reach it for ``action`` (404 when they may not see it)."""
    customer = ctx.get("customer", customer_id)
    entity = ctx.entity("customer")
    if not ctx.access.allowed("customer", action):
        raise Forbidden(f"you may not {action} customers")
    clause = ctx.access.clause(entity, action)
    if clause is not None and not ctx.session.execute(
            sa.select(entity.table.c.id).where(entity.table.c.id == customer["id"], clause)).first():
        raise Forbidden(f"you may not {action} customer #{customer['id']}")
    return customer


def redeem(ctx, customer_id, points, redemption_type, reason=None):
    """积分消费: take ``points`` (> 0) for a gift, a discount, a warranty extension ... Refused when
    the balance is smaller; the user must be allowed to update the customer."""
    points = _whole(points)
    if points <= 0:
        raise ValidationFailed("消费的积分必须大于 0 / redeem more than 0 points", {"points": "more than 0"})
    if not redemption_type:
        raise ValidationFailed("请选择消费方式 / choose what the points are redeemed for", {"redemption_type": "required"})
    customer = _require_customer(ctx, customer_id, "update")
    return _write(ctx, customer["id"], -points, "redemption", redemption_type=redemption_type, reason=reason)


def adjust(ctx, customer_id, points, reason):
    """手工调整: add (or, negative, take) points by hand. Needs ``points.adjust`` and a reason."""
    if not ctx.access.has(ADJUST):
        raise Forbidden("调整积分需要“调整客户积分”权限 / adjusting points needs the points.adjust permission")
    points = _whole(points)
    if points == 0:
        raise ValidationFailed("调整的积分不能为 0 / adjust by a number other than 0", {"points": "not 0"})
    if not (reason or "").strip():
        raise ValidationFailed("调整积分必须填写原因 / a reason is required", {"reason": "required"})
    customer = ctx.get("customer", customer_id)
    return _write(ctx, customer["id"], points, "adjustment", reason=reason.strip())


def _number(value):
    number = expressions._num(value)
    return number if number is not None else None


def multiplier(rule, data, today):
    """The rule's factor for this customer: a map of level → factor (``"*"`` for the others), an
    expression, or a number; 1 when nothing applies."""
    spec = rule.get("level_multipliers")
    if spec in (None, "", {}, []):
        return Decimal(1)
    if isinstance(spec, dict) and len(spec) == 1 and next(iter(spec)) in expressions.OPERATORS:
        value = expressions.evaluate(spec, data, today=today)
    elif isinstance(spec, dict):
        level = (data.get("customer") or {}).get("level")
        value = spec.get(level, spec.get("*", 1)) if level is not None else spec.get("*", 1)
    else:
        value = spec
    number = _number(value)
    return Decimal(1) if number is None else number


def points_for(rule, record, customer, today):
    """The points ``rule`` gives for ``record`` of ``customer`` (0 when its condition fails)."""
    data = {**record, "customer": customer}
    condition = rule.get("condition")
    if condition not in (None, "", {}) and not expressions.truthy(expressions.evaluate(condition, data, today=today)):
        return 0
    base = Decimal(rule.get("fixed_points") or 0)
    if rule.get("points_per_yuan") and rule.get("amount_field"):
        amount = _number(record.get(rule["amount_field"]))
        if amount is not None:
            base += amount * Decimal(rule["points_per_yuan"])
    value = (base * multiplier(rule, data, today)).to_integral_value(rounding=ROUND_DOWN)
    return max(int(value), 0)


def accrue(ctx, rule, customer_id, source_entity, source_id, record, occasion=None):
    """Apply ``rule`` to a source record: the new ledger entry, or None when the condition fails,
    the rule gives nothing, or this rule already paid for this source (and occasion)."""
    key = f"rule:{rule['id']}:{source_entity}:{source_id}" + (f":{occasion}" if occasion else "")
    if _key_used(ctx, key):
        return None
    customer = _row(ctx, "customer", customer_id)
    if customer is None or customer.get("deleted_at") is not None:
        return None
    today = ctx.today()
    points = points_for(rule, record, customer, today)
    if points <= 0:
        return None
    values = {"rule_id": rule["id"], "source_entity": source_entity, "source_id": source_id, "dedupe_key": key,
              "reason": rule.get("name"),
              "expires_on": add_months(today, rule["expiry_months"]).isoformat() if rule.get("expiry_months") else None}
    try:
        with ctx.session.begin_nested():
            return _write(ctx, customer_id, points, "accrual", **values)
    except IntegrityError:  # another transaction paid for it meanwhile: the unique index keeps it once
        return None


def on_saved(ctx, entity, record, created, changes=None):
    """Record hooks: apply the active rules that watch this kind of record."""
    if entity.name == RULE:
        forget_rules(ctx)
    if entity.name in (LEDGER, RULE) or entity.is_child:
        return []
    rules = [r for r in active_rules(ctx) if _watches(r, entity.name)]
    if not rules or not accrual_on(ctx):
        return []
    done = []
    for rule in rules:
        event = rule["event"]
        if event == "customer_created" and created:
            done.append(accrue(ctx, rule, record["id"], "customer", record["id"], record))
        elif event == "referral" and record.get("points_referred_by") and (created or "points_referred_by" in (changes or {})):
            if record["points_referred_by"] != record["id"]:
                done.append(accrue(ctx, rule, record["points_referred_by"], "customer", record["id"], record))
        elif event == "follow_up_visit" and record.get("type") == "visit" and record.get("customer_id"):
            done.append(accrue(ctx, rule, record["customer_id"], "follow_up", record["id"], record))
        elif event == "record" and record.get("customer_id"):
            done.append(accrue(ctx, rule, record["customer_id"], entity.name, record["id"], record))
    return [d for d in done if d]


def _watches(rule, entity_name):
    source = EVENT_SOURCES.get(rule["event"], "")
    if source is None:
        return rule.get("source_entity") == entity_name
    return source == entity_name and rule["event"] != "birthday"


def birthdays(ctx, today):
    """联系人生日: rules with the event ``birthday`` for contacts born on this day (29 February
    counts on 28 February in other years); once per contact, rule and year."""
    rules = active_rules(ctx, "birthday")
    if not rules or not accrual_on(ctx):
        return 0
    contact = ctx.entity("contact").table
    days = [(today.month, today.day)]
    if today.month == 2 and today.day == 28 and not calendar.isleap(today.year):
        days.append((2, 29))
    match = sa.or_(*[sa.and_(sa.extract("month", contact.c.birthday) == m, sa.extract("day", contact.c.birthday) == d) for m, d in days])
    rows = ctx.session.execute(sa.select(contact).where(contact.c.deleted_at.is_(None), contact.c.customer_id.is_not(None),
                                                        contact.c.birthday.is_not(None), match)).mappings().all()
    added = 0
    for row in rows:
        for rule in rules:
            added += accrue(ctx, rule, row["customer_id"], "contact", row["id"], dict(row), occasion=str(today.year)) is not None
    return added


def expire(ctx, today):
    """Write off what is left of credits whose expiry date has come; once per credit."""
    table = ctx.entity(LEDGER).table
    lots = ctx.session.execute(sa.select(table.c.id, table.c.customer_id).where(
        table.c.remaining > 0, table.c.expires_on <= today, table.c.deleted_at.is_(None)).order_by(table.c.id)).all()
    expired = 0
    for lot_id, customer_id in lots:
        _lock_customer(ctx, customer_id)
        lot = _row(ctx, LEDGER, lot_id)  # read again under the lock
        if not lot["remaining"] or lot["remaining"] <= 0:
            continue
        entry = _write(ctx, customer_id, -lot["remaining"], "expiry", lot=lot_id, rule_id=lot["rule_id"],
                       source_entity=LEDGER, source_id=lot_id, dedupe_key=f"expiry:{lot_id}",
                       reason=f"积分过期（{lot['created_at']:%Y-%m-%d} 获得，{lot['expires_on']} 到期）")
        expired += entry is not None
    return expired


def recompute(ctx, customer_id):
    """Set the balance from the ledger (after a merge moved entries between customers)."""
    table = ctx.entity(LEDGER).table
    total = ctx.session.execute(sa.select(sa.func.coalesce(sa.func.sum(table.c.points), 0)).where(
        table.c.customer_id == customer_id, table.c.deleted_at.is_(None))).scalar()
    ctx.set_derived("customer", customer_id, {"points_balance": int(total)})
    return int(total)


# --- rules -------------------------------------------------------------------------------------

def check_rule(ctx, rule):
    """Problems of a rule as {field: message} (empty when fine)."""
    problems = {}
    event = rule.get("event")
    source = EVENT_SOURCES.get(event, rule.get("source_entity")) or rule.get("source_entity")
    target = ctx.model.entities.get(source) if source else None
    if event == "record":
        if target is None:
            problems["source_entity"] = f"没有实体 {source!r} / no entity {source!r}"
        elif getattr(target.fields.get("customer_id"), "entity", None) != "customer":
            problems["source_entity"] = f"{source} 没有关联客户的 customer_id 字段 / {source} has no customer_id link to customer"
    known = (set(target.fields) | {"id", "created_at", "created_by", "updated_at", "updated_by", "customer"}) if target else None
    for name in ("condition", "level_multipliers"):
        expr = rule.get(name)
        if expr in (None, "", {}):
            continue
        if name == "level_multipliers" and isinstance(expr, dict) and not (len(expr) == 1 and next(iter(expr)) in expressions.OPERATORS):
            bad = [k for k, v in expr.items() if _number(v) is None]
            if bad:
                problems[name] = f"倍数必须是数字：{', '.join(bad)} / multipliers must be numbers"
            continue
        if name == "level_multipliers" and not isinstance(expr, dict):
            if _number(expr) is None:
                problems[name] = "倍数必须是数字、级别对照表或表达式 / a number, a map of levels or an expression"
            continue
        errors = expressions.validate(expr, known_fields=known)
        if errors:
            problems[name] = f"表达式有误 / invalid expression: {errors[0]}"
    if rule.get("points_per_yuan") and not rule.get("amount_field"):
        problems["amount_field"] = "按金额计分时必须指定金额字段 / points per yuan need the amount field"
    if rule.get("amount_field") and target is not None:
        field = target.fields.get(rule["amount_field"])
        if field is None or (field.type not in ("integer", "decimal", "money") and field.spec.get("result_type") not in ("integer", "decimal", "money")):
            problems["amount_field"] = f"{target.name} 没有数字字段 {rule['amount_field']!r} / not a number field of {target.name}"
    if not rule.get("fixed_points") and not rule.get("points_per_yuan"):
        problems["fixed_points"] = "固定积分和每元积分至少填一项 / give fixed points or points per yuan"
    return problems

