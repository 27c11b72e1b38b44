"""Create and edit forms: ``/app/{entity}/new`` and ``/app/{entity}/{id}/edit``.

GET renders the metadata's layout with one macro per field type; POST turns the form back into
JSON values (:func:`.widgets.parse`) and hands them to the record service, which validates
everything. A refused save renders the form again with the user's input and a message beside
each field (422). An edit carries the ``version`` it was made from: when someone saved the
record meanwhile, the service answers Conflict and the form comes back (409) with the user's
input, what the other person saved, and an explicit "save mine anyway" button.
"""
import json

from pyramid.httpexceptions import HTTPFound
from pyramid.view import view_config

from crm.core.errors import BadRequest, Conflict, Forbidden, ValidationFailed, Vetoed
from crm.core.records import record_to_json
from crm.core.web import security
from crm.core.web.pages import widgets
from crm.core.web.pages.helpers import N_, Display, _, entity_label, flash, page_entity, render


CONFLICT_MESSAGE = N_("Someone else saved this record while you were editing it. Your input is kept below: check it, then save it anyway or reload the page to discard it.")


def defaults(request, entity):
    """A new record's starting values: metadata defaults, then ``?field=value`` from the URL
    (a related tab's "new" button pre-fills the link to the record it came from)."""
    values = {f.name: f.default for f in entity.fields.values() if f.default is not None and not isinstance(f.default, dict)}
    _fields, editable = widgets.form_fields(request.records, entity)
    for name in editable:
        if name in request.GET and entity.fields[name].type not in ("table", "links", "multiselect", "file", "image"):
            value, problem = widgets.convert(request, entity.fields[name], request.GET.get(name))
            if not problem:
                values[name] = value
    return values


def render_form(request, entity, values, errors=None, record=None, message=None, conflict=None, status=200, original=None):
    display = Display(request)
    stored = record_to_json(request.registry.crm.metadata, entity, record) if record else None
    if record is not None and original is None:
        editable = widgets.form_fields(request.records, entity)[1]
        original = {k: v for k, v in stored.items() if k in editable and entity.fields[k].type != "table"}
    errors = widgets.friendly_errors(request, entity, errors or {})
    tabs = widgets.build_form(request, display, entity, values, errors, stored=stored)
    placed = {w.name for t in tabs for s in t.sections for w in s.widgets}
    loose = {k: v for k, v in errors.items() if k.split(".")[0] not in placed}
    if record:
        action = request.route_path("page.edit", entity=entity.name, id=record["id"])
        cancel = request.route_path("page.detail", entity=entity.name, id=record["id"])
        title = request.records.title(entity, record)
    else:
        action = request.route_path("page.new", entity=entity.name)
        cancel = request.route_path("page.list", entity=entity.name)
        title = _(request, "New ${entity}", entity=entity.label_in(request.locale_name))
    return render(request, "form.pt", {
        "entity": entity, "entity_label": entity_label(entity, request.locale_name, plural=True), "tabs": tabs,
        "record": record, "title": title, "action": action, "cancel": cancel, "message": message, "loose_errors": loose,
        "version": (conflict or {}).get("version") or (record or {}).get("version"), "conflict": conflict,
        "today": request.records.today().isoformat(), "values_json": json.dumps(values, ensure_ascii=False, default=str),
        "original": json.dumps(original, ensure_ascii=False, default=str) if original is not None else None,
    }, status=status)


@view_config(route_name="page.new", request_method="GET", permission=security.CREATE)
def new_form(request):
    entity = page_entity(request)
    if not request.records.access.allowed(entity.name, "create"):
        raise Forbidden(f"you may not create {entity.name}")
    return render_form(request, entity, defaults(request, entity))


@view_config(route_name="page.new", request_method="POST", permission=security.CREATE)
def create(request):
    entity = page_entity(request)
    values, problems = widgets.parse(request, entity, request.POST)
    savepoint = request.dbsession.begin_nested()
    try:
        record = request.records.create(entity.name, values)
    except (ValidationFailed, Vetoed) as e:
        savepoint.rollback()
        return render_form(request, entity, values, {**e.fields, **problems}, message=_message(request, e), status=422)
    if problems:  # input of the wrong kind that the service happened to accept: do not keep it
        savepoint.rollback()
        return render_form(request, entity, values, problems, message=_(request, "Please correct the marked fields."), status=422)
    savepoint.commit()
    flash(request, _(request, "${title} was saved.", title=request.records.title(entity, record)), "success")
    if request.POST.get("and_new"):
        return HTTPFound(request.route_path("page.new", entity=entity.name))
    return HTTPFound(request.route_path("page.detail", entity=entity.name, id=record["id"]))


@view_config(route_name="page.edit", request_method="GET", permission=security.UPDATE)
def edit_form(request):
    entity = page_entity(request, allow_singleton=True)
    record = request.records.get(entity.name, request.matchdict["id"])
    if not request.records.access.allowed(entity.name, "update"):
        raise Forbidden(f"you may not change {entity.name}")
    return render_form(request, entity, record_to_json(request.registry.crm.metadata, entity, record), record=record)


@view_config(route_name="page.edit", request_method="POST", permission=security.UPDATE)
def update(request):
    entity = page_entity(request, allow_singleton=True)
    records = request.records
    record = records.get(entity.name, request.matchdict["id"])
    stored = record_to_json(request.registry.crm.metadata, entity, record)
    version = request.POST.get("overwrite_version") or request.POST.get("version") or ""
    if not version.isdigit():
        raise BadRequest("the form has no version; reload the page", {"version": "required"})
    values, problems = widgets.parse(request, entity, request.POST, record=record)
    shown = {**stored, **values}
    original = _original(request)
    changes = widgets.changed_values(entity, values, original) if original is not None else values
    savepoint = request.dbsession.begin_nested()
    try:
        saved = records.update(entity.name, record["id"], changes, version=int(version))
    except Conflict:
        savepoint.rollback()
        display = Display(request)
        base = original if original is not None else {}
        theirs = [(field.label_in(request.locale_name), display.text(field, widgets._python(field, stored.get(name))))
                  for name, field in entity.fields.items()
                  if name in base and field.type != "table" and not widgets.same(field, stored.get(name), base.get(name))]
        conflict = {"version": request.POST.get("version"), "current": record["version"], "theirs": theirs}
        merged = {**stored, **changes}  # the user's changes over what is stored now
        return render_form(request, entity, merged, problems, record=record, status=409, conflict=conflict, original=original,
                           message=_(request, CONFLICT_MESSAGE))
    except (ValidationFailed, Vetoed) as e:
        savepoint.rollback()
        return render_form(request, entity, shown, {**e.fields, **problems}, record=record, message=_message(request, e),
                           status=422, original=original)
    if problems:
        savepoint.rollback()
        return render_form(request, entity, shown, problems, record=record, message=_(request, "Please correct the marked fields."),
                           status=422, original=original)
    savepoint.commit()
    flash(request, _(request, "${title} was saved.", title=records.title(entity, saved)), "success")
    return HTTPFound(request.route_path("page.detail", entity=entity.name, id=saved["id"]))


def _original(request):
    """The record as the edit form was loaded (hidden field ``original``), or None."""
    try:
        original = json.loads(request.POST.get("original") or "null")
    except ValueError:
        return None
    return original if isinstance(original, dict) else None


def _message(request, error):
    if isinstance(error, Vetoed):
        return error.message
    return _(request, "Please correct the marked fields.")
