"""Role administration (``/app/admin/roles``), for administrators and holders of ``users.manage``.

A role's editor shows, for every entity (and ``*``, the default for entities the role does not
name), a scope per action, then per field hidden / read-only / editable, then the special
permissions that the core and the enabled plugins declare. Saving goes through
:func:`crm.core.access.save_role`, which validates the rules.

Rules the page cannot show are kept as they are: those for entities or fields of a disabled
plugin, and permissions no enabled plugin declares. An action left at "not set" falls back to
the role's ``*`` entry, and that to no access (docs/permissions.md).
"""
import copy

from pyramid.httpexceptions import HTTPFound
from pyramid.view import view_config

from crm.core import access, directory
from crm.core.errors import Conflict, ValidationFailed
from crm.core.registry import text_in
from crm.core.web import security
from crm.core.web.pages.admin import ACTION_LABELS, FIELD_LABELS, SCOPE_LABELS
from crm.core.web.pages.helpers import _, entity_label, flash, render, require_user_manager
from crm.core.web.pages.i18n import LOCALES

DEFAULTS = "*"


@view_config(route_name="page.admin.roles", request_method="GET", permission=security.READ)
def roles_list(request):
    require_user_manager(request)
    roles = [{**r, "label_text": text_in(r["label"], request.locale_name), "url": request.route_path("page.admin.role", id=r["id"])}
             for r in directory.list_roles(request.dbsession)]
    return render(request, "admin_roles.pt", {"roles": roles})


@view_config(route_name="page.admin.roles.new", permission=security.READ)
def role_new(request):
    require_user_manager(request)
    role = {"id": None, "name": "", "label": {}, "rules": {"entities": {}, "fields": {}, "permissions": []}, "default": False}
    return _editor(request, role)


@view_config(route_name="page.admin.role", permission=security.READ)
def role_edit(request):
    require_user_manager(request)
    return _editor(request, directory.get_role(request.dbsession, int(request.matchdict["id"])))


@view_config(route_name="page.admin.role.delete", request_method="POST", permission=security.READ)
def role_delete(request):
    require_user_manager(request)
    role = directory.get_role(request.dbsession, int(request.matchdict["id"]))
    try:
        directory.delete_role(request.dbsession, role["id"])
    except Conflict:
        flash(request, _(request, "A default role cannot be deleted; change it instead."), "error")
        return HTTPFound(request.route_path("page.admin.role", id=role["id"]))
    flash(request, _(request, "The role ${name} was deleted.", name=role["name"]), "success")
    return HTTPFound(request.route_path("page.admin.roles"))


def _editor(request, role):
    runtime = request.registry.crm
    entities = [e for e in runtime.metadata.entities.values() if not e.is_child]
    known = access.all_permissions(runtime)
    errors, message = {}, None
    if request.method == "POST":
        post = request.POST
        name = role["name"] or post.get("name", "").strip()
        label = {locale: post.get("label." + locale, "").strip() for locale in LOCALES if post.get("label." + locale, "").strip()}
        rules = rules_from_form(post, role["rules"], entities, known)
        try:
            role_id = directory.save_role(request.dbsession, role["id"], name, label, rules)
        except ValidationFailed as e:
            errors = _role_problems(request, e.fields)
            message = _(request, "Please check your input")
            role = {**role, "name": name, "label": label, "rules": rules}
        else:
            flash(request, _(request, "The role ${name} was saved.", name=name), "success")
            return HTTPFound(request.route_path("page.admin.role", id=role_id))
    return render(request, "admin_role.pt", {
        "role": role, "labels": [(locale, (role["label"] or {}).get(locale, "")) for locale in LOCALES],
        "sections": _sections(request, role["rules"], entities), "permissions": _permissions(request, role["rules"], known),
        "errors": errors, "message": message,
        "scope_choices": [(s, _(request, SCOPE_LABELS[s])) for s in access.SCOPES],
        "field_choices": [("readonly", _(request, FIELD_LABELS["readonly"])), ("hidden", _(request, FIELD_LABELS["hidden"]))],
    }, status=422 if errors else 200)


def _role_problems(request, fields):
    """The service's problems as people read them: name and label beside their fields, the rest as is."""
    texts = {"/name": _(request, "Lower-case letters, digits and _, starting with a letter."), "/label": _(request, "Required."),
             "name": _(request, "This name is taken already.")}
    out = {}
    for key, value in fields.items():
        out["name" if key in ("/name", "name") else "label" if key == "/label" else key] = texts.get(key, value)
    return out


def _sections(request, rules, entities):
    """One section per entity (the ``*`` defaults first): a scope per action and, for entities, an
    access per field, with the values the role has now ("" = not set)."""
    locale = request.locale_name
    scopes, fields = rules.get("entities") or {}, rules.get("fields") or {}
    out = [{"name": DEFAULTS, "label": _(request, "All other types"), "open": True, "fields": [],
            "actions": [(a, _(request, ACTION_LABELS[a]), (scopes.get(DEFAULTS) or {}).get(a, "")) for a in access.ACTIONS]}]
    for entity in entities:
        mine = scopes.get(entity.name) or {}
        field_rules = fields.get(entity.name) or {}
        shown = [f for f in entity.fields.values() if not f.hidden]
        out.append({
            "name": entity.name, "label": entity_label(entity, locale, plural=True), "open": bool(mine or field_rules),
            "actions": [(a, _(request, ACTION_LABELS[a]), mine.get(a, "")) for a in access.ACTIONS],
            "fields": [(f.name, f.label_in(locale), field_rules.get(f.name, "") if field_rules.get(f.name) != "editable" else "")
                       for f in shown]})
    return out


def _permissions(request, rules, known):
    have = set(rules.get("permissions") or [])
    return [(name, text_in(label, request.locale_name), name in have) for name, label in sorted(known.items())]


def rules_from_form(post, old, entities, known_permissions):
    """The role's rules from the editor's fields, keeping what the editor does not show."""
    rules = copy.deepcopy(old or {})
    shown = {e.name: e for e in entities}
    scopes = {k: v for k, v in (rules.get("entities") or {}).items() if k != DEFAULTS and k not in shown}
    for name in [DEFAULTS, *shown]:
        chosen = {a: post.get(f"scope.{name}.{a}") for a in access.ACTIONS if post.get(f"scope.{name}.{a}")}
        if chosen:
            scopes[name] = chosen
    fields = {k: v for k, v in (rules.get("fields") or {}).items() if k not in shown}
    for name, entity in shown.items():
        kept = {f: v for f, v in ((rules.get("fields") or {}).get(name) or {}).items()
                if f not in entity.fields or entity.fields[f].hidden}
        chosen = {f.name: post.get(f"field.{name}.{f.name}") for f in entity.fields.values()
                  if not f.hidden and post.get(f"field.{name}.{f.name}") in ("readonly", "hidden")}
        if kept or chosen:
            fields[name] = {**kept, **chosen}
    permissions = [p for p in post.getall("permissions") if p in known_permissions]
    permissions += [p for p in rules.get("permissions") or [] if p not in known_permissions]
    return {**rules, "entities": scopes, "fields": fields, "permissions": sorted(set(permissions))}
