"""Administration pages: the recycle bin (回收站) and the effective-access page.

Recycle bin: deleted records the user may restore, with who deleted them and when; the record
service decides (the ``recycle_bin`` permission, the ``restore`` action and its scope).
Effective access: for a user and an entity, each action's scope and the roles that grant it,
and each field's access (:meth:`crm.core.access.Access.explain`); for administrators and holders
of ``users.manage`` (linked from the user and role pages).
"""
from pyramid.httpexceptions import HTTPFound
from pyramid.view import view_config

from crm.core import auth
from crm.core.access import ACTIONS
from crm.core.errors import NotFound
from crm.core.records import RecordService
from crm.core.web import security
from crm.core.web.pages.helpers import N_, Display, _, entity_label, flash, page_entity, render, require_user_manager

SCOPE_LABELS = {"none": N_("No access"), "own": N_("Own records (and their reports')"), "department": N_("Own department"),
                "department_tree": N_("Own department and sub-departments"), "all": N_("All records")}
ACTION_LABELS = {"read": N_("Read"), "create": N_("Create"), "update": N_("Change"), "delete": N_("Delete"), "export": N_("Export"),
                 "import": N_("Import"), "assign": N_("Assign"), "restore": N_("Restore from the recycle bin")}
FIELD_LABELS = {"hidden": N_("Hidden"), "readonly": N_("Read-only"), "editable": N_("Editable")}


@view_config(route_name="page.trash", request_method="GET", permission=security.READ)
def trash(request):
    records, model = request.records, request.registry.crm.metadata
    name = request.GET.get("entity") or None
    if name is not None:
        page_entity(request, name)
    display = Display(request)
    rows = []
    for row in records.trash(name, limit=200):
        entity = model.entities.get(row["entity"])
        if entity is None:
            continue
        rows.append({**row, "entity_label": entity.label_in(request.locale_name), "who": display.system_text("deleted_by", row["deleted_by"]),
                     "when": display.system_text("deleted_at", row["deleted_at"])})
    entities = [(e.name, entity_label(e, request.locale_name, plural=True), e.name == name) for e in model.entities.values()
                if not e.is_child and not e.singleton and records.access.allowed(e.name, "restore")]
    return render(request, "trash.pt", {"rows": rows, "entities": entities, "current": name})


@view_config(route_name="page.trash.restore", request_method="POST", permission=security.RESTORE)
def restore(request):
    entity = page_entity(request, request.POST.get("entity", ""))
    record_id = request.POST.get("id", "")
    record = request.records.restore(entity.name, record_id)
    flash(request, _(request, "${title} was restored.", title=request.records.title(entity, record)), "success")
    return HTTPFound(request.route_path("page.trash"))


@view_config(route_name="page.admin.access", request_method="GET", permission=security.READ)
def effective_access(request):
    require_user_manager(request)
    model, session = request.registry.crm.metadata, request.dbsession
    display = Display(request)
    users = [(uid, name) for uid, (name, _active) in display.users.items()]
    entities = [(e.name, entity_label(e, request.locale_name, plural=True)) for e in model.entities.values() if not e.is_child]
    user_param, entity_param = request.GET.get("user", ""), request.GET.get("entity", "")
    result = None
    if user_param and entity_param:
        user = auth.get_user(session, user_id=int(user_param)) if user_param.isdigit() else auth.get_user(session, username=user_param)
        entity = model.entities.get(entity_param)
        if user is None or entity is None:
            raise NotFound("no such user or entity")
        user = {k: v for k, v in user.items() if k != "password_hash"}
        access = RecordService(request.registry.crm, session, user=user, locale=request.locale_name).access
        explained = access.explain(entity.name)
        result = {
            "user": user, "entity": entity, "entity_label": entity.label_in(request.locale_name),
            "user_url": request.route_path("page.admin.user", id=user["id"]),
            "admin": bool(user.get("is_admin")), "active": bool(user.get("active")),
            "roles": [r["name"] for r in access.roles],
            "actions": [{"action": _(request, ACTION_LABELS[a["action"]]), "scope": _(request, SCOPE_LABELS[a["scope"]]),
                         "none": a["scope"] == "none", "granted_by": ", ".join(a["granted_by"]) or "—"} for a in explained["actions"]],
            "fields": [(entity.fields[f].label_in(request.locale_name), f, _(request, FIELD_LABELS[v]), v) for f, v in explained["fields"].items()],
            "permissions": [(p, access.has(p)) for p in sorted(_permissions(request))],
        }
    return render(request, "access.pt", {"users": users, "entities": entities, "user_param": user_param,
                                         "entity_param": entity_param, "result": result, "actions": ACTIONS})


def _permissions(request):
    from crm.core.access import all_permissions
    return all_permissions(request.registry.crm)
