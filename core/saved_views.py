"""Saved list views (保存的视图): a list page's filters, quick search, sort, columns and grouping,
kept under a name, private to their owner or shared with everyone (table ``crm_saved_views``).

``params`` is a list of ``[key, value]`` pairs in the list page's own query-string language
(``category__in``, ``q``, ``sort``, ``columns``, ``group``, ``limit``); paging keys are never
stored. Every function takes the caller's SQLAlchemy session and commits nothing itself.
"""
import sqlalchemy as sa

from crm.core.errors import Forbidden, NotFound, ValidationFailed
from crm.core.tables import saved_views

NOT_STORED = {"cursor", "stack", "view", "csrf_token"}
MAX_PARAMS = 100


def visible(session, entity, user_id):
    """The views of ``entity`` the user may use: their own and the shared ones, by name."""
    stmt = (sa.select(saved_views).where(saved_views.c.entity == entity,
                                         sa.or_(saved_views.c.owner_id == user_id, saved_views.c.shared))
            .order_by(saved_views.c.name, saved_views.c.id))
    return [dict(r) for r in session.execute(stmt).mappings()]


def get(session, view_id, user_id):
    """One view the user may use, or NotFound."""
    try:
        view_id = int(view_id)
    except (TypeError, ValueError):
        raise NotFound(f"no saved view {view_id!r}")
    row = session.execute(sa.select(saved_views).where(
        saved_views.c.id == view_id, sa.or_(saved_views.c.owner_id == user_id, saved_views.c.shared))).mappings().first()
    if row is None:
        raise NotFound(f"no saved view {view_id}")
    return dict(row)


def clean_params(pairs):
    return [[str(k), str(v)] for k, v in pairs if k not in NOT_STORED and str(v) != ""][:MAX_PARAMS]


def save(session, entity, name, params, *, owner_id, shared=False, now):
    """Create the owner's view ``name`` or replace it (same owner, entity and name); returns its id."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ValidationFailed("a view name of 1 to 100 characters is required", {"name": "required"})
    values = dict(params=clean_params(params), shared=bool(shared), updated_at=now)
    existing = session.execute(sa.select(saved_views.c.id).where(
        saved_views.c.entity == entity, saved_views.c.owner_id == owner_id, saved_views.c.name == name)).scalar()
    if existing:
        session.execute(saved_views.update().where(saved_views.c.id == existing).values(values))
        return existing
    return session.execute(saved_views.insert().values(entity=entity, name=name, owner_id=owner_id, created_at=now, **values)
                           .returning(saved_views.c.id)).scalar()


def delete(session, view_id, *, user_id, admin=False):
    """Delete a view: its owner may, an administrator may delete any."""
    view = get(session, view_id, user_id) if not admin else _any(session, view_id)
    if view["owner_id"] != user_id and not admin:
        raise Forbidden("only the owner may delete this view")
    session.execute(saved_views.delete().where(saved_views.c.id == view["id"]))


def _any(session, view_id):
    row = session.execute(sa.select(saved_views).where(saved_views.c.id == int(view_id))).mappings().first()
    if row is None:
        raise NotFound(f"no saved view {view_id}")
    return dict(row)
