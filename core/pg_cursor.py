"""psycopg's cursor with a ``description`` made only when something reads its columns.

psycopg builds ``cursor.description`` anew on every access: a ``Column`` object per column of the
result, with a look-up of its type. SQLAlchemy reads it after every statement, but uses its
columns only the first time a compiled statement runs (it keeps what it learnt with the
statement) and afterwards asks only whether there is one and how long it is. For the customer's
151 columns that was 0.22 ms of a 0.40 ms select by id, on every detail page and API request.

``LazyDescriptionCursor.description`` answers ``len()`` and truth from the result itself and
makes psycopg's list of columns when an item is first read. The engine uses it on PostgreSQL
(``crm.core.runtime.make_engine``: ``connect_args={"cursor_factory": ...}``, as SQLAlchemy's
psycopg dialect documents for cursor classes).
"""
from collections.abc import Sequence

import psycopg


class LazyDescriptionCursor(psycopg.Cursor):
    @property
    def description(self):
        result = self.pgresult
        if result is None or not result.nfields:
            return super().description  # None, or psycopg's answer for a result without columns
        return Description(self, result)


class Description(Sequence):
    """The columns of ``result``, psycopg's ``Column`` objects made on the first item read."""

    __slots__ = ("_cursor", "_result", "_columns")

    def __init__(self, cursor, result):
        self._cursor, self._result, self._columns = cursor, result, None

    def __len__(self):
        return self._result.nfields

    def __getitem__(self, index):
        if self._columns is None:
            if self._cursor.pgresult is not self._result:  # psycopg reads the cursor's current result
                raise psycopg.InterfaceError("the description of a result the cursor has moved on from")
            self._columns = psycopg.Cursor.description.fget(self._cursor)
        return self._columns[index]

    def __repr__(self):
        return repr(list(self))
