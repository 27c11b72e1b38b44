"""Leads and opportunities (线索, 商机).

线索转化: :func:`convert` turns a lead into a customer (or uses an existing one), a contact (when
the lead names a person) and an opportunity, all created through the caller's record service (so
their permissions, validation and every plugin's hooks apply), and marks the lead 已转化 with links
to what it became. A lead is converted once; "converted" cannot be set by hand or taken back.

商机: the probability (赢单概率) follows the stage unless given (crm.ini
``crm.sales.stage_probability``, e.g. ``initial:10 needs:30 proposal:50 negotiation:70 won:100
lost:0``, the default); entering 赢单 or 输单 stamps ``closed_on``, leaving them clears it.
"""
from decimal import Decimal

from crm.core.errors import Conflict, Forbidden
from crm.hooks import Veto

from .common import evaluate, reachable, say

STAGE_PROBABILITY = "initial:10 needs:30 proposal:50 negotiation:70 won:100 lost:0"
CLOSED_STAGES = ("won", "lost")


def stage_probability(runtime):
    pairs = (item.split(":", 1) for item in (runtime.settings.get("crm.sales.stage_probability") or STAGE_PROBABILITY).split())
    return {stage: Decimal(value) for stage, value in pairs}


def opportunity_changes(ctx, entity, values, old=None):
    """Probability from the stage, ``closed_on`` from entering or leaving won/lost."""
    stage = values.get("stage", (old or {}).get("stage"))
    if "stage" in values or old is None:
        given = values.get("probability") is not None if old is None else "probability" in values
        if not given:
            probability = stage_probability(ctx.runtime).get(stage)
            if probability is not None:
                values["probability"] = probability
        was_closed = (old or {}).get("stage") in CLOSED_STAGES
        if stage in CLOSED_STAGES and not was_closed:
            values["closed_on"] = ctx.today()
        elif stage not in CLOSED_STAGES and was_closed:
            values["closed_on"] = None
    if "probability" in values or "amount" in values:
        values["weighted_amount"] = evaluate(entity, "weighted_amount", {**(old or {}), **values}, ctx.today())


def check_lead(ctx, old, changes):
    """"Converted" comes only from the conversion, and stays."""
    if old.get("status") == "converted" and "status" in changes:
        raise Veto(say(ctx, "已转化的线索不能改变状态", "a converted lead keeps its status"), field="status")
    if changes.get("status") == "converted" and not old.get("converted_customer_id"):
        raise Veto(say(ctx, "请用“转化”操作转化线索", "use the conversion to convert a lead"), field="status")


def similar_customers(records, lead, limit=5):
    """Customers with the lead's company name: the conversion may use one instead of a new one."""
    return records.list("customer", filters=[("name", "eq", lead["company_name"])], limit=limit).items


def convert(records, lead_id, customer_id=None, with_opportunity=True, opportunity_name=None):
    """线索转化. Returns {"lead", "customer", "contact", "opportunity"} (contact and opportunity
    may be None). ``customer_id``: an existing customer to attach the lead to."""
    lead = records.get("lead", lead_id)
    if lead.get("status") in ("converted", "invalid"):
        message = say(records, "线索已转化", "the lead was converted already") if lead["status"] == "converted" \
            else say(records, "无效线索不能转化", "an invalid lead cannot be converted")
        raise Conflict(message, {"status": lead["status"]})
    if not reachable(records, "lead", lead["id"], "update"):
        raise Forbidden(say(records, "你不能修改这条线索", "you may not change this lead"))
    owner = lead.get("owner_id") or records.user_id
    with records.session.begin_nested():
        if customer_id:
            customer = records.get("customer", customer_id)
        else:
            customer = records.create("customer", {k: v for k, v in {
                "name": lead["company_name"], "phone": lead.get("phone") or lead.get("mobile"), "email": lead.get("email"),
                "address": lead.get("address"), "region": lead.get("region"), "industry": lead.get("industry"),
                "source": lead.get("source"), "owner_id": owner, "department_id": lead.get("department_id"),
                "remark": lead.get("requirement")}.items() if v is not None})
        contact = None
        if lead.get("contact_name"):
            contact = records.create("contact", {k: v for k, v in {
                "name": lead["contact_name"], "customer_id": customer["id"], "title": lead.get("job_title"),
                "mobile": lead.get("mobile"), "office_phone": lead.get("phone"), "email": lead.get("email"),
                "owner_id": owner}.items() if v is not None})
        opportunity = None
        if with_opportunity:
            opportunity = records.create("opportunity", {k: v for k, v in {
                "name": (opportunity_name or "").strip() or lead["company_name"], "customer_id": customer["id"],
                "contact_id": contact["id"] if contact else None, "source": lead.get("source"), "owner_id": owner,
                "department_id": lead.get("department_id"), "description": lead.get("requirement"),
                "amount": str(lead["estimated_amount"]) if lead.get("estimated_amount") is not None else None}.items() if v is not None})
            records.set_derived("opportunity", opportunity["id"], {"lead_id": lead["id"]})
            opportunity["lead_id"] = lead["id"]
        records.set_derived("lead", lead["id"], {"converted_customer_id": customer["id"], "converted_at": records.now(),
                                                 "converted_contact_id": contact["id"] if contact else None,
                                                 "converted_opportunity_id": opportunity["id"] if opportunity else None})
        lead = records.update("lead", lead["id"], {"status": "converted"})
    return {"lead": lead, "customer": customer, "contact": contact, "opportunity": opportunity}
