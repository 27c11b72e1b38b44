"""The daily job: reminders keyed so that a second run on the same day adds nothing."""
import datetime as dt
import re

import sqlalchemy as sa

from crm.core.mailer import Mailer
from crm.core.notifications import email_pending, notify

EVERY_N_DAYS = re.compile(r"every_(\d+)_days")


def strategy_days(value):
    """``every_30_days`` → 30 (联系策略 / 购买策略 dictionary values name their cycle)."""
    match = EVERY_N_DAYS.fullmatch(value or "")
    return int(match.group(1)) if match else None


def run(ctx):
    today = ctx.today()
    counts = {
        "follow_up_plans": follow_up_plans(ctx, today),
        "no_contact": no_contact(ctx, today),
        "business_decline": business_decline(ctx, today),
        "birthdays": birthdays(ctx, today),
    }
    counts["emails"] = email_pending(ctx, Mailer.from_settings(ctx.runtime.settings))
    return counts


def follow_up_plans(ctx, today):
    """客户跟进计划提醒: a follow-up's next contact date has come and no later follow-up exists."""
    fu = ctx.entity("follow_up").table
    plan = fu.alias("plan")
    later = sa.select(sa.literal(1)).where(fu.c.customer_id == plan.c.customer_id, fu.c.deleted_at.is_(None),
                                           fu.c.occurred_at > plan.c.occurred_at).exists()
    rows = ctx.session.execute(sa.select(plan.c.id, plan.c.customer_id, plan.c.owner_id, plan.c.subject, plan.c.next_contact_on)
                               .where(plan.c.deleted_at.is_(None), plan.c.next_contact_on <= today, ~later))
    added = 0
    for row in rows:
        title = f"跟进计划到期：{_customer_name(ctx, row.customer_id)}（{row.subject or ''}）"
        added += notify(ctx, row.owner_id or _customer_owner(ctx, row.customer_id), "follow_up_plan", title,
                        f"follow_up_plan:{row.id}", entity="customer", record_id=row.customer_id, due_on=row.next_contact_on)
    return added


def no_contact(ctx, today):
    """超过N天未联系: N from the customer's 联系策略, else the system setting (default 30)."""
    customer = ctx.entity("customer").table
    default_days = int(ctx.setting("no_contact_days", 30) or 30)
    last = sa.func.coalesce(customer.c.last_contact_at, customer.c.created_at)
    strategies = [None] + list(ctx.session.execute(sa.select(customer.c.contact_strategy).where(
        customer.c.contact_strategy.is_not(None)).distinct()).scalars())
    added = 0
    for strategy in strategies:
        days = strategy_days(strategy) or default_days
        where = [customer.c.deleted_at.is_(None), customer.c.owner_id.is_not(None),
                 last < dt.datetime.combine(today - dt.timedelta(days=days), dt.time())]
        where.append(customer.c.contact_strategy.is_(None) if strategy is None else customer.c.contact_strategy == strategy)
        stmt = sa.select(customer.c.id, customer.c.name, customer.c.owner_id, customer.c.last_contact_at, last.label("last")).where(*where)
        for row in ctx.session.execute(stmt):
            since = row.last.date() if row.last else None
            title = f"客户 {row.name} 已超过 {days} 天未联系" + (f"（最近联系 {row.last_contact_at.date()}）" if row.last_contact_at else "")
            added += notify(ctx, row.owner_id, "no_contact", title, f"no_contact:{row.id}:{since}", entity="customer", record_id=row.id)
    return added


def business_decline(ctx, today):
    """业务下滑: no purchase within the customer's 购买策略 cycle; logged once per last deal."""
    customer = ctx.entity("customer").table
    log = ctx.entity("business_decline").table
    since = sa.func.coalesce(customer.c.last_deal_on, customer.c.registered_on)
    added = 0
    for strategy in ctx.session.execute(sa.select(customer.c.purchase_strategy).where(
            customer.c.purchase_strategy.is_not(None)).distinct()).scalars():
        days = strategy_days(strategy)
        if not days:
            continue
        rows = ctx.session.execute(sa.select(customer.c.id, customer.c.name, customer.c.owner_id, customer.c.last_deal_on, since.label("since"))
                                   .where(customer.c.deleted_at.is_(None), customer.c.purchase_strategy == strategy,
                                          since.is_not(None), since < today - dt.timedelta(days=days)))
        for row in rows:
            logged = ctx.session.execute(sa.select(log.c.id).where(
                log.c.customer_id == row.id, log.c.deleted_at.is_(None),
                log.c.last_deal_on.is_(None) if row.last_deal_on is None else log.c.last_deal_on == row.last_deal_on)).first()
            if logged:
                continue
            ctx.create("business_decline", {"customer_id": row.id, "detected_on": today.isoformat(), "purchase_strategy": strategy,
                                            "last_deal_on": row.last_deal_on.isoformat() if row.last_deal_on else None,
                                            "days_without_purchase": (today - row.since).days, "owner_id": row.owner_id})
            notify(ctx, row.owner_id, "business_decline", f"业务下滑：{row.name} 已 {(today - row.since).days} 天没有购买",
                   f"business_decline:{row.id}:{row.last_deal_on}", entity="customer", record_id=row.id)
            added += 1
    return added


def upcoming_birthday(birthday, today, days):
    """The next birthday date when it falls within ``days`` days from today (29 Feb → 28 Feb)."""
    for year in (today.year, today.year + 1):
        try:
            date = birthday.replace(year=year)
        except ValueError:
            date = dt.date(year, 2, 28)
        if today <= date <= today + dt.timedelta(days=days):
            return date
    return None


def birthdays(ctx, today):
    """联系人关怀提醒: contacts' birthdays within the system setting's days (default 7)."""
    days = int(ctx.setting("birthday_remind_days", 7) or 7)
    contact = ctx.entity("contact").table
    rows = ctx.session.execute(sa.select(contact.c.id, contact.c.name, contact.c.birthday, contact.c.owner_id, contact.c.customer_id)
                               .where(contact.c.deleted_at.is_(None), contact.c.birthday.is_not(None)).execution_options(yield_per=2000))
    added = 0
    for row in rows:
        date = upcoming_birthday(row.birthday, today, days)
        if date is None:
            continue
        owner = row.owner_id or _customer_owner(ctx, row.customer_id)
        title = f"联系人 {row.name}（{_customer_name(ctx, row.customer_id)}）{date.month}月{date.day}日生日"
        added += notify(ctx, owner, "birthday", title, f"birthday:{row.id}:{date.year}", entity="contact", record_id=row.id, due_on=date)
    return added


def _customer_name(ctx, customer_id):
    table = ctx.entity("customer").table
    return ctx.session.execute(sa.select(table.c.name).where(table.c.id == customer_id)).scalar() or ""


def _customer_owner(ctx, customer_id):
    table = ctx.entity("customer").table
    return ctx.session.execute(sa.select(table.c.owner_id).where(table.c.id == customer_id)).scalar()
