"""Sales (销售管理): 线索 → 商机 → 报价 → 合同 → 订单 → 收款, with 收款计划.

- 线索 ``lead``: converted into a customer, a contact and an opportunity by an action (:mod:`.leads`);
- 商机 ``opportunity``: stage (kanban), amount, probability following the stage, expected close date;
- 报价单 ``quote`` and 销售订单 ``sales_order``: product lines with totals computed (:mod:`.documents`);
- 合同 ``contract``: amount, signing date, period, approved through the workflow ``contract_approval``;
- 收款计划 ``payment_plan`` and 收款 ``payment``: received amounts and statuses kept, overpayment
  refused, the daily reminders ``sales.receivables`` (:mod:`.receivables`);
- the customer's 交易次数, 累计交易金额, 首次交易, 最近交易 recomputed from its deals (:mod:`.deals`);
- follow-ups get a link to an opportunity (``sales_opportunity_id``).

Works with the other plugins when they are enabled, through their own configuration: cost centers
for opportunities and contracts (``crm.cost_centers.auto_for``), points per yuan of payments or
orders (a points rule with the event ``record``), projects and serial numbers linked by the
contract's and order's numbers (tabs and actions here). See docs/plugin_sales.md.
"""
from pathlib import Path

from crm.hooks import Job, Veto, hookimpl

from . import deals, documents, leads, pages, receivables
from .common import CUSTOMER_LINKS, fill_owner, row, same_customer, say, total_of

label = {"zh_CN": "销售管理", "en": "Sales"}
requires = []

ENTITIES = ("lead", "opportunity", "quote", "contract", "sales_order", "payment_plan", "payment")
#: changes of a payment or a plan that are checked again against what is due
MONEY_FIELDS = {"amount", "customer_id", "payment_plan_id", "contract_id", "sales_order_id"}


@hookimpl
def crm_metadata():
    return [Path(__file__).parent / "metadata"]


@hookimpl
def crm_jobs():
    return [Job("sales.receivables", receivables.run, label={"zh_CN": "应收款提醒", "en": "Receivables reminders"})]


@hookimpl
def crm_menu_entries():
    return pages.MENU


@hookimpl
def crm_web_config(config):
    config.include("crm.plugins.sales.views")


@hookimpl
def crm_record_actions(ctx, entity, record):
    return pages.record_actions(ctx, entity, record)


@hookimpl
def crm_related_tabs(ctx, entity, record):
    return pages.related_tabs(ctx, entity, record)


# --- record hooks ---------------------------------------------------------------------------------

@hookimpl
def crm_before_create(ctx, entity, values):
    name = entity.name
    if name == "follow_up" and values.get("sales_opportunity_id"):
        _follow_up_opportunity(ctx, values)
    if name not in ENTITIES:
        return
    if name == "payment":
        receivables.check_payment(ctx, values)
    elif name == "payment_plan":          # owned by the contract's (order's) owner: they get the reminders
        receivables.check_plan(ctx, values)
    elif name == "lead":
        leads.check_lead(ctx, {}, values)
    fill_owner(ctx, entity, values)
    same_customer(ctx, entity, values, values)
    if name == "opportunity":
        leads.opportunity_changes(ctx, entity, values)
    _stamp_dates(ctx, name, values, {})


@hookimpl
def crm_before_update(ctx, entity, old, changes):
    name = entity.name
    if name == "follow_up" and {"customer_id", "sales_opportunity_id"} & set(changes):
        _follow_up_opportunity(ctx, {**old, **changes})
    if name not in ENTITIES:
        return
    if "customer_id" in changes and name in receivables.LINK_FIELDS:
        receivables.check_dependents(ctx, name, old, say(ctx, "不能更换客户", "its customer cannot change"))
    if name == "payment" and set(changes) & MONEY_FIELDS:
        receivables.check_payment(ctx, changes, old)
    elif name == "payment_plan" and set(changes) & MONEY_FIELDS:
        receivables.check_plan(ctx, changes, old)
    elif name == "lead":
        leads.check_lead(ctx, old, changes)
    elif name == "contract" and "amount" in changes:
        receivables.check_due_amount(ctx, "contract", old["id"], changes["amount"])
    if set(changes) & {"customer_id", *CUSTOMER_LINKS}:
        same_customer(ctx, entity, {**old, **changes}, changes)
    if name == "opportunity":
        leads.opportunity_changes(ctx, entity, changes, old)
    _stamp_dates(ctx, name, changes, old)


def _follow_up_opportunity(ctx, follow_up):
    opportunity = row(ctx, "opportunity", follow_up.get("sales_opportunity_id"))
    if opportunity and opportunity["customer_id"] != follow_up.get("customer_id"):
        raise Veto(say(ctx, "商机属于另一个客户", "the opportunity belongs to another customer"), field="sales_opportunity_id")


def _stamp_dates(ctx, name, values, old):
    """The dates a deal is counted on: a contract entering a deal state is signed today unless a
    date is given; quotes and orders are dated today unless given."""
    merged = {**old, **values}
    if name == "contract" and merged.get("status") in deals.states(ctx.runtime, "contract") and not merged.get("signed_on"):
        values["signed_on"] = ctx.today()
    elif name in ("quote", "sales_order") and not old:
        field = "quoted_on" if name == "quote" else "ordered_on"
        if not values.get(field):
            values[field] = ctx.today()


@hookimpl
def crm_after_create(ctx, entity, record):
    _saved(ctx, entity, None, record)


@hookimpl
def crm_after_update(ctx, entity, old, record, changes):
    _saved(ctx, entity, old, record)


def _saved(ctx, entity, old, record):
    name = entity.name
    if name in documents.WITH_LINES:
        total = documents.refresh_totals(ctx, entity, record)
        if name == "sales_order" and old is not None and total != old.get("total"):
            receivables.check_due_amount(ctx, "sales_order", record["id"], total)
    if name in deals.DEAL_ENTITIES:
        deals.refresh(ctx, record.get("customer_id"), (old or {}).get("customer_id"))
    elif name == "payment":
        receivables.refresh_after_payment(ctx, old, record)
    elif name == "payment_plan":
        record.update(receivables.refresh_plan(ctx, record["id"]) or {})


@hookimpl
def crm_before_delete(ctx, entity, record):
    if entity.name in receivables.LINK_FIELDS:
        receivables.check_dependents(ctx, entity.name, record, say(ctx, "不能删除", "it cannot be deleted"))


@hookimpl
def crm_after_delete(ctx, entity, record):
    _gone_or_back(ctx, entity, record)


@hookimpl
def crm_before_restore(ctx, entity, record):
    if entity.name == "payment":
        receivables.check_room(ctx, "payment", record)
    elif entity.name == "payment_plan":
        receivables.check_room(ctx, "payment_plan", record)


@hookimpl
def crm_after_restore(ctx, entity, record):
    _gone_or_back(ctx, entity, record)


def _gone_or_back(ctx, entity, record):
    if entity.name in deals.DEAL_ENTITIES:
        deals.refresh(ctx, record.get("customer_id"))
    elif entity.name == "payment":
        receivables.refresh_after_payment(ctx, record)


@hookimpl
def crm_after_merge(ctx, entity, survivor, duplicate):
    """The core moved every link of the duplicate to the survivor: recompute both."""
    if entity.name == "customer":
        deals.refresh(ctx, survivor["id"], duplicate["id"])
    elif entity.name in deals.DEAL_ENTITIES:
        if entity.name in documents.WITH_LINES:   # the duplicate's lines moved to the survivor
            documents.refresh_totals(ctx, entity, survivor)
        deals.refresh(ctx, survivor.get("customer_id"), duplicate.get("customer_id"))
        for record in (survivor, duplicate):
            receivables.refresh_received(ctx, entity.name, record["id"])
    elif entity.name == "quote":
        documents.refresh_totals(ctx, entity, survivor)
    elif entity.name == "payment_plan":
        for record in (survivor, duplicate):
            receivables.refresh_plan(ctx, record["id"])
        if total_of(ctx, "payment", "amount", payment_plan_id=survivor["id"]) > survivor["amount"]:
            raise Veto(say(ctx, "合并后收款超过应收金额", "after the merge the payments exceed the amount due"))
