"""The customer-care pages (客户关怀), added through ``crm_web_config`` and listed in the menu by
``crm_menu_entries``; each shows one of the views of :mod:`.views`, read through the record
service, so every user sees only the records their roles reach.

    GET /app/care/not-contacted   超过N天未联系客户 (N: ?days=, else the system setting, default 30)
    GET /app/care/plans           客户跟进计划提醒 (next contact dates overdue or within ?days=7)
    GET /app/care/birthdays       联系人关怀提醒 (birthdays within ?days=, else the system setting)
    GET /app/care/ranking         大客户排行 (by accumulated deal amount)
    GET /app/care/distribution    市场分布视图 (by region, rolled up to ?level=, and by industry;
                                  tables and bar charts rendered on the server)

And the record actions' pages:

    GET|POST /app/care/follow_up/{id}/comment   点评: the owner's manager comments on a follow-up
    POST     /app/care/contact/{id}/primary     设为主联系人
    GET|POST /app/care/contact/{id}/move        转移到其他客户
"""
from pyramid.httpexceptions import HTTPFound
from pyramid.renderers import render_to_response
from pyramid.view import view_config

from crm.core.errors import BadRequest, CrmError
from crm.core.registry import text_in
from crm.core.web import security
from crm.core.web.pages.helpers import N_, Display, _, flash

from . import views

TEMPLATES = "crm.plugins.customer_care:templates/"
PREFIX = "/app/care"
PAGES = [  # (route, path, menu label, the entity the page lists)
    ("care.not_contacted", "/not-contacted", {"zh_CN": "超过30天未联系客户", "en": "Not contacted for 30 days"}, "customer"),
    ("care.plans", "/plans", {"zh_CN": "客户跟进计划提醒", "en": "Follow-up plans due"}, "follow_up"),
    ("care.birthdays", "/birthdays", {"zh_CN": "联系人关怀提醒", "en": "Contact birthdays"}, "contact"),
    ("care.ranking", "/ranking", {"zh_CN": "大客户排行", "en": "Top customers"}, "customer"),
    ("care.distribution", "/distribution", {"zh_CN": "市场分布视图", "en": "Market distribution"}, "customer"),
]
LEVELS = ((1, N_("Areas")), (2, N_("Provinces")), (3, N_("Cities")), (9, N_("As entered")))
RANKING_SIZES = (20, 50, 100)
CROSS_ROWS = 12
CROSS_COLUMNS = 8


def includeme(config):
    for route, path, _label, _lists in PAGES:
        config.add_route(route, PREFIX + path)
    config.add_route("care.comment", PREFIX + r"/follow_up/{id:\d+}/comment")
    config.add_route("care.primary", PREFIX + r"/contact/{id:\d+}/primary")
    config.add_route("care.move", PREFIX + r"/contact/{id:\d+}/move")
    config.scan(__name__)


def menu_entries():
    """The group 客户关怀 with the pages, the 业务下滑日志 list (the entity's own list page: filters,
    sorting, export) and the 常用跟进内容 templates."""
    entries = [{"id": "customer_care", "label": {"zh_CN": "客户关怀", "en": "Customer care"}, "order": 25}]
    for i, (route, path, label, lists) in enumerate(PAGES):
        entries.append({"id": route, "label": label, "url": PREFIX + path, "entity": lists, "parent": "customer_care",
                        "order": 26 + i})
    entries.append({"id": "care.declines", "entity": "business_decline", "label": {"zh_CN": "业务下滑日志", "en": "Business decline log"},
                    "parent": "customer_care", "order": 28})
    entries.append({"id": "care.templates", "entity": "follow_up_template", "label": {"zh_CN": "常用跟进内容", "en": "Follow-up templates"},
                    "parent": "customer_care", "order": 39})
    return entries


def _render(request, template, values):
    return render_to_response(TEMPLATES + template, values, request=request)


def _int(request, name, default, low=0, high=3650):
    try:
        value = int(request.GET.get(name, default))
    except (TypeError, ValueError):
        raise BadRequest(f"{name} must be a whole number", {name: "not a number"})
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low} and {high}", {name: "out of range"})
    return value


def _title(route, request):
    return text_in(next(label for r, _p, label, _e in PAGES if r == route), request.locale_name)


class Table:
    """A page's table: headers and rows of cells [(text, url or None)]."""

    def __init__(self, request, entity_name, columns):
        self.request, self.records = request, request.records
        self.entity = self.records.entity(entity_name)
        self.display = Display(request)
        hidden = self.records.access.hidden_fields(entity_name)
        self.columns = [c for c in columns if c in self.entity.fields and c not in hidden]
        self.headers = [self.entity.fields[c].label_in(request.locale_name) for c in self.columns]
        self.rows = []

    def add(self, record, extra=()):
        self.display.preload(self.entity, [record])
        url = self.request.route_path("page.detail", entity=self.entity.name, id=record["id"])
        cells = [[(self.records.title(self.entity, record), url)]]
        cells += [self.display.parts(self.entity.fields[c], record.get(c)) for c in self.columns]
        cells += [[(str(e), None)] if not isinstance(e, list) else e for e in extra]
        self.rows.append(cells)


def table_page(request, route, table, extra_headers=(), note=None, controls=None):
    return _render(request, "care_table.pt", {
        "title": _title(route, request), "headers": [table.entity.label_in(request.locale_name)] + table.headers + list(extra_headers),
        "rows": table.rows, "note": note, "controls": controls, "action": request.route_path(route)})


@view_config(route_name="care.not_contacted", request_method="GET", permission=security.READ)
def not_contacted(request):
    records = request.records
    days = _int(request, "days", int(records.setting("no_contact_days", 30) or 30), low=1)
    table = Table(request, "customer", ["code", "level", "phone", "owner_id", "last_contact_at"])
    today = records.today()
    for customer in views.not_contacted(records, days=days, limit=200):
        since = (customer.get("last_contact_at") or customer.get("created_at"))
        new = request.route_path("page.new", entity="follow_up") + f"?customer_id={customer['id']}"
        table.add(customer, [_(request, "${n} days", n=(today - since.date()).days) if since else "",
                             [(_(request, "Record a follow-up"), new)]])
    return table_page(request, "care.not_contacted", table, [_(request, "Not contacted for"), ""],
                      note=_(request, "Customers not contacted for more than ${n} days (or never, and created before).", n=days),
                      controls={"name": "days", "label": _(request, "Days"), "value": days})


@view_config(route_name="care.plans", request_method="GET", permission=security.READ)
def plans(request):
    records = request.records
    days = _int(request, "days", 7)
    table = Table(request, "follow_up", ["customer_id", "contact_id", "next_contact_on", "owner_id"])
    today = records.today()
    for plan in views.follow_up_plans(records, days_ahead=days, limit=200):
        due = plan["next_contact_on"]
        state = _(request, "overdue by ${n} days", n=(today - due).days) if due < today else \
            _(request, "today") if due == today else _(request, "in ${n} days", n=(due - today).days)
        table.add(plan, [state])
    return table_page(request, "care.plans", table, [_(request, "Due")],
                      note=_(request, "Planned next contacts that are overdue or due within ${n} days, and not yet followed up.", n=days),
                      controls={"name": "days", "label": _(request, "Days ahead"), "value": days})


@view_config(route_name="care.birthdays", request_method="GET", permission=security.READ)
def birthdays(request):
    records = request.records
    days = _int(request, "days", int(records.setting("birthday_remind_days", 7) or 7), high=366)
    table = Table(request, "contact", ["customer_id", "title", "mobile", "birthday", "owner_id"])
    today = records.today()
    for contact in views.birthdays(records, days=days):
        when = contact["next_birthday"]
        table.add(contact, [_(request, "today") if when == today else f"{when.isoformat()}（{_(request, 'in ${n} days', n=(when - today).days)}）"])
    return table_page(request, "care.birthdays", table, [_(request, "Next birthday")],
                      note=_(request, "Contacts whose birthday is within the next ${n} days.", n=days),
                      controls={"name": "days", "label": _(request, "Days ahead"), "value": days})


@view_config(route_name="care.ranking", request_method="GET", permission=security.READ)
def ranking(request):
    size = _int(request, "limit", RANKING_SIZES[0], low=1, high=max(RANKING_SIZES))
    table = Table(request, "customer", ["deal_amount", "deal_count", "last_deal_on", "level", "owner_id"])
    for place, customer in enumerate(views.ranking(request.records, limit=size), start=1):
        table.add(customer, [place])
    return table_page(request, "care.ranking", table, [_(request, "Place")],
                      note=_(request, "Customers by accumulated deal amount."),
                      controls={"name": "limit", "label": _(request, "How many"), "value": size})


@view_config(route_name="care.distribution", request_method="GET", permission=security.READ)
def distribution(request):
    """By region (rolled up to the chosen level of the region tree), by industry, and the two
    crossed for the largest regions; every count through ``group_counts`` (scoped)."""
    records, display = request.records, Display(request)
    level = _int(request, "level", 2, low=1, high=9)
    customer = records.entity("customer")
    region_field, industry_field = customer.fields["region"], customer.fields["industry"]
    by_region = views.rolled_up(records, region_field.dictionary, views.distribution(records, "region"), level)
    by_industry = [(value, count) for value, _label, count in views.distribution(records, "industry")]

    def bars(rows, field):
        total = sum(c for _v, c in rows) or 1
        top = max([c for _v, c in rows] + [1])
        return [{"value": v, "label": display.text(field, v) if v is not None else _(request, "(empty)"), "count": c,
                 "share": f"{100 * c / total:.1f}%", "width": f"{100 * c / top:.1f}%",
                 "url": request.route_path("page.list", entity="customer") + (f"?{field.name}={v}" if v is not None else
                                                                                f"?{field.name}__isnull=true")}
                for v, c in rows]

    regions, industries = bars(by_region, region_field), bars(by_industry, industry_field)
    columns = [i for i in industries if i["value"] is not None][:CROSS_COLUMNS]
    cross = []
    for region in [r for r in regions if r["value"] is not None][:CROSS_ROWS]:
        within = display.descendants(region_field.dictionary, [region["value"]])
        counts = dict((v, c) for v, _l, c in views.distribution(records, "industry", filters=[("region", "in", ",".join(within))]))
        cross.append({"label": region["label"], "cells": [counts.get(c["value"], 0) for c in columns], "total": region["count"]})
    return _render(request, "care_distribution.pt", {
        "title": _title("care.distribution", request), "regions": regions, "industries": industries,
        "cross": cross, "cross_columns": [c["label"] for c in columns], "total": sum(c for _v, c in by_region),
        "levels": [(n, _(request, label), n == level) for n, label in LEVELS], "level": level,
        "region_label": region_field.label_in(request.locale_name), "industry_label": industry_field.label_in(request.locale_name),
        "action": request.route_path("care.distribution")})


# --- 点评 ----------------------------------------------------------------------------------------

def comment_action(ctx, record):
    """The follow-up's "点评" button, for whoever may comment on it (the owner's manager)."""
    from . import may_comment
    if ctx.user is None or not may_comment(ctx, record.get("owner_id")) or ctx.user_id == record.get("owner_id"):
        return []
    return [{"id": "customer_care.comment", "label": {"zh_CN": "点评", "en": "Comment"}, "method": "GET",
             "url": f"{PREFIX}/follow_up/{record['id']}/comment"}]


@view_config(route_name="care.comment", permission=security.UPDATE)
def comment(request):
    records = request.records
    follow_up = records.get("follow_up", request.matchdict["id"])
    back = request.route_path("page.detail", entity="follow_up", id=follow_up["id"])
    error = None
    if request.method == "POST":
        text = request.POST.get("manager_comment", "").strip()
        if not text:
            error = _(request, "Write the comment first.")
        else:
            try:
                records.update("follow_up", follow_up["id"], {"manager_comment": text}, version=request.POST.get("version") or None)
            except CrmError as e:   # not the owner's manager (veto), changed meanwhile (conflict) ...
                error = e.fields.get("manager_comment") or e.message
            else:
                flash(request, _(request, "The comment was saved."), "success")
                return HTTPFound(back)
    display = Display(request)
    entity = records.entity("follow_up")
    shown = [(entity.fields[n].label_in(request.locale_name), display.text(entity.fields[n], follow_up.get(n)))
             for n in ("customer_id", "occurred_at", "type", "owner_id", "content") if n in follow_up]
    return _render(request, "care_comment.pt", {
        "title": records.title(entity, follow_up), "follow_up": follow_up, "shown": shown, "back": back, "error": error,
        "value": request.POST.get("manager_comment", follow_up.get("manager_comment") or ""),
        "action": request.route_path("care.comment", id=follow_up["id"])})


# --- contacts: primary contact, move to another customer -------------------------------------------

def contact_actions(ctx, record):
    """设为主联系人 (when it is not) and 转移到其他客户, for whoever may change the contact."""
    if ctx.user is None or not ctx.access.allowed("contact", "update"):
        return []
    actions = []
    if not record.get("is_primary") and record.get("customer_id"):
        actions.append({"id": "customer_care.primary", "label": {"zh_CN": "设为主联系人", "en": "Make primary contact"},
                        "method": "POST", "url": f"{PREFIX}/contact/{record['id']}/primary"})
    actions.append({"id": "customer_care.move", "label": {"zh_CN": "转移到其他客户", "en": "Move to another customer"},
                    "method": "GET", "url": f"{PREFIX}/contact/{record['id']}/move"})
    return actions


@view_config(route_name="care.primary", request_method="POST", permission=security.UPDATE)
def make_primary(request):
    """The contact becomes its customer's primary contact; the previous one stops being it."""
    records = request.records
    contact = records.get("contact", request.matchdict["id"])
    try:
        records.update("contact", contact["id"], {"is_primary": True})
    except CrmError as e:
        flash(request, e.message, "error")
    else:
        flash(request, _(request, "${name} is now the primary contact.", name=contact["name"]), "success")
    return HTTPFound(request.route_path("page.detail", entity="contact", id=contact["id"]))


@view_config(route_name="care.move", permission=security.UPDATE)
def move(request):
    """Pick the customer the contact moves to (link picker), then move it: the contact keeps its
    follow-ups; it is the new customer's primary contact only when that customer had none."""
    records = request.records
    contact = records.get("contact", request.matchdict["id"])
    back = request.route_path("page.detail", entity="contact", id=contact["id"])
    error = None
    if request.method == "POST":
        target = request.POST.get("customer_id", "")
        if not target.isdigit():
            error = _(request, "Choose the customer first.")
        elif int(target) == contact.get("customer_id"):
            error = _(request, "The contact belongs to this customer already.")
        else:
            try:
                records.update("contact", contact["id"], {"customer_id": int(target)}, version=request.POST.get("version") or None)
            except CrmError as e:
                error = e.fields.get("customer_id") or e.message
            else:
                flash(request, _(request, "The contact was moved."), "success")
                return HTTPFound(back)
    display = Display(request)
    customer_field = records.entity("contact").fields["customer_id"]
    return _render(request, "care_move.pt", {
        "title": contact["name"], "contact": contact, "back": back, "error": error,
        "current": display.text(customer_field, contact.get("customer_id")),
        "lookup": request.route_path("page.lookup", entity="customer"),
        "action": request.route_path("care.move", id=contact["id"])})
