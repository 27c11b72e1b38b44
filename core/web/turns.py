"""Requests of one process take turns on SQLite (a tween over pyramid_tm).

Why: Python's sqlite3 module lets go of the GIL for every row it steps through. With waitress'
eight threads busy, each of those hand-overs wakes another thread, and the first one must wait
for the GIL to come back: the process spent its time switching threads (a hundred context
switches a request), and eight threads served half of what one thread serves (the list API on
10 000 customers: 215 against 474 requests/s; docs/performance.md, "Requests take turns").

So a request waits for the one before it to finish, at most ``crm.request_turn_wait_ms``
(default 50 ms on SQLite), then runs beside it as before. Short requests run one after the
other, which with a GIL is as parallel as they could be anyway; a long one (an export, a report,
a mail sent on the way) delays the others by that wait once, it does not hold them up. The turn
is taken before the request's transaction begins and given back after it ends, so a request
never waits for a turn while holding a database lock.

On PostgreSQL the default is 0 (off): its work runs in the server's own processes, beside the
Python of other requests, and a row does not cost a GIL hand-over. gunicorn's sync workers
serve one request at a time anyway: there a turn is always free.
"""
import math
import threading

from crm.core.errors import ConfigurationError

SETTING = "crm.request_turn_wait_ms"
SQLITE_WAIT_MS = 50


def turn_wait_seconds(settings, dialect):
    """The configured wait in seconds, 0 for no turns."""
    raw = settings.get(SETTING)
    if raw is None or str(raw).strip() == "":
        return SQLITE_WAIT_MS / 1000 if dialect == "sqlite" else 0
    try:
        wait = float(raw)
    except ValueError:
        raise ConfigurationError(f"{SETTING} must be a number of milliseconds, not {raw!r}") from None
    if not math.isfinite(wait) or wait < 0:
        raise ConfigurationError(f"{SETTING} must be 0 (off) or more milliseconds, not {raw!r}")
    return wait / 1000


class Turns:
    """One turn at a time; a caller waits for it at most ``wait`` seconds."""

    def __init__(self, wait):
        self.wait = wait
        self._lock = threading.Lock()

    def run(self, call, *args):
        got = self._lock.acquire(timeout=self.wait)
        try:
            return call(*args)
        finally:
            if got:
                self._lock.release()


def turns_tween_factory(handler, registry):
    turns = Turns(turn_wait_seconds(registry.settings, registry.crm.engine.dialect.name))

    def turns_tween(request):
        return turns.run(handler, request)
    return turns_tween


def includeme(config):
    if turn_wait_seconds(config.registry.settings, config.registry.crm.engine.dialect.name):
        config.add_tween("crm.core.web.turns.turns_tween_factory", over="pyramid_tm.tm_tween_factory")
