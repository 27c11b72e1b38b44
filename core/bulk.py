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
import operator
import weakref

_PLANS = weakref.WeakKeyDictionary()   # table → {(dialect, columns): what _plan returns}


def insert_rows(session, table, rows):
    """INSERT ``rows`` (dicts with the same keys) into ``table``, as ``session.execute(table.insert(), rows)``."""
    if not rows:
        return
    connection = session.connection()
    plan = _plan(connection.dialect, table, tuple(rows[0])) if len(rows) > 1 else None
    if plan is None:
        session.execute(table.insert(), rows)
        return
    sql, values_of, processed = plan
    if processed:   # the few columns whose values change on the way (most are text and numbers)
        parameters = []
        for row in rows:
            values = list(values_of(row))
            for i, process in processed:
                values[i] = process(values[i])
            parameters.append(tuple(values))
    else:
        parameters = list(map(values_of, rows))
    connection.exec_driver_sql(sql, parameters)


def _plan(dialect, table, keys):
    """(SQL, a function giving a row's values in the statement's order, [(position, bind
    processor)]), or None where SQLAlchemy's own executemany must run."""
    plans = _PLANS.setdefault(table, {})
    key = (dialect, keys)
    if key not in plans:
        plans[key] = None
        if dialect.name == "sqlite" and dialect.paramstyle == "qmark":
            compiled = table.insert().compile(dialect=dialect, column_keys=list(keys))
            order = compiled.positiontup or []
            if order and sorted(order) == sorted(keys) and not compiled.insert_prefetch:
                processors = compiled._bind_processors
                getter = operator.itemgetter(*order)
                values_of = getter if len(order) > 1 else lambda row: (getter(row),)
                plans[key] = (compiled.string, values_of,
                              [(i, processors[name]) for i, name in enumerate(order) if processors.get(name) is not None])
    return plans[key]
