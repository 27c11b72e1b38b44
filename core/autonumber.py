"""Autonumbers such as ``KH{YYYY}{MM}-{####}`` → KH202611-0001, without gaps.

The counter lives in ``crm_sequences`` under a key per entity, field and period (the pattern with
the date parts filled in), so it starts again each month in this example. It is incremented by
an ``UPDATE ... RETURNING`` in the record's own transaction: the row stays locked until commit,
so concurrent creators wait in turn, and a rolled-back create gives its number back.
"""
import re

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from crm.core.tables import sequences

TOKEN = re.compile(r"\{(YYYY|YY|MM|DD|#+)\}")


def render(pattern, when, counter=None):
    def token(match):
        t = match.group(1)
        if t.startswith("#"):
            return "{#}" if counter is None else str(counter).zfill(len(t))
        return {"YYYY": f"{when.year:04d}", "YY": f"{when.year % 100:02d}", "MM": f"{when.month:02d}", "DD": f"{when.day:02d}"}[t]
    return TOKEN.sub(token, pattern)


def next_number(connection, entity_name, field_name, pattern, when):
    return next_numbers(connection, entity_name, field_name, pattern, when, 1)[0]


def next_numbers(connection, entity_name, field_name, pattern, when, count):
    """``count`` consecutive numbers with one ``UPDATE ... RETURNING`` (a batch of records created
    together, e.g. an import, draws its block at once); still gapless, as the caller uses them all."""
    key = f"{entity_name}.{field_name}:{render(pattern, when)}"
    bump = sa.update(sequences).where(sequences.c.key == key).values(value=sequences.c.value + count).returning(sequences.c.value)
    last = connection.execute(bump).scalar()
    if last is None:
        insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
        connection.execute(insert(sequences).values(key=key, value=0).on_conflict_do_nothing())
        last = connection.execute(bump).scalar()
    return [render(pattern, when, value) for value in range(last - count + 1, last + 1)]
