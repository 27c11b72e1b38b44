"""Customer points (客户积分): an optional plugin. Disabled, it leaves no trace in any page or API
(its entities, the customer's ``points_balance`` and its settings come only from ``crm_metadata``);
enabled again, everything is back, because its tables and columns were never dropped.

- 积分规则 (``points_rule``): records an implementer configures without code: the event
  (new customer, follow-up visit, referral, birthday, any business record such as an order or a
  payment), a condition and a multiplier in the core expression language, fixed points or points
  per yuan of an amount field, expiry after N months;
- 积分记录 (``points_ledger``): every change with the balance after it, the rule, the source
  record, the reason and who did it; written only by :mod:`.service` (people cannot create, edit
  or delete entries);
- accrual in the record hooks, once per rule and source record; redemption (积分消费) and manual
  adjustment (permission ``points.adjust``, with a reason) never take a balance below zero;
- the daily job ``points.daily``: birthday points, then expiry of credits past their date.

See docs/plugin_points.md.
"""
from pathlib import Path

from crm.hooks import Job, Veto, hookimpl

from . import service

label = {"zh_CN": "客户积分", "en": "Customer points"}
requires = []


@hookimpl
def crm_metadata():
    return [Path(__file__).parent / "metadata"]


@hookimpl
def crm_permissions():
    return [{"name": service.ADJUST, "label": {"zh_CN": "调整客户积分", "en": "Adjust customer points"}}]


@hookimpl
def crm_roles():
    """Sales managers may adjust points (with a reason); the rules are the implementer's (admin)."""
    return [{"extends": "sales_manager", "rules": {"permissions": [service.ADJUST]}}]


@hookimpl
def crm_menu_entries():
    return [{"id": "points", "label": {"zh_CN": "客户积分", "en": "Customer points"}, "order": 35},
            {"id": "points_ledger", "entity": "points_ledger", "parent": "points", "order": 350},
            {"id": "points_rule", "entity": "points_rule", "parent": "points", "order": 351}]


@hookimpl
def crm_jobs():
    return [Job("points.daily", run_daily, label={"zh_CN": "积分：生日积分与过期", "en": "Points: birthdays and expiry"})]


@hookimpl
def crm_web_config(config):
    from . import views
    views.includeme(config)


@hookimpl
def crm_record_actions(ctx, entity, record):
    """积分消费 (for those who may update the customer, when there is a balance) and 调整积分
    (points.adjust), once points are in use."""
    if entity.name != "customer" or ctx.user is None or not (record.get("points_balance") or service.in_use(ctx)):
        return []  # points not in use yet (no rule, no balance): nothing on the page
    base, actions = f"/app/points/customers/{record['id']}", []
    if record.get("points_balance") and ctx.access.allowed("customer", "update"):
        actions.append({"id": "points.redeem", "label": {"zh_CN": "积分消费", "en": "Redeem points"}, "method": "GET", "url": base + "/redeem"})
    if ctx.access.has(service.ADJUST):
        actions.append({"id": "points.adjust", "label": {"zh_CN": "调整积分", "en": "Adjust points"}, "method": "GET", "url": base + "/adjust"})
    return actions


def run_daily(ctx):
    today = ctx.today()
    return {"birthdays": service.birthdays(ctx, today), "expired": service.expire(ctx, today)}


# --- record hooks --------------------------------------------------------------------------------

@hookimpl
def crm_before_create(ctx, entity, values):
    if entity.name == service.LEDGER and ctx.user is not None:
        raise Veto("积分记录只能由积分服务写入（累积、消费、调整） / points entries are written by the points service only")
    if entity.name == service.RULE:
        _check_rule(ctx, values)


@hookimpl
def crm_before_update(ctx, entity, old, changes):
    if entity.name == service.LEDGER and ctx.user is not None:
        raise Veto("积分记录不能修改 / points entries cannot be changed")
    if entity.name == service.RULE:
        _check_rule(ctx, {**old, **changes})


@hookimpl
def crm_before_delete(ctx, entity, record):
    if entity.name == service.LEDGER and ctx.user is not None:
        raise Veto("积分记录不能删除，请用调整 / points entries cannot be deleted; make an adjustment")


@hookimpl
def crm_after_create(ctx, entity, record):
    service.on_saved(ctx, entity, record, created=True)


@hookimpl
def crm_after_update(ctx, entity, old, record, changes):
    if changes:
        service.on_saved(ctx, entity, record, created=False, changes=changes)


@hookimpl
def crm_after_delete(ctx, entity, record):
    if entity.name == service.RULE:
        service.forget_rules(ctx)


@hookimpl
def crm_after_restore(ctx, entity, record):
    if entity.name == service.RULE:
        service.forget_rules(ctx)


@hookimpl
def crm_after_merge(ctx, entity, survivor, duplicate):
    if entity.name == "customer":  # the core moved the duplicate's entries to the survivor
        service.recompute(ctx, survivor["id"])
        service.recompute(ctx, duplicate["id"])


def _check_rule(ctx, rule):
    problems = service.check_rule(ctx, rule)
    if problems:
        field, message = next(iter(problems.items()))
        raise Veto(message, field=field)
