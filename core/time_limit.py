"""Run one read-only statement for at most a given time, and give it up cleanly past it.

For what a page can do without: the count shown above a list. Capped at 10,001 rows it is cheap
where an index finds the matches, but a quick search (``name ILIKE '%太极%'``) or a filter on a
field without an index finds them by reading the table, and at a million customers that took a
second, ten times the rest of the page. Past the limit the database stops the statement
(PostgreSQL: ``statement_timeout``, set for this statement alone inside a savepoint; SQLite: a
progress handler that interrupts it) and the transaction goes on as before.

A statement that finished releases its savepoint: rolled back to, the savepoint's "ROLLBACK"
made psycopg forget every statement it had prepared on the connection (it cannot tell a
ROLLBACK TO SAVEPOINT from a ROLLBACK), so on PostgreSQL the statements of every list page,
which counts, were planned again on every request. Only a statement given up rolls back.
"""
import time

import sqlalchemy as sa

PROGRESS_STEPS = 1000  # SQLite virtual machine steps between two looks at the clock (~0.1 ms)


def scalar_within(session, stmt, seconds):
    """``stmt``'s scalar, or None when it ran longer than ``seconds``."""
    savepoint = session.begin_nested()
    connection = session.connection()
    try:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SET LOCAL statement_timeout = {max(1, round(seconds * 1000))}")
            value = connection.execute(stmt).scalar()
            savepoint.commit()
            connection.exec_driver_sql("SET LOCAL statement_timeout TO DEFAULT")   # a released savepoint keeps it
            return value
        raw = connection.connection.driver_connection
        deadline = time.monotonic() + seconds
        raw.set_progress_handler(lambda: time.monotonic() > deadline, PROGRESS_STEPS)
        try:
            value = connection.execute(stmt).scalar()
        finally:
            raw.set_progress_handler(None, 0)
        savepoint.commit()
        return value
    except BaseException as error:
        if savepoint.is_active:
            savepoint.rollback()   # also ends the SET LOCAL
        if isinstance(error, sa.exc.OperationalError) and _stopped(error):
            return None
        raise


def _stopped(error):
    orig = error.orig
    return getattr(orig, "sqlstate", None) == "57014" or "interrupted" in str(orig)  # query_canceled / SQLITE_INTERRUPT
