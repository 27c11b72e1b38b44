"""Kanban (``/app/{entity}/kanban``) and calendar (``/app/{entity}/calendar``) views.

Kanban: for entities whose metadata names ``"kanban": {"field": ...}`` (a select field): one
column per dictionary item, cards moved by drag and drop (``ui/static/js/kanban.js`` posts to
``/app/{entity}/{id}/move`` with the card's version and the CSRF token) or, without a mouse, with
the "move to" control on each card. Moving is an ordinary update through the record service,
so validation, hooks, audit and version conflicts apply.

Calendar: for entities with a date or datetime field marked ``"calendar": true``; month, week
and day views of the records falling in the period. Both honour the list's filters and search.
"""
import calendar as pycalendar
import datetime as dt
import json
from urllib.parse import urlencode

import sqlalchemy as sa
from pyramid.httpexceptions import HTTPFound
from pyramid.view import view_config

from crm.core.errors import BadRequest, Conflict, NotFound, ValidationFailed, Vetoed
from crm.core.web import security
from crm.core.web.pages import widgets
from crm.core.web.pages.helpers import N_, Display, _, entity_label, flash, page_entity, render, shown_fields
from crm.core.web.pages.lists import ListState, list_columns
from crm.core.web.pages.session import safe_next

CARDS_PER_COLUMN = 50
CALENDAR_LIMIT = 500
VIEWS = ("month", "week", "day")
WEEKDAYS = (N_("Mon"), N_("Tue"), N_("Wed"), N_("Thu"), N_("Fri"), N_("Sat"), N_("Sun"))


def kanban_field(request, entity):
    spec = entity.spec.get("kanban")
    field = entity.fields.get(spec["field"]) if spec else None
    if field is None or field.type != "select" or field.name in request.records.access.hidden_fields(entity.name):
        raise NotFound(f"{entity.name} has no kanban view")
    return field


@view_config(route_name="page.kanban", request_method="GET", permission=security.READ)
def kanban(request):
    entity = page_entity(request)
    field = kanban_field(request, entity)
    records, display = request.records, Display(request)
    state = ListState(request, entity, display)
    filters = [f for f in state.filters if f[0] != field.name]
    counts = dict(records.group_counts(entity.name, field.name, filters=filters, q=state.q or None))
    columns = [(value, label) for value, label, _depth in display.choices(field.dictionary)]
    if counts.get(None):  # records without a value yet come first
        columns.insert(0, (None, _(request, "(empty)")))
    shown = [f for f in list_columns(records, entity) if f.name not in (field.name, entity.title_field)][:3]
    editable = field.name in widgets.form_fields(records, entity)[1] and records.access.allowed(entity.name, "update")
    board = []
    for value, label in columns:
        where = filters + [(field.name, "isnull", "true") if value is None else (field.name, "eq", value)]
        page = records.list(entity.name, filters=where, q=state.q or None, limit=CARDS_PER_COLUMN)
        display.preload(entity, page.items)
        cards = [{"id": r["id"], "version": r["version"], "title": records.title(entity, r),
                  "url": request.route_path("page.detail", entity=entity.name, id=r["id"]),
                  "move": request.route_path("page.move", entity=entity.name, id=r["id"]),
                  "lines": [(f.label_in(request.locale_name), display.text(f, r.get(f.name))) for f in shown if r.get(f.name) not in (None, "", [])]}
                 for r in page.items]
        board.append({"value": value, "label": label, "count": counts.get(value, 0), "cards": cards,
                      "more": page.next_cursor is not None})
    return render(request, "kanban.pt", {
        "entity": entity, "entity_label": entity_label(entity, request.locale_name, plural=True), "field": field,
        "field_label": field.label_in(request.locale_name), "board": board, "editable": editable, "state": state,
        "options": [(v, label) for v, label in columns if v is not None], "back": request.path_qs,
        "list_url": request.route_path("page.list", entity=entity.name),
    })


@view_config(route_name="page.move", request_method="POST", permission=security.UPDATE)
def move(request):
    """Set the kanban field of one record. JSON in (``{"value", "version"}``) → JSON out, or a
    plain form post → back to the board with a message."""
    entity = page_entity(request)
    field = kanban_field(request, entity)
    as_json = (request.content_type or "").startswith("application/json")
    if as_json:
        try:
            body = request.json_body
        except ValueError:
            raise BadRequest("malformed JSON body")
        body = body if isinstance(body, dict) else {}
    else:
        body = request.POST
    value, version = body.get("value") or None, body.get("version")
    if value is not None and not isinstance(value, str):
        raise BadRequest("value must be a text", {"value": "text"})
    try:
        version = int(version) if version not in (None, "") else None
    except (TypeError, ValueError):
        raise BadRequest("version must be a number", {"version": "number"})
    try:
        record = request.records.update(entity.name, request.matchdict["id"], {field.name: value}, version=version)
    except Conflict:
        message = _(request, "Someone else changed this record meanwhile; the board was reloaded.")
        return _answer(request, entity, as_json, 409, message, "error")
    except (ValidationFailed, Vetoed) as e:
        reasons = "; ".join(f"{entity.fields[k].label_in(request.locale_name) if k in entity.fields else k}: {v}" for k, v in e.fields.items()) or e.message
        message = _(request, "The card could not be moved: ${reason}", reason=reasons)
        return _answer(request, entity, as_json, 422, message, "error")
    message = _(request, "${title} moved to ${column}.", title=request.records.title(entity, record),
                column=Display(request).text(field, value) if value else _(request, "(empty)"))
    return _answer(request, entity, as_json, 200, message, "success", version=record["version"])


def _answer(request, entity, as_json, status, message, kind, **extra):
    if as_json:
        request.response.status_int = status
        request.response.content_type = "application/json"
        request.response.text = json.dumps({"ok": status == 200, "message": message, **extra}, ensure_ascii=False)
        return request.response
    flash(request, message, kind)
    return HTTPFound(safe_next(request.POST.get("back"), default=request.route_path("page.kanban", entity=entity.name)))


# --- calendar ------------------------------------------------------------------------------------

def calendar_fields(request, entity):
    return [f for f in shown_fields(request.records, entity) if f.calendar and f.type in ("date", "datetime")]


def period(view, anchor):
    """(first day, day after the last, previous anchor, next anchor) of the view around ``anchor``."""
    if view == "day":
        return anchor, anchor + dt.timedelta(days=1), anchor - dt.timedelta(days=1), anchor + dt.timedelta(days=1)
    if view == "week":
        start = anchor - dt.timedelta(days=anchor.weekday())
        return start, start + dt.timedelta(days=7), anchor - dt.timedelta(days=7), anchor + dt.timedelta(days=7)
    first = anchor.replace(day=1)
    last = first.replace(day=pycalendar.monthrange(first.year, first.month)[1])
    start = first - dt.timedelta(days=first.weekday())
    end = last + dt.timedelta(days=7 - last.weekday())
    previous = (first - dt.timedelta(days=1)).replace(day=1)
    following = last + dt.timedelta(days=1)
    return start, end, previous, following


def yearly_days(start, end):
    """{month * 100 + day: date} for the days from ``start`` up to ``end``: where a yearly date
    (a birthday) falls in the period. 29 February counts as 28 February outside leap years."""
    days, day = {}, start
    while day < end:
        days[day.month * 100 + day.day] = day
        if day.month == 2 and day.day == 28 and not pycalendar.isleap(day.year):
            days[229] = day
        day += dt.timedelta(days=1)
    return days


@view_config(route_name="page.calendar", request_method="GET", permission=security.READ)
def calendar(request):
    entity = page_entity(request)
    fields = calendar_fields(request, entity)
    if not fields:
        raise NotFound(f"{entity.name} has no calendar view")
    records, display = request.records, Display(request)
    field = next((f for f in fields if f.name == request.GET.get("field")), fields[0])
    view = request.GET.get("view") if request.GET.get("view") in VIEWS else "month"
    today = records.today()
    try:
        anchor = dt.date.fromisoformat(request.GET.get("date", "")) if request.GET.get("date") else today
    except ValueError:
        anchor = today
    start, end, previous, following = period(view, anchor)
    state = ListState(request, entity, display, ignore=("view", "date", "field"))
    filters = [f for f in state.filters if f[0] != field.name]
    if field.calendar == "yearly":
        days_of = yearly_days(start, end)
        column = entity.table.c[field.name]
        where = [(sa.extract("month", column) * 100 + sa.extract("day", column)).in_(days_of)]
    else:
        low, high = (start.isoformat(), end.isoformat()) if field.type == "date" else (start.isoformat() + "T00:00:00", end.isoformat() + "T00:00:00")
        filters += [(field.name, "gte", low), (field.name, "lt", high)]
        where = []
    page = records.list(entity.name, filters=filters, q=state.q or None, sort=field.name, limit=CALENDAR_LIMIT, where=where)
    events = {}
    for record in page.items:
        value = record.get(field.name)
        day = value.date() if isinstance(value, dt.datetime) else value
        if field.calendar == "yearly":
            day = days_of[day.month * 100 + day.day]
        events.setdefault(day, []).append({
            "title": records.title(entity, record), "url": request.route_path("page.detail", entity=entity.name, id=record["id"]),
            "time": value.strftime("%H:%M") if isinstance(value, dt.datetime) else ""})
    days = []
    day = start
    while day < end:
        days.append({"date": day, "label": day.day if view == "month" else day.strftime("%m-%d"), "today": day == today,
                     "outside": view == "month" and day.month != anchor.month, "events": events.get(day, []),
                     "weekday": day.weekday(), "iso": day.isoformat()})
        day += dt.timedelta(days=1)
    weeks = [days[i:i + 7] for i in range(0, len(days), 7)]
    base = request.route_path("page.calendar", entity=entity.name)

    def link(**changes):
        params = {"view": view, "date": anchor.isoformat(), "field": field.name, **changes}
        extra = [(k, v) for k, v in request.GET.items() if k not in ("view", "date", "field")]
        return base + "?" + urlencode(list(params.items()) + extra)

    weekdays = [_(request, n) for n in WEEKDAYS]
    if view == "month":
        heading = _(request, "${year}-${month}", year=anchor.year, month=f"{anchor.month:02d}")
    elif view == "week":
        heading = f"{start.isoformat()} – {(end - dt.timedelta(days=1)).isoformat()}"
    else:
        heading = f"{anchor.isoformat()} {weekdays[anchor.weekday()]}"
    return render(request, "calendar.pt", {
        "entity": entity, "entity_label": entity_label(entity, request.locale_name, plural=True), "view": view,
        "weeks": weeks, "days": days, "weekdays": weekdays, "heading": heading, "field": field,
        "fields": [(f.name, f.label_in(request.locale_name), f is field, link(field=f.name)) for f in fields],
        "views": [(v, label, v == view, link(view=v)) for v, label in
                  (("month", _(request, "Month")), ("week", _(request, "Week")), ("day", _(request, "Day")))],
        "previous_url": link(date=previous.isoformat()), "next_url": link(date=following.isoformat()),
        "today_url": link(date=today.isoformat()), "truncated": page.next_cursor is not None, "limit": CALENDAR_LIMIT,
        "list_url": request.route_path("page.list", entity=entity.name),
        "new_url": request.route_path("page.new", entity=entity.name) if records.access.allowed(entity.name, "create") else None,
    })
