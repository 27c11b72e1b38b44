"""The customer views the requirements name, as queries through the record service (so each user
sees only the customers they may reach): 超过30天未联系客户, 客户跟进计划提醒, 业务下滑日志, 联系人关怀提醒,
大客户排行, 市场分布视图."""
import datetime as dt

from .reminders import upcoming_birthday


def not_contacted(records, days=30, limit=100):
    """Customers whose last contact (or creation) is more than ``days`` days ago, oldest first."""
    cutoff = dt.datetime.combine(records.today() - dt.timedelta(days=days), dt.time()).isoformat()
    never = records.list("customer", filters=[("last_contact_at", "isnull", "true"), ("created_at", "lt", cutoff)],
                         sort="created_at", limit=limit).items
    stale = records.list("customer", filters=[("last_contact_at", "lt", cutoff)], sort="last_contact_at", limit=limit).items
    return (never + stale)[:limit]


def follow_up_plans(records, days_ahead=7, limit=100):
    """Follow-ups whose next contact date is overdue or within ``days_ahead`` days, soonest first,
    leaving out the plans already kept (the customer was contacted after that follow-up)."""
    until = (records.today() + dt.timedelta(days=days_ahead)).isoformat()
    found, cursor = [], None
    while len(found) < limit:
        page = records.list("follow_up", filters=[("next_contact_on", "lte", until)], sort="next_contact_on", limit=200, cursor=cursor)
        ids = sorted({f["customer_id"] for f in page.items if f.get("customer_id")})
        last = {c["id"]: c.get("last_contact_at") for c in records.list(
            "customer", filters=[("id", "in", ",".join(map(str, ids)))], limit=500).items} if ids else {}
        for plan in page.items:
            latest = last.get(plan.get("customer_id"))
            if latest is None or plan.get("occurred_at") is None or latest <= plan["occurred_at"]:
                found.append(plan)
        cursor = page.next_cursor
        if not cursor:
            break
    return found[:limit]


def declines(records, limit=100):
    return records.list("business_decline", sort="-detected_on", limit=limit).items


def birthdays(records, days=None, limit=200):
    """Contacts with a birthday in the next ``days`` days (default: the system setting), soonest first."""
    days = days if days is not None else int(records.setting("birthday_remind_days", 7) or 7)
    today, found, cursor = records.today(), [], None
    while True:
        page = records.list("contact", filters=[("birthday", "isnull", "false")], limit=500, cursor=cursor)
        for contact in page.items:
            date = upcoming_birthday(contact["birthday"], today, days)
            if date:
                found.append((date, contact))
        cursor = page.next_cursor
        if not cursor:
            break
    return [c | {"next_birthday": d} for d, c in sorted(found, key=lambda x: (x[0], x[1]["id"]))][:limit]


def ranking(records, limit=20):
    """大客户排行: customers by accumulated deal amount."""
    return records.list("customer", filters=[("deal_amount", "gt", "0")], sort="-deal_amount", limit=limit).items


def distribution(records, by="region", filters=()):
    """市场分布视图: customer counts by region or industry (values with their labels)."""
    from crm.core import dictionaries
    field = records.entity("customer").fields[by]
    labels = {i["value"]: i["label"] for i in dictionaries.items(records.session, field.dictionary, include_inactive=True)}
    return [(value, labels.get(value), count) for value, count in records.group_counts("customer", by, filters=filters)]


def rolled_up(records, dictionary, counts, depth):
    """Counts of a tree dictionary (regions) summed up to the items ``depth`` levels from the top
    (1: 华北/华东 …, 2: provinces …): [(value or None, count)], largest first. A value above
    ``depth`` keeps its own row; unknown values and empty ones count under None."""
    from crm.core import dictionaries
    parents = {i["value"]: i["parent_value"] for i in dictionaries.items(records.session, dictionary, include_inactive=True)}

    def path(value):
        chain, seen = [], set()
        while value in parents and value not in seen:
            seen.add(value)
            chain.append(value)
            value = parents[value]
        return list(reversed(chain))

    totals = {}
    for value, _label, count in counts:
        chain = path(value)
        key = chain[min(depth, len(chain)) - 1] if chain else None
        totals[key] = totals.get(key, 0) + count
    return sorted(totals.items(), key=lambda item: (-item[1], item[0] is None, str(item[0])))
