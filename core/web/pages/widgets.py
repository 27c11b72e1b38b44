"""The form model: the metadata's layout (tabs → sections → fields) turned into widgets, one
Chameleon macro per field type (``ui/templates/fields/<macro>.pt``), and the way back from a
posted HTML form to the JSON values the record service takes.

Conditions (``visible_if``, ``required_if``, ``readonly_if``, a section's ``visible_if``) are
evaluated here for the first rendering, written into ``data-*`` attributes for ``ui/static/js/
form.js`` (which re-evaluates them with ``CrmExpr`` as the user types) and enforced again by the
record service on save.
"""
import datetime as dt
import json
import re
from decimal import Decimal, InvalidOperation

from crm.core import attachments, expressions
from crm.core.errors import ValidationFailed
from crm.core.registry import text_in
from crm.core.web.pages import markup
from crm.core.web.pages.helpers import N_, _, shown_fields

MACRO = {
    "text": "text", "email": "text", "phone": "text", "url": "text",
    "textarea": "textarea", "richtext": "textarea",
    "integer": "number", "decimal": "number", "money": "number", "percent": "number",
    "boolean": "boolean", "date": "date", "datetime": "date", "time": "date",
    "select": "select", "multiselect": "multiselect", "region": "region",
    "link": "link", "links": "links", "user": "user", "department": "user",
    "file": "file", "image": "file", "rating": "rating", "table": "table",
    "mnemonic": "readonly", "autonumber": "readonly", "computed": "readonly", "json": "json",
}
INPUT_TYPE = {"email": "email", "phone": "tel", "url": "url", "date": "date", "datetime": "datetime-local", "time": "time"}
INTEGER_TYPES = {"integer", "rating", "link", "user", "department", "file", "image"}
NUMBER_TYPES = {"decimal", "money", "percent"}
ROW_KEY = re.compile(r"^(?P<table>\w+)\.(?P<index>\d{1,4})\.(?P<field>\w+)$")
MAX_ROWS = 200
MAX_INT = 2**63 - 1


class Widget:
    """One field in a form: what its macro needs."""

    def __init__(self, field, locale):
        self.field = field
        self.name = field.name
        self.type = field.type
        self.macro = MACRO.get(field.type, "text")
        self.label = field.label_in(locale)
        self.help = text_in(field.help, locale) if field.help else None
        self.input_type = INPUT_TYPE.get(field.type, "text")
        self.value = None
        self.error = None
        self.required = bool(field.required)
        self.readonly = False
        self.visible = True
        self.options = []
        self.extra = {}
        self.conditions = {k: json.dumps(field.spec[k], ensure_ascii=False) for k in ("visible_if", "required_if", "readonly_if")
                           if field.spec.get(k) is not None}
        self.id = "f-" + field.name

    @property
    def step(self):
        if self.type == "integer":
            return "1"
        return "any"

    def _current(self):
        current = self.value if isinstance(self.value, list) else [self.value]
        return {str(v) for v in current if v is not None}

    def options_html(self, indent=False):
        """``<option>`` elements of ``options``, the current value(s) selected; ``indent``: tree
        dictionaries' items indented by their depth (region). A form with a hundred fields writes
        its options here, not an expression each in the template (crm.core.web.pages.markup)."""
        current = self._current()
        return markup.options([(o[0], "\u3000" * o[2] + o[1] if indent else o[1], str(o[0]) in current) for o in self.options])

    def checks_html(self):
        """A checkbox per option, the current values checked (multiselect)."""
        current = self._current()
        return markup.checks(self.name, [(o[0], o[1], str(o[0]) in current) for o in self.options])


class Section:
    def __init__(self, sid, label, columns, widgets, visible_if=None, visible=True):
        self.id, self.label, self.columns, self.widgets = sid, label, columns, widgets
        self.visible_if = json.dumps(visible_if, ensure_ascii=False) if visible_if is not None else None
        self.visible = visible


class Tab:
    def __init__(self, tid, label, sections):
        self.id, self.label, self.sections = tid, label, sections


def layout(entity, names, locale, more_label):
    """[(tab id, label, [(section id, label, columns, [field names], visible_if)])] over ``names``
    (the fields to place); fields the layout places nowhere go to a trailing section."""
    names = list(names)
    wanted, placed, tabs = set(names), set(), []
    for tab in (entity.spec.get("layout") or {}).get("tabs") or []:
        sections = []
        for section in tab.get("sections") or []:
            fields = [n for n in section.get("fields") or [] if n in wanted and n not in placed]
            placed.update(fields)
            if fields:
                sections.append((section["id"], text_in(section["label"], locale) if section.get("label") else None,
                                 section.get("columns", 2), fields, section.get("visible_if")))
        if sections:
            tabs.append((tab["id"], text_in(tab["label"], locale) if tab.get("label") else None, sections))
    rest = [n for n in names if n not in placed]
    if rest:
        section = ("more", more_label if tabs else None, 2, rest, None)
        if tabs:
            tabs[-1][2].append(section)
        else:
            tabs.append(("main", None, [section]))
    return tabs


def form_fields(records, entity):
    """The fields a form shows (visible to the user), and which of them the user may change."""
    fields = shown_fields(records, entity)
    workflow = records.model.workflows.get(entity.name)
    moved_by_transitions = workflow.state_field if workflow else None  # a workflow's state changes by its steps only
    editable = {f.name for f in fields if not f.ftype.system_filled and not f.readonly and f.name != moved_by_transitions
                and records.access.field_access(entity.name, f.name) != "readonly"}
    return fields, editable


def build_form(request, display, entity, values, errors, stored=None):
    """Tabs of sections of widgets for ``values`` (JSON values by field name); ``stored``: the
    JSON of the stored record when editing (``readonly_if`` looks at what is stored)."""
    records, locale = request.records, request.locale_name
    fields, editable = form_fields(records, entity)
    by_name = {f.name: f for f in fields}
    today = records.today()
    data = dict(values)
    tabs = []
    for tid, tlabel, sections in layout(entity, by_name, locale, _(request, "More")):
        built = []
        for sid, slabel, columns, names, visible_if in sections:
            widgets = [widget(request, display, entity, by_name[n], values.get(n), errors, data, today,
                              editable=n in editable, stored=stored) for n in names]
            built.append(Section(sid, slabel, columns, widgets, visible_if, condition_holds(visible_if, data, today, True)))
        tabs.append(Tab(tid, tlabel, built))
    return tabs


def condition_holds(expr, data, today, default):
    """Whether a field's or section's condition holds for ``data`` (``default`` when there is none)."""
    if expr is None:
        return default
    try:
        return expressions.truthy(expressions.evaluate(expr, data, today=today))
    except Exception:
        return default


def widget(request, display, entity, field, value, errors, data, today, editable=True, stored=None):
    w = Widget(field, request.locale_name)
    w.value = value
    w.error = errors.get(field.name)
    w.readonly = not editable or condition_holds(field.readonly_if, stored if stored is not None else data, today, False)
    w.required = bool(field.required) or condition_holds(field.required_if, data, today, False)
    w.visible = condition_holds(field.visible_if, data, today, True)
    kind = field.type
    if w.readonly and kind not in ("table",):
        w.macro = "readonly"
        w.extra["parts"] = display.parts(field, _python(field, value))
    if kind in ("select", "multiselect"):
        w.options = display.choices(field.dictionary, value)
    elif kind == "region":
        w.options = display.choices(field.dictionary, value)
        w.extra["tree"] = json.dumps(display.tree(field.dictionary), ensure_ascii=False).replace("</", "<\\/")
    elif kind in ("user", "department") and display.many(kind):
        if not w.readonly:
            w.macro = "link"
        w.extra["title"] = display.picker_title(kind, value)
        w.extra["lookup"] = display.lookup_url(kind)
    elif kind == "user":
        w.options = display.user_choices(value)
    elif kind == "department":
        w.options = display.department_choices(value)
    elif kind == "link":
        w.extra["title"] = display.title(field.entity, value) if isinstance(value, int) else None
        w.extra["lookup"] = request.route_path("page.lookup", entity=field.entity)
    elif kind == "links":
        ids = [v for v in (value or []) if isinstance(v, int)]
        w.extra["items"] = [(i, display.title(field.entity, i) or f"#{i}") for i in ids]
        w.extra["lookup"] = request.route_path("page.lookup", entity=field.entity)
    elif kind in ("file", "image"):
        row = display.file(value) if isinstance(value, int) else None
        w.extra["file"] = row
        w.extra["url"] = request.route_path("page.file", id=value) if row else None
    elif kind == "rating":
        w.extra["stars"] = list(range(int(field.max or 5), 0, -1))
    elif kind == "table":
        w.extra.update(child_table(request, display, entity, field, value, errors, w.readonly))
    elif kind in ("date", "datetime", "time"):
        w.value = _input_date(kind, value)
    elif kind == "json":
        w.value = json.dumps(value, ensure_ascii=False, indent=1) if value is not None else ""
    if entity.fields.get("mnemonic") is not None and entity.fields["mnemonic"].source == field.name == entity.title_field \
            and not w.readonly:
        w.extra["similar"] = request.route_path("page.similar", entity=entity.name)
    return w


def child_table(request, display, entity, field, rows, errors, readonly):
    child = request.records.entity(field.entity)
    hidden = request.records.access.hidden_fields(child.name)
    columns = [f for f in child.fields.values() if not f.hidden and f.name not in hidden
               and (not f.ftype.system_filled or (readonly and f.type == "computed"))   # a line's amount, on the detail page
               and f.type not in ("table", "links", "json")]
    cells = []
    for i, row in enumerate(rows or []):
        cells.append({"index": i, "id": row.get("id"), "cells": [
            cell(request, display, field.name, i, col, row.get(col.name), errors.get(f"{field.name}.{i}.{col.name}"))
            for col in columns]})
    blank = [cell(request, display, field.name, "__i__", col, col.default if not isinstance(col.default, (dict, list)) else None, None)
             for col in columns]
    return {"columns": [(c.name, c.label_in(request.locale_name), bool(c.required)) for c in columns],
            "rows": cells, "blank": blank, "readonly": readonly,
            "row_errors": {k: v for k, v in errors.items() if k.startswith(field.name + ".")}}


def cell(request, display, table, index, col, value, error):
    kind = col.type
    out = {"name": f"{table}.{index}.{col.name}", "type": kind, "value": value, "error": error, "label": col.label_in(request.locale_name),
           "input_type": INPUT_TYPE.get(kind, "number" if kind in INTEGER_TYPES | NUMBER_TYPES else "text"), "options": None,
           "text": display.text(col, _python(col, value)) if value not in (None, "") else ""}
    if kind in ("select", "region"):
        out["options"] = display.choices(col.dictionary, value)
    elif kind == "user":
        out["options"] = display.user_choices(value)
    elif kind in ("date", "datetime", "time"):
        out["value"] = _input_date(kind, value)
    return out


def _input_date(kind, value):
    if not value:
        return ""
    text = value.isoformat() if isinstance(value, (dt.date, dt.time)) else str(value)
    if kind == "datetime":
        return text.replace(" ", "T")[:16]
    if kind == "time":
        return text[:5]
    return text[:10]


def _python(field, value):
    """A JSON value back to what Display formats (dates, decimals)."""
    if value is None:
        return None
    kind = field.spec["result_type"] if field.type == "computed" else field.type
    try:
        if kind == "date" and isinstance(value, str):
            return dt.date.fromisoformat(value[:10])
        if kind == "datetime" and isinstance(value, str):
            return dt.datetime.fromisoformat(value)
        if kind == "time" and isinstance(value, str):
            return dt.time.fromisoformat(value)
        if kind in NUMBER_TYPES and not isinstance(value, Decimal):
            return Decimal(str(value))
    except (ValueError, InvalidOperation):
        return value
    return value


# --- from the posted form to JSON values ---------------------------------------------------------

def parse(request, entity, post, record=None):
    """(values, errors): the JSON values of the editable fields the form carried, and messages
    for input that is not even of the right kind (the record service checks everything else)."""
    records = request.records
    fields, editable = form_fields(records, entity)
    values, errors = {}, {}
    for field in fields:
        if field.name not in editable:
            continue
        try:
            found = parse_field(request, entity, field, post, record)
        except ValidationFailed as e:
            errors[field.name] = next(iter(e.fields.values()), e.message)
            continue
        if found is not _ABSENT:
            value, problem = found
            values[field.name] = value
            if problem:
                errors[field.name] = problem
    return values, errors


_ABSENT = object()


def parse_field(request, entity, field, post, record):
    name, kind = field.name, field.type
    if kind == "boolean":
        raw = post.getall(name)
        return _ABSENT if not raw else (raw[-1] in ("1", "true", "on"), None)
    if kind in ("multiselect", "links", "table"):
        if name + "__present" not in post:
            return _ABSENT
        if kind == "multiselect":
            chosen = [v for v in post.getall(name) if v]
            return (chosen or None, None)
        if kind == "links":
            ids = []
            for v in post.getall(name):
                if v.isdigit() and int(v) not in ids:
                    ids.append(int(v))
            return (ids, None)
        return parse_rows(request, field, post)
    if kind in ("file", "image"):
        upload = post.get(name + "__upload")
        if getattr(upload, "filename", None):
            row = attachments.save(request.records, upload.file, upload.filename, upload.type, entity=entity.name,
                                   record_id=(record or {}).get("id"), field=name)
            return (row["id"], None)
        if post.get(name + "__clear"):
            return (None, None)
        if name not in post:
            return _ABSENT
        raw = post.get(name, "").strip()
        return (int(raw), None) if raw.isdigit() else (None, None)
    if name not in post:
        return _ABSENT
    return convert(request, field, post.get(name))


def convert(request, field, raw):
    """A form string → (JSON value, problem or None)."""
    kind = field.type
    raw = raw if isinstance(raw, str) else ""
    text = raw.strip()
    if text == "":
        return (None, None)
    if kind in INTEGER_TYPES:
        try:
            number = int(text.replace(",", ""))
        except ValueError:
            return (text, _(request, "Enter a whole number."))
        if not -MAX_INT <= number <= MAX_INT:  # what a 64-bit column holds
            return (text, _(request, "The number is too large."))
        return (number, None)
    if kind in NUMBER_TYPES:
        cleaned = text.replace(",", "").replace("，", "").replace("¥", "").replace(" ", "")
        try:
            number = Decimal(cleaned)
            if not number.is_finite():
                raise InvalidOperation
        except InvalidOperation:
            return (text, _(request, "Enter a number."))
        return (cleaned, None)
    if kind == "json":
        try:
            return (json.loads(text), None)
        except ValueError:
            return (None, _(request, "Enter valid JSON."))
    if kind == "boolean":
        return (text in ("1", "true", "on"), None)
    if kind in ("textarea", "richtext"):
        return (raw.replace("\r\n", "\n"), None)
    return (text, None)


def parse_rows(request, field, post):
    child = request.records.entity(field.entity)
    rows = {}
    for key in post.keys():
        match = ROW_KEY.match(key)
        if match and match["table"] == field.name:
            rows.setdefault(int(match["index"]), {})
    out, problems = [], None
    for index in sorted(rows)[:MAX_ROWS]:
        row, empty = {}, True
        raw_id = post.get(f"{field.name}.{index}.id", "")
        for col in child.fields.values():
            key = f"{field.name}.{index}.{col.name}"
            if col.type == "boolean":
                raw = post.getall(key)
                if raw:
                    row[col.name] = raw[-1] in ("1", "true", "on")
                    empty = empty and not row[col.name]
                continue
            if key not in post:
                continue
            value, problem = convert(request, col, post.get(key))
            if problem:
                problems = problem
            row[col.name] = value
            if value not in (None, ""):
                empty = False
        if empty and not raw_id:
            continue
        if raw_id.isdigit():
            row["id"] = int(raw_id)
        out.append(row)
    return (out, problems)


def changed_values(entity, values, original):
    """Only the values the user changed against ``original`` (the record as the form was loaded),
    so that saving never writes back a field someone else changed meanwhile. Child tables are
    always sent (the record service saves rows by id)."""
    return {name: value for name, value in values.items()
            if entity.fields[name].type == "table" or not same(entity.fields[name], value, original.get(name))}


def same(field, a, b):
    empty = (None, "", [])
    if a in empty or b in empty:
        return a in empty and b in empty
    kind = field.spec["result_type"] if field.type == "computed" else field.type
    try:
        if kind in NUMBER_TYPES | INTEGER_TYPES:
            return Decimal(str(a)) == Decimal(str(b))
        if kind in ("date", "datetime", "time"):
            return field.ftype.to_python(a, field) == field.ftype.to_python(b, field)
    except (InvalidOperation, ValueError, TypeError):
        return False
    if kind in ("links", "multiselect"):
        return sorted(map(str, a)) == sorted(map(str, b))
    return a == b


FRIENDLY = {"email": N_("Enter a valid email address."), "phone": N_("Enter a valid phone number."),
            "url": N_("Enter a web address (http:// or https://)."), "date": N_("Enter a date (YYYY-MM-DD)."),
            "datetime": N_("Enter a date and time."), "time": N_("Enter a time (HH:MM).")}


def friendly_errors(request, entity, errors):
    """The record service's messages, with the technical tail of format errors replaced by a plain sentence."""
    out = {}
    for key, message in errors.items():
        name = key.split(".")[-1]
        owner = entity
        if "." in key:
            table = entity.fields.get(key.split(".")[0])
            owner = request.records.entity(table.entity) if table is not None and table.type == "table" else entity
        field = owner.fields.get(name)
        if field is not None and field.type in FRIENDLY and isinstance(message, str) and ":" in message:
            message = _(request, FRIENDLY[field.type])
        out[key] = message
    return out
