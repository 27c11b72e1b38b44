"""Access: what a user may do to which records, compiled once per user into SQLAlchemy clauses.

A user's roles give, per entity and action, a *scope* (how far the user reaches) and, per field,
an *access* (hidden, read-only, editable). Several roles combine most-permissively. The record
service adds :meth:`Access.clause` to every query, so a record out of reach is simply not found
(404) on every path: detail, list, search, related lists, export, API, link checks.

Scopes, from narrow to wide:

- ``none``: nothing;
- ``own``: records the user owns, and those of the people they lead (their direct and indirect
  reports by ``manager_id``, and everyone in the departments they manage, sub-departments included);
- ``department``: ``own`` plus records owned by anyone in the user's department;
- ``department_tree``: ``department`` plus the sub-departments, at any depth;
- ``all``: every record.

A record's owner is the user in its ``owner_field`` (default: the ``owner_id`` field when the
entity has one, else ``created_by``). Records shared with the user (or their department) are
added for ``read`` (read or edit shares) and ``update`` (edit shares). Plugins add grants and
restrictions through the ``crm_access_grants`` / ``crm_access_restrictions`` hooks.
Administrators and the system (no user: jobs, the CLI) are not restricted.
"""
import copy
import dataclasses
import datetime as dt
import re

import sqlalchemy as sa

from crm.core.errors import ConfigurationError, ValidationFailed
from crm.core.tables import departments, role_seeds, roles, shares, user_roles, users

ACTIONS = ("read", "create", "update", "delete", "export", "import", "assign", "restore")
SCOPES = ("none", "own", "department", "department_tree", "all")
FIELD_ACCESS = ("hidden", "readonly", "editable")
CORE_PERMISSIONS = {
    "recycle_bin": {"zh_CN": "查看回收站", "en": "See the recycle bin"},
    "users.manage": {"zh_CN": "管理用户和部门", "en": "Manage users and departments"},
    "settings.manage": {"zh_CN": "系统设置", "en": "Manage system settings"},
    "customizations.manage": {"zh_CN": "自定义字段和布局", "en": "Customize fields and layouts"},
}
ROLE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_SALES = ("customer", "contact", "follow_up")
DEFAULT_ROLES = {
    "sales_rep": {
        "label": {"zh_CN": "销售代表", "en": "Sales rep"},
        "rules": {"entities": {
            "*": {"read": "all"},
            **{e: {"read": "own", "create": "all", "update": "own", "delete": "own", "import": "all"} for e in _SALES}},
            "fields": {"customer": {"credit_limit": "readonly"}}, "permissions": []},
    },
    "sales_manager": {
        "label": {"zh_CN": "销售经理", "en": "Sales manager"},
        "rules": {"entities": {
            "*": {"read": "all"},
            **{e: {a: "department_tree" for a in ACTIONS} for e in _SALES}},
            "permissions": ["recycle_bin"]},
    },
    "viewer": {
        "label": {"zh_CN": "只读用户", "en": "Read only"},
        "rules": {"entities": {"*": {"read": "all"}}, "permissions": []},
    },
}


def validate_rules(rules, known_entities=None, known_permissions=None):
    """Problems in a role's rules as {pointer: message} (empty when fine)."""
    problems = {}
    if not isinstance(rules, dict):
        return {"/": "rules are an object with entities, fields, permissions"}
    for entity, actions in (rules.get("entities") or {}).items():
        if known_entities is not None and entity != "*" and entity not in known_entities:
            problems[f"/entities/{entity}"] = "unknown entity"
        for action, scope in (actions or {}).items():
            if action not in ACTIONS:
                problems[f"/entities/{entity}/{action}"] = f"action must be one of {', '.join(ACTIONS)}"
            elif scope not in SCOPES:
                problems[f"/entities/{entity}/{action}"] = f"scope must be one of {', '.join(SCOPES)}"
    for entity, fields in (rules.get("fields") or {}).items():
        for field, value in (fields or {}).items():
            if value not in FIELD_ACCESS:
                problems[f"/fields/{entity}/{field}"] = f"must be one of {', '.join(FIELD_ACCESS)}"
    for name in rules.get("permissions") or []:
        if known_permissions is not None and name not in known_permissions:
            problems[f"/permissions/{name}"] = "unknown permission"
    return problems


def all_permissions(runtime):
    declared = dict(CORE_PERMISSIONS)
    for _, items in runtime.plugins.call_each("crm_permissions"):
        for item in items:
            declared[item["name"]] = item.get("label", item["name"])
    return declared


def plugin_roles(runtime):
    """The roles the enabled plugins ship (``crm_roles``), checked: ``(new_roles, additions)`` with
    ``new_roles`` {name: {"label", "rules", "plugin"}} and ``additions`` [(plugin, role name, rules)].
    A bad definition stops ``crm db upgrade`` naming the plugin (ConfigurationError)."""
    known_entities, known_permissions = set(runtime.metadata.entities), set(all_permissions(runtime))
    new_roles, additions = {}, []
    for plugin, items in runtime.plugins.call_each("crm_roles"):
        for i, item in enumerate(items or []):
            where = f"plugin {plugin!r}, crm_roles item {i}"
            if not isinstance(item, dict) or ("name" in item) == ("extends" in item):
                raise ConfigurationError(f"{where}: a role is a dict with either name (a new role) or extends (additions)")
            problems = validate_rules(item.get("rules"), known_entities, known_permissions)
            if problems:
                pointer, message = next(iter(problems.items()))
                raise ConfigurationError(f"{where}: rules{pointer}: {message}")
            if "extends" in item:
                additions.append((plugin, item["extends"], item["rules"]))
                continue
            name = item["name"]
            if name in DEFAULT_ROLES or name in new_roles:
                raise ConfigurationError(f"{where}: role {name!r} is defined already; use extends to add to it")
            new_roles[name] = {"label": item.get("label") or name, "rules": item["rules"], "plugin": plugin}
    return new_roles, additions


def _addition_items(rules):
    """A role addition as (key, apply) pairs, one per entity action, field rule and permission."""
    for entity, actions in (rules.get("entities") or {}).items():
        for action, scope in (actions or {}).items():
            def widen(target, entity=entity, action=action, scope=scope):
                current = target.setdefault("entities", {}).setdefault(entity, {})
                if SCOPES.index(scope) > SCOPES.index(current.get(action, "none")):
                    current[action] = scope   # an explicit scope of the role wins when it is wider
            yield f"entities/{entity}/{action}", widen
    for entity, fields in (rules.get("fields") or {}).items():
        for field, value in (fields or {}).items():
            def restrict(target, entity=entity, field=field, value=value):
                target.setdefault("fields", {}).setdefault(entity, {}).setdefault(field, value)
            yield f"fields/{entity}/{field}", restrict
    for permission in rules.get("permissions") or []:
        def grant(target, permission=permission):
            granted = target.setdefault("permissions", [])
            if permission not in granted:
                granted.append(permission)
        yield f"permissions/{permission}", grant


def seed_roles(connection, new_roles=None, additions=(), now=None):
    """On ``crm db upgrade``: insert the default roles (the core's, then those the plugins ship)
    that do not exist yet; roles that exist, edited or not, are kept as they are. Then apply the
    plugins' additions to existing roles, each entity action, field rule and permission once
    (recorded in ``crm_role_seeds``): what an administrator later takes away stays away."""
    existing = set(connection.execute(sa.select(roles.c.name)).scalars())
    wanted = {**DEFAULT_ROLES, **(new_roles or {})}
    rows = [dict(name=n, label=r["label"], rules=r["rules"]) for n, r in wanted.items() if n not in existing]
    if rows:
        connection.execute(roles.insert(), rows)
    if not additions:
        return
    applied = set(connection.execute(sa.select(role_seeds.c.key)).scalars())
    stored = {r.name: (r.id, r.rules) for r in connection.execute(sa.select(roles.c.id, roles.c.name, roles.c.rules))}
    done = []
    for plugin, role_name, rules in additions:
        if role_name not in stored:
            continue   # no such role (yet): applied when it exists
        role_id, current = stored[role_name]
        changed = copy.deepcopy(current or {})
        for item, apply in _addition_items(rules):
            key = f"{plugin}:{role_name}:{item}"[:255]
            if key not in applied:
                apply(changed)
                applied.add(key)
                done.append(key)
        if changed != current:
            connection.execute(roles.update().where(roles.c.id == role_id).values(rules=changed))
            stored[role_name] = (role_id, changed)
    if done:
        when = now or dt.datetime.now()
        connection.execute(role_seeds.insert(), [dict(key=k, applied_at=when) for k in done])


def save_role(session, name, label, rules, known_entities=None, known_permissions=None):
    """Create or replace role ``name`` (snake_case); ``label`` is a text per locale."""
    problems = validate_rules(rules, known_entities, known_permissions)
    if not isinstance(name, str) or not ROLE_NAME.match(name):
        problems["/name"] = "a role name is lower-case letters, digits and _ (at most 64), starting with a letter"
    if not isinstance(label, dict) or not any(isinstance(v, str) and v.strip() for v in label.values()):
        problems["/label"] = "a label is required"
    if problems:
        raise ValidationFailed("invalid role rules", problems)
    existing = session.execute(sa.select(roles.c.id).where(roles.c.name == name)).scalar()
    if existing:
        session.execute(roles.update().where(roles.c.id == existing).values(label=label, rules=rules))
        return existing
    return session.execute(roles.insert().values(name=name, label=label, rules=rules).returning(roles.c.id)).scalar()


def assign_roles(session, user_id, role_names):
    ids = dict(session.execute(sa.select(roles.c.name, roles.c.id).where(roles.c.name.in_(role_names))).all())
    missing = set(role_names) - set(ids)
    if missing:
        raise ValidationFailed("unknown roles: " + ", ".join(sorted(missing)), {"roles": "unknown"})
    session.execute(user_roles.delete().where(user_roles.c.user_id == user_id))
    if ids:
        session.execute(user_roles.insert(), [dict(user_id=user_id, role_id=i) for i in ids.values()])


def share(session, entity, record_id, *, user_id=None, department_id=None, access="read", by=None, now):
    if (user_id is None) == (department_id is None) or access not in ("read", "edit"):
        raise ValidationFailed("share with one user or one department, for read or edit", {"access": "invalid"})
    session.execute(shares.delete().where(shares.c.entity == entity, shares.c.record_id == record_id,
                                          shares.c.user_id.is_(user_id) if user_id is None else shares.c.user_id == user_id,
                                          shares.c.department_id.is_(department_id) if department_id is None else shares.c.department_id == department_id))
    session.execute(shares.insert().values(entity=entity, record_id=record_id, user_id=user_id, department_id=department_id,
                                           access=access, created_at=now, created_by=by))


def shares_of(session, entity, record_id):
    stmt = sa.select(shares).where(shares.c.entity == entity, shares.c.record_id == record_id).order_by(shares.c.id)
    return [dict(r) for r in session.execute(stmt).mappings()]


def unshare(session, share_id):
    session.execute(shares.delete().where(shares.c.id == share_id))


class Access:
    """The access of one user, computed once per record service (one request or command)."""

    def __init__(self, records):
        self.records = records
        self.user = records.user
        self.root = self.user is None or bool(self.user.get("is_admin"))
        self._roles = None
        self._tree = None
        self._reports = None
        self._people, self._shared = {}, {}
        self._field_access, self._hidden = {}, {}   # (entity, field) / entity → (roles, answer)

    # --- rules ---------------------------------------------------------------------------------

    @property
    def roles(self):
        if self._roles is None:
            self._roles = [] if self.root else [dict(r) for r in self.records.session.execute(
                sa.select(roles.c.name, roles.c.label, roles.c.rules).join(user_roles, user_roles.c.role_id == roles.c.id)
                .where(user_roles.c.user_id == self.user["id"]).order_by(roles.c.name)).mappings()]
        return self._roles

    def _role_scope(self, role, entity, action):
        rules = role["rules"].get("entities") or {}
        for key in (entity, "*"):
            if action in (rules.get(key) or {}):
                return rules[key][action]
        return "none"

    def scope(self, entity, action):
        """The widest scope any of the user's roles gives for ``action`` on ``entity``."""
        if self.root:
            return "all"
        return max((self._role_scope(r, entity, action) for r in self.roles), key=SCOPES.index, default="none")

    def allowed(self, entity, action):
        return self.scope(entity, action) != "none"

    def has(self, permission):
        return self.root or any(permission in (r["rules"].get("permissions") or []) for r in self.roles)

    def field_access(self, entity, field):
        if self.root:
            return "editable"
        roles = self.roles
        found = self._field_access.get((entity, field))
        if found is None or found[0] is not roles:   # remembered for these roles: validation asks per value
            values = [((r["rules"].get("fields") or {}).get(entity) or {}).get(field, "editable") for r in roles]
            found = self._field_access[entity, field] = (roles, max(values, key=FIELD_ACCESS.index, default="hidden"))
        return found[1]

    def hidden_fields(self, entity):
        if self.root:
            return frozenset()
        roles = self.roles
        found = self._hidden.get(entity)
        if found is None or found[0] is not roles:   # asked per record by validation and by every read
            hidden = frozenset(f for f in self.records.model.entities[entity].fields if self.field_access(entity, f) == "hidden")
            found = self._hidden[entity] = (roles, hidden)
        return found[1]

    def explain(self, entity):
        """For the effective-access page: per action the scope and the roles that give it."""
        rows = []
        for action in ACTIONS:
            scope = self.scope(entity, action)
            granted_by = ["administrator"] if self.root else [r["name"] for r in self.roles if self._role_scope(r, entity, action) == scope and scope != "none"]
            rows.append({"action": action, "scope": scope, "granted_by": granted_by})
        fields = {f: self.field_access(entity, f) for f in self.records.model.entities[entity].fields}
        return {"entity": entity, "actions": rows, "fields": fields}

    # --- who is reached ---------------------------------------------------------------------------

    @property
    def tree(self):
        """department id → (parent id, manager id) for every department."""
        if self._tree is None:
            rows = self.records.session.execute(sa.select(departments.c.id, departments.c.parent_id, departments.c.manager_id))
            self._tree = {r.id: (r.parent_id, r.manager_id) for r in rows}
        return self._tree

    def subtree(self, roots):
        children = {}
        for dept, (parent, _) in self.tree.items():
            children.setdefault(parent, []).append(dept)
        found, todo = set(), list(roots)
        while todo:
            dept = todo.pop()
            if dept not in found:
                found.add(dept)
                todo += children.get(dept, [])
        return found

    def reports(self):
        """Ids of the user's direct and indirect reports (by crm_users.manager_id)."""
        if self._reports is None:
            self._reports = self._find_reports()
        return self._reports

    def _find_reports(self):
        rows = self.records.session.execute(sa.select(users.c.id, users.c.manager_id).where(users.c.manager_id.is_not(None))).all()
        below = {}
        for user_id, manager_id in rows:
            below.setdefault(manager_id, []).append(user_id)
        found, todo = set(), list(below.get(self.user["id"], []))
        while todo:
            user_id = todo.pop()
            if user_id not in found:
                found.add(user_id)
                todo += below.get(user_id, [])
        return found

    def departments_for(self, scope):
        mine = self.user.get("department_id")
        managed = {d for d, (_, manager) in self.tree.items() if manager == self.user["id"]}
        reach = self.subtree(managed)
        if scope == "department" and mine:
            reach.add(mine)
        elif scope == "department_tree" and mine:
            reach |= self.subtree([mine])
        return reach

    def people_for(self, scope):
        """Ids of the users whose records ``scope`` reaches (resolved once: a plain IN list keeps
        the owner index usable for ordered, limited list queries)."""
        if scope not in self._people:
            people = {self.user["id"]} | self.reports()
            reach = self.departments_for(scope)
            if reach:
                people |= set(self.records.session.execute(
                    sa.select(users.c.id).where(users.c.department_id.in_(sorted(reach)))).scalars())
            self._people[scope] = sorted(people)
        return self._people[scope]

    def share_clause(self, entity, action):
        """Records shared with the user or their department, as an id list (None when there are none)."""
        kinds = {"read": ("read", "edit"), "update": ("edit",)}.get(action)
        if not kinds:
            return None
        key = (entity.name, action)
        if key not in self._shared:
            whom = [shares.c.user_id == self.user["id"]]
            if self.user.get("department_id"):
                whom.append(shares.c.department_id == self.user["department_id"])
            self._shared[key] = sorted(set(self.records.session.execute(sa.select(shares.c.record_id).where(
                shares.c.entity == entity.name, shares.c.access.in_(kinds), sa.or_(*whom))).scalars()))
        ids = self._shared[key]
        return id_among(entity.table.c.id, ids) if ids else None

    def reach(self, entity, action="read"):
        """What ``action`` on ``entity`` may reach, in parts (see :class:`Reach`)."""
        hook = self.records.runtime.plugins.hook
        restrictions = tuple(c for cs in hook.crm_access_restrictions(ctx=self.records, entity=entity, action=action, user=self.user) for c in cs)
        scope = self.scope(entity.name, action)
        if scope == "all":
            return Reach(entity, None, (), restrictions)
        grants = [c for cs in hook.crm_access_grants(ctx=self.records, entity=entity, action=action, user=self.user) for c in cs]
        share = self.share_clause(entity, action)
        owners = () if scope == "none" else tuple(self.people_for(scope))
        return Reach(entity, owners, (*([share] if share is not None else []), *grants), restrictions)

    def clause(self, entity, action="read"):
        """The where clause limiting ``action`` on ``entity`` to what the user may reach, or None."""
        return self.reach(entity, action).clause()


@dataclasses.dataclass(frozen=True)
class Reach:
    """A user's reach into one entity for one action:
    ``(owner IN owners OR any of others) AND every restriction``.

    ``owners`` is None when the scope is ``all`` (no owner condition: restrictions only), empty
    for ``none``; ``others`` are the shared records and the plugins' grants. Kept in parts so the
    record service can plan a narrow scope's list per owner (:mod:`crm.core.narrow_lists`)."""
    entity: object
    owners: tuple | None
    others: tuple
    restrictions: tuple

    @property
    def owner_column(self):
        return self.entity.table.c[owner_field(self.entity)]

    def clause(self):
        """The whole reach as one where clause, or None when nothing limits it."""
        clause = None
        if self.owners is not None:
            base = id_among(self.owner_column, self.owners) if self.owners else sa.false()
            clause = sa.or_(base, *self.others)
        if self.restrictions:
            clause = sa.and_(*([clause] if clause is not None else []), *self.restrictions)
        return clause


BOUND_IDS = 32  # id lists up to this length are bound parameters; longer ones are written into the SQL


def id_among(column, ids):
    """``column IN (ids)`` for ids the core read itself (the people of a scope, shared records).
    A short list (a sales rep's own scope) is bound parameters: one cached statement for every
    rep. A manager's scope names hundreds of people, and as many parameters took longer to render
    and send than the query itself (2 ms for 371 on PostgreSQL; SQLAlchemy's ``literal_execute``
    still 0.6 ms), so a long list is written into the SQL as literals (safe: ``int`` of each id).
    That statement is compiled once per such list and stays in SQLAlchemy's cache while the
    manager keeps listing; the planner sees the values either way."""
    ids = [int(i) for i in ids]
    if len(ids) <= BOUND_IDS:
        return column.in_(ids)
    return column.op("IN", is_comparison=True)(sa.literal_column("(" + ", ".join(map(str, ids)) + ")"))


def owner_field(entity):
    if entity.spec.get("owner_field"):
        return entity.spec["owner_field"]
    field = entity.fields.get("owner_id")
    return "owner_id" if field is not None and field.type == "user" else "created_by"
