"""Rules kept by the record hooks, the service actions and the daily follow-up reminders.

Service records (客服记录):
- the SN fills in the customer and product when they are empty; the service date defaults to today;
- 保修判断: whenever the SN or the service date changes, the SN's warranty end is copied onto the
  record and the warranty status at the service date recorded (the warranty end day itself is in
  warranty);
- 派工: giving the record a service employee copies the customer's address (and phone) when the
  record has none; the ``dispatch`` transition stamps the time and notifies the employee;
- on completion the follow-up visit (回访) is due ``sn_tracking_visit_days_<type>`` days later
  (system settings; ``sn_tracking_visit_days_default`` for other types); the ``visit`` transition
  records the day it happened.
Returns and exchanges mark the SN returned / exchanged; an exchange hands the replacement SN to the
customer with the original warranty end. Warranty extensions move the SN's warranty end forward.
"""
import datetime as dt

import sqlalchemy as sa

from crm.core import workflow
from crm.core.mailer import Mailer
from crm.core.notifications import email_pending, notify
from crm.core.errors import ValidationFailed
from crm.hooks import Veto

from . import serials

DEFAULT_VISIT_DAYS = {"onsite": 3, "factory_return": 7, "consultation": 1}
MESSAGES = {
    "extension_earlier": "新的质保截止日期必须晚于原截止日期 / the new warranty end must be after the current one",
    "extension_fixed": "延保已生效，不能修改；请另建一条 / an extension cannot be changed once made; add another one",
    "same_item": "换货SN不能是原SN / the replacement must be another serial number",
    "replacement_taken": "换货SN已属于其他客户 / the replacement serial number belongs to another customer",
}


def _row(ctx, entity_name, record_id):
    if not record_id:
        return None
    table = ctx.entity(entity_name).table
    row = ctx.session.execute(sa.select(table).where(table.c.id == record_id)).mappings().first()
    return dict(row) if row else None


def visit_days(ctx, request_type):
    """Days from completion to the follow-up visit for a request type (system settings)."""
    if "system_settings" in ctx.model and f"sn_tracking_visit_days_{request_type}" in ctx.entity("system_settings").fields:
        value = ctx.setting(f"sn_tracking_visit_days_{request_type}")
        if value is not None:
            return int(value)
    if request_type in DEFAULT_VISIT_DAYS:
        return DEFAULT_VISIT_DAYS[request_type]
    return int(ctx.setting("sn_tracking_visit_days_default", 3) or 0) if "system_settings" in ctx.model else 3


# --- serial numbers ------------------------------------------------------------------------------

def _serial(ctx, old, changes, merged):
    if "sn" in changes and changes["sn"]:
        serials.claim(ctx, changes["sn"], old.get("id"))
    if not merged.get("status"):
        changes["status"] = "sold" if merged.get("customer_id") else "in_stock"
    if not merged.get("warranty_end") and merged.get("purchase_date") and ("purchase_date" in changes or not old):
        months = ctx.setting("sn_tracking_warranty_months", 12) if "system_settings" in ctx.model else 12
        end = serials.default_warranty_end(merged["purchase_date"], months)
        if end:
            changes["warranty_end"] = end


# --- service records ------------------------------------------------------------------------------

def _service(ctx, old, changes, merged):
    if merged.get("serial_number_id") and ("serial_number_id" in changes):
        item = _row(ctx, "serial_number", merged["serial_number_id"])
        for field, source in (("customer_id", "customer_id"), ("product_id", "product_id")):
            if item and not merged.get(field) and item.get(source):
                changes[field] = merged[field] = item[source]
    if not old and not merged.get("service_date"):
        changes["service_date"] = merged["service_date"] = ctx.today()
    if not old or {"serial_number_id", "service_date"} & set(changes):
        item = _row(ctx, "serial_number", merged.get("serial_number_id"))
        end = item.get("warranty_end") if item else None
        changes["warranty_end"] = end
        changes["warranty_status"] = serials.warranty_status(end, merged.get("service_date")) if item else "unknown"
    if merged.get("customer_id") and (not merged.get("service_address") or not merged.get("contact_phone")) \
            and ({"assignee_id", "customer_id"} & set(changes) or changes.get("status") == "dispatched"):
        customer = _row(ctx, "customer", merged["customer_id"])
        contact = _row(ctx, "contact", merged.get("contact_id"))
        if customer and not merged.get("service_address") and merged.get("assignee_id"):
            changes["service_address"] = customer.get("address")
        if not merged.get("contact_phone"):
            phone = (contact or {}).get("mobile") or (contact or {}).get("office_phone") or (customer or {}).get("phone")
            if phone:
                changes["contact_phone"] = phone
    status = changes.get("status")
    if old and status == "dispatched":
        changes["dispatched_at"] = ctx.now()
    elif old and status == "completed":
        changes["completed_on"] = ctx.today()
        try:
            changes["visit_due_on"] = ctx.today() + dt.timedelta(days=visit_days(ctx, merged.get("request_type")))
        except OverflowError:
            changes["visit_due_on"] = None
    elif old and status == "visited":
        changes["visited_on"] = ctx.today()
    elif old and status == "in_progress" and old.get("status") in ("completed", "visited"):
        changes.update(completed_on=None, visit_due_on=None, visited_on=None)


def notify_dispatch(ctx, record):
    if record.get("assignee_id"):
        where = f"，地址：{record['service_address']}" if record.get("service_address") else ""
        notify(ctx, record["assignee_id"], "service_dispatch", f"派工：{record['code']} {record.get('subject') or ''}{where}",
               f"service_dispatch:{record['id']}:{record['assignee_id']}:{record['version']}", entity="service_record", record_id=record["id"])


def dispatch(records, service_id, assignee_id, comment=None):
    """派工: give the record to a service employee (the customer's address is copied when the record
    has none) and take the ``dispatch`` step. Returns the record."""
    records.update("service_record", service_id, {"assignee_id": assignee_id})
    return workflow.transition(records, "service_record", service_id, "dispatch", comment=comment)


def complete(records, service_id, repair_content=None, measures=None, fault_category=None, comment=None):
    """完成: record the repair content (and measures, fault category) and take the ``complete``
    step (``answer`` for a consultation still waiting for dispatch). Returns the record."""
    values = {k: v for k, v in (("repair_content", repair_content), ("measures", measures), ("fault_category", fault_category)) if v is not None}
    if values:
        records.update("service_record", service_id, values)
    record = records.get("service_record", service_id)
    step = "answer" if record.get("status") == "new" else "complete"
    return workflow.transition(records, "service_record", service_id, step, comment=comment)


def follow_up(records, service_id, result, satisfaction=None, comment=None):
    """回访: record the result (and satisfaction 1–5) and take the ``visit`` step."""
    values = {"visit_result": result}
    if satisfaction is not None:
        values["satisfaction"] = satisfaction
    records.update("service_record", service_id, values)
    return workflow.transition(records, "service_record", service_id, "visit", comment=comment)


def faq_from_service(records, service_id, question=None, answer=None, tags=None):
    """常见问题 → 知识库: a FAQ entry from a service record (question: the subject or the problem
    description; answer: the measures and the repair content), linked both ways. Returns it."""
    record = records.get("service_record", service_id)
    question = question or record.get("subject") or (record.get("description") or "")[:500]
    answer = answer or "\n".join(t for t in (record.get("measures"), record.get("repair_content")) if t)
    if not question or not answer:
        raise ValidationFailed("the service record has no question or answer to make a FAQ entry of",
                               {k: records.message("required") for k, v in (("question", question), ("answer", answer)) if not v})
    entry = records.create("faq_entry", {"question": question, "answer": answer, "product_id": record.get("product_id"),
                                         "fault_category": record.get("fault_category"), "tags": tags})
    records.set_derived("faq_entry", entry["id"], {"source_service_id": record["id"]})
    records.set_derived("service_record", record["id"], {"faq_id": entry["id"]})
    return records.get("faq_entry", entry["id"])


def search_faq(records, q, product_id=None, limit=20):
    """Published FAQ entries matching ``q`` (question, answer or tags), optionally for one product."""
    filters = [("published", "eq", True)]
    if product_id is not None:
        filters.append(("product_id", "eq", product_id))
    return records.list("faq_entry", filters=filters, q=q or None, limit=limit).items


# --- returns, exchanges, warranty extensions -----------------------------------------------------

def _return(ctx, old, changes, merged):
    item = _row(ctx, "serial_number", merged.get("serial_number_id"))
    if item and not merged.get("customer_id") and item.get("customer_id"):
        changes["customer_id"] = item["customer_id"]
    if merged.get("replacement_id") and merged["replacement_id"] == merged.get("serial_number_id"):
        raise Veto(MESSAGES["same_item"], field="replacement_id")
    replacement = _row(ctx, "serial_number", merged.get("replacement_id")) if merged.get("kind") == "exchange" else None
    if replacement and replacement.get("customer_id") and item and replacement["customer_id"] != item.get("customer_id"):
        raise Veto(MESSAGES["replacement_taken"], field="replacement_id")
    if not old or {"serial_number_id", "return_date"} & set(changes):
        changes["warranty_status"] = serials.warranty_status(item.get("warranty_end"), merged.get("return_date")) if item else "unknown"


def _after_return(ctx, record):
    system = ctx.as_system()
    system.update("serial_number", record["serial_number_id"], {"status": "returned" if record["kind"] == "return" else "exchanged"})
    if record["kind"] == "exchange" and record.get("replacement_id"):
        item = _row(ctx, "serial_number", record["serial_number_id"])
        replacement = _row(ctx, "serial_number", record["replacement_id"])
        values = {"status": "sold"}
        for field in ("customer_id", "salesperson_id", "order_ref", "contract_ref"):
            if not replacement.get(field) and item.get(field):
                values[field] = item[field]
        if not replacement.get("purchase_date"):
            values["purchase_date"] = record["return_date"]
        if item.get("warranty_end"):                     # the replacement carries the original warranty on
            values["warranty_end"] = max(item["warranty_end"], replacement.get("warranty_end") or item["warranty_end"])
        system.update("serial_number", replacement["id"], _json(values))


def _after_return_deleted(ctx, record):
    item = _row(ctx, "serial_number", record["serial_number_id"])
    if item and item.get("status") in ("returned", "exchanged"):
        ctx.as_system().update("serial_number", item["id"], {"status": "sold" if item.get("customer_id") else "in_stock"})


def _extension(ctx, old, changes, merged):
    if old:
        if {"serial_number_id", "new_warranty_end"} & set(changes):
            raise Veto(MESSAGES["extension_fixed"], field="new_warranty_end")
        return
    item = _row(ctx, "serial_number", merged.get("serial_number_id"))
    current = item.get("warranty_end") if item else None
    changes["old_warranty_end"] = current
    if not merged.get("extended_on"):
        changes["extended_on"] = ctx.today()
    if current and merged.get("new_warranty_end") and merged["new_warranty_end"] <= current:
        raise Veto(MESSAGES["extension_earlier"], field="new_warranty_end")


def _after_extension(ctx, record):
    ctx.as_system().update("serial_number", record["serial_number_id"], {"warranty_end": record["new_warranty_end"].isoformat()})


def _after_extension_deleted(ctx, record):
    item = _row(ctx, "serial_number", record["serial_number_id"])
    if item and item.get("warranty_end") == record.get("new_warranty_end"):
        old_end = record.get("old_warranty_end")
        ctx.as_system().update("serial_number", item["id"], {"warranty_end": old_end.isoformat() if old_end else None})


def _json(values):
    return {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in values.items()}


BEFORE = {"serial_number": _serial, "service_record": _service, "sn_return": _return, "warranty_extension": _extension}
AFTER_CREATE = {"sn_return": _after_return, "warranty_extension": _after_extension}
AFTER_DELETE = {"sn_return": _after_return_deleted, "warranty_extension": _after_extension_deleted}


# --- the daily job ---------------------------------------------------------------------------------

def reminders(ctx):
    """``sn_tracking.reminders``: follow-up visits (回访) due today or overdue → the service employee
    (else whoever registered the record), once per record and due date; then the e-mails."""
    today = ctx.today()
    table = ctx.entity("service_record").table
    rows = ctx.session.execute(sa.select(table.c.id, table.c.code, table.c.visit_due_on, table.c.assignee_id, table.c.created_by)
                               .where(table.c.deleted_at.is_(None), table.c.status == "completed", table.c.visit_due_on <= today))
    added = 0
    for row in rows:
        added += notify(ctx, row.assignee_id or row.created_by, "service_visit", f"回访到期：{row.code}（{row.visit_due_on}）",
                        f"service_visit:{row.id}:{row.visit_due_on}", entity="service_record", record_id=row.id, due_on=row.visit_due_on)
    return {"visits": added, "emails": email_pending(ctx, Mailer.from_settings(ctx.runtime.settings))}
