"""Receivables (应收款): payment plans (收款计划), payments (收款) and the daily reminders.

- A payment plan belongs to a contract or an order (an order's plan also names the order's
  contract); its ``received_amount``, ``outstanding`` and ``status`` are derived from the payments
  against it: 已收清 ``paid`` when nothing is outstanding, else 已逾期 ``overdue`` once the due date has
  passed, else 部分收款 ``partial`` or 未收款 ``unpaid``.
- A payment may name a plan, an order or a contract (what is missing is taken from the plan or
  the order) and its customer; contracts and orders keep their ``received_amount``.
- **No overpayment**: a payment may not take what is received on its plan, its order or its
  contract above what is due there (the plan's amount, the order's total, the contract's amount).
  The rows are locked first, so two payments racing for the last yuan cannot both pass. Plans
  likewise may not add up to more than their contract or order.
- The daily job ``sales.receivables`` marks plans overdue and tells their owners about plans due
  within N days (system setting 应收款提前提醒天数 ``receivable_remind_days``, default 3) and about
  overdue ones, once per plan and due date, then e-mails what is new when a mail server is set.
"""
import datetime as dt
from decimal import Decimal

import sqlalchemy as sa

from crm.core.mailer import Mailer
from crm.core.notifications import email_pending, notify
from crm.hooks import Veto

from .common import exists, row, say, total_of, yuan

OPEN = ("unpaid", "partial", "overdue")
#: what a payment (or a plan) is paid against → the column holding what is due there
DUE_COLUMNS = {"payment_plan": "amount", "sales_order": "total", "contract": "amount"}
LINK_FIELDS = {"payment_plan": "payment_plan_id", "sales_order": "sales_order_id", "contract": "contract_id"}


def plan_status(amount, received, due_on, today):
    if amount is not None and Decimal(received or 0) >= Decimal(amount):
        return "paid"
    if due_on is not None and due_on < today:
        return "overdue"
    return "partial" if received else "unpaid"


# --- filling in and checking ----------------------------------------------------------------------

def fill_from_links(ctx, values, merged):
    """A plan given → its order and contract; an order given → its contract."""
    plan = row(ctx, "payment_plan", merged.get("payment_plan_id")) if "payment_plan_id" in merged else None
    for field_name in ("sales_order_id", "contract_id"):
        if plan and plan.get(field_name) and not merged.get(field_name):
            values[field_name] = merged[field_name] = plan[field_name]
    order = row(ctx, "sales_order", merged.get("sales_order_id"))
    if order and order.get("contract_id") and not merged.get("contract_id"):
        values["contract_id"] = merged["contract_id"] = order["contract_id"]
    if plan:
        for field_name in ("sales_order_id", "contract_id"):
            if plan.get(field_name) and merged.get(field_name) != plan[field_name]:
                raise Veto(say(ctx, f"与收款计划 {plan['code']} 的合同/订单不一致", f"does not match the plan {plan['code']}"), field=field_name)
    if order and order.get("contract_id") and merged.get("contract_id") != order["contract_id"]:
        raise Veto(say(ctx, f"订单 {order['code']} 属于另一份合同", f"the order {order['code']} belongs to another contract"), field="contract_id")


def check_room(ctx, items, record, exclude_id=None):
    """``items`` (``payment`` or ``payment_plan``) may not add up to more than is due on what they
    are against; ``record`` is the new or changed item. Locks the rows it checks."""
    amount = Decimal(record.get("amount") or 0)
    for target, field_name in LINK_FIELDS.items():
        if target == items or not record.get(field_name):
            continue
        document = row(ctx, target, record[field_name], lock=True)
        if document is None:
            continue
        due = Decimal(document.get(DUE_COLUMNS[target]) or 0)
        used = total_of(ctx, items, "amount", exclude=exclude_id, **{field_name: document["id"]})
        if used + amount > due:
            what = ctx.entity(target).label_in(ctx.locale)
            room = max(due - used, Decimal(0))
            if items == "payment":
                message = say(ctx, f"收款超出应收：{what} {document['code']} 应收 {yuan(due)}，已收 {yuan(used)}，本次最多还能收 {yuan(room)}",
                              f"overpayment: {what} {document['code']} is due {yuan(due)}, {yuan(used)} received, at most {yuan(room)} more")
            else:
                message = say(ctx, f"收款计划合计超出{what} {document['code']} 的金额 {yuan(due)}（已计划 {yuan(used)}，还可计划 {yuan(room)}）",
                              f"the payment plans exceed the {what.lower()} {document['code']} amount {yuan(due)} ({yuan(used)} planned, {yuan(room)} left)")
            raise Veto(message, field="amount")


def check_payment(ctx, values, old=None):
    """Before a payment is saved (or restored): links filled in and consistent, no overpayment."""
    merged = {**(old or {}), **values}
    fill_from_links(ctx, values, merged)
    if not (merged.get("customer_id") or merged.get("payment_plan_id") or merged.get("sales_order_id") or merged.get("contract_id")):
        raise Veto(say(ctx, "请选择客户、收款计划、合同或订单", "choose a customer, a payment plan, a contract or an order"), field="customer_id")
    if old is None and not values.get("received_on"):
        values["received_on"] = ctx.today()
    check_room(ctx, "payment", {**merged, **values}, exclude_id=(old or {}).get("id"))


def check_plan(ctx, values, old=None):
    merged = {**(old or {}), **values}
    fill_from_links(ctx, values, merged)
    if not (merged.get("contract_id") or merged.get("sales_order_id")):
        raise Veto(say(ctx, "收款计划须对应合同或订单", "a payment plan belongs to a contract or an order"), field="contract_id")
    if old is not None and Decimal(merged.get("amount") or 0) < Decimal(old.get("received_amount") or 0):
        raise Veto(say(ctx, f"应收金额不能小于已收金额 {yuan(old['received_amount'])}",
                       f"the amount cannot be less than the {yuan(old['received_amount'])} received"), field="amount")
    if not merged.get("owner_id"):
        document = row(ctx, "sales_order", merged.get("sales_order_id")) or row(ctx, "contract", merged.get("contract_id"))
        if document and document.get("owner_id"):
            values["owner_id"] = document["owner_id"]
    check_room(ctx, "payment_plan", {**merged, **values}, exclude_id=(old or {}).get("id"))


def check_due_amount(ctx, name, record_id, due):
    """A contract's amount or an order's total may not fall below what is planned or received."""
    field_name = LINK_FIELDS[name]
    received = total_of(ctx, "payment", "amount", **{field_name: record_id})
    planned = total_of(ctx, "payment_plan", "amount", **{field_name: record_id})
    label = ctx.entity(name).fields[DUE_COLUMNS[name]].label_in(ctx.locale)
    if Decimal(due or 0) < max(received, planned):
        raise Veto(say(ctx, f"{label} {yuan(due)} 不能小于已计划的 {yuan(planned)} 或已收的 {yuan(received)}",
                       f"{label} {yuan(due)} is less than the {yuan(planned)} planned or the {yuan(received)} received"),
                   field=DUE_COLUMNS[name] if name == "contract" else "lines")


def check_dependents(ctx, name, record, consequence):
    """A contract, order or plan with payments (or plans, or orders) against it: refused with
    ``consequence`` (deleting it, or moving it to another customer, would strand them)."""
    field_name = LINK_FIELDS[name]
    dependents = [("payment", field_name)] + ([("payment_plan", field_name)] if name != "payment_plan" else [])
    if name == "contract":
        dependents.append(("sales_order", "contract_id"))
    for other, link in dependents:
        if exists(ctx, other, **{link: record["id"]}):
            what = ctx.entity(other).label_in(ctx.locale)
            raise Veto(say(ctx, f"{record.get('code') or ''} 已有{what}，{consequence}", f"{record.get('code') or ''} has {what.lower()}: {consequence}"))


# --- derived values -------------------------------------------------------------------------------

def refresh_plan(ctx, plan_id):
    plan = row(ctx, "payment_plan", plan_id, lock=True)
    if plan is None:
        return
    received = total_of(ctx, "payment", "amount", payment_plan_id=plan_id)
    values = {"received_amount": received, "outstanding": max(Decimal(plan["amount"] or 0) - received, Decimal(0)),
              "status": plan_status(plan["amount"], received, plan["due_on"], ctx.today())}
    ctx.set_derived("payment_plan", plan_id, values)
    return values


def refresh_received(ctx, name, record_id):
    """The received amount of a contract or an order."""
    if record_id:
        row(ctx, name, record_id, lock=True)
        ctx.set_derived(name, record_id, {"received_amount": total_of(ctx, "payment", "amount", **{LINK_FIELDS[name]: record_id})})


def refresh_after_payment(ctx, *payments):
    for payment in payments:
        if payment:
            refresh_plan(ctx, payment.get("payment_plan_id"))
            refresh_received(ctx, "contract", payment.get("contract_id"))
            refresh_received(ctx, "sales_order", payment.get("sales_order_id"))


# --- the daily job --------------------------------------------------------------------------------

def run(ctx):
    today = ctx.today()
    days = int(ctx.setting("receivable_remind_days", 3) or 3)
    plan, customer = ctx.entity("payment_plan").table, ctx.entity("customer").table
    late = [plan.c.deleted_at.is_(None), plan.c.status.in_(("unpaid", "partial")), plan.c.due_on < today]
    marked = ctx.session.execute(plan.update().where(*late).values(status="overdue")).rowcount
    columns = [plan.c.id, plan.c.code, plan.c.term, plan.c.due_on, plan.c.amount, plan.c.received_amount,
               sa.func.coalesce(plan.c.owner_id, customer.c.owner_id).label("owner_id"), customer.c.name.label("customer")]
    base = sa.select(*columns).select_from(plan.outerjoin(customer, customer.c.id == plan.c.customer_id)).where(plan.c.deleted_at.is_(None))
    due = ctx.session.execute(base.where(plan.c.status.in_(("unpaid", "partial")), plan.c.due_on >= today,
                                         plan.c.due_on <= today + dt.timedelta(days=days))).all()
    overdue = ctx.session.execute(base.where(plan.c.status == "overdue")).all()
    counts = {"marked_overdue": marked, "due": 0, "overdue": 0}
    for kind, rows in (("due", due), ("overdue", overdue)):
        for r in rows:
            outstanding = yuan(Decimal(r.amount or 0) - Decimal(r.received_amount or 0))
            what = f"{r.customer or ''} {r.term or r.code}".strip()
            title = (f"应收款提醒：{what} {outstanding} 将于 {r.due_on} 到期" if kind == "due"
                     else f"逾期未收款：{what} {outstanding} 已于 {r.due_on} 到期")
            counts[kind] += notify(ctx, r.owner_id, f"sales.receivable_{kind}", title, f"sales.receivable_{kind}:{r.id}:{r.due_on}",
                                   entity="payment_plan", record_id=r.id, due_on=r.due_on)
    counts["emails"] = email_pending(ctx, Mailer.from_settings(ctx.runtime.settings))
    return counts
