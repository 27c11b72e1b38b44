"""Web pages of the sales plugin (``crm_web_config``), behind the record actions of :mod:`.pages`.
Each calls the plugin's service functions with the request's record service and goes back to a
detail page; a refusal comes back as a message.

    GET|POST /app/sales/leads/{id}/convert        线索转化 (form: new or existing customer, opportunity)
    POST     /app/sales/quotes/{id}/contract      报价 → 合同
    POST     /app/sales/quotes/{id}/order         报价 → 订单
    POST     /app/sales/contracts/{id}/order      合同 → 订单
"""
from pyramid.httpexceptions import HTTPFound
from pyramid.renderers import render_to_response

from crm.core.errors import CrmError, NotFound
from crm.core.registry import text_in
from crm.core.web import security
from crm.core.web.pages.helpers import flash

from . import documents, leads

TEMPLATES = "crm.plugins.sales:templates/"
TEXTS = {
    "title": {"zh_CN": "线索转化", "en": "Convert the lead"},
    "intro": {"zh_CN": "转化后生成客户、联系人和商机，线索标记为“已转化”。",
              "en": "Converting makes a customer, a contact and an opportunity; the lead is marked converted."},
    "customer": {"zh_CN": "客户", "en": "Customer"},
    "new_customer": {"zh_CN": "新建客户：", "en": "New customer: "},
    "existing": {"zh_CN": "使用已有客户：", "en": "Use the existing customer: "},
    "contact": {"zh_CN": "联系人：", "en": "Contact: "},
    "no_contact": {"zh_CN": "线索没有联系人，不建联系人", "en": "The lead names no person: no contact is made"},
    "with_opportunity": {"zh_CN": "同时新建商机", "en": "Also create an opportunity"},
    "opportunity_name": {"zh_CN": "商机名称", "en": "Opportunity name"},
    "convert": {"zh_CN": "转化", "en": "Convert"},
    "cancel": {"zh_CN": "取消", "en": "Cancel"},
    "done": {"zh_CN": "线索已转化为客户 {name}", "en": "The lead was converted into the customer {name}"},
    "made": {"zh_CN": "已生成 {what} {title}", "en": "{what} {title} was made"},
}


def includeme(config):
    config.add_route("sales.convert", r"/app/sales/leads/{id:\d+}/convert")
    config.add_view(convert_form, route_name="sales.convert", request_method="GET", permission=security.UPDATE)
    config.add_view(convert, route_name="sales.convert", request_method="POST", permission=security.UPDATE)
    config.add_route("sales.make", r"/app/sales/{source:quotes|contracts}/{id:\d+}/{target:contract|order}")
    config.add_view(make, route_name="sales.make", request_method="POST", permission=security.CREATE)


def t(request, key, **values):
    return text_in(TEXTS[key], request.locale_name or "zh_CN").format(**values)


def convert_form(request, problem=None):
    records, lead_id = request.records, int(request.matchdict["id"])
    lead = records.get("lead", lead_id)
    texts = {key: t(request, key) for key in TEXTS if key not in ("done", "made")}
    return render_to_response(TEMPLATES + "convert.pt", {
        "t": texts, "lead": lead, "similar": leads.similar_customers(records, lead), "problem": problem,
        "action": request.route_path("sales.convert", id=lead_id), "back": f"/app/lead/{lead_id}"}, request=request)


def convert(request):
    records, lead_id = request.records, int(request.matchdict["id"])
    post = request.POST
    customer_id = post.get("customer_id") if post.get("customer_id", "new") != "new" else None
    savepoint = request.dbsession.begin_nested()
    try:
        done = leads.convert(records, lead_id, customer_id=customer_id, with_opportunity=bool(post.get("with_opportunity")),
                             opportunity_name=post.get("opportunity_name"))
    except NotFound:
        raise
    except CrmError as error:
        savepoint.rollback()
        messages = "; ".join(str(m) for m in (error.fields or {}).values() if m and str(m) != error.message)
        return convert_form(request, problem=error.message + (f" ({messages})" if messages else ""))
    savepoint.commit()
    flash(request, t(request, "done", name=done["customer"]["name"]), "success")
    target = ("opportunity", done["opportunity"]["id"]) if done["opportunity"] else ("customer", done["customer"]["id"])
    return HTTPFound(f"/app/{target[0]}/{target[1]}")


def make(request):
    records, source_id = request.records, int(request.matchdict["id"])
    source = {"quotes": "quote", "contracts": "contract"}[request.matchdict["source"]]
    target = {"contract": "contract", "order": "sales_order"}[request.matchdict["target"]]
    if source == "contract" and target == "contract":
        return HTTPFound(f"/app/contract/{source_id}")
    savepoint = request.dbsession.begin_nested()
    try:
        if target == "contract":
            made = documents.contract_from_quote(records, source_id)
        else:
            made = documents.order_from(records, source, source_id)
    except NotFound:
        raise
    except CrmError as error:
        savepoint.rollback()
        flash(request, error.message, "error")
        return HTTPFound(f"/app/{source}/{source_id}")
    savepoint.commit()
    entity = records.entity(target)
    flash(request, t(request, "made", what=entity.label_in(request.locale_name), title=records.title(entity, made)), "success")
    return HTTPFound(f"/app/{target}/{made['id']}")
