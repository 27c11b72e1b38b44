"""The web UI: server-rendered pages for every entity (contract section 7), generated from the
effective metadata with Chameleon templates from ``crm.ui`` (``ui/templates``), plain CSS and a
little hand-written JavaScript (``ui/static``). No CDN, no build step.

Reading :func:`includeme` tells you the whole UI: the session (signed cookie) and CSRF set-up,
the texts (:mod:`.i18n`), the static files, and the routes in match order. The views are thin:
they parse the request, call the record service (``request.records``) and choose a template.

- :mod:`.session`   login, logout, language switch, the session cookie, CSRF
- :mod:`.home`      ``/`` and the home page (reminders, approvals waiting, recent records)
- :mod:`.approvals` 待我审批: what waits for the user's approval across every workflow
- :mod:`.lists`     list pages: filters, search, sort, keyset paging, group counts, saved views,
                    bulk actions, export; JSON look-ups for link pickers and duplicate names
- :mod:`.forms`     create and edit forms (layout, one macro per field type, conditions)
- :mod:`.detail`    detail pages: related tabs, history, attachments, workflow steps, copy, delete, merge
- :mod:`.boards`    kanban and calendar
- :mod:`.admin`     recycle bin, effective access
- :mod:`.organisation` users and departments (administration)
- :mod:`.roles`     roles: scopes per entity and action, field access, special permissions
- :mod:`.account`   the user's own account: password change, API tokens
- :mod:`.sharing`   sharing a record with users and departments (on the detail page)
- :mod:`.imports`   the import wizard (upload, mapping, dry run, run, report, revert)
- :mod:`.overview`  the 360 view (key figures and every related list of a record)
- :mod:`.envelopes` envelope printing (one record, the list's filter, the selected rows)
- :mod:`.errors`    404 / 403 / 400 / 500 pages (never a traceback)
"""
from chameleon.loader import MemoryLoader
from pyramid.events import BeforeRender
from pyramid_chameleon.zpt import PyramidPageTemplateFile

from crm.core.web.security import EntityContext

PREFIX = "/app"
ID = r"{id:\d+}"
ENTITY = "{entity}"

# (route name, pattern, entity context?) in match order: fixed paths before /app/{entity}
ROUTES = [
    ("root", "/", False),
    ("login", "/login", False),
    ("logout", "/logout", False),
    ("locale", "/locale", False),
    ("home", PREFIX, False),
    ("notifications.read", PREFIX + "/notifications/read", False),
    ("approvals", PREFIX + "/approvals", False),
    ("trash", PREFIX + "/trash", False),
    ("trash.restore", PREFIX + "/trash/restore", False),
    ("admin.access", PREFIX + "/admin/access", False),
    ("admin.users", PREFIX + "/admin/users", False),
    ("admin.users.new", PREFIX + "/admin/users/new", False),
    ("admin.user", PREFIX + "/admin/users/" + ID, False),
    ("admin.user.password", PREFIX + "/admin/users/" + ID + "/password", False),
    ("admin.user.unlock", PREFIX + "/admin/users/" + ID + "/unlock", False),
    ("admin.user.token.revoke", PREFIX + "/admin/users/" + ID + r"/tokens/{token_id:\d+}/revoke", False),
    ("admin.departments", PREFIX + "/admin/departments", False),
    ("admin.department", PREFIX + "/admin/departments/" + ID, False),
    ("admin.roles", PREFIX + "/admin/roles", False),
    ("admin.roles.new", PREFIX + "/admin/roles/new", False),
    ("admin.role", PREFIX + "/admin/roles/" + ID, False),
    ("admin.role.delete", PREFIX + "/admin/roles/" + ID + "/delete", False),
    ("account", PREFIX + "/account", False),
    ("account.password", PREFIX + "/account/password", False),
    ("account.tokens", PREFIX + "/account/tokens", False),
    ("account.token.revoke", PREFIX + "/account/tokens/" + ID + "/revoke", False),
    ("file", PREFIX + "/files/" + ID, False),
    ("directory.lookup", PREFIX + "/directory/{kind:users|departments}/lookup", False),
    ("list", PREFIX + "/" + ENTITY, True),
    ("new", PREFIX + "/" + ENTITY + "/new", True),
    ("export", PREFIX + "/" + ENTITY + "/export", True),
    ("bulk", PREFIX + "/" + ENTITY + "/bulk", True),
    ("bulk.value", PREFIX + "/" + ENTITY + "/bulk/value", True),
    ("views", PREFIX + "/" + ENTITY + "/views", True),
    ("views.delete", PREFIX + "/" + ENTITY + "/views/" + ID + "/delete", True),
    ("lookup", PREFIX + "/" + ENTITY + "/lookup", True),
    ("similar", PREFIX + "/" + ENTITY + "/similar", True),
    ("count", PREFIX + "/" + ENTITY + "/count", True),
    ("kanban", PREFIX + "/" + ENTITY + "/kanban", True),
    ("calendar", PREFIX + "/" + ENTITY + "/calendar", True),
    ("detail", PREFIX + "/" + ENTITY + "/" + ID, True),
    ("edit", PREFIX + "/" + ENTITY + "/" + ID + "/edit", True),
    ("delete", PREFIX + "/" + ENTITY + "/" + ID + "/delete", True),
    ("copy", PREFIX + "/" + ENTITY + "/" + ID + "/copy", True),
    ("merge", PREFIX + "/" + ENTITY + "/" + ID + "/merge", True),
    ("move", PREFIX + "/" + ENTITY + "/" + ID + "/move", True),
    ("transition", PREFIX + "/" + ENTITY + "/" + ID + "/transition", True),
    ("attach", PREFIX + "/" + ENTITY + "/" + ID + "/attachments", True),
    ("shares", PREFIX + "/" + ENTITY + "/" + ID + "/shares", True),
    ("shares.revoke", PREFIX + "/" + ENTITY + "/" + ID + r"/shares/{share_id:\d+}/revoke", True),
]
RESERVED_NAMES = ("trash", "admin", "files", "notifications", "account", "approvals", "directory")  # not usable as entity names in page URLs


class CompiledTemplates(MemoryLoader):
    """Keeps compiled templates for the process. Chameleon's default in-memory loader compiles
    each template again for every Pyramid app built (tests build one per test); the key is
    Chameleon's own digest of the template's file name and text, so an edited template is
    compiled anew."""

    def __init__(self):
        self.cooked = {}

    def get(self, name):
        return self.cooked.get(name)

    def build(self, source, filename):
        self.cooked[filename] = super().build(source, filename)
        return self.cooked[filename]


def includeme(config):
    from crm.core.web.pages import helpers, session
    if type(PyramidPageTemplateFile.loader) is MemoryLoader:  # not when CHAMELEON_CACHE names a folder
        PyramidPageTemplateFile.loader = CompiledTemplates()
    config.include(session)
    config.include("crm.core.web.pages.i18n")
    config.add_static_view("static", "crm.ui:static/", cache_max_age=3600)
    config.add_subscriber(helpers.renderer_globals, BeforeRender)
    for name, pattern, entity in ROUTES:
        config.add_route("page." + name, pattern, factory=EntityContext if entity else None)
    for module in ("session", "home", "approvals", "lists", "forms", "detail", "boards", "admin", "organisation", "roles",
                   "account", "sharing", "errors"):
        config.scan("crm.core.web.pages." + module)
    for module in ("imports", "overview", "envelopes"):   # each adds its own routes (none of them clashes with the ones above)
        config.include("crm.core.web.pages." + module)
