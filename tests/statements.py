"""The SQL a block of code sends, for tests that count or look at statements."""
import contextlib

import sqlalchemy as sa


@contextlib.contextmanager
def statements(engine):
    """``with statements(engine) as seen:`` → ``seen`` is the list of statement texts sent to the
    database in the block (``seen.clear()`` starts counting again); the listener goes at the end."""
    seen = []

    def listen(conn, cursor, statement, *rest):
        seen.append(statement)
    sa.event.listen(engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", listen)
