"""Sharing a record (客户共享) with users or departments, for reading or for editing, as people do
it from a record's page: with the permission checks and the audit trail that the bare table
functions in :mod:`crm.core.access` (``share``, ``shares_of``, ``unshare``) leave to their caller.

- Only someone who may change the record (its ``update`` scope reaches it) may see, add or revoke
  its shares; a record the user cannot see is not found (404), as everywhere.
- A share is with one active user or one department (its members, not its sub-departments) and
  gives ``read`` or ``edit``; sharing again with the same user or department replaces the access.
- Each share and revocation is written to the record's history (``share`` / ``unshare``).
"""
import sqlalchemy as sa

from crm.core import access, audit_log
from crm.core.errors import Forbidden, NotFound, ValidationFailed
from crm.core.tables import departments, users

ACCESS = ("read", "edit")


def may_share(records, entity_name, record):
    """May the user manage the shares of ``record`` (a record they can see)?"""
    entity = records.entity(entity_name)
    if entity.singleton or entity.is_child:
        return False
    try:
        records._require(entity, record, "update")  # the record service's own check of an action's scope
    except Forbidden:
        return False
    return True


def list_shares(records, entity_name, record_id):
    """The shares of a record, each with ``whom`` (the user's or department's name)."""
    return shares_of_record(records, entity_name, _record(records, entity_name, record_id))


def shares_of_record(records, entity_name, record):
    """The shares of a record the caller has read and checked with :func:`may_share` (the detail
    page: :func:`list_shares` would read the record and check the scope again, 7 statements)."""
    rows = access.shares_of(records.session, entity_name, record["id"])
    names = _names(records.session, rows)
    return [{**row, "whom": names.get((row["user_id"], row["department_id"]), "?")} for row in rows]


def share(records, entity_name, record_id, *, user_id=None, department_id=None, access_level="read"):
    record = _record(records, entity_name, record_id)
    if access_level not in ACCESS:
        raise ValidationFailed("share for read or edit", {"access": "read or edit"})
    if (user_id is None) == (department_id is None):
        raise ValidationFailed("share with one user or one department", {"whom": "choose a user or a department"})
    if user_id is not None:
        found = records.session.execute(sa.select(users.c.id).where(users.c.id == user_id, users.c.active)).first()
        if not found:
            raise ValidationFailed("no such active user", {"user_id": "unknown user"})
    else:
        found = records.session.execute(sa.select(departments.c.id).where(departments.c.id == department_id)).first()
        if not found:
            raise ValidationFailed("no such department", {"department_id": "unknown department"})
    access.share(records.session, entity_name, record["id"], user_id=user_id, department_id=department_id,
                 access=access_level, by=records.user_id, now=records.now())
    whom = _names(records.session, [{"user_id": user_id, "department_id": department_id}])
    audit_log.event(records, records.entity(entity_name), record["id"], "share",
                    f"{whom.get((user_id, department_id), '?')}: {access_level}")


def revoke(records, entity_name, record_id, share_id):
    record = _record(records, entity_name, record_id)
    row = next((r for r in shares_of_record(records, entity_name, record) if r["id"] == share_id), None)
    if row is None:
        raise NotFound(f"no share {share_id} of this record")
    access.unshare(records.session, share_id)
    audit_log.event(records, records.entity(entity_name), record["id"], "unshare", f"{row['whom']}: {row['access']}")


def _record(records, entity_name, record_id):
    """The record, if the user may see it (else 404) and change it (else 403)."""
    record = records.get(entity_name, record_id)
    if not may_share(records, entity_name, record):
        raise Forbidden("only people who may change this record manage its sharing")
    return record


def _names(session, rows):
    user_ids = {r["user_id"] for r in rows if r["user_id"] is not None}
    department_ids = {r["department_id"] for r in rows if r["department_id"] is not None}
    out = {}
    if user_ids:
        for row in session.execute(sa.select(users.c.id, users.c.username, users.c.display_name).where(users.c.id.in_(user_ids))):
            out[(row.id, None)] = row.display_name or row.username
    if department_ids:
        for row in session.execute(sa.select(departments.c.id, departments.c.name).where(departments.c.id.in_(department_ids))):
            out[(None, row.id)] = row.name
    return out
