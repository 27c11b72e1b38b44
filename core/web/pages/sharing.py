"""Sharing on a record's detail page (客户共享): the shares of the record, a form to share it with a
user or a department for reading or editing, and a button per share to revoke it. Shown to the
people who may change the record; the rules are :mod:`crm.core.sharing`."""
from types import SimpleNamespace

from pyramid.httpexceptions import HTTPFound
from pyramid.view import view_config

from crm.core import sharing
from crm.core.errors import ValidationFailed
from crm.core.web import security
from crm.core.web.pages.helpers import N_, Display, _, flash, page_entity

ACCESS_LABELS = {"read": N_("Read"), "edit": N_("Read and change")}


def sharing_panel(request, entity, record):
    """What the detail page shows about sharing, or None for people who may not manage it."""
    records = request.records
    if not sharing.may_share(records, entity.name, record):
        return None
    display = Display(request)
    rows = [{**row, "access_label": _(request, ACCESS_LABELS[row["access"]]),
             "when": display.system_text("created_at", row["created_at"]), "by": display.system_text("created_by", row["created_by"]),
             "kind": _(request, "User") if row["user_id"] is not None else _(request, "Department"),
             "revoke_url": request.route_path("page.shares.revoke", entity=entity.name, id=record["id"], share_id=row["id"])}
            for row in sharing.shares_of_record(records, entity.name, record)]
    panel = {"rows": rows, "url": request.route_path("page.shares", entity=entity.name, id=record["id"]),
             "access": [(k, _(request, v)) for k, v in ACCESS_LABELS.items()],
             "people": None, "departments": None, "pickers": None}
    if display.many("user") or display.many("department"):
        # pickers that search (the link field's macro): a <select> of 3,712 users and 1,011
        # departments was 260 KB of every detail page
        panel["pickers"] = [_picker("share-user", "user", _(request, "Share with a user"), display.lookup_url("user")),
                            _picker("share-department", "department", _(request, "or a department"), display.lookup_url("department"))]
    else:
        panel["people"] = [(i, n) for i, n in display.user_choices() if i != records.user_id]
        panel["departments"] = display.department_choices()
    return panel


def _picker(input_id, name, label, lookup):
    """What ``fields/link.pt``'s macro needs for an empty single picker."""
    return SimpleNamespace(id=input_id, name=name, label=label, value="", error=None, help=None,
                           extra={"title": None, "lookup": lookup})


def _back(request, entity, record_id):
    return HTTPFound(request.route_path("page.detail", entity=entity.name, id=record_id) + "#sharing")


@view_config(route_name="page.shares", request_method="POST", permission=security.UPDATE)
def add_share(request):
    entity = page_entity(request)
    record_id = request.matchdict["id"]
    post = request.POST
    whom = post.get("whom", "")          # "user:12" or "department:3" from the select, or the pickers' ids
    if not whom and post.get("user", "").isdigit():
        whom = "user:" + post["user"]
    elif not whom and post.get("department", "").isdigit():
        whom = "department:" + post["department"]
    kind, _sep, raw = whom.partition(":")
    target = int(raw) if raw.isdigit() else None
    try:
        sharing.share(request.records, entity.name, record_id, user_id=target if kind == "user" else None,
                      department_id=target if kind == "department" else None, access_level=post.get("access", "read"))
    except ValidationFailed:
        flash(request, _(request, "Choose a user or a department, and read or change."), "error")
    else:
        flash(request, _(request, "The record was shared."), "success")
    return _back(request, entity, record_id)


@view_config(route_name="page.shares.revoke", request_method="POST", permission=security.UPDATE)
def revoke_share(request):
    entity = page_entity(request)
    record_id = request.matchdict["id"]
    sharing.revoke(request.records, entity.name, record_id, int(request.matchdict["share_id"]))
    flash(request, _(request, "The share was revoked."), "success")
    return _back(request, entity, record_id)
