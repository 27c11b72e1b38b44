"""Detail pages ``/app/{entity}/{id}``: the fields by layout with readable values, related
records as tabs, the change history, attachments, sharing (:mod:`.sharing`, for people who may
change the record) and the record actions (edit, copy, delete, merge, and those plugins add
through ``crm_record_actions``).

Related tabs: one per link field of another entity that points at this one (a customer's
contacts and follow-ups, its sub-companies), then the plugins' ``crm_related_tabs``. Every list
is read through the record service, so access scopes apply and tabs for entities the user may
not read are left out.
"""
import mimetypes
from urllib.parse import quote

from pyramid.httpexceptions import HTTPFound
from pyramid.response import FileResponse
from pyramid.view import view_config

from crm.core import attachments, workflow as workflows
from crm.core.errors import BadRequest, Conflict, CrmError, Forbidden, NotFound, ValidationFailed, Vetoed
from crm.core.records import record_to_json, to_json
from crm.core.registry import text_in
from crm.core.web import security
from crm.core.web.pages import widgets
from crm.core.web.pages.helpers import Display, _, entity_label, flash, page_entity, render, shown_fields
from crm.core.web.pages.lists import list_columns, row_style, similar_records
from crm.core.web.pages.session import safe_next
from crm.core.web.pages.sharing import sharing_panel

RELATED_ROWS = 10
HISTORY_ROWS = 100


def related_tabs(request, entity, record):
    """[{"id", "label", "entity", "filters"}] for the detail page of ``record``."""
    records, model, locale = request.records, request.registry.crm.metadata, request.locale_name
    pairs = [(other, field) for other, field in model.references_to(entity.name) if not other.is_child and not other.singleton]
    tabs = []
    for other, field in pairs:
        several = sum(1 for o, _f in pairs if o.name == other.name) > 1 or other.name == entity.name
        label = entity_label(other, locale, plural=True)
        if field.related_label:
            label = text_in(field.related_label, locale)
        elif several:
            label = f"{label} · {field.label_in(locale)}"
        tabs.append({"id": f"{other.name}.{field.name}", "label": label, "entity": other.name,
                     "filters": [[field.name, "eq", record["id"]]], "link_field": field.name if field.type == "link" else None})
    for results in request.registry.crm.plugins.hook.crm_related_tabs(ctx=records, entity=entity, record=record):
        for tab in results or []:
            tabs.append({"id": tab["id"], "label": text_in(tab.get("label") or tab["id"], locale), "entity": tab["entity"],
                         "filters": [list(f) for f in tab.get("filters") or []], "link_field": None})
    out = []
    for tab in tabs:
        target = model.entities.get(tab["entity"])
        if target is None or target.is_child or not records.access.allowed(target.name, "read"):
            continue
        out.append(tab)
    return out


def load_tab(request, display, tab):
    target = request.registry.crm.metadata.entities[tab["entity"]]
    filters = [tuple(f) for f in tab["filters"]]
    try:
        page = request.records.list(target.name, filters=filters, limit=RELATED_ROWS, count=True)
    except (BadRequest, Forbidden):
        return None
    columns = [f for f in list_columns(request.records, target) if f.name != tab.get("link_field")][:6]
    display.preload(target, page.items)
    rows = [{"url": request.route_path("page.detail", entity=target.name, id=r["id"]),
             "title": request.records.title(target, r),
             "cells": [display.parts(f, r.get(f.name)) for f in columns], **row_style(request, target, r)} for r in page.items]
    query_string = "&".join(f"{name}{'' if op == 'eq' else '__' + op}={value}" for name, op, value in filters)
    new_url = None
    if tab.get("link_field") and request.records.access.allowed(target.name, "create"):
        new_url = request.route_path("page.new", entity=target.name) + "?" + query_string
    return {**tab, "columns": [f.label_in(request.locale_name) for f in columns], "rows": rows, "total": page.count_text,
            "more": page.next_cursor is not None, "list_url": request.route_path("page.list", entity=target.name) + "?" + query_string,
            "new_url": new_url}


def history_rows(request, display, entity, record_id):
    rows = request.records.history(entity.name, record_id)[:HISTORY_ROWS]
    out = []
    labels = {"create": _(request, "created"), "update": _(request, "changed"), "delete": _(request, "deleted"),
              "restore": _(request, "restored"), "merge": _(request, "merged"), "share": _(request, "shared"),
              "unshare": _(request, "sharing revoked")}
    for row in rows:
        field = entity.fields.get(row["field"]) if row["field"] else None
        out.append({"at": display.system_text("at", row["at"]), "user": display.system_text("user_by", row["user_id"]) or _(request, "System"),
                    "action": labels.get(row["action"], row["action"]), "field": field.label_in(request.locale_name) if field else row["field"],
                    "old": _audit_text(display, field, row["old_value"]), "new": _audit_text(display, field, row["new_value"]) if row["action"] != "create" else "",
                    "note": row["note"]})
    return out


def _audit_text(display, field, value):
    if value in (None, "", []):
        return ""
    if field is None:
        return str(value)
    if field.type == "table":
        return ""
    return display.text(field, widgets._python(field, value))


def actions(request, entity, record):
    records, path = request.records, request.route_path
    out = []
    if records.access.allowed(entity.name, "update") and workflows.may_edit(records, entity, record):
        out.append({"id": "edit", "label": _(request, "Edit"), "url": path("page.edit", entity=entity.name, id=record["id"]), "method": "GET", "primary": True})
    if entity.singleton:
        return out
    from crm.core.web.pages import envelopes, overview   # pages that offer themselves on the detail page
    out += overview.action(request, entity, record) + envelopes.action(request, entity, record)
    if records.access.allowed(entity.name, "create"):
        out.append({"id": "copy", "label": _(request, "Copy"), "url": path("page.copy", entity=entity.name, id=record["id"]), "method": "POST"})
    if records.access.allowed(entity.name, "update") and records.access.allowed(entity.name, "delete"):
        out.append({"id": "merge", "label": _(request, "Merge"), "url": path("page.merge", entity=entity.name, id=record["id"]), "method": "GET"})
    for results in request.registry.crm.plugins.hook.crm_record_actions(ctx=records, entity=entity, record=record):
        for action in results or []:
            out.append({"id": action["id"], "label": text_in(action.get("label") or action["id"], request.locale_name),
                        "url": action["url"], "method": (action.get("method") or "GET").upper()})
    if records.access.allowed(entity.name, "delete"):
        out.append({"id": "delete", "label": _(request, "Delete"), "url": path("page.delete", entity=entity.name, id=record["id"]),
                    "method": "POST", "danger": True, "confirm": _(request, "Move this record to the recycle bin?")})
    return out


def detail_sections(request, display, entity, record):
    fields = {f.name: f for f in shown_fields(request.records, entity)}
    data = record_to_json(request.registry.crm.metadata, entity, record)
    today = request.records.today()
    tabs = []
    for tid, label, sections in widgets.layout(entity, fields, request.locale_name, _(request, "More")):
        built = []
        for sid, slabel, columns, names, visible_if in sections:
            if not widgets.condition_holds(visible_if, data, today, True):
                continue
            items = []
            for name in names:
                field = fields[name]
                if not widgets.condition_holds(field.visible_if, data, today, True):
                    continue
                item = {"name": name, "label": field.label_in(request.locale_name), "type": field.type, "wide": field.type in ("table", "textarea", "richtext")}
                if field.type == "table":
                    item["table"] = widgets.child_table(request, display, entity, field, data.get(name), {}, True)
                else:
                    item["parts"] = display.parts(field, record.get(name))
                items.append(item)
            for item in items:  # a section holding one field of the same name needs no second label
                item["show_label"] = not (len(items) == 1 and item["label"] == slabel)
            if items:
                built.append({"id": sid, "label": slabel, "columns": columns, "items": items})
        if built:
            tabs.append({"id": tid, "label": label, "sections": built})
    return tabs


def workflow_panel(request, entity, record):
    """The record's workflow: its state, the steps the user may take now, the log."""
    records, locale = request.records, request.locale_name
    flow = records.model.workflows.get(entity.name)
    if flow is None:
        return None
    display = Display(request)
    steps = [flow.describe(t, locale) for t in workflows.available(records, entity.name, record["id"])]
    log = [{"at": display.system_text("at", row["at"]), "user": display.system_text("user_by", row["user_id"]) or _(request, "System"),
            "from": flow.state_label(row["from_state"], locale), "to": flow.state_label(row["to_state"], locale),
            "comment": row["comment"]} for row in workflows.log(records, entity.name, record["id"])]
    return {"label": flow.label(locale), "state": flow.state_label(record.get(flow.state_field), locale), "steps": steps,
            "log": log, "url": request.route_path("page.transition", entity=entity.name, id=record["id"]),
            "version": record["version"]}


@view_config(route_name="page.transition", request_method="POST", permission=security.UPDATE)
def transition(request):
    """Take a workflow step (button on the detail page), with the version the page showed."""
    entity = page_entity(request)
    record_id = request.matchdict["id"]
    version = request.POST.get("version", "")
    try:
        workflows.transition(request.records, entity.name, record_id, request.POST.get("transition", ""),
                             comment=request.POST.get("comment"), version=int(version) if version.isdigit() else None)
    except (Conflict, Forbidden, ValidationFailed, Vetoed) as e:
        flash(request, _(request, "The step could not be taken: ${reason}", reason=e.message), "error")
    else:
        flash(request, _(request, "The step was taken."), "success")
    return HTTPFound(safe_next(request.POST.get("next"), default=request.route_path("page.detail", entity=entity.name, id=record_id)))


@view_config(route_name="page.detail", request_method="GET", permission=security.READ)
def detail(request):
    entity = page_entity(request, allow_singleton=True)
    record = request.records.get(entity.name, request.matchdict["id"])
    display = Display(request)
    display.preload(entity, [record])
    tabs = [t for t in (load_tab(request, display, tab) for tab in related_tabs(request, entity, record)) if t]
    system = [(_(request, "Created"), display.system_text("created_at", record.get("created_at")), display.system_text("created_by", record.get("created_by"))),
              (_(request, "Last changed"), display.system_text("updated_at", record.get("updated_at")), display.system_text("updated_by", record.get("updated_by")))]
    files = [{**row, "url": request.route_path("page.file", id=row["id"])} for row in attachments.for_record(request.records, entity.name, record["id"])]
    return render(request, "detail.pt", {
        "entity": entity, "entity_label": entity_label(entity, request.locale_name, plural=True), "record": record,
        "title": request.records.title(entity, record), "sections": detail_sections(request, display, entity, record),
        "related": tabs, "history": history_rows(request, display, entity, record["id"]), "system": system,
        "files": files, "actions": actions(request, entity, record), "workflow": workflow_panel(request, entity, record),
        "can_attach": request.records.access.allowed(entity.name, "update"),
        "sharing": None if entity.singleton else sharing_panel(request, entity, record),
    })


@view_config(route_name="page.delete", request_method="POST", permission=security.DELETE)
def delete(request):
    entity = page_entity(request)
    record = request.records.delete(entity.name, request.matchdict["id"])
    flash(request, _(request, "${title} was moved to the recycle bin.", title=request.records.title(entity, record)), "success")
    return HTTPFound(request.route_path("page.list", entity=entity.name))


@view_config(route_name="page.copy", request_method="POST", permission=security.CREATE)
def copy(request):
    entity = page_entity(request)
    try:
        record = request.records.copy(entity.name, request.matchdict["id"])
    except (ValidationFailed, Vetoed) as e:
        flash(request, _(request, "The copy could not be saved: ${reason}", reason=e.message), "error")
        return HTTPFound(request.route_path("page.detail", entity=entity.name, id=request.matchdict["id"]))
    flash(request, _(request, "A copy was made; you are looking at it now."), "success")
    return HTTPFound(request.route_path("page.edit", entity=entity.name, id=record["id"]))


@view_config(route_name="page.merge", permission=security.MERGE)
def merge(request):
    """Two steps: pick the duplicate (link picker, or one of the similar records suggested), then
    pick the surviving value field by field, seeing what moves over, and confirm."""
    entity = page_entity(request)
    records, display = request.records, Display(request)
    survivor = records.get(entity.name, request.matchdict["id"])
    params = request.POST if request.method == "POST" else request.GET
    duplicate_id = params.get("duplicate", "")
    duplicate, choices, moves = None, [], []
    if duplicate_id.isdigit():
        duplicate = records.get(entity.name, int(duplicate_id))
        if duplicate["id"] == survivor["id"]:
            raise BadRequest("a record cannot be merged with itself", {"duplicate": "same record"})
        for field in shown_fields(records, entity):
            if field.ftype.system_filled or field.type == "table" or field.readonly:
                continue
            mine, theirs = survivor.get(field.name), duplicate.get(field.name)
            if mine == theirs or theirs in (None, "", []):
                continue
            choices.append({"name": field.name, "label": field.label_in(request.locale_name),
                            "mine": display.text(field, mine) or "—", "theirs": display.text(field, theirs),
                            "keep": "theirs" if mine in (None, "", []) else "mine"})   # an empty value is filled in
        moves = merge_moves(request, entity, duplicate)
    if request.method == "POST" and duplicate is not None and params.get("confirm"):
        values = {c["name"]: to_json(entity, c["name"], duplicate.get(c["name"])) for c in choices if params.get("pick." + c["name"]) == "theirs"}
        try:
            records.merge(entity.name, survivor["id"], duplicate["id"], values)
        except (ValidationFailed, Vetoed, Forbidden) as e:
            flash(request, _(request, "The records could not be merged: ${reason}", reason=e.message), "error")
            return HTTPFound(request.route_path("page.merge", entity=entity.name, id=survivor["id"]) + f"?duplicate={duplicate['id']}")
        flash(request, _(request, "The records were merged; the duplicate is in the recycle bin."), "success")
        return HTTPFound(request.route_path("page.detail", entity=entity.name, id=survivor["id"]))
    suggestions = []
    if duplicate is None and entity.title_field:
        suggestions = [{"id": r["id"], "title": records.title(entity, r),
                        "url": request.route_path("page.merge", entity=entity.name, id=survivor["id"]) + f"?duplicate={r['id']}"}
                       for r in similar_records(records, entity, survivor.get(entity.title_field), exclude=survivor["id"])]
    return render(request, "merge.pt", {
        "entity": entity, "entity_label": entity_label(entity, request.locale_name, plural=True), "survivor": survivor,
        "title": records.title(entity, survivor), "duplicate": duplicate,
        "duplicate_title": records.title(entity, duplicate) if duplicate else None, "choices": choices,
        "lookup": request.route_path("page.lookup", entity=entity.name), "moves": moves, "suggestions": suggestions,
    })


def merge_moves(request, entity, duplicate):
    """What a merge moves from ``duplicate`` to the survivor, as the user may see it: the records
    linking to it (contacts, follow-ups, any entity's link or many-links field), its child rows
    and its attachments. [{"label", "count", "url"}]; records out of the user's reach move too
    but are not counted here."""
    records, model, locale = request.records, request.registry.crm.metadata, request.locale_name
    out = []
    for other, field in model.references_to(entity.name):
        if other.is_child or other.singleton or not records.access.allowed(other.name, "read"):
            continue
        try:
            page = records.list(other.name, filters=[(field.name, "eq", duplicate["id"])], limit=1, count=True)
        except (BadRequest, Forbidden):
            continue
        if page.items:
            label = f"{entity_label(other, locale, plural=True)} · {field.label_in(locale)}"
            out.append({"label": label, "count": page.count_text,
                        "url": request.route_path("page.list", entity=other.name) + f"?{field.name}={duplicate['id']}"})
    for field in shown_fields(records, entity):
        if field.type == "table" and duplicate.get(field.name):
            out.append({"label": field.label_in(locale), "count": len(duplicate[field.name]), "url": None})
    files = attachments.for_record(records, entity.name, duplicate["id"])
    if files:
        out.append({"label": _(request, "Attachments"), "count": len(files), "url": None})
    return out


@view_config(route_name="page.attach", request_method="POST", permission=security.UPDATE)
def attach(request):
    entity = page_entity(request)
    record = request.records.get(entity.name, request.matchdict["id"])
    if not request.records.access.allowed(entity.name, "update"):
        raise Forbidden("you may not add files to this record")
    upload = request.POST.get("file")
    if not getattr(upload, "filename", None):
        flash(request, _(request, "Choose a file first."), "error")
    else:
        try:
            attachments.save(request.records, upload.file, upload.filename, upload.type, entity=entity.name, record_id=record["id"])
        except ValidationFailed as e:
            flash(request, e.message, "error")
        else:
            flash(request, _(request, "The file was added."), "success")
    return HTTPFound(request.route_path("page.detail", entity=entity.name, id=record["id"]) + "#attachments")


@view_config(route_name="page.file", request_method="GET", permission=security.READ)
def download(request):
    """A file, if it belongs to a record the user may read (else 404, like the record)."""
    records = request.records
    row = attachments.get(records, int(request.matchdict["id"]))
    model = request.registry.crm.metadata
    entity = model.entities.get(row["entity"]) if row["entity"] else None
    allowed = row["created_by"] is not None and row["created_by"] == records.user_id
    if not allowed and entity is not None:
        if row["record_id"] is not None:
            try:
                records.get(entity.name, row["record_id"])
                allowed = True
            except (NotFound, CrmError):
                allowed = False
        elif row["field"] in entity.fields and row["field"] not in records.access.hidden_fields(entity.name):
            allowed = bool(records.list(entity.name, filters=[(row["field"], "eq", row["id"])], limit=1).items)
    if not allowed:
        raise NotFound(f"no attachment {row['id']}")
    path = attachments.path_of(records, row)
    if not path.exists():
        raise NotFound("the file is missing from the files folder")
    content_type = row["content_type"] or mimetypes.guess_type(row["filename"])[0] or "application/octet-stream"
    response = FileResponse(str(path), request=request, content_type=content_type)
    inline = content_type.startswith("image/") and content_type != "image/svg+xml"
    response.headers["Content-Disposition"] = f"{'inline' if inline else 'attachment'}; filename*=UTF-8''{quote(row['filename'])}"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response

