"""What the sales plugin adds to the generated pages: the 销售管理 menu, the record actions of the
sales chain, and tabs for records linked by number (projects and serial numbers name contracts and
orders by their numbers, since those plugins work without sales too).

Most actions open the ordinary "new" form of the next document with its links filled in from the
URL (``/app/payment/new?payment_plan_id=…&amount=…``); those that copy lines are POST actions
handled in :mod:`.views`.
"""
from decimal import Decimal
from urllib.parse import urlencode

MENU = [{"id": "sales", "label": {"zh_CN": "销售管理", "en": "Sales"}, "order": 35}] + [
    {"id": f"sales.{name}", "entity": name, "label": label, "parent": "sales", "order": 36 + i}
    for i, (name, label) in enumerate([
        ("lead", {"zh_CN": "线索", "en": "Leads"}), ("opportunity", {"zh_CN": "商机", "en": "Opportunities"}),
        ("quote", {"zh_CN": "报价单", "en": "Quotes"}), ("contract", {"zh_CN": "合同", "en": "Contracts"}),
        ("sales_order", {"zh_CN": "销售订单", "en": "Sales orders"}), ("payment_plan", {"zh_CN": "收款计划", "en": "Payment plans"}),
        ("payment", {"zh_CN": "收款记录", "en": "Payments"})])
] + [
    {"id": "sales.pipeline", "label": {"zh_CN": "商机看板", "en": "Pipeline"}, "url": "/app/opportunity/kanban", "parent": "sales", "order": 44},
    {"id": "sales.receivables", "label": {"zh_CN": "应收款", "en": "Receivables"}, "parent": "sales", "order": 45,
     "url": "/app/payment_plan?status__in=unpaid,partial,overdue&sort=due_on"},
]


def _new(ctx, target, label, **values):
    """A link to the new-record form of ``target`` with ``values`` filled in, when the user may create."""
    if target not in ctx.model.entities or not ctx.access.allowed(target, "create"):
        return []
    query = urlencode({k: (format(v.normalize(), "f") if isinstance(v, Decimal) else v) for k, v in values.items() if v not in (None, "")})
    return [{"id": f"sales.new_{target}", "label": label, "url": f"/app/{target}/new?{query}", "method": "GET"}]


def _post(ctx, name, action_id, label, url):
    return [{"id": action_id, "label": label, "url": url, "method": "POST"}] if ctx.access.allowed(name, "create") else []


RECORD_PAYMENT = {"zh_CN": "登记收款", "en": "Record payment"}


def record_actions(ctx, entity, record):
    name, rid = entity.name, record["id"]
    if ctx.user is None:
        return []
    if name == "lead":
        if record.get("status") in ("converted", "invalid") or not ctx.access.allowed("customer", "create") \
                or not ctx.access.allowed("lead", "update"):
            return []
        return [{"id": "sales.convert", "label": {"zh_CN": "转化为客户", "en": "Convert"}, "url": f"/app/sales/leads/{rid}/convert",
                 "method": "GET"}]
    if name == "opportunity":
        links = dict(customer_id=record.get("customer_id"), contact_id=record.get("contact_id"), opportunity_id=rid)
        return (_new(ctx, "quote", {"zh_CN": "新建报价", "en": "New quote"}, subject=record.get("name"), **links)
                + _new(ctx, "contract", {"zh_CN": "新建合同", "en": "New contract"}, name=record.get("name"), amount=record.get("amount"), **links))
    if name == "quote":
        return (_post(ctx, "contract", "sales.quote_contract", {"zh_CN": "生成合同", "en": "Make a contract"}, f"/app/sales/quotes/{rid}/contract")
                + _post(ctx, "sales_order", "sales.quote_order", {"zh_CN": "生成订单", "en": "Make an order"}, f"/app/sales/quotes/{rid}/order"))
    if name == "contract":
        actions = []
        if record.get("status") in ("approved", "signed"):
            actions += _post(ctx, "sales_order", "sales.contract_order", {"zh_CN": "生成订单", "en": "Make an order"},
                             f"/app/sales/contracts/{rid}/order")
        actions += _new(ctx, "payment_plan", {"zh_CN": "新建收款计划", "en": "New payment plan"}, contract_id=rid, customer_id=record.get("customer_id"))
        actions += _new(ctx, "payment", RECORD_PAYMENT, contract_id=rid, customer_id=record.get("customer_id"))
        actions += _new(ctx, "project", {"zh_CN": "新建项目", "en": "New project"}, name=record.get("name"), customer_id=record.get("customer_id"),
                        contract_ref=record.get("code"))
        return actions
    if name == "sales_order":
        return _new(ctx, "payment", RECORD_PAYMENT, sales_order_id=rid, contract_id=record.get("contract_id"), customer_id=record.get("customer_id"))
    if name == "payment_plan" and record.get("status") != "paid":
        outstanding = Decimal(record.get("amount") or 0) - Decimal(record.get("received_amount") or 0)
        return _new(ctx, "payment", RECORD_PAYMENT, payment_plan_id=rid, contract_id=record.get("contract_id"),
                    sales_order_id=record.get("sales_order_id"), customer_id=record.get("customer_id"), amount=outstanding)
    return []


#: entity → [(other entity, its text field holding this entity's number, tab label)]
BY_NUMBER = {
    "contract": [("project", "contract_ref", {"zh_CN": "项目", "en": "Projects"}),
                 ("serial_number", "contract_ref", {"zh_CN": "SN号", "en": "Serial numbers"})],
    "sales_order": [("serial_number", "order_ref", {"zh_CN": "SN号", "en": "Serial numbers"})],
}


def related_tabs(ctx, entity, record):
    tabs = []
    for other, field, label in BY_NUMBER.get(entity.name, []):
        target = ctx.model.entities.get(other)
        if target is not None and field in target.fields and record.get("code"):
            tabs.append({"id": f"sales.{other}", "label": label, "entity": other, "filters": [[field, "eq", record["code"]]]})
    return tabs
