"""Orderings and rankings: tasks by quadrant (四象限), risks by score (风险等级排名), employees by their
managers' ratings (绩效排名). All read through the record service, so each user ranks what they may see.

Ranks are *competition ranks*: equal keys share a rank and the next rank skips (1, 2, 2, 4).
"""
import calendar
import datetime as dt
import re
from decimal import ROUND_HALF_UP, Decimal

from crm.core.errors import BadRequest

from .common import as_date, fetch_all

OPEN_TASK_STATUSES = ("not_started", "in_progress")
CLOSED_RISK_STATUSES = ("resolved", "closed")
HIGH, MEDIUM = 15, 8           # risk score thresholds: 15–25 high, 8–14 medium, 1–7 low


def percent(part, whole, places="0.1"):
    """``part / whole × 100`` rounded half up (one decimal by default); None when ``whole`` is 0."""
    if not whole:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal(places), rounding=ROUND_HALF_UP)


def competition_ranks(items, key):
    """Give each item (already sorted best first) its rank: equal ``key(item)`` share a rank."""
    ranked, previous, rank = [], object(), 0
    for position, item in enumerate(items, 1):
        k = key(item)
        if k != previous:
            rank, previous = position, k
        ranked.append((rank, item))
    return ranked


# --- 四象限 ------------------------------------------------------------------------------------------

def quadrant_key(task):
    """Sort key: quadrant 1 → 4, then the earliest due date (no due date last), then the oldest task."""
    due = as_date(task.get("due_date"))
    return (task.get("quadrant") or 4, due is None, due or dt.date.max, task["id"])


def quadrant_sorted(tasks):
    return sorted(tasks, key=quadrant_key)


def quadrants(records, assignee_id=None, project_id=None, include_done=False):
    """{1: [...], 2: [...], 3: [...], 4: [...]}: tasks (open ones unless ``include_done``) in each
    quadrant, each list in :func:`quadrant_key` order. 1 重要且紧急, 2 重要不紧急, 3 紧急不重要, 4 其他."""
    filters = []
    if assignee_id is not None:
        filters.append(("assignee_id", "eq", assignee_id))
    if project_id is not None:
        filters.append(("project_id", "eq", project_id))
    if not include_done:
        filters.append(("status", "in", ",".join(OPEN_TASK_STATUSES)))
    grouped = {1: [], 2: [], 3: [], 4: []}
    for task in quadrant_sorted(fetch_all(records, "project_task", filters)):
        grouped[task.get("quadrant") or 4].append(task)
    return grouped


# --- 风险排名 -----------------------------------------------------------------------------------------

def risk_level(score):
    """风险等级 from the score (probability × impact, 1–25): ≥15 high, ≥8 medium, else low."""
    if score is None:
        return None
    return "high" if score >= HIGH else "medium" if score >= MEDIUM else "low"


def risk_key(risk):
    return (risk.get("score") or 0, risk.get("impact") or 0, risk.get("probability") or 0)


def risks(records, project_id=None, include_closed=False):
    """Risks ranked: score (probability × impact) descending, then impact, then probability (a
    likely small risk ranks below an unlikely severe one with the same score); equal on all three
    share the rank; among those the earlier response deadline, then the older risk, comes first.
    Resolved and closed risks are left out unless ``include_closed``. Returns the risk records
    with ``rank`` added."""
    filters = [("project_id", "eq", project_id)] if project_id is not None else []
    if not include_closed:
        filters.append(("status", "in", ",".join(s for s in _risk_statuses(records) if s not in CLOSED_RISK_STATUSES)))
    found = fetch_all(records, "project_risk", filters)
    found.sort(key=lambda r: (tuple(-k for k in risk_key(r)), as_date(r.get("due_date")) or dt.date.max, r["id"]))
    return [{**risk, "rank": rank} for rank, risk in competition_ranks(found, risk_key)]


def _risk_statuses(records):
    from crm.core import dictionaries
    return [i["value"] for i in dictionaries.items(records.session, "project_risk_status", include_inactive=True)]


# --- 绩效排名 -----------------------------------------------------------------------------------------

PERIOD = re.compile(r"^(\d{4})(?:-(?:(0[1-9]|1[0-2])|Q([1-4])))?$")


def period_range(period):
    """``"2026"`` (a year), ``"2026-11"`` (a month), ``"2026-Q4"`` (a quarter), or a (first, last)
    pair of dates → (first day, last day), both inclusive."""
    if isinstance(period, (tuple, list)):
        first, last = (as_date(d) for d in period)
        if first is None or last is None or last < first:
            raise BadRequest("a period is (first, last) with first <= last", {"period": "invalid"})
        return first, last
    match = PERIOD.match(str(period or ""))
    if not match:
        raise BadRequest(f"unknown period {period!r}: use 2026, 2026-11 or 2026-Q4", {"period": "invalid"})
    year, month, quarter = int(match.group(1)), match.group(2), match.group(3)
    if month:
        first_month = last_month = int(month)
    elif quarter:
        first_month, last_month = 3 * int(quarter) - 2, 3 * int(quarter)
    else:
        first_month, last_month = 1, 12
    return dt.date(year, first_month, 1), dt.date(year, last_month, calendar.monthrange(year, last_month)[1])


def performance(records, period, user_ids=None, project_id=None):
    """绩效排名 over the work logs (that the caller may read) dated within ``period``.

    Per employee: ``logs`` and ``hours`` (all their logs), ``rated_logs`` and ``rated_hours`` (the
    logs their manager rated), ``average`` (plain mean of the ratings) and ``score``: the mean of
    the ratings **weighted by the hours** of each rated log, Σ(rating × hours) / Σ hours — when the
    rated logs have no hours at all, the plain mean. ``score`` and ``average`` are rounded half up
    to two decimals. Ranked by score, then rated hours (more rated work first); employees equal on
    both share a rank (competition ranking); employees without a rated log follow with ``rank``
    None, by hours. Returns a list of dicts, best first.
    """
    first, last = period_range(period)
    filters = [("log_date", "gte", first.isoformat()), ("log_date", "lte", last.isoformat())]
    if project_id is not None:
        filters.append(("project_id", "eq", project_id))
    people = {}
    for log in fetch_all(records, "work_log", filters, sort="log_date"):
        user_id = log.get("user_id")
        if user_id is None or (user_ids is not None and user_id not in user_ids):
            continue
        row = people.setdefault(user_id, {"user_id": user_id, "logs": 0, "hours": Decimal(0), "rated_logs": 0,
                                          "rated_hours": Decimal(0), "_weighted": Decimal(0), "_ratings": 0})
        hours = Decimal(log.get("hours") or 0)
        row["logs"] += 1
        row["hours"] += hours
        if log.get("manager_rating"):
            row["rated_logs"] += 1
            row["rated_hours"] += hours
            row["_weighted"] += log["manager_rating"] * hours
            row["_ratings"] += log["manager_rating"]
    two = Decimal("0.01")
    for row in people.values():
        ratings, weighted = row.pop("_ratings"), row.pop("_weighted")
        if row["rated_logs"]:
            row["average"] = (Decimal(ratings) / row["rated_logs"]).quantize(two, ROUND_HALF_UP)
            raw = weighted / row["rated_hours"] if row["rated_hours"] else Decimal(ratings) / row["rated_logs"]
            row["score"] = raw.quantize(two, ROUND_HALF_UP)
        else:
            row["average"] = row["score"] = None
    rated = sorted((r for r in people.values() if r["score"] is not None), key=lambda r: (-r["score"], -r["rated_hours"], r["user_id"]))
    unrated = sorted((r for r in people.values() if r["score"] is None), key=lambda r: (-r["hours"], r["user_id"]))
    ranked = [{**row, "rank": rank} for rank, row in competition_ranks(rated, lambda r: (r["score"], r["rated_hours"]))]
    return ranked + [{**row, "rank": None} for row in unrated]
