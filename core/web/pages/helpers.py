"""What every page needs: texts, the layout's data (user, menu, language, flash messages, CSRF
token), the entity a URL names, and values as people read them (:class:`Display`)."""
import datetime as dt
import json
import logging
from decimal import Decimal
from functools import cached_property

import sqlalchemy as sa
from pyramid.csrf import get_csrf_token
from pyramid.renderers import get_renderer, render_to_response

from crm.core import attachments, auth, dictionaries, notifications, workflow as workflows
from crm.core.errors import Forbidden, NotFound
from crm.core.registry import text_in
from crm.core.tables import departments, users
from crm.core.web.pages import markup
from crm.core.web.pages.i18n import LOCALE_NAMES, LOCALES, translate, translator

log = logging.getLogger(__name__)
TEMPLATES = "crm.ui:templates/"
CORE_MENU_ORDER = ("customer", "contact", "follow_up", "product")
CHOICES_LIMIT = 200  # more users or departments than this: pickers that search, not <select>s listing all
FIELD_MACROS = ("text", "textarea", "number", "boolean", "date", "select", "multiselect", "region", "link", "links",
                "user", "rating", "file", "table", "readonly", "json")


def _(request, msgid, **mapping):
    return translate(request, msgid, **mapping)


def N_(msgid):
    """Marks a message id for the catalogs where it is defined; ``_`` translates it later."""
    return msgid


def render(request, template, values, status=200):
    response = render_to_response(TEMPLATES + template, values, request=request)
    response.status_int = status
    return response


def flash(request, text, kind="info"):
    request.session.flash({"text": text, "kind": kind})


def renderer_globals(event):
    request = event.get("request")
    # only templates need the layout; the API's JSON responses go through BeforeRender too
    if request is None or "ui" in event or not str(event.get("renderer_name", "")).endswith(".pt"):
        return
    event["_"] = translator(request)
    event["ui"] = Chrome(request)


def page_entity(request, name=None, allow_singleton=False):
    """The entity a page URL names, or NotFound (unknown, a child table, or a singleton)."""
    name = request.matchdict.get("entity") if name is None else name
    entity = request.registry.crm.metadata.entities.get(name)
    if entity is None or entity.is_child or (entity.singleton and not allow_singleton):
        raise NotFound(f"no entity {name!r}")
    return entity


def entity_label(entity, locale, plural=False):
    if plural and entity.spec.get("label_plural"):
        return text_in(entity.spec["label_plural"], locale)
    return entity.label_in(locale)


def may_manage_users(request):
    """Administrators and holders of the ``users.manage`` permission manage users, departments and roles."""
    return bool((request.identity or {}).get("is_admin")) or request.records.access.has("users.manage")


def require_user_manager(request):
    if not may_manage_users(request):
        raise Forbidden("only administrators and holders of users.manage manage users, departments and roles")


# what the organisation and account services report per field (short codes) as people read it
PROBLEMS = {
    "required": N_("Required."), "too long": N_("Too long."), "taken": N_("This name is taken already."),
    "cycle": N_("That would make a loop."), "self": N_("A user cannot be their own manager."),
    "unknown department": N_("No such department."), "unknown user": N_("No such user."),
    "too short": N_("At least ${n} characters."), "same": N_("The new password must differ from the current one."),
    "wrong": N_("The current password is wrong."), "mismatch": N_("The two passwords differ."),
    "invalid": N_("Not a valid value."), "in the past": N_("The date must lie in the future."),
    "own account": N_("You cannot do this to your own account."), "unknown": N_("Unknown value."),
}


def problem_texts(request, fields):
    """{field: message} of a service's ValidationFailed, in the user's language."""
    return {name: _(request, PROBLEMS[code], n=auth.MIN_PASSWORD) if code in PROBLEMS else str(code)
            for name, code in (fields or {}).items()}


def shown_fields(records, entity):
    """Fields the user may see (neither hidden in metadata nor by their roles), in metadata order."""
    hidden = records.access.hidden_fields(entity.name)
    return [f for f in entity.fields.values() if not f.hidden and f.name not in hidden]


class Chrome:
    """The layout's data, computed when a template asks for it."""

    def __init__(self, request):
        self.request = request
        self.locale = request.locale_name if request.locale_name in LOCALES else LOCALES[0]
        self.locales = [(name, LOCALE_NAMES[name]) for name in LOCALES]

    @cached_property
    def user(self):
        return self.request.identity

    @property
    def user_name(self):
        return (self.user or {}).get("display_name") or (self.user or {}).get("username")

    @cached_property
    def csrf_token(self):
        return get_csrf_token(self.request)

    @cached_property
    def flashes(self):
        return self.request.session.pop_flash()

    @property
    def path_qs(self):
        return self.request.path_qs

    @cached_property
    def notifications(self):
        """Unread notifications (reminders) of the user, for the top bar."""
        try:
            return notifications.unread_count(self.request.records, self.user["id"]) if self.user else 0
        except Exception:  # an error page after a failed transaction still renders
            log.warning("could not count notifications", exc_info=True)
            return 0

    def static(self, path):
        return self.request.static_path("crm.ui:static/" + path)

    def options(self, choices, selected=None):
        """``<option>`` elements, escaped (``${structure: ui.options(...)}``; crm.core.web.pages.markup)."""
        return markup.options(choices, selected)

    def checks(self, name, choices):
        """Checkboxes in labels, escaped (``${structure: ui.checks(...)}``; crm.core.web.pages.markup)."""
        return markup.checks(name, choices)

    @cached_property
    def macros(self):
        return {name: get_renderer(f"{TEMPLATES}fields/{name}.pt").implementation().macros["input"] for name in FIELD_MACROS}

    @cached_property
    def menu(self):
        try:
            return build_menu(self.request) if self.user else []
        except Exception:  # an error page after a failed transaction still renders
            log.warning("could not build the menu", exc_info=True)
            return []


def build_menu(request):
    """待我审批 (when the user approves something), entries for the entities the user may read, then
    the plugins' ``crm_menu_entries`` the user has what they need for (an entry naming an entity
    takes the place of that entity's default entry), then administration; nested one level by
    ``parent``, sorted by ``order``."""
    records, runtime, locale = request.records, request.registry.crm, request.locale_name
    entries = []
    if workflows.approves_anything(records):
        entries.append({"id": "approvals", "label": _(request, "My approvals"), "order": 5,
                        "url": request.route_path("page.approvals"), "parent": None})
    for i, entity in enumerate(runtime.metadata.entities.values()):
        if entity.is_child or entity.singleton or not records.access.allowed(entity.name, "read"):
            continue
        order = CORE_MENU_ORDER.index(entity.name) * 10 if entity.name in CORE_MENU_ORDER else 100 + i
        entries.append({"id": entity.name, "label": entity_label(entity, locale, plural=True), "order": order,
                        "url": request.route_path("page.list", entity=entity.name), "parent": None, "entity": entity.name,
                        "default": True})
    placed = set()   # entities a plugin's entry places elsewhere: their default entries go
    for _plugin, items in runtime.plugins.call_each("crm_menu_entries"):
        for item in items or []:
            if not menu_entry_allowed(records, item):
                continue
            url, label = item.get("url"), item.get("label")
            if item.get("entity"):
                target = runtime.metadata.entities.get(item["entity"])
                if target is None or target.is_child:
                    continue
                url = url or request.route_path("page.list", entity=target.name)
                label = label or entity_label(target, locale, plural=True)  # a placement names the entity alone
            if item.get("entity") and not item.get("url"):  # the plugin's placement replaces the default entry of that entity
                placed.add(item["entity"])
            entries.append({"id": item.get("id") or url, "label": text_in(label or item.get("id") or "?", locale),
                            "order": item.get("order", 500), "url": url, "parent": item.get("parent"), "entity": item.get("entity")})
    if placed:
        entries = [e for e in entries if not (e.get("default") and e["entity"] in placed)]
    admin = []
    if records.access.has("recycle_bin"):
        admin.append({"id": "trash", "label": _(request, "Recycle bin"), "order": 910, "url": request.route_path("page.trash"), "parent": "admin"})
    if may_manage_users(request):
        for order, (route, label) in enumerate((("page.admin.users", N_("Users")), ("page.admin.departments", N_("Departments")),
                                                 ("page.admin.roles", N_("Roles")), ("page.admin.access", N_("Effective access")))):
            admin.append({"id": route.split(".")[-1], "label": _(request, label), "order": 920 + order,
                          "url": request.route_path(route), "parent": "admin"})
    for entity in runtime.metadata.entities.values():
        if entity.singleton and records.access.allowed(entity.name, "read"):
            admin.append({"id": entity.name, "label": entity_label(entity, locale), "order": 930,
                          "url": request.route_path("page.list", entity=entity.name), "parent": "admin"})
    if admin:
        entries.append({"id": "admin", "label": _(request, "Administration"), "order": 900, "url": None, "parent": None})
        entries += admin
    ids = {e["id"] for e in entries}
    top = [dict(e, children=[]) for e in entries if not e["parent"] or e["parent"] not in ids]
    by_id = {e["id"]: e for e in top}
    for e in entries:
        if e["parent"] and e["parent"] in by_id and by_id[e["parent"]] is not e:
            by_id[e["parent"]]["children"].append(dict(e, children=[]))
    path = request.path
    for e in top:
        e["children"].sort(key=lambda c: c["order"])
        for item in [e] + e["children"]:
            item["active"] = bool(item["url"]) and (path == item["url"] or path.startswith(item["url"] + "/"))
    top.sort(key=lambda e: e["order"])
    return [e for e in top if e["url"] or e["children"]]


def menu_entry_allowed(records, item):
    """What a menu entry needs: its ``permission`` (a name or a list, any of them) and, with an
    ``entity``, its ``action`` on it (default ``read``)."""
    needed = item.get("permission")
    if needed and not any(records.access.has(p) for p in ([needed] if isinstance(needed, str) else needed)):
        return False
    if item.get("entity"):
        return records.access.allowed(item["entity"], item.get("action") or "read")
    return True


class Display:
    """Values as people read them: dictionary labels, user and department names, linked titles,
    formatted numbers and dates. Looked up once per request; link titles go through the record
    service, so a linked record the user may not see shows as its number only."""

    def __init__(self, request):
        self.request = request
        self.records = request.records
        self.locale = request.locale_name
        self._dicts, self._users, self._departments, self._titles, self._files = None, None, None, {}, {}
        self._user_names, self._counts, self._item_maps, self._walks = {}, {}, {}, {}
        self._department_names, self._detail_prefixes = {}, {}

    def detail_url(self, entity_name, record_id):
        """``route_path("page.detail", ...)``, its part before the id made once per entity and
        request: a list page links ~100 records, and Pyramid takes 7 µs to make each URL."""
        prefix = self._detail_prefixes.get(entity_name)
        if prefix is None:
            url = self.request.route_path("page.detail", entity=entity_name, id=0)
            assert url.endswith("/0"), url  # the route's pattern ends with its {id}
            prefix = self._detail_prefixes[entity_name] = url[:-1]
        return prefix + str(int(record_id))

    # --- look-ups ----------------------------------------------------------------------------

    def dictionary_items(self, name, include_inactive=True):
        if self._dicts is None:
            self._dicts = dictionaries.all_items(self.records.session)
        items = self._dicts.get(name, [])
        return items if include_inactive else [i for i in items if i["active"]]

    def _by_value(self, dictionary):
        if dictionary not in self._item_maps:
            self._item_maps[dictionary] = {i["value"]: i for i in self.dictionary_items(dictionary)}
        return self._item_maps[dictionary]

    def label(self, dictionary, value):
        item = self._by_value(dictionary).get(value)
        return text_in(item["label"], self.locale) if item is not None else str(value)

    def choices(self, dictionary, current=None):
        """[(value, label, depth)] of the active items (tree dictionaries depth first), plus the
        current value when it was retired."""
        out = list(self._walked(dictionary))
        values = {v for v, _l, _d in out}
        for value in (current if isinstance(current, list) else [current]):
            if value not in (None, "") and value not in values:
                out.append((value, self.label(dictionary, value), 0))
        return out

    def _walked(self, dictionary):
        """The active items of a dictionary depth first, once per page (a list page asks for the
        same dictionary for its filters, its bulk change and its cells)."""
        if dictionary not in self._walks:
            items = self.dictionary_items(dictionary, include_inactive=False)
            parents = {i["value"]: i["parent_value"] for i in items}
            children = {}
            for item in items:
                children.setdefault(item["parent_value"] if item["parent_value"] in parents else None, []).append(item)
            out = []

            def walk(parent, depth):
                for item in children.get(parent, []):
                    out.append((item["value"], text_in(item["label"], self.locale), depth))
                    walk(item["value"], depth + 1)
            walk(None, 0)
            self._walks[dictionary] = tuple(out)
        return self._walks[dictionary]

    def tree(self, dictionary):
        """The active items as a nested JSON-able tree (for the region cascade)."""
        def node(item):
            return {"v": item["value"], "l": text_in(item["label"], self.locale), "c": [node(c) for c in item["children"]]}
        return [node(i) for i in dictionaries.nest(self.dictionary_items(dictionary, include_inactive=False))]

    def region_path(self, dictionary, value):
        items = self._by_value(dictionary)
        labels, seen = [], set()
        while value in items and value not in seen:
            seen.add(value)
            labels.append(text_in(items[value]["label"], self.locale))
            value = items[value]["parent_value"]
        return " / ".join(reversed(labels)) if labels else str(value)

    def descendants(self, dictionary, values):
        """``values`` and every item below them (a region filter matches its sub-regions)."""
        items = self.dictionary_items(dictionary)
        out, todo = set(), list(values)
        while todo:
            value = todo.pop()
            if value not in out:
                out.add(value)
                todo += [i["value"] for i in items if i["parent_value"] == value]
        return sorted(out)

    @property
    def users(self):
        if self._users is None:
            rows = self.records.session.execute(sa.select(users.c.id, users.c.username, users.c.display_name, users.c.active)
                                                .order_by(users.c.display_name, users.c.id))
            self._users = {r.id: (r.display_name or r.username, r.active) for r in rows}
        return self._users

    def user_choices(self, current=None):
        return [(i, name) for i, (name, active) in self.users.items() if active or i == current]

    def user_name(self, user_id):
        """A user's name, reading only the users a page shows (not every user, as ``users`` does)."""
        if self._users is not None:
            return self._users.get(user_id, (f"#{user_id}", True))[0]
        if user_id not in self._user_names:
            self.load_user_names([user_id])
        return self._user_names[user_id] or f"#{user_id}"

    def load_user_names(self, ids):
        self._load_names(self._user_names, sa.select(users.c.id, users.c.username, users.c.display_name), users.c.id, ids,
                         lambda r: r.display_name or r.username)

    def _load_names(self, known, select, id_column, ids, name_of):
        """Add to ``known`` (id → name, None when there is no such row) the names of the ``ids``
        it lacks, read by ``select`` in chunks of 500 ids."""
        wanted = sorted({i for i in ids if isinstance(i, int) and i not in known})
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            known.update({r.id: name_of(r) for r in self.records.session.execute(select.where(id_column.in_(chunk)))})
            for i in chunk:
                known.setdefault(i, None)

    def many(self, kind):
        """True when there are too many active users (``kind`` "user") or departments to list them
        all in a page: their fields then get a picker that searches (:func:`lookup_url`)."""
        if kind not in self._counts:
            table = users if kind == "user" else departments
            first = sa.select(table.c.id).where(table.c.active).limit(CHOICES_LIMIT + 1).subquery()
            self._counts[kind] = self.records.session.execute(sa.select(sa.func.count()).select_from(first)).scalar()
        return self._counts[kind] > CHOICES_LIMIT   # (counting stops there: every page asks, for both)

    def lookup_url(self, kind):
        return self.request.route_path("page.directory.lookup", kind="users" if kind == "user" else "departments")

    def picker_title(self, kind, value):
        if not isinstance(value, int):
            return ""
        return self.user_name(value) if kind == "user" else self.department_name(value)

    @property
    def departments(self):
        if self._departments is None:
            rows = self.records.session.execute(sa.select(departments.c.id, departments.c.name, departments.c.parent_id)
                                                .order_by(departments.c.sort_order, departments.c.id))
            self._departments = {r.id: (r.name, r.parent_id) for r in rows}
        return self._departments

    def department_name(self, department_id):
        """A department's name, reading only the departments a page shows (a detail page read all
        1,000 departments of a large company to name one)."""
        if self._departments is not None:
            return self._departments.get(department_id, (f"#{department_id}", None))[0]
        if department_id not in self._department_names:
            self.load_department_names([department_id])
        return self._department_names[department_id] or f"#{department_id}"

    def load_department_names(self, ids):
        self._load_names(self._department_names, sa.select(departments.c.id, departments.c.name), departments.c.id, ids,
                         lambda r: r.name)

    def department_choices(self, current=None):
        return [(i, name) for i, (name, _p) in self.departments.items()]

    def preload(self, entity, rows):
        """Read the titles of every record ``rows`` link to, one query per linked entity, and the
        names of the users and of the departments they name, in one query each."""
        wanted, people, teams = {}, set(), set()
        for field in entity.fields.values():
            if field.type == "user":
                people.update(row.get(field.name) for row in rows)
            elif field.type == "department":
                teams.update(row.get(field.name) for row in rows)
            elif field.type in ("link", "links"):
                for row in rows:
                    value = row.get(field.name)
                    for v in (value if isinstance(value, list) else [value]):
                        if isinstance(v, int) and (field.entity, v) not in self._titles:
                            wanted.setdefault(field.entity, set()).add(v)
        for name, ids in wanted.items():
            self.load_titles(name, ids)
        if self._users is None:
            self.load_user_names(people | {row.get(n) for row in rows for n in ("created_by", "updated_by")})
        if self._departments is None and teams:
            self.load_department_names(teams)

    def load_titles(self, entity_name, ids):
        target = self.records.entity(entity_name)
        ids = sorted(ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            page = self.records.list(entity_name, filters=[("id", "in", ",".join(map(str, chunk)))], limit=500)
            for record in page.items:
                self._titles[(entity_name, record["id"])] = self.records.title(target, record)
            for i in chunk:
                self._titles.setdefault((entity_name, i), None)

    def title(self, entity_name, record_id):
        if (entity_name, record_id) not in self._titles:
            try:
                self.load_titles(entity_name, [record_id])
            except Exception:
                self._titles[(entity_name, record_id)] = None
        return self._titles[(entity_name, record_id)]

    def file(self, attachment_id):
        if attachment_id not in self._files:
            try:
                self._files[attachment_id] = attachments.get(self.records, attachment_id)
            except NotFound:
                self._files[attachment_id] = None
        return self._files[attachment_id]

    # --- formatting ----------------------------------------------------------------------------

    def parts(self, field, value):
        """A value as [(text, url or None)]: links become links to their detail pages."""
        if value is None or value == "" or value == []:
            return []
        request = self.request
        kind = field.spec["result_type"] if field.type == "computed" else field.type
        if kind in ("link", "links"):
            out = []
            for v in (value if isinstance(value, list) else [value]):
                title = self.title(field.entity, v)
                out.append((title, self.detail_url(field.entity, v)) if title is not None
                           else (f"#{v}", None))
            return out
        if kind in ("file", "image"):
            row = self.file(value)
            return [(row["filename"], request.route_path("page.file", id=value))] if row else [(f"#{value}", None)]
        return [(self.text(field, value), None)]

    def text(self, field, value):
        """A value as plain text (lists, exports, titles)."""
        if value is None or value == "" or value == []:
            return ""
        kind = field.spec["result_type"] if field.type == "computed" else field.type
        sep = "、" if self.locale.startswith("zh") else ", "
        if kind == "select":
            return self.label(field.dictionary, value)
        if kind == "region":
            return self.region_path(field.dictionary, value)
        if kind == "multiselect":
            return sep.join(self.label(field.dictionary, v) for v in value)
        if kind == "user":
            return self.user_name(value)
        if kind == "department":
            return self.department_name(value)
        if kind in ("link", "links"):
            return sep.join(t for t, _u in self.parts(field, value))
        if kind in ("file", "image"):
            return sep.join(t for t, _u in self.parts(field, value))
        if kind == "boolean":
            return _(self.request, "Yes") if value else _(self.request, "No")
        if kind == "rating":
            return "★" * int(value) + "☆" * max(0, 5 - int(value))
        if kind in ("money", "decimal"):
            places = 2 if kind == "money" else max(0, -Decimal(value).normalize().as_tuple().exponent)
            return f"{Decimal(value):,.{places}f}"
        if kind == "percent":
            return f"{Decimal(value).normalize():f}%"
        if kind == "datetime":
            return value.strftime("%Y-%m-%d %H:%M") if isinstance(value, dt.datetime) else str(value)
        if kind == "time":
            return value.strftime("%H:%M") if isinstance(value, dt.time) else str(value)
        if kind == "date":
            return value.isoformat() if isinstance(value, dt.date) else str(value)
        if kind == "json":
            return json.dumps(value, ensure_ascii=False)
        return str(value)

    def system_text(self, name, value):
        """created_at, updated_by ... (the system columns)."""
        if value is None:
            return ""
        if name.endswith("_by"):
            return self.user_name(value)
        if isinstance(value, dt.datetime):
            return value.strftime("%Y-%m-%d %H:%M")
        return str(value)
