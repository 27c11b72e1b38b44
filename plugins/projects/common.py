"""Small helpers shared by the plugin's modules."""
import datetime as dt

from crm.core.errors import BadRequest


def fetch_all(records, entity, filters=(), sort=None):
    """Every record of ``entity`` the user may read that meets ``filters``, page by page."""
    found, cursor = [], None
    while True:
        page = records.list(entity, filters=list(filters), sort=sort, limit=500, cursor=cursor)
        found += page.items
        cursor = page.next_cursor
        if not cursor:
            return found


def as_date(value):
    """A date from a date, a datetime or an ISO string (None stays None)."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        raise BadRequest(f"not a date: {value!r}", {"date": "YYYY-MM-DD"})


def shift(day, days):
    """``day`` + ``days``; a BadRequest instead of an OverflowError past the calendar's ends."""
    if day is None or days is None:
        return None
    try:
        return day + dt.timedelta(days=int(days))
    except OverflowError:
        raise BadRequest(f"{day} + {days} days is outside the calendar", {"start_date": "out of range"})
