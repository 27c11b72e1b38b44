"""Look-up by SN (SN查询): everything that happened to one item, in date order.

Events, each ``{"date", "kind", "label", "entity", "record_id", "title", "details"}``:

| kind | date | from |
|---|---|---|
| ``production`` | production date | the SN |
| ``sale`` | purchase date | the SN (customer, salesperson, order, contract, warranty end) |
| ``replacement`` | exchange date | an exchange that handed this item out for another SN |
| ``service_request`` | service date | each service record (type, fault, problem, warranty status) |
| ``repair`` / ``answer`` | completion date | a completed service record (measures, repair content) |
| ``follow_up`` | visit date | a followed-up service record (result, satisfaction) |
| ``return`` / ``exchange`` | return date | returns and exchanges of this item |
| ``warranty_extension`` | extension date | warranty extensions (old and new end) |

Same-day events keep that order (the table's); events without a date come last. Everything is read
through the record service, so records the user may not see are left out, and an SN the user may
not see is "not found".
"""
import datetime as dt

from crm.core import dictionaries
from crm.core.errors import BadRequest, NotFound

ORDER = ["production", "sale", "replacement", "service_request", "repair", "answer", "follow_up", "return", "exchange",
         "warranty_extension"]
LABELS = {
    "production": ("生产", "Produced"), "sale": ("销售", "Sold"), "replacement": ("换货发出", "Sent as a replacement"),
    "service_request": ("服务请求", "Service request"), "repair": ("维修", "Repair"), "answer": ("答复", "Answered"),
    "follow_up": ("回访", "Follow-up visit"), "return": ("退货", "Returned"), "exchange": ("换货", "Exchanged"),
    "warranty_extension": ("延长质保", "Warranty extended"),
}


def find(records, sn):
    """The SN record for a scanned or typed SN: exact match first, then case-insensitive."""
    sn = (sn or "").strip()
    if not sn or len(sn) > 64:
        raise BadRequest("give a serial number", {"sn": records.message("required")})
    found = records.list("serial_number", filters=[("sn", "eq", sn)], limit=1).items
    if not found:
        found = [r for r in records.list("serial_number", filters=[("sn", "startswith", sn)], limit=50).items
                 if r["sn"].lower() == sn.lower()][:1]
    if not found:
        raise NotFound(f"no serial number {sn!r}")
    return found[0]


def lookup(records, sn, on=None):
    """The item with its whole history: ``{"serial_number", "product", "customer", "warranty":
    {"warranty_end", "status", "on"}, "events": [...]}``; ``on``: the day the warranty status is
    given for (default today)."""
    from .serials import warranty_status
    item = find(records, sn)
    on = on or records.today()
    events = []
    locale = records.locale

    def add(date, kind, entity, record_id, title, **details):
        zh, en = LABELS[kind]
        events.append({"date": date, "kind": kind, "label": zh if locale.startswith("zh") else en, "entity": entity,
                       "record_id": record_id, "title": title, "details": details})

    def title_of(entity_name, record_id):
        if not record_id:
            return None
        try:
            record = records.get(entity_name, record_id)
        except NotFound:
            return None
        return records.title(records.entity(entity_name), record)

    def labels(dictionary):
        return {i["value"]: _text(i["label"], locale) for i in dictionaries.items(records.session, dictionary, include_inactive=True)}

    request_types, faults, warranty = labels("service_request_type"), labels("fault_category"), labels("warranty_status")
    product, customer = title_of("product", item.get("product_id")), title_of("customer", item.get("customer_id"))
    if item.get("production_date"):
        add(item["production_date"], "production", "serial_number", item["id"], item["sn"], supplier=item.get("supplier"),
            batch=item.get("batch"))
    if item.get("purchase_date") or item.get("customer_id"):
        add(item.get("purchase_date"), "sale", "serial_number", item["id"], customer or item["sn"], customer_id=item.get("customer_id"),
            customer=customer, salesperson_id=item.get("salesperson_id"), order_ref=item.get("order_ref"),
            contract_ref=item.get("contract_ref"), warranty_end=item.get("warranty_end"))
    for swap in _all(records, "sn_return", [("replacement_id", "eq", item["id"])]):
        add(swap["return_date"], "replacement", "sn_return", swap["id"], swap["code"],
            replaces=title_of("serial_number", swap["serial_number_id"]), replaces_id=swap["serial_number_id"])
    for service in _all(records, "service_record", [("serial_number_id", "eq", item["id"])]):
        kind_label = request_types.get(service.get("request_type"), service.get("request_type"))
        add(service.get("service_date"), "service_request", "service_record", service["id"], f"{service['code']} {kind_label}",
            request_type=service.get("request_type"), request_type_label=kind_label, subject=service.get("subject"),
            description=service.get("description"), fault_category=service.get("fault_category"),
            fault_category_label=faults.get(service.get("fault_category")), status=service.get("status"),
            assignee_id=service.get("assignee_id"), warranty_status=service.get("warranty_status"),
            warranty_status_label=warranty.get(service.get("warranty_status")))
        if service.get("completed_on"):
            kind = "answer" if service.get("request_type") == "consultation" else "repair"
            add(service["completed_on"], kind, "service_record", service["id"], service["code"],
                fault_category=service.get("fault_category"), fault_category_label=faults.get(service.get("fault_category")),
                measures=service.get("measures"), repair_content=service.get("repair_content"), charge=service.get("charge"))
        if service.get("visited_on"):
            add(service["visited_on"], "follow_up", "service_record", service["id"], service["code"],
                result=service.get("visit_result"), satisfaction=service.get("satisfaction"))
    for back in _all(records, "sn_return", [("serial_number_id", "eq", item["id"])]):
        add(back["return_date"], back["kind"] if back["kind"] in ("return", "exchange") else "return", "sn_return", back["id"], back["code"],
            reason=back.get("reason"), replacement_id=back.get("replacement_id"),
            replacement=title_of("serial_number", back.get("replacement_id")), refund_amount=back.get("refund_amount"),
            warranty_status=back.get("warranty_status"))
    for extension in _all(records, "warranty_extension", [("serial_number_id", "eq", item["id"])]):
        add(extension.get("extended_on"), "warranty_extension", "warranty_extension", extension["id"], str(extension["new_warranty_end"]),
            old_warranty_end=extension.get("old_warranty_end"), new_warranty_end=extension.get("new_warranty_end"),
            reason=extension.get("reason"))
    events.sort(key=lambda e: (e["date"] is None, e["date"] or dt.date.max, ORDER.index(e["kind"]), e["record_id"]))
    status = warranty_status(item.get("warranty_end"), on)
    return {"serial_number": item, "product": product, "customer": customer,
            "warranty": {"warranty_end": item.get("warranty_end"), "on": on, "status": status, "label": warranty.get(status, status)},
            "events": events}


def _all(records, entity, filters):
    if not records.access.allowed(entity, "read"):
        return []
    found, cursor = [], None
    while True:
        page = records.list(entity, filters=filters, sort="id", limit=500, cursor=cursor)
        found += page.items
        cursor = page.next_cursor
        if not cursor:
            return found


def _text(label, locale):
    if isinstance(label, dict):
        return label.get(locale) or label.get(locale.split("_")[0]) or label.get("zh_CN") or next(iter(label.values()), "")
    return label
