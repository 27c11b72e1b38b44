"""The SQL a block of code sends, for tests that count or look at statements."""
import contextlib

import sqlalchemy as sa


@contextlib.contextmanager
def statements(engine, parameters=False):
    """``with statements(engine) as seen:`` → ``seen`` is the list of statement texts sent to the
    database in the block (``seen.clear()`` starts counting again); with ``parameters=True`` each
    entry is (text, parameters), e.g. to ``EXPLAIN`` one. The listener goes at the end."""
    seen = []

    def listen(conn, cursor, statement, params, *rest):
        seen.append((statement, params) if parameters else statement)
    sa.event.listen(engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", listen)
