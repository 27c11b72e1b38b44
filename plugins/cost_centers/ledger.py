"""The cost center ledger: approved spending and income per cost center, the ceiling (成本上限) that
an approval may not exceed, the warning line (预警线) that flags the cost center and tells its owner,
and the cost centers created automatically for sales, projects and campaigns.

Spending is what approved 员工报销 and 供应商费用支付 add up to; 收入登记 is summed apart as income.
The sums are recomputed from the approved transactions (never incremented), so they stay right
whatever path changed a transaction. The ceiling check locks the cost center row first
(``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite write transactions are serialized already), so
two approvals that together would exceed the ceiling cannot both pass.
"""
from decimal import Decimal

import sqlalchemy as sa

from crm.core import notifications
from crm.core.access import owner_field
from crm.hooks import Veto

APPROVED = "approved"          # the state of company_transaction whose amounts count
INCOME = "income"              # the kind that counts as income, not spending
RAISE_CEILING = "cost_centers.raise_ceiling"
CENT = Decimal("0.01")
AUTO_FOR_SETTING = "crm.cost_centers.auto_for"
AUTO_FOR_DEFAULT = "opportunity project campaign"
DEFAULT_CEILING_SETTING = "crm.cost_centers.default_ceiling"


def money(value):
    return (Decimal(value) if value is not None else Decimal(0)).quantize(CENT)


def yuan(value):
    """¥12,345.60"""
    return f"¥{money(value):,.2f}"


def zh(ctx):
    return ctx.locale.startswith("zh")


# --- reading -----------------------------------------------------------------------------------

def lock(ctx, cost_center_id):
    """The cost center row, locked until the transaction ends (PostgreSQL ``FOR UPDATE``)."""
    table = ctx.entity("cost_center").table
    stmt = sa.select(table).where(table.c.id == cost_center_id, table.c.deleted_at.is_(None))
    if ctx.dialect == "postgresql":
        stmt = stmt.with_for_update()
    row = ctx.session.execute(stmt).mappings().first()
    if row is None:
        raise Veto(f"成本中心 #{cost_center_id} 不存在" if zh(ctx) else f"cost center #{cost_center_id} does not exist",
                   field="cost_center_id")
    return dict(row)


def totals(ctx, cost_center_id):
    """{"spent", "income"}: the approved amounts of the cost center, read now."""
    table = ctx.entity("company_transaction").table
    stmt = (sa.select(table.c.kind, sa.func.sum(table.c.amount))
            .where(table.c.cost_center_id == cost_center_id, table.c.status == APPROVED, table.c.deleted_at.is_(None))
            .group_by(table.c.kind))
    spent = income = Decimal(0)
    for kind, amount in ctx.session.execute(stmt):
        if kind == INCOME:
            income += Decimal(amount or 0)
        else:
            spent += Decimal(amount or 0)
    return {"spent": money(spent), "income": money(income)}


def warning_amount(cost_center):
    percent = cost_center.get("warning_percent")
    if percent is None:
        return None
    return money(money(cost_center.get("ceiling")) * Decimal(percent) / 100)


def is_warned(cost_center, spent):
    line = warning_amount(cost_center)
    return line is not None and spent > 0 and spent >= line


# --- keeping the sums ----------------------------------------------------------------------------

def refresh(ctx, cost_center_id):
    """Recompute spent, income and the warning flag; tell the owner when the warning line is
    reached (once per cost center and warning amount: raising the ceiling re-arms it)."""
    if not cost_center_id:
        return
    table = ctx.entity("cost_center").table
    row = ctx.session.execute(sa.select(table).where(table.c.id == cost_center_id)).mappings().first()
    if row is None:
        return
    cost_center, sums = dict(row), totals(ctx, cost_center_id)
    warned = is_warned(cost_center, sums["spent"])
    ctx.set_derived("cost_center", cost_center_id, {**sums, "warned": warned})
    if warned and cost_center.get("owner_id"):
        line = warning_amount(cost_center)
        title = (f"成本中心 {cost_center['name']} 支出已达预警线：已支出 {yuan(sums['spent'])}，预警线 {yuan(line)}，"
                 f"上限 {yuan(cost_center['ceiling'])}")
        notifications.notify(ctx, cost_center["owner_id"], "cost_centers.warning", title,
                             f"cost_centers.warning:{cost_center_id}:{line}", entity="cost_center", record_id=cost_center_id)


def check_ceiling(ctx, cost_center_id, amount, document=None):
    """Refuse (Veto) when ``amount`` more spending would take the cost center over its ceiling.
    Locks the cost center first: whoever checks after us sees our approval."""
    cost_center = lock(ctx, cost_center_id)
    spent = totals(ctx, cost_center_id)["spent"]
    ceiling = money(cost_center.get("ceiling"))
    amount = money(amount)
    if spent + amount <= ceiling:
        return
    over = spent + amount - ceiling
    name = f"{cost_center['name']}（{cost_center.get('code') or '#' + str(cost_center_id)}）"
    if zh(ctx):
        message = (f"超过成本上限，不能审核通过：成本中心 {name} 成本上限 {yuan(ceiling)}，已支出 {yuan(spent)}，"
                   f"本单{' ' + document if document else ''} 金额 {yuan(amount)}，通过后将超出上限 {yuan(over)}。"
                   f"请先联系有“调整成本上限”权限的账号提高成本上限。")
    else:
        message = (f"Over the ceiling, cannot approve: cost center {name} has a ceiling of {yuan(ceiling)} and "
                   f"{yuan(spent)} spent; {document or 'this document'} adds {yuan(amount)}, {yuan(over)} over the ceiling. "
                   f"Ask a user allowed to raise the ceiling first.")
    raise Veto(message)


def counted(record):
    """The spending a company_transaction adds to its cost center now."""
    if record.get("status") != APPROVED or record.get("kind") == INCOME:
        return Decimal(0)
    return money(record.get("amount"))


def check_edit(ctx, old, changes):
    """An administrator editing an approved transaction may not take its cost center over the
    ceiling either."""
    new = {**old, **changes}
    if counted(new) == 0:
        return
    extra = counted(new) - (counted(old) if old.get("cost_center_id") == new.get("cost_center_id") else 0)
    if extra > 0:
        check_ceiling(ctx, new["cost_center_id"], extra, new.get("code"))


def check_ceiling_change(ctx, old_ceiling, new_ceiling):
    """Setting or raising a ceiling needs the special permission; lowering it does not."""
    if money(new_ceiling) > money(old_ceiling) and not ctx.access.has(RAISE_CEILING):
        raise Veto("没有“调整成本上限”权限，不能设定或提高成本上限" if zh(ctx)
                   else "you may not set or raise a cost center's ceiling (permission cost_centers.raise_ceiling)",
                   field="ceiling")


# --- cost centers of other records ---------------------------------------------------------------

def auto_for(runtime):
    """Entity names whose new records get a cost center (setting ``crm.cost_centers.auto_for``)."""
    value = runtime.settings.get(AUTO_FOR_SETTING, AUTO_FOR_DEFAULT)
    return set((value or "").replace(",", " ").split()) - {"cost_center", "company_transaction", "expense_advance",
                                                          "personal_settlement"}


def create_for(ctx, entity, record):
    """The cost center of a new sale, project or campaign: named after it, owned by its owner,
    with the default ceiling (setting ``crm.cost_centers.default_ceiling``, 0 = nothing can be
    approved until someone allowed raises it)."""
    system = ctx.as_system()
    title = ctx.title(entity, record)
    cost_center = system.create("cost_center", {
        "name": f"{entity.label_in(ctx.locale)} {title}"[:200],
        "owner_id": record.get(owner_field(entity)),
        "ceiling": str(money(ctx.runtime.settings.get(DEFAULT_CEILING_SETTING) or 0)),
        "source_entity": entity.name, "source_id": record["id"],
    })
    field = entity.fields.get("cost_center_id")
    if field is not None and field.type == "link" and field.entity == "cost_center":
        ctx.set_derived(entity.name, record["id"], {"cost_center_id": cost_center["id"]})
    return cost_center


def cost_centers_of(ctx, entity_name, record_id):
    """The cost centers created for a record (normally one)."""
    return ctx.list("cost_center", filters=[("source_entity", "eq", entity_name), ("source_id", "eq", str(record_id))],
                    sort="id").items


def in_use(ctx, cost_center_id):
    """Does any (not deleted) transaction or advance point at the cost center?"""
    for name in ("company_transaction", "expense_advance"):
        table = ctx.entity(name).table
        if ctx.session.execute(sa.select(table.c.id).where(table.c.cost_center_id == cost_center_id,
                                                           table.c.deleted_at.is_(None)).limit(1)).first():
            return True
    return False
