"""Serial numbers: uniqueness under concurrency, generation from a pattern, import, warranty dates.

Uniqueness: ``serial_number.sn`` has a unique index and the record service's unique check. Two
transactions entering the same new SN at the same moment would both pass the check and the second
insert would fail on the index with a database error. On PostgreSQL the plugin therefore takes a
transaction-level advisory lock on the SN before checking again (``claim``): the second writer waits
until the first commits or rolls back, then sees the SN and is refused with an ordinary validation
error ("already exists"), which an import reports on that row. A wait longer than
``LOCK_WAIT_SECONDS`` (or a deadlock between two imports listing the same SNs in opposite orders)
refuses that one row as "being entered by someone else". SQLite has one writer at a time anyway.
"""
import calendar
import datetime as dt
import hashlib

import sqlalchemy as sa

from crm.core import importer
from crm.core.autonumber import TOKEN, next_number
from crm.core.errors import BadRequest, ValidationFailed, Vetoed
from crm.hooks import Veto

LOCK_NAMESPACE = 0x534E        # "SN": the first key of pg_advisory_xact_lock(int, int)
LOCK_WAIT_SECONDS = 10
MAX_GENERATE = 10000
EXISTS = "SN已存在 / this serial number already exists"
BUSY = "该SN正由其他人录入，请稍后重试 / someone else is entering this serial number right now; try again"


def claim(ctx, sn, record_id=None):
    """Make sure no other record has ``sn`` (recycle bin included), waiting on PostgreSQL for a
    concurrent transaction entering the same SN to finish. Raises Veto on the ``sn`` field."""
    session = ctx.session
    if ctx.dialect == "postgresql":
        key = int.from_bytes(hashlib.blake2b(sn.encode("utf-8"), digest_size=4).digest(), "big", signed=True)
        try:
            with session.begin_nested():
                before = session.execute(sa.text("SELECT current_setting('lock_timeout')")).scalar()
                session.execute(sa.select(sa.func.set_config("lock_timeout", f"{LOCK_WAIT_SECONDS}s", True)))
                session.execute(sa.select(sa.func.pg_advisory_xact_lock(LOCK_NAMESPACE, key)))
                session.execute(sa.select(sa.func.set_config("lock_timeout", before, True)))
        except sa.exc.DBAPIError:        # lock_timeout, or a deadlock PostgreSQL broke on our side
            raise Veto(BUSY, field="sn")
    table = ctx.entity("serial_number").table
    stmt = sa.select(table.c.id).where(table.c.sn == sn)
    if record_id is not None:
        stmt = stmt.where(table.c.id != record_id)
    if session.execute(stmt.limit(1)).first():
        raise Veto(EXISTS, field="sn")


# --- warranty dates ----------------------------------------------------------------------------

def add_months(day, months):
    """``day`` plus whole months, the day clamped to the month's end (31 Jan + 1 month = 28/29 Feb)."""
    year, month = divmod(day.month - 1 + months, 12)
    year += day.year
    if not 1 <= year <= 9999:
        return None
    return dt.date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def default_warranty_end(purchase_date, months):
    """质保截止: the day before the purchase date, ``months`` later (12 months from 2026-03-15 end on
    2027-03-14; from 2024-03-01 on 2025-02-28; from 2026-01-31, one month, on 2026-02-28);
    None when it falls outside the calendar or ``months`` is 0/None."""
    if purchase_date is None or not months or purchase_date == dt.date.min:
        return None
    return add_months(purchase_date - dt.timedelta(days=1), int(months))


def warranty_status(warranty_end, on):
    """``in_warranty`` up to and including the warranty end day, ``out_of_warranty`` after it,
    ``unknown`` without an end date or a day to check."""
    if warranty_end is None or on is None:
        return "unknown"
    return "in_warranty" if on <= warranty_end else "out_of_warranty"


# --- generating and importing --------------------------------------------------------------------

def generate(records, pattern, count, values=None):
    """Create ``count`` serial numbers from ``pattern`` (autonumber tokens: ``{YYYY}``, ``{YY}``,
    ``{MM}``, ``{DD}`` and a counter ``{#…}``, e.g. ``SN{YYYY}{MM}-{#####}``) with the other field
    ``values`` (product, production date, batch …). The counter is the core's sequence
    (``crm_sequences``, per filled-in pattern): concurrent generators wait for each other and never
    draw the same number. A number already used by an entered or imported SN is passed over.
    Returns the records, in order."""
    if not isinstance(pattern, str) or not any(t.startswith("#") for t in TOKEN.findall(pattern)):
        raise BadRequest("the pattern needs a counter such as {#####}", {"pattern": "no {#} counter"})
    if len(pattern) > 60:
        raise BadRequest("the pattern is too long", {"pattern": "at most 60 characters"})
    try:
        count = int(count)
    except (TypeError, ValueError):
        raise BadRequest("count must be a number", {"count": "not a number"})
    if not 1 <= count <= MAX_GENERATE:
        raise BadRequest(f"count must be between 1 and {MAX_GENERATE}", {"count": f"1 to {MAX_GENERATE}"})
    values = {k: v for k, v in (values or {}).items() if k != "sn"}
    created, passed_over = [], 0
    while len(created) < count:
        sn = next_number(records.session.connection(), "serial_number", "sn", pattern, records.now())
        try:
            created.append(records.create("serial_number", {**values, "sn": sn}))
        except (ValidationFailed, Vetoed) as e:
            if set(e.fields) != {"sn"} or passed_over >= count + 100:
                raise
            passed_over += 1
    return created


def import_file(records, path, *, mode="create", partial=True, dry_run=False, mapping=None, progress=None):
    """Import serial numbers from .xlsx/.csv through the core importer, matching on ``sn``:
    in ``create`` mode an SN that exists is skipped (one entered concurrently is an error row);
    ``upsert`` updates existing SNs. ``partial`` (default here) commits the good rows."""
    return importer.run(records, "serial_number", path, mode=mode, match=["sn"], partial=partial, dry_run=dry_run,
                        mapping=mapping, progress=progress)
