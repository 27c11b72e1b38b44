"""Web pages of the points plugin, added through ``crm_web_config``: the forms behind the
积分消费 and 调整积分 actions on a customer's detail page (``crm_record_actions``). The ledger
itself shows on the customer as a related tab (its ``customer_id`` link).

    GET|POST /app/points/customers/{id}/redeem     积分消费
    GET|POST /app/points/customers/{id}/adjust     调整积分 (permission points.adjust)
"""
from pyramid.httpexceptions import HTTPFound, HTTPNotFound
from pyramid.renderers import render_to_response

from crm.core.errors import CrmError, NotFound
from crm.core.web import security
from crm.core.web.pages.helpers import Display, flash

from . import service

TEMPLATES = "crm.plugins.points:templates/"


def includeme(config):
    config.add_route("points.change", r"/app/points/customers/{id:\d+}/{kind:redeem|adjust}")
    config.add_view(form, route_name="points.change", request_method="GET", permission=security.UPDATE)
    config.add_view(post, route_name="points.change", request_method="POST", permission=security.UPDATE)


def tr(request, zh, en):
    return zh if (request.locale_name or "zh_CN").startswith("zh") else en


def form(request):
    customer_id, kind = int(request.matchdict["id"]), request.matchdict["kind"]
    try:
        customer = request.records.get("customer", customer_id)
    except NotFound:
        raise HTTPNotFound()
    types = []
    if kind == "redeem":
        display = Display(request)
        types = [(value, label) for value, label, _depth in display.choices("points_redemption")]
    title = tr(request, "积分消费", "Redeem points") if kind == "redeem" else tr(request, "调整积分", "Adjust points")
    return render_to_response(TEMPLATES + "form.pt", {
        "title": title, "customer_name": customer["name"], "balance": customer.get("points_balance") or 0,
        "balance_label": tr(request, "积分余额", "Balance"), "back": request.route_path("page.detail", entity="customer", id=customer_id),
        "action": request.route_path("points.change", id=customer_id, kind=kind), "types": types,
        "points_label": tr(request, "积分", "Points") + ("" if kind == "redeem" else tr(request, "（负数为扣减）", " (negative takes away)")),
        "type_label": tr(request, "消费方式", "Redeemed for"), "reason_label": tr(request, "原因/说明", "Reason"),
        "reason_required": kind == "adjust", "cancel": tr(request, "取消", "Cancel")}, request=request)


def post(request):
    customer_id, kind = int(request.matchdict["id"]), request.matchdict["kind"]
    again = request.route_path("points.change", id=customer_id, kind=kind)
    reason = request.POST.get("reason", "").strip() or None
    try:
        if kind == "redeem":
            entry = service.redeem(request.records, customer_id, request.POST.get("points", ""), request.POST.get("redemption_type"), reason)
        else:
            entry = service.adjust(request.records, customer_id, request.POST.get("points", ""), reason)
    except CrmError as error:
        flash(request, error.message, "error")
        return HTTPFound(again)
    flash(request, tr(request, f"积分已更新，余额 {entry['balance_after']}", f"Points updated; the balance is {entry['balance_after']}"), "success")
    return HTTPFound(request.route_path("page.detail", entity="customer", id=customer_id))
