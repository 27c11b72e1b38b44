"""Inserting many rows of one table at once (imports: 500 records, their audit rows, the run's
rows) with less work per row than SQLAlchemy's executemany.

SQLAlchemy builds every row's parameters anew through the compiled statement
(``construct_params``), which costs about as much as SQLite's own insert. On SQLite the statement
is compiled once per table and set of columns here, each value goes through the very bind
processor SQLAlchemy would apply (dates, decimals, JSON, booleans), and the rows go to the
driver's executemany in one call (``exec_driver_sql``: the engine's events still see the
statement). Elsewhere, and whenever the statement needs more than the given values (column
defaults computed in Python), SQLAlchemy's own executemany runs.
"""
import weakref

_PLANS = weakref.WeakKeyDictionary()   # table → {(dialect, columns): (SQL, [(column, bind processor)]) or None}


def insert_rows(session, table, rows):
    """INSERT ``rows`` (dicts with the same keys) into ``table``, as ``session.execute(table.insert(), rows)``."""
    if not rows:
        return
    connection = session.connection()
    plan = _plan(connection.dialect, table, tuple(rows[0])) if len(rows) > 1 else None
    if plan is None:
        session.execute(table.insert(), rows)
        return
    sql, columns = plan
    connection.exec_driver_sql(sql, [tuple(row[name] if process is None else process(row[name]) for name, process in columns)
                                     for row in rows])


def _plan(dialect, table, keys):
    plans = _PLANS.setdefault(table, {})
    key = (dialect, keys)
    if key not in plans:
        plans[key] = None
        if dialect.name == "sqlite" and dialect.paramstyle == "qmark":
            compiled = table.insert().compile(dialect=dialect, column_keys=list(keys))
            order = compiled.positiontup or []
            if sorted(order) == sorted(keys) and not compiled.insert_prefetch:
                processors = compiled._bind_processors
                plans[key] = (compiled.string, [(name, processors.get(name)) for name in order])
    return plans[key]
