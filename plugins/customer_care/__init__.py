"""Customer care (客户跟进与关怀): keeps the customer's follow-up statistics and contacts in order,
and raises the daily reminders the requirements name.

- 最近联系 (``last_contact_at``) follows the customer's follow-ups;
- a follow-up that mentions a product by name links it to the follow-up and the customer's 关心产品;
- one primary contact per customer (the first contact is primary; making another primary demotes
  the previous one; a contact moved to another customer is primary there only if it is alone);
- 点评: only the follow-up owner's manager (or an administrator) may comment on a follow-up (the
  "点评" action on the follow-up opens the comment form);
- 常用跟进内容: templates (entity ``follow_up_template``); a follow-up saved with a template and no
  content gets the template's content;
- deleting a customer moves its contacts to the recycle bin with it; restoring the customer
  restores them (its other links never left); a merge keeps the survivor's primary contact;
- pages (``pages.py``, menu 客户关怀): 超过30天未联系客户, 客户跟进计划提醒, 联系人关怀提醒, 大客户排行,
  市场分布视图, plus the 业务下滑日志 and 常用跟进内容 lists; contact actions 设为主联系人 and 转移到其他客户;
- the daily job ``customer_care.reminders``: 客户跟进计划提醒 (next contact dates due), 超过N天未联系
  (the customer's 联系策略, else the system setting), 业务下滑 (no purchase within the 购买策略 cycle,
  logged in 业务下滑日志), 联系人关怀提醒 (birthdays N days ahead); then e-mails the new reminders
  when a mail server is configured. Running it twice on a day changes nothing.
"""
from pathlib import Path

from crm.hooks import Job, Veto, hookimpl

from . import reminders, views  # noqa: F401  (views are imported by the web pages)

label = {"zh_CN": "客户跟进与关怀", "en": "Customer care"}


@hookimpl
def crm_metadata():
    return [Path(__file__).parent / "metadata"]


@hookimpl
def crm_web_config(config):
    config.include("crm.plugins.customer_care.pages")


@hookimpl
def crm_menu_entries():
    from .pages import menu_entries
    return menu_entries()


@hookimpl
def crm_record_actions(ctx, entity, record):
    from . import pages
    if entity.name == "follow_up":
        return pages.comment_action(ctx, record)
    if entity.name == "contact":
        return pages.contact_actions(ctx, record)
    return []


@hookimpl
def crm_jobs():
    return [Job("customer_care.reminders", reminders.run, label={"zh_CN": "客户提醒", "en": "Customer reminders"})]


# --- follow-ups --------------------------------------------------------------------------------

@hookimpl
def crm_before_update(ctx, entity, old, changes):
    if entity.name == "follow_up":
        _fill_from_template(ctx, changes, old)
    if entity.name == "follow_up" and "manager_comment" in changes:
        if not may_comment(ctx, old.get("owner_id")):
            raise Veto("只有负责人的上级主管可以点评 / only the owner's manager may comment", field="manager_comment")
        changes["commented_by"] = ctx.user_id
        changes["commented_at"] = ctx.now()
    if entity.name == "contact" and "customer_id" in changes and changes["customer_id"] != old.get("customer_id"):
        changes["is_primary"] = not _contacts_of(ctx, changes["customer_id"])


@hookimpl
def crm_after_create(ctx, entity, record):
    if entity.name == "follow_up":
        _follow_up_changed(ctx, record)
    elif entity.name == "contact":
        _keep_one_primary(ctx, record)


@hookimpl
def crm_after_update(ctx, entity, old, record, changes):
    if entity.name == "follow_up":
        _follow_up_changed(ctx, record)
        if old.get("customer_id") != record.get("customer_id"):
            _refresh_last_contact(ctx, old.get("customer_id"))
    elif entity.name == "contact":
        _keep_one_primary(ctx, record)
        if old.get("is_primary") and old.get("customer_id") != record.get("customer_id"):
            _promote_first(ctx, old.get("customer_id"))   # the customer it left keeps a primary contact


@hookimpl
def crm_after_delete(ctx, entity, record):
    if entity.name == "follow_up":
        _refresh_last_contact(ctx, record.get("customer_id"))
    elif entity.name == "customer":
        _contacts_to_recycle_bin(ctx, record)


@hookimpl
def crm_after_restore(ctx, entity, record):
    if entity.name == "follow_up":
        _refresh_last_contact(ctx, record.get("customer_id"))
    elif entity.name == "customer":
        _contacts_back_from_recycle_bin(ctx, record)


@hookimpl
def crm_before_merge(ctx, entity, survivor, duplicate, values):
    if entity.name == "customer" and _primary_contacts(ctx, survivor["id"]):
        _demote(ctx, _primary_contacts(ctx, duplicate["id"]))   # the survivor keeps its primary contact


@hookimpl
def crm_after_merge(ctx, entity, survivor, duplicate):
    if entity.name == "customer":
        _refresh_last_contact(ctx, survivor["id"])


@hookimpl
def crm_before_create(ctx, entity, values):
    if entity.name == "contact" and values.get("customer_id") and not _contacts_of(ctx, values["customer_id"]):
        values["is_primary"] = True
    if entity.name == "follow_up":
        _fill_from_template(ctx, values)


def _fill_from_template(ctx, values, old=None):
    """常用跟进内容: a follow-up whose content is empty gets its chosen template's content."""
    template_id = values.get("customer_care_template_id")
    content = values.get("content", (old or {}).get("content"))
    if not template_id or (content or "").strip():
        return
    import sqlalchemy as sa
    table = ctx.entity("follow_up_template").table
    text = ctx.session.execute(sa.select(table.c.content).where(table.c.id == template_id, table.c.deleted_at.is_(None))).scalar()
    if text:
        values["content"] = text


def may_comment(ctx, owner_id):
    if ctx.user is None or ctx.user.get("is_admin"):
        return True
    from crm.core.auth import get_user
    owner = get_user(ctx.session, user_id=owner_id) if owner_id else None
    if owner is None:
        return False
    if owner.get("manager_id") == ctx.user_id:
        return True
    return owner.get("department_id") in ctx.access.departments_for("own")


def _follow_up_changed(ctx, record):
    _refresh_last_contact(ctx, record.get("customer_id"))
    mentioned = _mentioned_products(ctx, record.get("content"))
    if mentioned:
        ctx.add_links("follow_up", record["id"], "products", mentioned)
        if record.get("customer_id"):
            ctx.add_links("customer", record["customer_id"], "products", mentioned)


def _refresh_last_contact(ctx, customer_id):
    if not customer_id:
        return
    import sqlalchemy as sa
    table = ctx.entity("follow_up").table
    latest = ctx.session.execute(sa.select(sa.func.max(table.c.occurred_at)).where(
        table.c.customer_id == customer_id, table.c.deleted_at.is_(None))).scalar()
    ctx.set_derived("customer", customer_id, {"last_contact_at": latest})


def _mentioned_products(ctx, content):
    if not content:
        return []
    import sqlalchemy as sa
    table = ctx.entity("product").table
    rows = ctx.session.execute(sa.select(table.c.id, table.c.name).where(table.c.deleted_at.is_(None), table.c.name.is_not(None)))
    return [pid for pid, name in rows if len(name) >= 2 and name in content]


def _contacts_of(ctx, customer_id, exclude=None):
    import sqlalchemy as sa
    table = ctx.entity("contact").table
    stmt = sa.select(table.c.id).where(table.c.customer_id == customer_id, table.c.deleted_at.is_(None))
    if exclude:
        stmt = stmt.where(table.c.id != exclude)
    return list(ctx.session.execute(stmt).scalars())


WITH_CUSTOMER = "deleted with customer #{}"


def _contacts_to_recycle_bin(ctx, customer):
    """Deleting a customer moves its contacts to the recycle bin too (those the user may delete;
    any other stays, linked to the deleted customer), marked so that restoring brings them back."""
    from crm.core.errors import Forbidden
    for contact_id in _contacts_of(ctx, customer["id"]):
        try:
            ctx.delete("contact", contact_id, reason=WITH_CUSTOMER.format(customer["id"]))
        except Forbidden:
            continue


def _contacts_back_from_recycle_bin(ctx, customer):
    """Restoring a customer restores the contacts that were deleted with it (not those deleted
    on their own before), when the user may restore contacts; its other links never left."""
    import sqlalchemy as sa
    from crm.core.errors import Forbidden, NotFound
    from crm.core.tables import trash
    ids = ctx.session.execute(sa.select(trash.c.record_id).where(
        trash.c.entity == "contact", trash.c.reason == WITH_CUSTOMER.format(customer["id"]))).scalars().all()
    for contact_id in ids:
        try:
            ctx.restore("contact", contact_id)
        except (Forbidden, NotFound):
            continue


def _primary_contacts(ctx, customer_id):
    table = ctx.entity("contact").table
    import sqlalchemy as sa
    return list(ctx.session.execute(sa.select(table.c.id).where(
        table.c.customer_id == customer_id, table.c.is_primary.is_(True), table.c.deleted_at.is_(None))).scalars())


def _demote(ctx, contact_ids):
    if contact_ids:
        table = ctx.entity("contact").table
        ctx.session.execute(table.update().where(table.c.id.in_(contact_ids)).values(is_primary=False, version=table.c.version + 1))


def _promote_first(ctx, customer_id):
    if not customer_id or _primary_contacts(ctx, customer_id):
        return
    remaining = sorted(_contacts_of(ctx, customer_id))
    if remaining:
        table = ctx.entity("contact").table
        ctx.session.execute(table.update().where(table.c.id == remaining[0]).values(is_primary=True, version=table.c.version + 1))


def _keep_one_primary(ctx, record):
    if not record.get("is_primary") or not record.get("customer_id"):
        return
    table = ctx.entity("contact").table
    ctx.session.execute(table.update().where(table.c.customer_id == record["customer_id"], table.c.id != record["id"],
                                             table.c.is_primary.is_(True)).values(is_primary=False, version=table.c.version + 1))
