"""Notifications (提醒 / 消息): what a user should look at, shown on the home page and the top bar,
optionally e-mailed. Each has a ``key``; notifying twice with the same key does nothing, which is
what makes daily jobs idempotent (the key names the thing and the day or period)."""
import sqlalchemy as sa

from crm.core.tables import notifications, users


def notify(records, user_id, kind, title, key, *, entity=None, record_id=None, due_on=None, body=None):
    """Add a notification unless one with ``key`` exists; returns True when it was added."""
    if user_id is None:
        return False
    if records.session.execute(sa.select(notifications.c.id).where(notifications.c.key == key)).first():
        return False
    records.session.execute(notifications.insert().values(
        user_id=user_id, kind=kind, title=title[:500], body=body, entity=entity, record_id=record_id,
        due_on=due_on, key=key[:200], created_at=records.now()))
    return True


def for_user(records, user_id, unread_only=False, limit=50):
    stmt = sa.select(notifications).where(notifications.c.user_id == user_id)
    if unread_only:
        stmt = stmt.where(notifications.c.read_at.is_(None))
    stmt = stmt.order_by(notifications.c.id.desc()).limit(limit)
    return [dict(r) for r in records.session.execute(stmt).mappings()]


def unread_count(records, user_id):
    return records.session.execute(sa.select(sa.func.count()).where(
        notifications.c.user_id == user_id, notifications.c.read_at.is_(None))).scalar()


def mark_read(records, user_id, notification_id=None):
    stmt = notifications.update().where(notifications.c.user_id == user_id, notifications.c.read_at.is_(None))
    if notification_id is not None:
        stmt = stmt.where(notifications.c.id == notification_id)
    records.session.execute(stmt.values(read_at=records.now()))


def email_pending(records, mailer):
    """E-mail every user their notifications not e-mailed yet, one message per user.
    Returns how many messages were sent; without a mail server configured, none."""
    if mailer is None:
        return 0
    stmt = (sa.select(notifications, users.c.email, users.c.display_name)
            .join(users, users.c.id == notifications.c.user_id)
            .where(notifications.c.emailed_at.is_(None), users.c.email.is_not(None), users.c.active)
            .order_by(notifications.c.user_id, notifications.c.id))
    by_user = {}
    for row in records.session.execute(stmt).mappings():
        by_user.setdefault((row["user_id"], row["email"], row["display_name"]), []).append(row)
    sent = 0
    for (user_id, email, name), rows in by_user.items():
        lines = [f"- {r['title']}" + (f"（{r['due_on']}）" if r["due_on"] else "") for r in rows]
        mailer.send(email, f"CRM 提醒：{len(rows)} 条待办", f"{name or ''} 您好，\n\n" + "\n".join(lines) + "\n")
        records.session.execute(notifications.update().where(notifications.c.id.in_([r["id"] for r in rows]))
                                .values(emailed_at=records.now()))
        sent += 1
    return sent
