"""The organisation (组织架构): departments in a tree of any depth, users in departments with a
manager (上级主管) and roles, and the roles themselves. Used by the CLI, the admin pages and the
tests alike; the views call these functions and never the tables.

Choices written down (see docs/permissions.md):
- department names are unique among siblings (so ``--parent 北京分公司`` means one thing);
- a deactivated department keeps its members and its place in the tree (scopes do not change);
  it is no longer offered when a user or a sub-department is assigned to a department;
- a user's manager chain may not loop (A → B → A), nor a department be moved under itself;
- a default role (``sales_rep`` …) can be edited but not deleted: ``crm db upgrade`` would bring
  it back.
"""
import sqlalchemy as sa

from crm.core import access, auth, logins, query
from crm.core.errors import Conflict, NotFound, ValidationFailed
from crm.core.tables import departments, user_roles, roles, users

USER_PAGE = 200
USER_COLUMNS = [c for c in users.c if c.name != "password_hash"]


# --- departments ------------------------------------------------------------------------------

def create_department(session, name, parent_id=None, manager_id=None):
    name = _department_name(session, name, parent_id)
    if parent_id is not None:
        _department(session, parent_id, "parent_id")
    if manager_id is not None:
        _user(session, manager_id, "manager_id")
    return session.execute(departments.insert().values(name=name, parent_id=parent_id, manager_id=manager_id)
                           .returning(departments.c.id)).scalar()


def update_department(session, department_id, *, name=..., parent_id=..., manager_id=..., active=...):
    """Rename, move (with a cycle check), set the manager, (de)activate; ``...`` leaves a value as it is."""
    current = _department(session, department_id)
    values = {}
    if parent_id is not ... and parent_id != current["parent_id"]:
        if parent_id is not None:
            _department(session, parent_id, "parent_id")
        _refuse_cycle(session, department_id, parent_id)
        values["parent_id"] = parent_id
    if name is not ...:
        values["name"] = _department_name(session, name, values.get("parent_id", current["parent_id"]), department_id)
    elif "parent_id" in values:
        _department_name(session, current["name"], values["parent_id"], department_id)
    if manager_id is not ...:
        if manager_id is not None:
            _user(session, manager_id, "manager_id")
        values["manager_id"] = manager_id
    if active is not ...:
        values["active"] = bool(active)
    if values:
        session.execute(departments.update().where(departments.c.id == department_id).values(**values))


def move_department(session, department_id, parent_id):
    """Re-parent a department; refuses to put it under itself or its own sub-department."""
    update_department(session, department_id, parent_id=parent_id)


def department_tree(session):
    """Every department depth first (siblings by sort order and name), each with ``depth``,
    ``members`` (active users) and ``path`` (names from the top)."""
    rows = [dict(r) for r in session.execute(sa.select(departments).order_by(departments.c.sort_order, departments.c.name,
                                                                            departments.c.id)).mappings()]
    members = dict(session.execute(sa.select(users.c.department_id, sa.func.count()).where(users.c.active)
                                   .group_by(users.c.department_id)).all())
    ids = {r["id"] for r in rows}
    children = {}
    for row in rows:
        children.setdefault(row["parent_id"] if row["parent_id"] in ids else None, []).append(row)
    out, seen = [], set()

    def walk(parent, depth, path):
        for row in children.get(parent, []):
            if row["id"] in seen:
                continue
            seen.add(row["id"])
            out.append({**row, "depth": depth, "members": members.get(row["id"], 0), "path": path + [row["name"]]})
            walk(row["id"], depth + 1, path + [row["name"]])
    walk(None, 0, [])
    return out


def lookup(session, kind, q, limit=10):
    """Active users (``kind`` "users": name or username contains ``q``) or departments (name
    contains ``q``), as the pickers' look-up answers: [{"id", "title", "detail"}]."""
    pattern = "%" + query.escape_like(q) + "%"
    if kind == "users":
        stmt = sa.select(users.c.id, users.c.display_name, users.c.username).where(users.c.active)
        if q:
            stmt = stmt.where(sa.or_(users.c.display_name.ilike(pattern, escape="\\"), users.c.username.ilike(pattern, escape="\\")))
        rows = session.execute(stmt.order_by(users.c.display_name, users.c.id).limit(limit))
        return [{"id": r.id, "title": r.display_name or r.username, "detail": r.username} for r in rows]
    parent = departments.alias("parent")
    stmt = sa.select(departments.c.id, departments.c.name, parent.c.name.label("parent")).outerjoin(
        parent, parent.c.id == departments.c.parent_id).where(departments.c.active)
    if q:
        stmt = stmt.where(departments.c.name.ilike(pattern, escape="\\"))
    rows = session.execute(stmt.order_by(departments.c.sort_order, departments.c.id).limit(limit))
    return [{"id": r.id, "title": r.name, "detail": r.parent or ""} for r in rows]


def department_by_name(session, name):
    row = session.execute(sa.select(departments.c.id).where(departments.c.name == name).order_by(departments.c.id)).first()
    if row is None:
        raise NotFound(f"no department {name!r}")
    return row.id


def get_department(session, department_id):
    return _department(session, department_id)


def _department(session, department_id, field="id"):
    return _row(session, departments, department_id, "department", field)


def _row(session, table, row_id, what, field):
    """The row of a user or department: NotFound when the URL named it (``field`` "id"), else a
    validation problem of the input field that referred to it."""
    row = session.execute(sa.select(table).where(table.c.id == row_id)).mappings().first()
    if row is None:
        if field == "id":
            raise NotFound(f"no {what} {row_id}")
        raise ValidationFailed(f"no {what} {row_id}", {field: f"unknown {what}"})
    return dict(row)


def _department_name(session, name, parent_id, department_id=None):
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("department name is required", {"name": "required"})
    if len(name) > departments.c.name.type.length:
        raise ValidationFailed("the department name is too long", {"name": "too long"})
    stmt = sa.select(departments.c.id).where(departments.c.name == name, departments.c.parent_id.is_(None) if parent_id is None
                                             else departments.c.parent_id == parent_id)
    if department_id is not None:
        stmt = stmt.where(departments.c.id != department_id)
    if session.execute(stmt).first():
        raise ValidationFailed(f"there is a department {name!r} at this place already", {"name": "taken"})
    return name


def _refuse_cycle(session, department_id, parent_id):
    tree = dict(session.execute(sa.select(departments.c.id, departments.c.parent_id)).all())
    if _reaches(tree, parent_id, department_id):
        raise ValidationFailed("a department cannot move under itself or one of its sub-departments", {"parent_id": "cycle"})


def _reaches(up, start, target):
    """Does following ``up`` (id → parent or manager id) from ``start`` reach ``target``?"""
    node, seen = start, set()
    while node is not None and node not in seen:
        if node == target:
            return True
        seen.add(node)
        node = up.get(node)
    return False


# --- users -----------------------------------------------------------------------------------

def add_user(session, username, password, *, now, admin=False, department_id=None, manager_id=None, role_names=(),
             display_name=None, email=None, phone=None):
    """A new user; all or nothing (a savepoint), since the caller's transaction may still commit."""
    with session.begin_nested():
        if department_id is not None:
            _department(session, department_id, "department_id")
        user_id = auth.create_user(session, username, password, admin=admin, department_id=department_id,
                                   display_name=display_name, email=email, now=now)
        update_user(session, user_id, manager_id=manager_id if manager_id is not None else ..., phone=phone or ...,
                    role_names=list(role_names) if role_names else None)
    return user_id


def update_user(session, user_id, *, department_id=..., manager_id=..., active=..., display_name=..., email=..., phone=...,
                is_admin=..., role_names=None, by=None):
    """Change a user; ``...`` leaves a value as it is, ``role_names`` (a list) replaces the roles.
    ``by``: the user making the change, who may not disable themselves or drop their own
    administrator flag (nobody would be left to undo it). All or nothing (a savepoint)."""
    with session.begin_nested():
        _update_user(session, user_id, department_id, manager_id, active, display_name, email, phone, is_admin, role_names, by)


def _update_user(session, user_id, department_id, manager_id, active, display_name, email, phone, is_admin, role_names, by):
    current = _user(session, user_id)
    if by is not None and by == user_id:
        if active is not ... and not active:
            raise ValidationFailed("you cannot disable your own account", {"active": "own account"})
        if is_admin is not ... and current["is_admin"] and not is_admin:
            raise ValidationFailed("you cannot take away your own administrator rights", {"is_admin": "own account"})
    values = {k: v for k, v in dict(active=active, is_admin=is_admin).items() if v is not ...}
    for key, value in dict(display_name=display_name, email=email, phone=phone).items():
        if value is not ...:
            value = (value or "").strip() or None
            if value is not None and len(value) > users.c[key].type.length:
                raise ValidationFailed(f"{key} is too long", {key: "too long"})
            values[key] = value
    if values.get("display_name", ...) is None:
        values["display_name"] = current["username"]
    if department_id is not ... and department_id != current["department_id"]:
        if department_id is not None:
            _department(session, department_id, "department_id")
        values["department_id"] = department_id
    if manager_id is not ...:
        if manager_id is not None:
            if manager_id == user_id:
                raise ValidationFailed("a user cannot be their own manager", {"manager_id": "self"})
            _user(session, manager_id, "manager_id")
            _refuse_manager_cycle(session, user_id, manager_id)
        values["manager_id"] = manager_id
    if values:
        session.execute(users.update().where(users.c.id == user_id).values(**values))
    if role_names is not None:
        access.assign_roles(session, user_id, role_names)


def list_users(session, q=None, department_id=None, active=None, limit=USER_PAGE):
    """(users, more): users (without password hashes) by display name, each with its ``roles``;
    ``q`` matches username, name, e-mail or phone; ``more`` when there were more than ``limit``."""
    stmt = sa.select(*USER_COLUMNS).order_by(users.c.display_name, users.c.id).limit(limit + 1)
    if q:
        pattern = "%" + q.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where(sa.or_(*(users.c[c].ilike(pattern, escape="\\") for c in ("username", "display_name", "email", "phone"))))
    if department_id is not None:
        stmt = stmt.where(users.c.department_id == department_id)
    if active is not None:
        stmt = stmt.where(users.c.active == bool(active))
    rows = [dict(r) for r in session.execute(stmt).mappings()]
    more = len(rows) > limit
    rows = rows[:limit]
    names = roles_of(session, [r["id"] for r in rows])
    for row in rows:
        row["roles"] = names.get(row["id"], [])
    return rows, more


def user_detail(session, user_id):
    """A user (without password hash) with its ``roles``, or NotFound."""
    user = _user(session, user_id)
    user.pop("password_hash", None)
    user["roles"] = user_roles_of(session, user_id)
    return user


def user_roles_of(session, user_id):
    return roles_of(session, [user_id]).get(user_id, [])


def roles_of(session, user_ids):
    """user id → sorted role names."""
    out = {}
    if user_ids:
        stmt = (sa.select(user_roles.c.user_id, roles.c.name).join(roles, user_roles.c.role_id == roles.c.id)
                .where(user_roles.c.user_id.in_(user_ids)).order_by(roles.c.name))
        for user_id, name in session.execute(stmt):
            out.setdefault(user_id, []).append(name)
    return out


def reset_password(session, user_id, password):
    """An administrator sets a new password; it also lifts a lockout."""
    _user(session, user_id)
    auth.set_password(session, user_id, password)
    logins.unlock(session, user_id)


def unlock_user(session, user_id):
    _user(session, user_id)
    logins.unlock(session, user_id)


def _user(session, user_id, field="id"):
    return _row(session, users, user_id, "user", field)


def _refuse_manager_cycle(session, user_id, manager_id):
    managers = dict(session.execute(sa.select(users.c.id, users.c.manager_id).where(users.c.manager_id.is_not(None))).all())
    if _reaches(managers, manager_id, user_id):
        raise ValidationFailed("this manager reports (directly or not) to the user", {"manager_id": "cycle"})


# --- roles -----------------------------------------------------------------------------------

def list_roles(session):
    """Every role by name, each with ``members`` (how many users have it)."""
    counts = dict(session.execute(sa.select(user_roles.c.role_id, sa.func.count()).group_by(user_roles.c.role_id)).all())
    rows = [dict(r) for r in session.execute(sa.select(roles).order_by(roles.c.name)).mappings()]
    return [{**row, "members": counts.get(row["id"], 0), "default": row["name"] in access.DEFAULT_ROLES} for row in rows]


def get_role(session, role_id):
    row = session.execute(sa.select(roles).where(roles.c.id == role_id)).mappings().first()
    if row is None:
        raise NotFound(f"no role {role_id}")
    return {**dict(row), "default": row["name"] in access.DEFAULT_ROLES}


def save_role(session, role_id, name, label, rules):
    """Create a role (``role_id`` None: the name must be new) or change one (its name stays);
    the rules are validated by :func:`crm.core.access.save_role`. Returns the role's id."""
    if role_id is None:
        if session.execute(sa.select(roles.c.id).where(roles.c.name == name)).first():
            raise ValidationFailed(f"there is a role {name!r} already", {"name": "taken"})
    else:
        name = get_role(session, role_id)["name"]
    return access.save_role(session, name, label, rules)


def delete_role(session, role_id):
    role = get_role(session, role_id)
    if role["default"]:
        raise Conflict(f"{role['name']} is a default role: edit it instead (crm db upgrade would bring it back)",
                       {"name": "default role"})
    session.execute(user_roles.delete().where(user_roles.c.role_id == role_id))
    session.execute(roles.delete().where(roles.c.id == role_id))
