"""``/`` (to the home page or the login page) and the home page: the user's unread reminders
(notifications, raised by jobs and workflows), what waits for their approval (count and the
oldest few), the records they changed most recently, and shortcuts to create records."""
from pyramid.httpexceptions import HTTPFound
from pyramid.view import view_config

from crm.core import notifications, workflow as workflows
from crm.core.errors import BadRequest, Forbidden
from crm.core.web import security
from crm.core.web.pages import approvals
from crm.core.web.pages.helpers import _, entity_label, flash, render

RECENT = 12
APPROVALS = 100     # counted on the home page ("100+" above)
APPROVALS_SHOWN = 5


@view_config(route_name="page.root")
def root(request):
    return HTTPFound(request.route_path("page.home" if request.identity else "page.login"))


@view_config(route_name="page.home", request_method="GET", permission=security.READ)
def home(request):
    records, model = request.records, request.registry.crm.metadata
    user_id = request.identity["id"]
    recent, shortcuts = [], []
    for entity in model.entities.values():
        if entity.is_child or entity.singleton or not records.access.allowed(entity.name, "read"):
            continue
        if records.access.allowed(entity.name, "create"):
            shortcuts.append((entity_label(entity, request.locale_name), request.route_path("page.new", entity=entity.name)))
        try:
            page = records.list(entity.name, filters=[("updated_by", "eq", user_id)], sort="-updated_at", limit=RECENT)
        except (BadRequest, Forbidden):
            continue
        for record in page.items:
            recent.append({"at": record["updated_at"], "title": records.title(entity, record),
                           "entity": entity.label_in(request.locale_name),
                           "url": request.route_path("page.detail", entity=entity.name, id=record["id"])})
    recent.sort(key=lambda r: (r["at"] is not None, r["at"]), reverse=True)
    for item in recent:
        item["at"] = item["at"].strftime("%Y-%m-%d %H:%M") if item["at"] else ""
    reminders = []
    for row in notifications.for_user(records, user_id, unread_only=True, limit=RECENT):
        entity = model.entities.get(row["entity"]) if row["entity"] else None
        url = request.route_path("page.detail", entity=entity.name, id=row["record_id"]) \
            if entity is not None and not entity.is_child and row["record_id"] else None
        reminders.append({"title": row["title"], "body": row["body"], "url": url,
                          "due": row["due_on"].isoformat() if row["due_on"] else "",
                          "at": row["created_at"].strftime("%Y-%m-%d %H:%M")})
    waiting = approvals.waiting(request, limit=APPROVALS) if workflows.approves_anything(records) else None
    return render(request, "home.pt", {"recent": recent[:RECENT], "shortcuts": shortcuts, "reminders": reminders,
                                       "approvals": waiting, "approvals_more": waiting is not None and len(waiting) >= APPROVALS,
                                       "approvals_shown": APPROVALS_SHOWN, "greeting": _(request, "Hello, ${name}", name=request.identity.get("display_name") or request.identity["username"])})


@view_config(route_name="page.notifications.read", request_method="POST", permission=security.READ)
def mark_read(request):
    notifications.mark_read(request.records, request.identity["id"])
    flash(request, _(request, "All reminders are marked as read."), "success")
    return HTTPFound(request.route_path("page.home"))
