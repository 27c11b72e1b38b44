"""List pages ``/app/{entity}``: the metadata's list columns, column sorting, quick search,
a filter panel generated from the filterable fields, keyset paging with a capped count, row
selection with bulk actions, export, group-by counts and saved views. Also the small JSON
endpoints: ``count`` (the count a list page gave up waiting for), and for the forms ``lookup``
(link pickers) and ``similar`` (duplicate-name hint).

The query string is the list's whole state, in the API's filter language (``field``,
``field__op``), plus ``q``, ``sort``, ``limit``, ``columns``, ``group`` and the paging keys
``cursor`` (the page's keyset cursor) and ``stack`` (the cursors of the pages before it, so
that "previous" needs no offset). Bookmarks, saved views and the export all reuse it.
"""
import datetime as dt
import re
import tempfile
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode

from pyramid.httpexceptions import HTTPFound
from pyramid.response import Response
from pyramid.view import view_config

from crm.core import directory, exporter, expressions, query, saved_views
from crm.core.access import owner_field
from crm.core.errors import BadRequest, Forbidden, NotFound, ValidationFailed, Vetoed
from crm.core.web import security
from crm.core.web.pages import markup, widgets
from crm.core.registry import text_in
from crm.core.web.pages.helpers import Display, _, entity_label, flash, page_entity, render, shown_fields

PAGING = ("cursor", "stack")
# A list page waits this long for its count when the count has to read the table (a quick search,
# a filter without an index): past it the page shows "50+" at once and asks for the count with
# ``page.count`` afterwards, which may take COUNT_LATER_SECONDS. Searching a million customers
# by name, the page no longer waits for the 0.2 s after which it used to give the count up.
PAGE_COUNT_SECONDS = 0.03
COUNT_LATER_SECONDS = 2.0
STATE = ("q", "sort", "limit", "columns", "group", "view") + PAGING
PAGE_SIZES = (20, 50, 100)
DEFAULT_LIMIT = 50
STACK_DEPTH = 10
FIRST_PAGE = "0"  # stands for "no cursor" in the stack
NOT_FILTERABLE = {"table", "json", "links", "mnemonic", "textarea", "richtext", "file", "image", "computed"}
TEXT_FILTER = {"text", "email", "phone", "url", "autonumber"}
RANGE_FILTER = {"integer", "decimal", "money", "percent", "date", "datetime", "rating"}
GROUPABLE = {"select", "region", "boolean", "rating", "user", "department"}
BULK_TYPES = {"text", "email", "phone", "url", "integer", "decimal", "money", "percent", "date", "select", "region",
              "boolean", "user", "department", "rating"}
SIMILAR_SUFFIXES = ("股份有限公司", "有限责任公司", "有限公司", "分公司", "集团", "公司")


def list_columns(records, entity, names=None):
    """The columns to show: ``names`` (from the URL or a saved view), else the metadata's
    ``list_columns``, else the first fields; never a field hidden from the user."""
    fields = {f.name: f for f in shown_fields(records, entity) if f.type not in ("table", "json")}
    chosen = [n for n in (names or entity.spec.get("list_columns") or []) if n in fields]
    if not chosen:
        chosen = list(fields)[:6]
    return [fields[n] for n in chosen]


def sortable(entity, field):
    return field.stored and field.type not in query.UNSORTABLE and field.spec.get("sortable", True) is not False


def filter_fields(records, entity):
    """Fields marked ``filterable``, or indexed (so the filter is cheap), that the user may see."""
    indexed = {name for index in entity.spec.get("indexes") or [] for name in index.get("fields", [])}
    out = []
    for field in shown_fields(records, entity):
        if field.filterable is False or (field.type in NOT_FILTERABLE and not field.filterable):
            continue
        if field.filterable or field.index or field.unique or field.name in indexed or field.type in ("link", "user", "department", "autonumber"):
            out.append(field)
    return out


class ListState:
    """The list's state read from the query string."""

    def __init__(self, request, entity, display, ignore=()):
        """``ignore``: query keys that belong to the page, not to the list (calendar: view, date)."""
        self.request, self.entity, self.display = request, entity, display
        params = request.GET
        self.params = params
        self.q = params.get("q", "").strip()
        self.sort = params.get("sort", "").strip() or None
        try:
            self.limit = int(params.get("limit", DEFAULT_LIMIT))
        except ValueError:
            self.limit = DEFAULT_LIMIT
        self.limit = self.limit if self.limit in PAGE_SIZES else DEFAULT_LIMIT
        self.cursor = params.get("cursor") or None
        self.stack = [c for c in params.get("stack", "").split(".") if c][-STACK_DEPTH:]
        self.column_names = [c for v in params.getall("columns") for c in v.split(",") if c]
        self.group = params.get("group") or None
        self.view = params.get("view") or None
        self.raw = []       # (key, value) filter pairs as given, for links and the panel
        self.filters = []   # (field, op, value) for the record service
        for key in dict.fromkeys(params.keys()):
            if key in STATE or key in ignore or key.startswith("_"):
                continue
            values = [v.strip() for v in params.getall(key) if v.strip() != ""]
            if not values:
                continue
            self.raw += [(key, v) for v in values]
            self.filters.append(self.filter(key, values))

    def filter(self, key, values):
        name, _sep, op = key.partition("__")
        op = op or "eq"
        if op not in query.OPERATORS:
            raise BadRequest(f"unknown filter operator {op!r}", {key: "unknown operator"})
        field = self.entity.fields.get(name)
        value = ",".join(values) if op == "in" else values[-1]
        if field is not None and field.type == "region" and op in ("eq", "in"):
            return (name, "in", ",".join(self.display.descendants(field.dictionary, value.split(","))))
        if field is not None and field.type == "datetime" and op in ("lte", "lt") and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            try:  # a date as the end of a datetime range means the whole day
                day = dt.date.fromisoformat(value) + (dt.timedelta(days=1) if op == "lte" else dt.timedelta())
            except ValueError:
                raise BadRequest(f"bad date {value!r}", {key: "not a date"})
            return (name, "lt", day.isoformat() + "T00:00:00")
        return (name, op, value)

    def pairs(self, **changes):
        """The query string pairs with ``changes`` (None removes a key); paging restarts unless
        the change is about paging."""
        base = [(k, v) for k, v in self.params.items() if not k.startswith("_")]
        if not any(k in PAGING for k in changes):
            base = [(k, v) for k, v in base if k not in PAGING]
        for key, value in changes.items():
            base = [(k, v) for k, v in base if k != key]
            if value not in (None, ""):
                base.append((key, value))
        return base

    def url(self, **changes):
        pairs = self.pairs(**changes)
        path = self.request.route_path("page.list", entity=self.entity.name)
        return path + qs_suffix(urlencode(pairs))

    def query_string(self, drop=("view",) + PAGING):
        return urlencode([(k, v) for k, v in self.params.items() if k not in drop and not k.startswith("_")])

    def next_url(self, next_cursor):
        stack = self.stack + [self.cursor or FIRST_PAGE]
        return self.url(cursor=next_cursor, stack=".".join(stack[-STACK_DEPTH:]))

    def previous_url(self):
        if not self.cursor:
            return None
        if not self.stack:
            return self.url(cursor=None, stack=None)
        previous = self.stack[-1]
        return self.url(cursor=None if previous == FIRST_PAGE else previous, stack=".".join(self.stack[:-1]) or None)

    def first_url(self):
        return self.url(cursor=None, stack=None) if self.cursor else None

    def sort_keys(self):
        try:
            return query.parse_sort(self.entity, self.sort)
        except BadRequest:
            return []

    def value(self, key, default=""):
        values = [v for k, v in self.raw if k == key]
        return values[-1] if values else default

    def values(self, key):
        return [v for k, v in self.raw if k == key]


def filter_panel(request, state, display, fields):
    out, locale = [], request.locale_name
    user_id = (request.identity or {}).get("id")
    for field in fields:
        item = {"name": field.name, "label": field.label_in(locale), "type": field.type, "id": "flt-" + field.name}
        if field.type in TEXT_FILTER:
            item.update(kind="text", key=field.name + "__contains", value=state.value(field.name + "__contains"))
        elif field.type in RANGE_FILTER:
            input_type = "date" if field.type in ("date", "datetime") else "number"
            item.update(kind="range", input_type=input_type, low_key=field.name + "__gte", high_key=field.name + "__lte",
                        low=state.value(field.name + "__gte"), high=state.value(field.name + "__lte"))
        elif field.type in ("select", "multiselect", "region"):
            key = field.name + ("__contains" if field.type == "multiselect" else "__in")
            chosen = {v for raw in state.values(key) for v in raw.split(",")}
            item.update(kind="choices", key=key, options=[(v, ("\u3000" * d) + label, v in chosen) for v, label, d in display.choices(field.dictionary)],
                        chosen=len(chosen))
            if field.type == "multiselect":
                item["kind"] = "select"
                item["options"] = [(v, label, v in chosen) for v, label, _o in item["options"]]
        elif field.type in ("user", "department") and display.many(field.type):
            current = state.value(field.name)
            item.update(kind="link", key=field.name, value=current, lookup=display.lookup_url(field.type),
                        title=display.picker_title(field.type, int(current)) if current.isdigit() else "")
        elif field.type in ("user", "department"):
            current = state.value(field.name)
            options = display.user_choices() if field.type == "user" else display.department_choices()
            if field.type == "user" and user_id:
                options = [(user_id, _(request, "Me"))] + [o for o in options if o[0] != user_id]
            item.update(kind="select", key=field.name, options=[(str(v), label, str(v) == current) for v, label in options])
        elif field.type == "boolean":
            current = state.value(field.name)
            item.update(kind="select", key=field.name, options=[("true", _(request, "Yes"), current == "true"),
                                                              ("false", _(request, "No"), current == "false")])
        elif field.type == "link":
            current = state.value(field.name)
            title = display.title(field.entity, int(current)) if current.isdigit() else None
            item.update(kind="link", key=field.name, value=current, title=title or "",
                        lookup=request.route_path("page.lookup", entity=field.entity))
        else:
            continue
        out.append(item)
    out.append({"name": "created_at", "label": _(request, "Created"), "type": "datetime", "id": "flt-created_at", "kind": "range",
                "input_type": "date", "low_key": "created_at__gte", "high_key": "created_at__lte",
                "low": state.value("created_at__gte"), "high": state.value("created_at__lte")})
    return out


def group_panel(request, state, display):
    field = state.entity.fields.get(state.group) if state.group else None
    if field is None or field.type not in GROUPABLE:
        return None
    rows = []
    for value, count in request.records.group_counts(state.entity.name, field.name, filters=state.filters, q=state.q or None):
        if value is None:
            label, url = _(request, "(empty)"), state.url(**{field.name + "__isnull": "true", "group": field.name})
        else:
            key = field.name
            text = str(value).lower() if field.type == "boolean" else str(value)
            label, url = display.text(field, value), state.url(**{key: text})
        rows.append({"label": label, "count": count, "url": url})
    return {"field": field.label_in(request.locale_name), "rows": rows}


@view_config(route_name="page.list", request_method="GET", permission=security.READ)
def list_page(request):
    from crm.core.web.pages import envelopes   # (it reads list filters with ListState)
    entity = page_entity(request, allow_singleton=True)
    records = request.records
    if entity.singleton:
        record = records.singleton(entity.name)
        return HTTPFound(request.route_path("page.detail", entity=entity.name, id=record["id"]))
    display = Display(request)
    state = ListState(request, entity, display)
    columns = list_columns(records, entity, state.column_names)
    page = records.list(entity.name, filters=state.filters, sort=state.sort, limit=state.limit, cursor=state.cursor,
                        q=state.q or None, count=True, count_seconds=PAGE_COUNT_SECONDS)
    display.preload(entity, page.items)
    keys = dict(state.sort_keys())
    header = []
    for field in columns:
        item = {"label": field.label_in(request.locale_name), "name": field.name, "url": None, "sorted": None}
        if sortable(entity, field):
            descending = keys.get(field.name)
            item["sorted"] = None if field.name not in keys or list(keys)[0] != field.name else ("descending" if descending else "ascending")
            item["url"] = state.url(sort=("" if item["sorted"] == "descending" else "-") + field.name if item["sorted"] else field.name)
        header.append(item)
    rows = [table_row(request, display, entity, columns, r) for r in page.items]
    fields = filter_fields(records, entity)
    user_id = (request.identity or {}).get("id")
    views = [{**v, "url": request.route_path("page.list", entity=entity.name) + "?" + urlencode([tuple(p) for p in v["params"]] + [("view", v["id"])]),
              "active": state.view == str(v["id"]), "mine": v["owner_id"] == user_id}
             for v in saved_views.visible(request.dbsession, entity.name, user_id)]
    access = records.access
    all_fields = [f for f in shown_fields(records, entity) if f.type not in ("table", "json")]
    form_fields, editable = widgets.form_fields(records, entity)
    assignable = owner_field(entity) in editable and access.allowed(entity.name, "assign")
    query_string = state.query_string()
    return render(request, "list.pt", {
        "entity": entity, "entity_label": entity_label(entity, request.locale_name, plural=True), "state": state,
        "header": header, "rows": rows, "page": page,
        "count": page.count_text,
        "count_url": request.route_path("page.count", entity=entity.name) + qs_suffix(query_string)
        if page.count_stopped else None,
        "next_url": state.next_url(page.next_cursor) if page.next_cursor else None,
        "previous_url": state.previous_url(), "first_url": state.first_url(),
        "filters": filter_panel(request, state, display, fields), "filter_count": len(state.filters),
        "group": group_panel(request, state, display),
        "groupable": [(f.name, f.label_in(request.locale_name)) for f in all_fields if f.type in GROUPABLE],
        "all_columns": [(f.name, f.label_in(request.locale_name), f in columns) for f in all_fields],
        "views": views, "query_string": query_string, "page_sizes": PAGE_SIZES,
        "can_create": access.allowed(entity.name, "create"), "can_delete": access.allowed(entity.name, "delete"),
        "can_update": access.allowed(entity.name, "update"), "can_export": access.allowed(entity.name, "export"),
        "bulk_fields": [(f.name, f.label_in(request.locale_name)) for f in bulk_fields(form_fields, editable)],
        "bulk_value_url": request.route_path("page.bulk.value", entity=entity.name),
        "owner_choices": None if not assignable or display.many("user") else display.user_choices(),
        "owner_lookup": display.lookup_url("user") if assignable and display.many("user") else None,
        "export_url": request.route_path("page.export", entity=entity.name) + qs_suffix(query_string),
        "export_xlsx_url": request.route_path("page.export", entity=entity.name) + "?" + urlencode([("format", "xlsx")]) +
                           ("&" + query_string if query_string else ""),
        "import_url": request.route_path("page.import", entity=entity.name) if access.allowed(entity.name, "import") else None,
        "envelopes_url": envelopes.batch_url(request, entity, query_string),
        "kanban_url": request.route_path("page.kanban", entity=entity.name) if entity.spec.get("kanban") else None,
        "calendar_url": request.route_path("page.calendar", entity=entity.name)
        if any(f.calendar for f in entity.fields.values()) else None,
        "back": request.path_qs,
    })


def table_row(request, display, entity, columns, record):
    """A row: its cells as HTML (crm.core.web.pages.markup.cells); the title column (else the first) links to the record."""
    url = display.detail_url(entity.name, record["id"])
    title = request.records.title(entity, record)
    link_at = next((i for i, f in enumerate(columns) if f.name == entity.title_field), 0)
    cells = []
    for i, field in enumerate(columns):
        parts = display.parts(field, record.get(field.name))
        if i == link_at:
            text = title if field.name == entity.title_field else "、".join(str(t) for t, _u in parts) or f"#{record['id']}"
            cells.append({"link": url, "text": text, "parts": []})
        else:
            cells.append({"link": None, "text": None, "parts": parts})
    return {"id": record["id"], "url": url, "title": title, "cells_html": markup.cells(cells), **row_style(request, entity, record)}


def row_style(request, entity, record):
    """The entity's ``row_style`` for a record: {"style", "style_label"} of the first rule whose
    condition holds (over the fields the user sees), or {} (docs/metadata.md)."""
    for rule in entity.spec.get("row_style") or []:   # checked at start-up: evaluating never raises
        if expressions.truthy(expressions.evaluate(rule["when"], record, today=request.records.today())):
            return {"style": rule["style"], "style_label": text_in(rule["label"], request.locale_name) if rule.get("label") else None}
    return {}


def bulk_fields(form_fields, editable):
    """The fields the user may change for many records at once: of the form's fields
    (widgets.form_fields), the editable ones of the types a single input can set."""
    return [f for f in form_fields if f.type in BULK_TYPES and f.name in editable]


def bulk_changeable(records, entity, name):
    """The field ``name`` when the user may change it in bulk, else None."""
    return next((f for f in bulk_fields(*widgets.form_fields(records, entity)) if f.name == name), None)


def bulk_field(request, display, field):
    item = {"name": field.name, "label": field.label_in(request.locale_name), "type": field.type, "options": None, "lookup": None,
            "input_type": {"date": "date", "integer": "number", "decimal": "number", "money": "number", "percent": "number",
                           "rating": "number", "email": "email"}.get(field.type, "text")}
    if field.type in ("select", "region"):
        item["options"] = [(v, "\u3000" * d + label) for v, label, d in display.choices(field.dictionary)]
    elif field.type in ("user", "department") and display.many(field.type):
        item["lookup"] = display.lookup_url(field.type)
    elif field.type == "user":
        item["options"] = display.user_choices()
    elif field.type == "department":
        item["options"] = display.department_choices()
    elif field.type == "boolean":
        item["options"] = [("true", _(request, "Yes")), ("false", _(request, "No"))]
    return item


# --- bulk actions and export -------------------------------------------------------------------

def _ids(request):
    ids = []
    for value in request.POST.getall("ids"):
        if value.isdigit() and int(value) not in ids:
            ids.append(int(value))
    return ids


def _back(request, entity):
    from crm.core.web.pages.session import safe_next
    return safe_next(request.POST.get("back"), default=request.route_path("page.list", entity=entity.name))


@view_config(route_name="page.bulk.value", request_method="GET", permission=security.UPDATE)
def bulk_value(request):
    """The input of the new value for ``?field=`` (markup.bulk_value), asked for by list.js when
    the field is chosen: a dictionary's options or the users, for each of ~110 fields a customer
    with 100 custom fields can be changed in, were a third of every list page (50 KB) and
    most people never open them."""
    entity = page_entity(request)
    name = request.GET.get("field", "")
    field = bulk_changeable(request.records, entity, name)
    if field is None:
        raise NotFound(f"{name!r} cannot be changed in bulk", {"field": "unknown"})
    body = markup.bulk_value(bulk_field(request, Display(request), field), _(request, "New value"), _(request, "(empty)"),
                             _(request, "Type to search"))
    return Response(body=body, content_type="text/html", charset="utf-8")


@view_config(route_name="page.bulk", request_method="POST", permission=security.UPDATE)
def bulk(request):
    entity = page_entity(request)
    records = request.records
    ids, action = _ids(request), request.POST.get("action", "")
    back = _back(request, entity)
    if not ids:
        flash(request, _(request, "Select at least one row first."), "error")
        return HTTPFound(back)
    if action == "export":
        return export_response(request, entity, ids=ids, fmt=request.POST.get("format", "csv"))
    if action == "delete":
        change = None
    elif action == "assign":
        if not records.access.allowed(entity.name, "assign"):
            raise Forbidden(f"you may not assign {entity.name} records")
        owner = request.POST.get("owner", "")
        if not owner.isdigit():
            flash(request, _(request, "Choose the new owner."), "error")
            return HTTPFound(back)
        change = {owner_field(entity): int(owner)}
    elif action == "update":
        name = request.POST.get("bulk_field", "")
        field = bulk_changeable(records, entity, name)
        if field is None:
            flash(request, _(request, "Choose the field to change."), "error")
            return HTTPFound(back)
        if "bulk_value." + name not in request.POST:   # sent before list.js had the input: not "make it empty"
            flash(request, _(request, "Enter the new value."), "error")
            return HTTPFound(back)
        raw = request.POST["bulk_value." + name]
        value, problem = widgets.convert(request, field, raw)
        if field.type == "boolean":
            value = raw == "true"
        if problem:
            flash(request, f"{field.label_in(request.locale_name)}: {problem}", "error")
            return HTTPFound(back)
        change = {name: value}
    else:
        raise BadRequest(f"unknown bulk action {action!r}", {"action": "unknown"})
    done, failed = 0, []
    # a conditional field changes only where its condition shows it; required_if and
    # readonly_if are the record service's to enforce, record by record
    condition = entity.fields[name].visible_if if action == "update" else None
    for record_id in ids:
        try:
            if change is None:
                records.delete(entity.name, record_id)
            elif condition is not None and not widgets.condition_holds(
                    condition, records.get(entity.name, record_id), records.today(), True):
                failed.append(f"#{record_id}: " + _(request, "${field} does not apply to this record",
                                                      field=entity.fields[name].label_in(request.locale_name)))
                continue
            else:
                records.update(entity.name, record_id, change)
            done += 1
        except (NotFound, Forbidden, ValidationFailed, Vetoed, BadRequest) as e:
            failed.append(f"#{record_id}: {next(iter(e.fields.values()), e.message) if e.fields else e.message}")
    if done:
        flash(request, (_(request, "${n} records were moved to the recycle bin.", n=done) if change is None
                        else _(request, "${n} records were changed.", n=done)), "success")
    if failed:
        flash(request, _(request, "${n} records were left as they were: ${reasons}", n=len(failed), reasons="; ".join(failed[:5])), "error")
    return HTTPFound(back)


def export_response(request, entity, filters=(), q=None, sort=None, ids=None, fmt="csv"):
    """The export file of the records (selected ``ids`` or the list's filters), made by
    :mod:`crm.core.exporter`: the export permission and scope, no hidden field, labels for
    codes, formula-like cells neutralized."""
    fmt = "xlsx" if fmt == "xlsx" else "csv"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"export.{fmt}"
        exporter.export(request.records, entity.name, path, filters=filters, q=q, sort=sort, ids=ids)
        body = path.read_bytes()
    stamp = request.records.now().strftime("%Y%m%d-%H%M")
    filename = f"{entity.label_in(request.locale_name)}-{stamp}.{fmt}"
    content_type = "text/csv; charset=utf-8" if fmt == "csv" else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    response = Response(body=body, content_type=content_type.split(";")[0], charset="utf-8" if fmt == "csv" else None)
    response.headers["Content-Disposition"] = f"attachment; filename=\"export.{fmt}\"; filename*=UTF-8''{quote(filename)}"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@view_config(route_name="page.export", request_method="GET", permission=security.READ)
def export(request):
    entity = page_entity(request)
    state = ListState(request, entity, Display(request), ignore=("format",))
    return export_response(request, entity, filters=state.filters, q=state.q or None, sort=state.sort, fmt=request.GET.get("format", "csv"))


# --- saved views --------------------------------------------------------------------------------

@view_config(route_name="page.views", request_method="POST", permission=security.READ)
def save_view(request):
    entity = page_entity(request)
    params = parse_qsl(request.POST.get("params", ""), keep_blank_values=False)
    try:
        view_id = saved_views.save(request.dbsession, entity.name, request.POST.get("name"), params,
                                   owner_id=request.identity["id"], shared=bool(request.POST.get("shared")), now=request.records.now())
    except ValidationFailed:
        flash(request, _(request, "Give the view a name."), "error")
        return HTTPFound(_back(request, entity))
    flash(request, _(request, "The view was saved."), "success")
    view = saved_views.get(request.dbsession, view_id, request.identity["id"])
    return HTTPFound(request.route_path("page.list", entity=entity.name) + "?" + urlencode([tuple(p) for p in view["params"]] + [("view", view_id)]))


@view_config(route_name="page.views.delete", request_method="POST", permission=security.READ)
def delete_view(request):
    entity = page_entity(request)
    user = request.identity
    saved_views.delete(request.dbsession, request.matchdict["id"], user_id=user["id"], admin=bool(user.get("is_admin")))
    flash(request, _(request, "The view was deleted."), "success")
    return HTTPFound(request.route_path("page.list", entity=entity.name))


def qs_suffix(query_string):
    """``?`` and the query string, or nothing for an empty one."""
    return "?" + query_string if query_string else ""


@view_config(route_name="page.count", request_method="GET", permission=security.READ, renderer="json")
def count(request):
    """The count of a list page that gave its own up (``count_url`` of list.pt, fetched by
    list.js): the same query string, counted for up to COUNT_LATER_SECONDS. ``text`` is what
    the page shows; ``stopped``: this count was given up too (the page keeps its "50+")."""
    entity = page_entity(request)
    state = ListState(request, entity, Display(request))
    page = request.records.list(entity.name, filters=state.filters, sort=state.sort, limit=1, q=state.q or None,
                                count=True, count_seconds=COUNT_LATER_SECONDS)
    stopped = page.count_stopped
    return {"total": page.total, "stopped": stopped,
            "text": None if stopped else _(request, "Records: ${n}", n=page.count_text)}


# --- JSON for the forms -------------------------------------------------------------------------

@view_config(route_name="page.directory.lookup", request_method="GET", permission=security.READ, renderer="json")
def directory_lookup(request):
    """Users or departments for the pickers that replace the user and department lists when there
    are many (``Display.many``): ``?q=`` in the name, at most 10."""
    q = request.GET.get("q", "").strip()[:100]
    return {"items": directory.lookup(request.dbsession, request.matchdict["kind"], q)}


@view_config(route_name="page.lookup", request_method="GET", permission=security.READ, renderer="json")
def lookup(request):
    """Records for a link picker: ``?q=`` (quick search, pinyin initials included), at most 10."""
    entity = page_entity(request)
    records = request.records
    q = request.GET.get("q", "").strip()[:100]
    try:
        if q and (entity.search_fields or any(f.type == "mnemonic" for f in entity.stored_fields)):
            page = records.list(entity.name, q=q, limit=10)
        elif q and entity.title_field:
            page = records.list(entity.name, filters=[(entity.title_field, "contains", q)], limit=10)
        else:
            page = records.list(entity.name, limit=10)
    except (BadRequest, Forbidden):
        return {"items": []}
    return {"items": [_item(request, entity, r) for r in page.items]}


def _item(request, entity, record):
    detail = next((str(record[n]) for n in ("code", "phone", "mobile") if n in entity.fields and record.get(n)), "")
    return {"id": record["id"], "title": request.records.title(entity, record), "detail": detail,
            "url": request.route_path("page.detail", entity=entity.name, id=record["id"])}


@view_config(route_name="page.similar", request_method="GET", permission=security.READ, renderer="json")
def similar(request):
    """Up to 5 records whose title resembles ``?name=`` (重名提示), among those the user may see."""
    entity = page_entity(request)
    found = similar_records(request.records, entity, request.GET.get("name", ""), request.GET.get("exclude", ""))
    return {"items": [_item(request, entity, r) for r in found]}


def similar_records(records, entity, name, exclude="", limit=5):
    """Records the user may see whose title contains ``name`` or ``name`` without its company
    suffix (有限公司, 集团 ...): the duplicate-name hint and the merge page's suggestions."""
    name = str(name or "").strip()[:200]
    title = entity.title_field
    if len(name) < 2 or not title:
        return []
    core = name
    for suffix in SIMILAR_SUFFIXES:
        if core.endswith(suffix) and len(core) > len(suffix) + 1:
            core = core[: -len(suffix)]
            break
    found = {}
    try:
        for text in dict.fromkeys([name, core]):
            for record in records.list(entity.name, filters=[(title, "contains", text)], limit=limit + 1).items:
                if str(record["id"]) != str(exclude):
                    found.setdefault(record["id"], record)
    except (BadRequest, Forbidden):
        return []
    return list(found.values())[:limit]
