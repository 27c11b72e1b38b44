"""待我审批 ``/app/approvals``: what waits for the current user across every workflow
(:func:`crm.core.workflow.my_approvals`): the record, its type, state and requester, since when it
waits, and its steps as buttons (with a comment box, for steps that need one). A step taken here
comes back here. The home page shows the count and the first few (:func:`waiting`)."""
from pyramid.view import view_config

from crm.core import workflow as workflows
from crm.core.access import owner_field
from crm.core.web import security
from crm.core.web.pages.helpers import Display, render

LIMIT = 200


def waiting(request, limit=LIMIT):
    """Rows for the approvals list, oldest waiting first within each workflow."""
    records, model, locale = request.records, request.registry.crm.metadata, request.locale_name
    found = workflows.my_approvals(records, limit=limit)
    since = {}
    for name in {name for name, _r, _s in found}:
        ids = [record["id"] for n, record, _s in found if n == name]
        since.update({(name, i): at for i, at in workflows.entered_at(records, name, ids).items()})
    display = Display(request)
    rows = []
    for name, record, steps in found:
        entity, flow = model.entities[name], model.workflows[name]
        owner = record.get(owner_field(entity))
        rows.append({
            "entity": name, "entity_label": entity.label_in(locale), "workflow": flow.label(locale), "id": record["id"],
            "title": records.title(entity, record), "url": request.route_path("page.detail", entity=name, id=record["id"]),
            "state": flow.state_label(record.get(flow.state_field), locale),
            "requester": display.system_text("created_by", owner) if owner else "",
            "since": display.system_text("at", since.get((name, record["id"]))),
            "steps": [flow.describe(t, locale) for t in steps], "version": record["version"],
            "action": request.route_path("page.transition", entity=name, id=record["id"]),
        })
    return rows


@view_config(route_name="page.approvals", request_method="GET", permission=security.READ)
def approvals(request):
    rows = waiting(request)
    return render(request, "approvals.pt", {"rows": rows, "more": len(rows) >= LIMIT, "limit": LIMIT,
                                            "back": request.route_path("page.approvals")})
