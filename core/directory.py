"""The organisation (组织架构): departments in a tree of any depth, users in departments with a
manager (上级主管) and roles. Used by the CLI, the admin pages and the tests alike."""
import sqlalchemy as sa

from crm.core import access, auth, query
from crm.core.errors import NotFound, ValidationFailed
from crm.core.tables import departments, user_roles, roles, users


def create_department(session, name, parent_id=None, manager_id=None):
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("department name is required", {"name": "required"})
    if parent_id is not None and not session.execute(sa.select(departments.c.id).where(departments.c.id == parent_id)).first():
        raise ValidationFailed(f"no parent department {parent_id}", {"parent_id": "unknown"})
    return session.execute(departments.insert().values(name=name, parent_id=parent_id, manager_id=manager_id)
                           .returning(departments.c.id)).scalar()


def move_department(session, department_id, parent_id):
    """Re-parent a department; refuses to put it under itself or its own sub-department."""
    if parent_id is not None:
        tree = dict(session.execute(sa.select(departments.c.id, departments.c.parent_id)).all())
        node = parent_id
        while node is not None:
            if node == department_id:
                raise ValidationFailed("a department cannot move under itself", {"parent_id": "cycle"})
            node = tree.get(node)
    session.execute(departments.update().where(departments.c.id == department_id).values(parent_id=parent_id))


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
    row = session.execute(sa.select(departments.c.id).where(departments.c.name == name)).first()
    if row is None:
        raise NotFound(f"no department {name!r}")
    return row.id


def update_user(session, user_id, *, department_id=..., manager_id=..., active=..., display_name=..., role_names=None):
    values = {k: v for k, v in dict(department_id=department_id, manager_id=manager_id, active=active,
                                    display_name=display_name).items() if v is not ...}
    if manager_id not in (..., None) and manager_id == user_id:
        raise ValidationFailed("a user cannot be their own manager", {"manager_id": "self"})
    if values:
        session.execute(users.update().where(users.c.id == user_id).values(**values))
    if role_names is not None:
        access.assign_roles(session, user_id, role_names)


def user_roles_of(session, user_id):
    return list(session.execute(sa.select(roles.c.name).join(user_roles, user_roles.c.role_id == roles.c.id)
                                .where(user_roles.c.user_id == user_id).order_by(roles.c.name)).scalars())


def add_user(session, username, password, *, now, admin=False, department_id=None, manager_id=None, role_names=(), display_name=None):
    user_id = auth.create_user(session, username, password, admin=admin, department_id=department_id,
                               display_name=display_name, now=now)
    update_user(session, user_id, manager_id=manager_id if manager_id is not None else ...,
                role_names=list(role_names) if role_names else None)
    return user_id
