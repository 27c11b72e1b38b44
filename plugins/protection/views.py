"""Web pages of the pool, added through ``crm_web_config``; the actions on a customer's detail
page come from ``crm_record_actions`` (see ``__init__``). Views are thin: they call
:mod:`.service` through the request's record service and redirect with a message.

    GET  /app/protection/pool                          the pool, with 领用 and 批量随机领用
    POST /app/protection/pool/batch                    claim N at random
    POST /app/protection/customers/{id}/claim          领用
    GET|POST /app/protection/customers/{id}/{action}   give_up | take_back | assign | request (a reason form)
    POST /app/protection/requests/{id}/{decision}      approve | reject
"""
import sqlalchemy as sa
from pyramid.httpexceptions import HTTPFound, HTTPNotFound
from pyramid.renderers import render_to_response

from crm.core.errors import CrmError, Forbidden, NotFound
from crm.core.tables import users
from crm.core.web import security
from crm.core.web.pages.helpers import Display, flash
from crm.core.web.pages.session import safe_next

from . import service

TEMPLATES = "crm.plugins.protection:templates/"
FORM_ACTIONS = {
    "give_up": ("放弃客户", "Give up the customer", "放弃原因", "Why", True),
    "take_back": ("收回到公海", "Take back into the pool", "收回原因", "Why", False),
    "assign": ("指派客户", "Assign the customer", "说明", "Note", False),
    "request": ("申请领用", "Request the customer", "申请理由", "Why", False),
}


def includeme(config):
    config.add_route("protection.pool", "/app/protection/pool")
    config.add_route("protection.batch", "/app/protection/pool/batch")
    config.add_route("protection.claim", r"/app/protection/customers/{id:\d+}/claim")
    config.add_route("protection.action", r"/app/protection/customers/{id:\d+}/{action:give_up|take_back|assign|request}")
    config.add_route("protection.decide", r"/app/protection/requests/{id:\d+}/{decision:approve|reject}")
    config.add_view(pool_page, route_name="protection.pool", request_method="GET", permission=security.READ)
    config.add_view(batch, route_name="protection.batch", request_method="POST", permission=security.UPDATE)
    config.add_view(claim, route_name="protection.claim", request_method="POST", permission=security.UPDATE)
    config.add_view(action_form, route_name="protection.action", request_method="GET", permission=security.UPDATE)
    config.add_view(action_post, route_name="protection.action", request_method="POST", permission=security.UPDATE)
    config.add_view(decide, route_name="protection.decide", request_method="POST", permission=security.UPDATE)


def tr(request, zh, en):
    return zh if (request.locale_name or "zh_CN").startswith("zh") else en


def detail_url(request, customer_id):
    return request.route_path("page.detail", entity="customer", id=customer_id)


def _done(request, message, url):
    flash(request, message, "success")
    return HTTPFound(url)


def _failed(request, error, url):
    flash(request, error.message, "error")
    return HTTPFound(url)


def pool_page(request):
    records = request.records
    if not (records.access.has(service.POOL_VIEW) or service.is_manager(records)):
        raise Forbidden(tr(request, "查看公海需要“查看和领用公海”权限", "the pool needs the protection.pool_view permission"))
    conf = service.settings(records)
    q = request.GET.get("q", "").strip() or None
    try:
        page = service.pool(records, q=q, cursor=request.GET.get("cursor") or None)
    except CrmError as error:
        flash(request, error.message, "error")
        page = None
    entity = records.entity("customer")
    names = [n for n in ("code", "level", "industry", "region", "last_contact_at") if n in entity.fields]
    display = Display(request)
    items = page.items if page else []
    display.preload(entity, items)
    rows = [{"name": c["name"], "url": detail_url(request, c["id"]),
             "claim_url": request.route_path("protection.claim", id=c["id"]),
             "request_url": request.route_path("protection.action", id=c["id"], action="request"),
             "cells": [display.text(entity.fields[n], c.get(n)) for n in names]} for c in items]
    approval = conf["protection_claim_approval"] and service.pool_only(records)
    t = {"title": tr(request, "公海客户", "Customer pool"), "search": tr(request, "搜索", "Search"),
         "batch": tr(request, "随机领用数量", "Claim at random"), "batch_button": tr(request, "批量随机领用", "Claim a random batch"),
         "total": tr(request, "共", "Total"), "actions": tr(request, "操作", "Actions"), "claim": tr(request, "领用", "Claim"),
         "request": tr(request, "申请领用", "Request"), "empty": tr(request, "公海里没有客户。", "The pool is empty."),
         "more": tr(request, "下一页", "Next page")}
    next_url = None
    if page and page.next_cursor:
        next_url = request.route_path("protection.pool", _query={"cursor": page.next_cursor, **({"q": q} if q else {})})
    return render_to_response(TEMPLATES + "pool.pt", {
        "t": t, "q": q or "", "rows": rows, "total": page.total if page else None, "next_url": next_url,
        "columns": [entity.fields["name"].label_in(request.locale_name)] + [entity.fields[n].label_in(request.locale_name) for n in names],
        "may_claim": not approval, "may_request": approval, "batch_size": int(conf["protection_batch_size"])},
        request=request)


def batch(request):
    back = request.route_path("protection.pool")
    try:
        claimed = service.claim_random(request.records, request.POST.get("count", ""))
    except CrmError as error:
        return _failed(request, error, back)
    names = "、".join(c["name"] for c in claimed)
    return _done(request, tr(request, f"已领用 {len(claimed)} 个客户：{names}", f"{len(claimed)} customers claimed: {names}")
                 if claimed else tr(request, "公海里没有可领用的客户", "No customer left to claim"), back)


def claim(request):
    customer_id = int(request.matchdict["id"])
    back = safe_next(request.POST.get("next"), default=detail_url(request, customer_id))
    try:
        customer = service.claim(request.records, customer_id)
    except CrmError as error:
        return _failed(request, error, back)
    return _done(request, tr(request, f"已领用客户「{customer['name']}」", f"You claimed {customer['name']}"), detail_url(request, customer_id))


def action_form(request):
    customer_id, action = int(request.matchdict["id"]), request.matchdict["action"]
    try:
        customer = request.records.get("customer", customer_id)
    except NotFound:
        raise HTTPNotFound()
    zh, en, reason_zh, reason_en, required = FORM_ACTIONS[action]
    people = []
    if action == "assign":
        rows = request.records.session.execute(sa.select(users.c.id, users.c.display_name, users.c.username)
                                               .where(users.c.active).order_by(users.c.username))
        people = [(r.id, r.display_name or r.username) for r in rows]
    return render_to_response(TEMPLATES + "action.pt", {
        "title": f"{tr(request, zh, en)}：{customer['name']}", "customer_name": customer["name"], "back": detail_url(request, customer_id),
        "action": request.route_path("protection.action", id=customer_id, action=action), "users": people,
        "user_label": tr(request, "指派给", "Assign to"), "reason_label": tr(request, reason_zh, reason_en), "reason_required": required,
        "submit": tr(request, zh, en), "cancel": tr(request, "取消", "Cancel")}, request=request)


def action_post(request):
    customer_id, action = int(request.matchdict["id"]), request.matchdict["action"]
    records, reason = request.records, request.POST.get("reason", "").strip() or None
    again = request.route_path("protection.action", id=customer_id, action=action)
    try:
        if action == "give_up":
            service.give_up(records, customer_id, reason)
        elif action == "take_back":
            service.take_back(records, customer_id, reason)
        elif action == "assign":
            user_id = request.POST.get("user_id", "")
            if not user_id.isdigit():
                flash(request, tr(request, "请选择负责人", "Choose the new owner"), "error")
                return HTTPFound(again)
            service.assign(records, customer_id, int(user_id), reason)
        else:
            service.request_claim(records, customer_id, reason)
    except CrmError as error:
        return _failed(request, error, again)
    zh, en = FORM_ACTIONS[action][:2]
    done = tr(request, f"{zh}：已完成", f"{en}: done") if action != "request" else tr(request, "已提交申请，等待审批", "Request sent")
    target = detail_url(request, customer_id) if action in ("assign", "request") or service.is_manager(records) \
        else request.route_path("protection.pool")
    return _done(request, done, target)


def decide(request):
    request_id, decision = int(request.matchdict["id"]), request.matchdict["decision"]
    back = request.route_path("page.detail", entity=service.REQUEST, id=request_id)
    note = request.POST.get("note", "").strip() or None
    try:
        if decision == "approve":
            service.approve(request.records, request_id, note)
        else:
            service.reject(request.records, request_id, note)
    except CrmError as error:
        return _failed(request, error, back)
    return _done(request, tr(request, "已通过" if decision == "approve" else "已驳回", "Approved" if decision == "approve" else "Rejected"), back)
