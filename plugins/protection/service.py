"""The customer pool (公海) and customer protection (客户保护), as service functions.

Every function takes the caller's record service ``ctx`` and works in its transaction. Owners
change through ``ctx.update`` (so the record hooks, the audit trail and the optimistic version
check apply); the plugin's ``crm_before_update`` hook enforces the rules for *every* change of
owner, whichever path it comes from (these functions, a form, a bulk assign, the API):

- a protected customer (``protection_until`` not past) cannot move away from its owner except by
  the owner or someone who leads the owner (their manager, a manager of their department, a
  holder of ``protection.manage``);
- from the pool, a rep may only claim for themselves, and only directly when claims need no
  approval (``protection_claim_approval``); only the owner field changes on a pool customer;
- the new owner's limits (:func:`limits_for`) hold: the user's row is locked while counting.

Concurrency: two reps claiming one customer both update it with the version they read; the
second update finds another version (``WHERE version = ...`` affects no row) and fails, so the
customer goes to exactly one of them. Random batches pick rows with ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL. Moves are logged in ``pool_log`` by the hook, with the action and reason set here.
"""
import contextlib
import contextvars
import datetime as dt

import sqlalchemy as sa

from crm.core import notifications
from crm.core.errors import BadRequest, Conflict, Forbidden, NotFound, ValidationFailed, Vetoed
from crm.core.records import transaction_cache
from crm.core.tables import departments, roles, user_roles, users

POOL_VIEW = "protection.pool_view"
MANAGE = "protection.manage"
LOG, REQUEST, LIMIT = "pool_log", "pool_claim_request", "protection_limit"
SETTINGS_CACHE, LIMITS_CACHE = "protection.settings", "protection.limits"  # keys of the transaction cache
ACTION_LABELS = {"claim": "领用", "batch_claim": "批量随机领用", "request": "申请领用", "approve": "审批通过", "reject": "审批驳回",
                 "assign": "指派", "take_back": "收回", "give_up": "放弃", "auto_reclaim": "自动回收"}
DEFAULTS = {"protection_enabled": False, "protection_days": 30, "protection_remind_days": 3, "protection_claim_approval": False,
            "protection_batch_size": 10, "protection_reclaim_claimed": False, "protection_reclaim_claimed_days": 7,
            "protection_reclaim_idle": False, "protection_reclaim_idle_days": 30, "protection_reclaim_no_deal": False,
            "protection_reclaim_no_deal_days": 90, "protection_reclaim_expired": False, "protection_reclaim_levels": None,
            "protection_reclaim_remind_days": 3}

#: the move a service function is making: {"action", "reason"} (read by the record hooks)
current_move = contextvars.ContextVar("protection_move", default=None)


@contextlib.contextmanager
def moving(action, reason=None):
    token = current_move.set({"action": action, "reason": reason})
    try:
        yield
    finally:
        current_move.reset(token)


# --- settings and people -----------------------------------------------------------------------

def settings(ctx):
    """The protection settings of the system settings record, with their defaults (read straight
    from the table: no record is created), once per transaction: every customer written asks."""
    cache = transaction_cache(ctx.session)
    if SETTINGS_CACHE not in cache:
        table = ctx.entity("system_settings").table
        row = ctx.session.execute(sa.select(*[table.c[name] for name in DEFAULTS]).where(table.c.deleted_at.is_(None))
                                  .order_by(table.c.id).limit(1)).mappings().first() or {}
        cache[SETTINGS_CACHE] = {name: default if row.get(name) is None else row[name] for name, default in DEFAULTS.items()}
    return dict(cache[SETTINGS_CACHE])


def is_manager(ctx):
    """The system, administrators and holders of ``protection.manage``."""
    return ctx.access.root or ctx.access.has(MANAGE)


def leads(ctx, user_id):
    """True when the acting user is a manager here or leads ``user_id`` (their manager, or manages
    their department or one above it)."""
    if is_manager(ctx) or user_id is None:
        return is_manager(ctx)
    if user_id in ctx.access.reports():
        return True
    department = ctx.session.execute(sa.select(users.c.department_id).where(users.c.id == user_id)).scalar()
    return department is not None and department in ctx.access.departments_for("own")


def pool_only(ctx):
    """A person who reaches pool customers only through the pool permission (not a manager and
    without an ``all`` update scope on customers): they may claim, nothing else."""
    return not is_manager(ctx) and ctx.access.scope("customer", "update") != "all"


def user_name(ctx, user_id):
    row = ctx.session.execute(sa.select(users.c.display_name, users.c.username).where(users.c.id == user_id)).first()
    return (row.display_name or row.username) if row else f"#{user_id}"


def in_use(ctx):
    """True once a role grants a pool permission (until then the pool actions stay off the pages)."""
    for rules in ctx.session.execute(sa.select(roles.c.rules)).scalars():
        if {POOL_VIEW, MANAGE} & set((rules or {}).get("permissions") or []):
            return True
    return False


def _person(ctx):
    if ctx.user is None:
        raise BadRequest("this action needs a user")
    return ctx.user["id"]


def protected(customer, today):
    until = customer.get("protection_until")
    return customer.get("owner_id") is not None and until is not None and until >= today


def protected_message(ctx, customer):
    owner = user_name(ctx, customer["owner_id"])
    return (f"客户「{customer.get('name')}」由 {owner} 负责，受保护至 {customer['protection_until']}，其他人不能领用、指派或重复录入 / "
            f"customer {customer.get('name')!r} is owned by {owner} and protected until {customer['protection_until']}")


# --- limits --------------------------------------------------------------------------------------

def limits_for(ctx, user_id):
    """(max_owned, max_protected) for a user, None meaning no limit: the user's own row when there
    is one, else the widest of their roles' rows, else no limit. Once per user and transaction
    (an import asks for every row); forgotten when a limit is written."""
    cache = transaction_cache(ctx.session).setdefault(LIMITS_CACHE, {})
    if "any" not in cache:  # most companies set no limits at all: then no user needs a query
        table = ctx.entity(LIMIT).table
        cache["any"] = ctx.session.execute(sa.select(table.c.id).where(table.c.deleted_at.is_(None)).limit(1)).first() is not None
    if not cache["any"]:
        return None, None
    if user_id not in cache:
        cache[user_id] = _limits_for(ctx, user_id)
    return cache[user_id]


def forget_limits(ctx):
    transaction_cache(ctx.session).pop(LIMITS_CACHE, None)


def _limits_for(ctx, user_id):
    table = ctx.entity(LIMIT).table
    live = table.c.deleted_at.is_(None)
    row = ctx.session.execute(sa.select(table.c.max_owned, table.c.max_protected).where(live, table.c.user_id == user_id)
                              .order_by(table.c.id.desc()).limit(1)).first()
    if row is not None:
        return row.max_owned, row.max_protected
    names = sa.select(roles.c.name).join(user_roles, user_roles.c.role_id == roles.c.id).where(user_roles.c.user_id == user_id)
    rows = ctx.session.execute(sa.select(table.c.max_owned, table.c.max_protected).where(
        live, table.c.user_id.is_(None), table.c.role.in_(names))).all()
    if not rows:
        return None, None

    def widest(values):
        return None if any(v is None for v in values) else max(values)
    return widest([r.max_owned for r in rows]), widest([r.max_protected for r in rows])


def _lock_user(ctx, user_id):
    stmt = sa.select(users.c.id).where(users.c.id == user_id)
    if ctx.dialect == "postgresql":
        stmt = stmt.with_for_update()
    if ctx.session.execute(stmt).first() is None:
        raise ValidationFailed(f"no user {user_id}", {"owner_id": "unknown user"})


def capacity(ctx, user_id, conf=None, exclude=None):
    """How many more customers ``user_id`` may get (None: no limit), with the reason when 0.
    Locks the user's row so that concurrent claims for one user count one after the other."""
    conf = conf or settings(ctx)
    max_owned, max_protected = limits_for(ctx, user_id)
    if not conf["protection_enabled"]:
        max_protected = None
    if max_owned is None and max_protected is None:
        return None, None
    _lock_user(ctx, user_id)
    table = ctx.entity("customer").table
    where = [table.c.deleted_at.is_(None), table.c.owner_id == user_id]
    if exclude is not None:
        where.append(table.c.id != exclude)
    room, reason = None, None
    if max_owned is not None:
        owned = ctx.session.execute(sa.select(sa.func.count()).where(*where)).scalar()
        room = max(max_owned - owned, 0)
        if room == 0:
            reason = (f"{user_name(ctx, user_id)} 拥有的客户已达上限 {max_owned} 个，不能再领用或分配 / "
                      f"{user_name(ctx, user_id)} already owns {owned} customers, the limit is {max_owned}")
    if max_protected is not None:
        count = ctx.session.execute(sa.select(sa.func.count()).where(*where, table.c.protection_until >= ctx.today())).scalar()
        left = max(max_protected - count, 0)
        if room is None or left < room:
            room = left
            if left == 0:
                reason = (f"{user_name(ctx, user_id)} 保护的客户已达上限 {max_protected} 个，不能再领用或分配 / "
                          f"{user_name(ctx, user_id)} already protects {count} customers, the limit is {max_protected}")
    return room, reason


# --- the hook side: every change of owner ----------------------------------------------------

def before_create(ctx, values):
    conf = settings(ctx)
    today = ctx.today()
    if conf["protection_enabled"] and values.get("name"):
        duplicate_check(ctx, values["name"], values.get("owner_id") or ctx.user_id, today)
    owner = values.get("owner_id")
    if owner is None:
        return
    if ctx.user is not None:
        room, reason = capacity(ctx, owner, conf)
        if room == 0:
            raise Vetoed(reason, {"owner_id": reason})
    values["protection_owned_since"] = ctx.now()
    if conf["protection_enabled"]:
        values["protection_until"] = today + dt.timedelta(days=int(conf["protection_days"]))


def duplicate_check(ctx, name, new_owner, today, exclude=None):
    """防撞单: a customer of the same name protected for someone else cannot be entered again."""
    table = ctx.entity("customer").table
    stmt = sa.select(table.c.id, table.c.name, table.c.owner_id, table.c.protection_until).where(
        table.c.deleted_at.is_(None), table.c.name == name.strip(), table.c.owner_id.is_not(None),
        table.c.protection_until >= today)
    if exclude is not None:
        stmt = stmt.where(table.c.id != exclude)
    for row in ctx.session.execute(stmt).mappings():
        if row["owner_id"] != new_owner:
            message = protected_message(ctx, dict(row))
            raise Vetoed(message, {"name": message})


def before_update(ctx, old, changes):
    owner_changes = "owner_id" in changes and changes["owner_id"] != old.get("owner_id")
    if not (owner_changes or changes.get("name") or old.get("owner_id") is None):
        return
    conf = settings(ctx)
    today = ctx.today()
    person = ctx.user is not None
    if changes.get("name") and conf["protection_enabled"]:
        duplicate_check(ctx, changes["name"], changes.get("owner_id", old.get("owner_id")), today, exclude=old["id"])
    if old.get("owner_id") is None and person and pool_only(ctx):
        others = set(changes) - {"owner_id"}
        if others:
            raise Vetoed("公海客户请先领用再修改 / claim this customer from the pool before editing it")
    if "owner_id" not in changes or changes["owner_id"] == old.get("owner_id"):
        return
    new, before, move = changes["owner_id"], old.get("owner_id"), current_move.get()
    if person and before is not None and before != ctx.user_id and protected(old, today) and not leads(ctx, before):
        raise Vetoed(protected_message(ctx, old), {"owner_id": protected_message(ctx, old)})
    if new is None:
        if person and move is None and before == ctx.user_id and not is_manager(ctx):
            raise Vetoed("放弃客户请使用“放弃”并填写原因 / give a customer up with a reason", {"owner_id": "give up with a reason"})
        changes.update(protection_until=None, protection_claimed_at=None, protection_owned_since=None)
        return
    if person and before is None and pool_only(ctx):
        if new != ctx.user_id:
            raise Vetoed("公海客户只能领用给自己；指派需要“公海管理”权限 / you may claim pool customers for yourself only",
                         {"owner_id": "yourself only"})
        if not ctx.access.has(POOL_VIEW):
            raise Forbidden("领用公海客户需要“查看和领用公海”权限 / claiming needs the protection.pool_view permission")
        if conf["protection_claim_approval"] and (move is None or move["action"] != "approve"):
            raise Vetoed("领用需要审批，请提交领用申请 / claims need approval: send a claim request", {"owner_id": "request it"})
    if person:
        room, reason = capacity(ctx, new, conf, exclude=old["id"])
        if room == 0:
            raise Vetoed(reason, {"owner_id": reason})
    now = ctx.now()
    changes.update(protection_claimed_at=now, protection_owned_since=now,
                   protection_until=today + dt.timedelta(days=int(conf["protection_days"])) if conf["protection_enabled"] else None)


def after_update(ctx, old, record):
    """Log the move and tell the people it concerns."""
    before, after, move = old.get("owner_id"), record.get("owner_id"), current_move.get()
    if before == after:
        return
    actor = ctx.user_id
    if move:
        action = move["action"]
    elif before is None:
        action = "claim" if actor is not None and after == actor else "assign"
    elif after is None:
        action = "give_up" if actor is not None and before == actor else "take_back"
    else:
        action = "assign"
    reason = move.get("reason") if move else None
    log(ctx, record["id"], action, before, after, reason)
    if before is None and after is not None and action != "approve":   # approve() decides the other requests itself
        reject_pending(ctx, record["id"], f"客户已分配给 {user_name(ctx, after)} / the customer went to {user_name(ctx, after)}")
    title = f"客户「{record.get('name')}」{ACTION_LABELS[action]}" + (f"：{reason}" if reason else "")
    key = f"protection.move:{record['id']}:{record['version']}"
    for whom in {before, after} - {None, actor}:
        notifications.notify(ctx, whom, "protection", title, f"{key}:{whom}", entity="customer", record_id=record["id"])


def log(ctx, customer_id, action, from_user=None, to_user=None, reason=None):
    return ctx.as_system().create(LOG, {"customer_id": customer_id, "action": action, "from_user_id": from_user, "to_user_id": to_user,
                                        "by_user_id": ctx.user_id, "reason": (reason or None) and reason[:500],
                                        "at": ctx.now().isoformat()})


# --- pool actions ------------------------------------------------------------------------------

def pool(ctx, q=None, limit=50, cursor=None, sort=None):
    """A page of the pool (customers without an owner) as the user may see it."""
    return ctx.list("customer", filters=[("owner_id", "isnull", "true")], q=q, limit=limit, cursor=cursor, sort=sort, count=True)


def _customer(ctx, customer_id):
    try:
        return ctx.get("customer", customer_id)
    except NotFound:
        row = ctx.as_system().get("customer", customer_id)  # NotFound when it does not exist at all
        if row.get("owner_id") is not None and ctx.user is not None and ctx.access.has(POOL_VIEW):
            raise Conflict(f"客户「{row['name']}」已不在公海（已被领用） / this customer has already been claimed")
        raise


def _update_owner(ctx, customer, owner_id, action, reason=None):
    with moving(action, reason):
        try:
            return ctx.update("customer", customer["id"], {"owner_id": owner_id}, version=customer["version"])
        except Conflict:
            raise Conflict(f"客户「{customer.get('name')}」刚被其他人改动（可能已被领用），请刷新 / "
                           f"this customer was just changed (probably claimed) by someone else") from None


def claim(ctx, customer_id):
    """领用: take one customer from the pool."""
    user_id = _person(ctx)
    if not (ctx.access.has(POOL_VIEW) or is_manager(ctx)):
        raise Forbidden("领用公海客户需要“查看和领用公海”权限 / claiming needs the protection.pool_view permission")
    customer = _customer(ctx, customer_id)
    if customer.get("owner_id") == user_id:
        raise Conflict("这已经是你的客户 / this customer is already yours")
    if customer.get("owner_id") is not None:
        raise Conflict(f"客户「{customer['name']}」不在公海，负责人 {user_name(ctx, customer['owner_id'])} / not in the pool")
    return _update_owner(ctx, customer, user_id, "claim")


def claim_random(ctx, count):
    """批量随机领用: up to ``count`` customers picked at random from the pool, no more than the
    settings' batch size and the user's limits allow. Returns the customers claimed."""
    user_id = _person(ctx)
    if not (ctx.access.has(POOL_VIEW) or is_manager(ctx)):
        raise Forbidden("领用公海客户需要“查看和领用公海”权限 / claiming needs the protection.pool_view permission")
    conf = settings(ctx)
    if conf["protection_claim_approval"] and pool_only(ctx):
        raise Vetoed("领用需要审批，请提交领用申请 / claims need approval: send claim requests")
    try:
        count = int(count)
    except (TypeError, ValueError):
        raise ValidationFailed("数量必须是整数 / a whole number", {"count": "whole number"}) from None
    if count < 1:
        raise ValidationFailed("数量至少为 1 / at least 1", {"count": "at least 1"})
    count = min(count, int(conf["protection_batch_size"]))
    room, reason = capacity(ctx, user_id, conf)
    if room == 0:
        raise Vetoed(reason, {"count": reason})
    take = count if room is None else min(count, room)
    entity = ctx.entity("customer")
    table = entity.table
    stmt = sa.select(table.c.id).where(table.c.owner_id.is_(None), table.c.deleted_at.is_(None))
    scope = ctx.access.clause(entity, "update")
    if scope is not None:
        stmt = stmt.where(scope)
    stmt = stmt.order_by(sa.func.random()).limit(take)
    if ctx.dialect == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True, of=table)
    claimed = []
    for customer_id in ctx.session.execute(stmt).scalars().all():
        customer = ctx.get("customer", customer_id)
        claimed.append(_update_owner(ctx, customer, user_id, "batch_claim"))
    return claimed


def give_up(ctx, customer_id, reason):
    """放弃: the owner puts their customer back into the pool, with a reason."""
    user_id = _person(ctx)
    if not (reason or "").strip():
        raise ValidationFailed("放弃客户必须填写原因 / a reason is required", {"reason": "required"})
    customer = ctx.get("customer", customer_id)
    if customer.get("owner_id") != user_id:
        raise Forbidden("只能放弃自己负责的客户 / you may give up your own customers only")
    return _update_owner(ctx, customer, None, "give_up", reason.strip())


def take_back(ctx, customer_id, reason=None):
    """收回: a manager puts a customer back into the pool."""
    customer = ctx.get("customer", customer_id)
    if customer.get("owner_id") is None:
        raise Conflict("客户已在公海 / this customer is in the pool already")
    if not leads(ctx, customer["owner_id"]):
        raise Forbidden("收回客户需要“公海管理”权限或是负责人的上级 / taking back needs protection.manage or leading the owner")
    return _update_owner(ctx, customer, None, "take_back", reason)


def assign(ctx, customer_id, user_id, reason=None):
    """指派: a manager gives a customer (from the pool or from another rep) to ``user_id``."""
    if not is_manager(ctx):
        raise Forbidden("指派客户需要“公海管理”权限 / assigning needs the protection.manage permission")
    customer = ctx.get("customer", customer_id)
    active = ctx.session.execute(sa.select(users.c.active).where(users.c.id == user_id)).scalar()
    if not active:
        raise ValidationFailed(f"没有可用的用户 {user_id} / no active user {user_id}", {"user_id": "unknown"})
    if customer.get("owner_id") == user_id:
        raise Conflict("该用户已是负责人 / already the owner")
    return _update_owner(ctx, customer, user_id, "assign", reason)


# --- requests and approval -------------------------------------------------------------------

def request_claim(ctx, customer_id, reason=None):
    """申请: a rep asks for a pool customer; the managers who lead them are told."""
    user_id = _person(ctx)
    if not ctx.access.has(POOL_VIEW) and not is_manager(ctx):
        raise Forbidden("申请领用需要“查看和领用公海”权限 / requesting needs the protection.pool_view permission")
    customer = _customer(ctx, customer_id)
    if customer.get("owner_id") is not None:
        raise Conflict(f"客户「{customer['name']}」不在公海 / not in the pool")
    table = ctx.entity(REQUEST).table
    if ctx.session.execute(sa.select(table.c.id).where(table.c.customer_id == customer["id"], table.c.requested_by == user_id,
                                                       table.c.status == "pending", table.c.deleted_at.is_(None))).first():
        raise Conflict("你已申请过这个客户，请等待审批 / you have asked for this customer already")
    room, reason_full = capacity(ctx, user_id)
    if room == 0:
        raise Vetoed(reason_full)
    request = ctx.as_system().create(REQUEST, {"customer_id": customer["id"], "requested_by": user_id, "status": "pending",
                                               "reason": reason or None})
    log(ctx, customer["id"], "request", None, user_id, reason)
    title = f"{user_name(ctx, user_id)} 申请领用客户「{customer['name']}」"
    for manager in approvers(ctx, user_id):
        notifications.notify(ctx, manager, "protection.request", title, f"protection.request:{request['id']}:{manager}",
                             entity=REQUEST, record_id=request["id"])
    return request


def approvers(ctx, user_id):
    """The requester's manager and the managers of their department and the departments above."""
    row = ctx.session.execute(sa.select(users.c.manager_id, users.c.department_id).where(users.c.id == user_id)).first()
    found = [row.manager_id] if row and row.manager_id else []
    department = row.department_id if row else None
    tree = {r.id: (r.parent_id, r.manager_id) for r in ctx.session.execute(sa.select(departments.c.id, departments.c.parent_id, departments.c.manager_id))}
    seen = set()
    while department is not None and department not in seen:
        seen.add(department)
        parent, manager = tree.get(department, (None, None))
        if manager and manager != user_id and manager not in found:
            found.append(manager)
        department = parent
    return found


def _pending(ctx, request_id):
    table = ctx.entity(REQUEST).table
    stmt = sa.select(table).where(table.c.id == request_id, table.c.deleted_at.is_(None))
    if ctx.dialect == "postgresql":
        stmt = stmt.with_for_update()
    row = ctx.session.execute(stmt).mappings().first()
    if row is None:
        raise NotFound(f"no claim request {request_id}")
    if row["status"] != "pending":
        raise Conflict("这个申请已处理 / this request has been decided already")
    return dict(row)


def _decide(ctx, request, status, note):
    ctx.as_system().update(REQUEST, request["id"], {"status": status, "decided_by": ctx.user_id, "decided_at": ctx.now().isoformat(),
                                                    "decision_note": note or None})
    title = f"领用申请{'已通过' if status == 'approved' else '被驳回'}：客户 #{request['customer_id']}" + (f"（{note}）" if note else "")
    notifications.notify(ctx, request["requested_by"], "protection.decision", title, f"protection.decision:{request['id']}",
                         entity="customer", record_id=request["customer_id"])


def approve(ctx, request_id, note=None):
    """审批通过: the customer goes to the requester (limits and protection still apply); other
    pending requests for the same customer are rejected."""
    if not is_manager(ctx):
        raise Forbidden("审批领用申请需要“公海管理”权限 / approving needs the protection.manage permission")
    request = _pending(ctx, request_id)
    customer = ctx.as_system().get("customer", request["customer_id"])
    if customer.get("owner_id") is not None:   # (a customer leaving the pool rejects its pending requests: not normally here)
        raise Conflict(f"客户「{customer['name']}」已不在公海，请驳回这个申请 / the customer has left the pool; reject the request")
    updated = _update_owner(ctx, ctx.get("customer", customer["id"]), request["requested_by"], "approve", note)
    _decide(ctx, request, "approved", note)
    reject_pending(ctx, customer["id"], f"客户已分配给 {user_name(ctx, request['requested_by'])}", by=ctx)
    return updated


def reject_pending(ctx, customer_id, note, by=None):
    """Reject the pending requests for a customer that got an owner (by the system, unless ``by``:
    the manager approving another request)."""
    table = ctx.entity(REQUEST).table
    pending = ctx.session.execute(sa.select(table.c.id).where(table.c.customer_id == customer_id, table.c.status == "pending",
                                                              table.c.deleted_at.is_(None))).scalars().all()
    for request_id in pending:
        _decide(by or ctx.as_system(), _pending(ctx, request_id), "rejected", note)


def reject(ctx, request_id, note=None):
    """审批驳回."""
    if not is_manager(ctx):
        raise Forbidden("审批领用申请需要“公海管理”权限 / rejecting needs the protection.manage permission")
    request = _pending(ctx, request_id)
    _decide(ctx, request, "rejected", note)
    log(ctx, request["customer_id"], "reject", None, request["requested_by"], note)
    return ctx.as_system().get(REQUEST, request["id"])


def cancel_request(ctx, request_id):
    """撤回: the requester withdraws a pending request."""
    user_id = _person(ctx)
    request = _pending(ctx, request_id)
    if request["requested_by"] != user_id:
        raise Forbidden("只能撤回自己的申请 / you may cancel your own requests only")
    return ctx.as_system().update(REQUEST, request["id"], {"status": "cancelled"})


# --- the daily job: reminders and reclaim strategies ------------------------------------------

STRATEGIES = (
    ("claimed", "领用未联系", "protection_reclaim_claimed"),
    ("idle", "间隔未联系", "protection_reclaim_idle"),
    ("no_deal", "跟进未成功", "protection_reclaim_no_deal"),
    ("expired", "保护过期", "protection_reclaim_expired"),
)


def _candidates(ctx, strategy, days, conf, today, ahead=0):
    """[(customer row, reclaim date)] for owned customers the strategy reclaims on or before
    ``today + ahead``. Days are calendar days, as in customer_care's reminders: a customer claimed
    on the 1st and not contacted for 7 days goes back to the pool on the 9th."""
    table = ctx.entity("customer").table
    day = today + dt.timedelta(days=ahead)
    where = [table.c.deleted_at.is_(None), table.c.owner_id.is_not(None)]
    if conf["protection_reclaim_levels"]:
        where.append(table.c.level.in_(list(conf["protection_reclaim_levels"])))
    columns = [table.c.id, table.c.name, table.c.owner_id, table.c.last_contact_at, table.c.last_deal_on,
               table.c.protection_claimed_at, table.c.protection_owned_since, table.c.protection_until, table.c.created_at]
    before = dt.datetime.combine(day - dt.timedelta(days=days), dt.time())   # started before this midnight
    if strategy == "claimed":     # 领用未联系: no contact since it was claimed or assigned
        where += [table.c.protection_claimed_at < before,
                  sa.or_(table.c.last_contact_at.is_(None), table.c.last_contact_at < table.c.protection_claimed_at)]
    elif strategy == "idle":      # 间隔未联系: no contact (or since it was taken over) for N days
        where.append(sa.func.coalesce(table.c.last_contact_at, table.c.protection_owned_since, table.c.created_at) < before)
    elif strategy == "no_deal":   # 跟进未成功: no deal within N days of taking it over
        where.append(sa.func.coalesce(table.c.protection_owned_since, table.c.created_at) < before)
    else:                         # 保护过期: the protection has ended
        where.append(table.c.protection_until < day)
    out = []
    for row in ctx.session.execute(sa.select(*columns).where(*where).order_by(table.c.id)).mappings():
        if strategy == "expired":
            out.append((dict(row), row["protection_until"] + dt.timedelta(days=1)))
            continue
        if strategy == "claimed":
            start = row["protection_claimed_at"]
        elif strategy == "idle":
            start = row["last_contact_at"] or row["protection_owned_since"] or row["created_at"]
        else:
            start = row["protection_owned_since"] or row["created_at"]
            if row["last_deal_on"] is not None and row["last_deal_on"] >= start.date():
                continue  # a deal since the rep took it over
        out.append((dict(row), start.date() + dt.timedelta(days=days + 1)))
    return out


def run_daily(ctx):
    """Reminders (protection ending, reclaim soon), then the switched-on reclaim strategies.
    Running it again changes nothing: reclaimed customers have no owner any more and every
    reminder has its key."""
    conf = settings(ctx)
    today = ctx.today()
    counts = {"reclaimed": 0, "reminders": 0}
    if conf["protection_enabled"] and conf["protection_remind_days"]:
        table = ctx.entity("customer").table
        rows = ctx.session.execute(sa.select(table.c.id, table.c.name, table.c.owner_id, table.c.protection_until).where(
            table.c.deleted_at.is_(None), table.c.owner_id.is_not(None), table.c.protection_until >= today,
            table.c.protection_until <= today + dt.timedelta(days=int(conf["protection_remind_days"])))).all()
        for row in rows:
            counts["reminders"] += notifications.notify(
                ctx, row.owner_id, "protection.ending", f"客户「{row.name}」的保护将于 {row.protection_until} 到期",
                f"protection.ending:{row.id}:{row.protection_until}", entity="customer", record_id=row.id, due_on=row.protection_until)
    for strategy, label, switch in STRATEGIES:
        if not conf[switch]:
            continue
        days = 0 if strategy == "expired" else int(conf[switch + "_days"])
        for row, _day in _candidates(ctx, strategy, days, conf, today):
            customer = ctx.get("customer", row["id"])
            if customer.get("owner_id") is None:
                continue
            _update_owner(ctx, customer, None, "auto_reclaim", f"{label}（{strategy}）")
            counts["reclaimed"] += 1
        ahead = int(conf["protection_reclaim_remind_days"] or 0)
        if ahead:
            for row, deadline in _candidates(ctx, strategy, days, conf, today, ahead=ahead):
                counts["reminders"] += notifications.notify(
                    ctx, row["owner_id"], "protection.reclaim", f"客户「{row['name']}」将于 {deadline} 因“{label}”收回公海",
                    f"protection.reclaim:{strategy}:{row['id']}:{deadline}", entity="customer", record_id=row["id"], due_on=deadline)
    return counts
