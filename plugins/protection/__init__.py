"""Customer protection and the customer pool (客户保护 / 公海).

- 公海: customers without an owner. Holders of ``protection.pool_view`` see and claim them (an
  access grant, so the pool is reached through the ordinary record service on every path);
  holders of ``protection.manage`` assign (指派), take back (收回) and approve requests (审批).
- The service (:mod:`.service`): claim one (领用), a random batch (批量随机领用), request and approval
  (申请-审批), assign, take back, give up with a reason (放弃).
- Limits per role or per user (``protection_limit``: 拥有客户数 / 保护客户数), protection for N days
  (防撞单: no claim, assignment or duplicate entry by another rep), reminders before it ends.
- The daily job ``protection.daily``: reminders, then the reclaim strategies switched on in the
  system settings (领用未联系, 间隔未联系, 跟进未成功, 保护过期), optionally only for some levels.
- Every move into or out of the pool, and every change of owner, is logged in ``pool_log``
  (shown on the customer's detail page as a related list).

It reads ``last_contact_at`` kept by the customer_care plugin, hence ``requires``.
See docs/plugin_protection.md.
"""
from pathlib import Path

from crm.hooks import Job, Veto, hookimpl

from . import service

label = {"zh_CN": "客户保护与公海", "en": "Customer protection and pool"}
requires = ["customer_care"]
SERVICE_ONLY = (service.LOG, service.REQUEST)


@hookimpl
def crm_metadata():
    return [Path(__file__).parent / "metadata"]


@hookimpl
def crm_permissions():
    return [{"name": service.POOL_VIEW, "label": {"zh_CN": "查看和领用公海客户", "en": "See and claim pool customers"}},
            {"name": service.MANAGE, "label": {"zh_CN": "公海管理：指派、收回、审批领用", "en": "Manage the pool: assign, take back, approve"}}]


@hookimpl
def crm_roles():
    """Sales reps see and claim the pool; sales managers also assign, take back and approve."""
    return [{"extends": "sales_rep", "rules": {"permissions": [service.POOL_VIEW]}},
            {"extends": "sales_manager", "rules": {"permissions": [service.POOL_VIEW, service.MANAGE]}}]


@hookimpl
def crm_access_grants(ctx, entity, action, user):
    if entity.name == "customer" and action in ("read", "update") and (ctx.access.has(service.POOL_VIEW) or ctx.access.has(service.MANAGE)):
        return [entity.table.c.owner_id.is_(None)]
    return []


@hookimpl
def crm_jobs():
    return [Job("protection.daily", service.run_daily, label={"zh_CN": "客户回收与保护提醒", "en": "Customer reclaim and protection reminders"})]


@hookimpl
def crm_menu_entries():
    return [{"id": "protection", "label": {"zh_CN": "客户公海", "en": "Customer pool"}, "order": 15},
            {"id": "protection.pool", "label": {"zh_CN": "公海客户", "en": "Pool customers"}, "url": "/app/protection/pool",
             "parent": "protection", "order": 150, "permission": [service.POOL_VIEW, service.MANAGE]},
            *({"id": name, "entity": name, "parent": "protection", "order": 151 + i}
              for i, name in enumerate(["pool_claim_request", "pool_log", "protection_limit"]))]


@hookimpl
def crm_web_config(config):
    from . import views
    views.includeme(config)


@hookimpl
def crm_record_actions(ctx, entity, record):
    """领用 / 申请领用 / 放弃 / 指派 / 收回 on a customer; 通过 / 驳回 on a pending request."""
    if ctx.user is None:
        return []
    if entity.name == service.REQUEST:
        if record.get("status") == "pending" and service.is_manager(ctx):
            return [{"id": f"protection.{d}", "label": label, "method": "POST", "url": f"/app/protection/requests/{record['id']}/{d}"}
                    for d, label in (("approve", {"zh_CN": "审批通过", "en": "Approve"}), ("reject", {"zh_CN": "驳回", "en": "Reject"}))]
        return []
    if entity.name != "customer" or not service.in_use(ctx):
        return []
    base, owner, actions = f"/app/protection/customers/{record['id']}", record.get("owner_id"), []
    manager = service.is_manager(ctx)
    if owner is None and (manager or ctx.access.has(service.POOL_VIEW)):
        if service.settings(ctx)["protection_claim_approval"] and service.pool_only(ctx):
            actions.append({"id": "protection.request", "label": {"zh_CN": "申请领用", "en": "Request"}, "method": "GET", "url": base + "/request"})
        else:
            actions.append({"id": "protection.claim", "label": {"zh_CN": "领用", "en": "Claim"}, "method": "POST", "url": base + "/claim"})
    if owner is not None and owner == ctx.user_id:
        actions.append({"id": "protection.give_up", "label": {"zh_CN": "放弃", "en": "Give up"}, "method": "GET", "url": base + "/give_up"})
    if manager:
        actions.append({"id": "protection.assign", "label": {"zh_CN": "指派", "en": "Assign"}, "method": "GET", "url": base + "/assign"})
    if owner is not None and owner != ctx.user_id and service.leads(ctx, owner):
        actions.append({"id": "protection.take_back", "label": {"zh_CN": "收回", "en": "Take back"}, "method": "GET", "url": base + "/take_back"})
    return actions


# --- record hooks --------------------------------------------------------------------------------

@hookimpl
def crm_before_create(ctx, entity, values):
    if entity.name in SERVICE_ONLY and ctx.user is not None:
        raise Veto("由系统记录，不能手工新建 / written by the system only")
    if entity.name == service.LIMIT:
        _check_limit(ctx, values)
    elif entity.name == "customer":
        service.before_create(ctx, values)


@hookimpl
def crm_before_update(ctx, entity, old, changes):
    if entity.name in SERVICE_ONLY and ctx.user is not None:
        raise Veto("由系统记录，不能修改 / written by the system only")
    if entity.name == service.LIMIT:
        _check_limit(ctx, {**old, **changes})
    elif entity.name == "customer":
        service.before_update(ctx, old, changes)


@hookimpl
def crm_before_delete(ctx, entity, record):
    if entity.name == service.LOG and ctx.user is not None:
        raise Veto("公海记录不能删除 / the pool log cannot be deleted")


@hookimpl
def crm_after_update(ctx, entity, old, record, changes):
    if entity.name == "customer" and "owner_id" in changes:
        service.after_update(ctx, old, record)
    elif entity.name == service.LIMIT:
        service.forget_limits(ctx)


@hookimpl
def crm_after_create(ctx, entity, record):
    if entity.name == service.LIMIT:
        service.forget_limits(ctx)


@hookimpl
def crm_after_delete(ctx, entity, record):
    if entity.name == service.LIMIT:
        service.forget_limits(ctx)


@hookimpl
def crm_after_restore(ctx, entity, record):
    if entity.name == service.LIMIT:
        service.forget_limits(ctx)


def _check_limit(ctx, values):
    role, user = (values.get("role") or "").strip() or None, values.get("user_id")
    if (role is None) == (user is None):
        raise Veto("请填写角色或用户（二选一） / give a role or a user, not both", field="role")
    if role is not None:
        import sqlalchemy as sa
        from crm.core.tables import roles
        if not ctx.session.execute(sa.select(roles.c.id).where(roles.c.name == role)).first():
            raise Veto(f"没有角色 {role} / no role {role!r}", field="role")
