"""Password logins (the web UI's login page and ``POST /api/v1/auth/token``), the lockout after
repeated failures, and a user's own password change.

Lockout: after ``crm.login.max_failures`` wrong passwords in a row (default 5; 0 turns the lockout
off) the account is locked for ``crm.login.lockout_minutes`` (default 15); a right password resets
the count. While it is locked no password is even checked, so a locked account cannot be used to
test guesses. The lock message appears only for a username that exists and has been locked — that
much is necessary to tell its owner what happened; an unknown username and a wrong password answer
the same "wrong username or password", equally slowly.

The failure count must stick although the request that made it fails (the API answers 401 and its
transaction is rolled back), so everything here reads and writes in short transactions of its own,
committed at once, never in the request's session. Callers must not hold a write transaction
while they call in (SQLite has one writer at a time): the login views call in before they touch
``request.dbsession``.
"""
import datetime as dt
import secrets
from contextlib import closing, contextmanager
from dataclasses import dataclass

import sqlalchemy as sa

from crm.core import auth
from crm.core.errors import ConfigurationError, Forbidden, Unauthorized, ValidationFailed
from crm.core.tables import users

MAX_FAILURES = 5
LOCKOUT_MINUTES = 15
WRONG = "wrong username or password"
_dummy_hash = None


class AccountLocked(Forbidden):
    """403 ``account_locked``: too many wrong passwords; ``until`` says when the lock ends."""
    code = "account_locked"

    def __init__(self, until):
        super().__init__(f"too many failed logins: this account is locked until {until:%Y-%m-%d %H:%M}")
        self.until = until


class AccountDisabled(Forbidden):
    """403: the password was right, but an administrator disabled the account."""

    def __init__(self):
        super().__init__("this account is disabled")


@dataclass(frozen=True)
class Policy:
    max_failures: int = MAX_FAILURES        # 0: no lockout
    lockout: dt.timedelta = dt.timedelta(minutes=LOCKOUT_MINUTES)

    @classmethod
    def from_settings(cls, settings):
        values = {}
        for key, default in (("crm.login.max_failures", MAX_FAILURES), ("crm.login.lockout_minutes", LOCKOUT_MINUTES)):
            raw = settings.get(key, default)
            try:
                values[key] = int(str(raw).strip())
            except ValueError:
                raise ConfigurationError(f"{key} must be a whole number, not {raw!r}")
            if values[key] < 0:
                raise ConfigurationError(f"{key} must not be negative")
        return cls(values["crm.login.max_failures"], dt.timedelta(minutes=values["crm.login.lockout_minutes"]))


def policy_of(runtime):
    return Policy.from_settings(runtime.settings)


@contextmanager
def own_transaction(runtime, write=True):
    """A short session of its own, committed when the block ends (rolled back on error)."""
    with closing(runtime.session(write=write)) as session:
        yield session
        session.commit()


def login(runtime, username, password):
    """The user row these credentials belong to (with its password hash, which the web session
    keeps a mark of), or Unauthorized (401, the same for an unknown user and a wrong password),
    AccountLocked or AccountDisabled (403)."""
    now = runtime.clock()
    username = str(username or "").strip()
    with own_transaction(runtime, write=False) as session:
        user = auth.get_user(session, username=username) if username else None
    if user is None:
        _waste_time(password)
        raise Unauthorized(WRONG)
    _refuse_if_locked(user, now)
    if not auth.verify_password(user["password_hash"], password or ""):
        _count_failure(runtime, user["id"], now)
        raise Unauthorized(WRONG)
    if not user["active"]:
        raise AccountDisabled()
    if user["failed_logins"] or user["locked_until"] is not None:
        with own_transaction(runtime) as session:
            unlock(session, user["id"])
    return user


def change_password(runtime, user_id, current, new):
    """A user's own password change: the current password must be right (a wrong one counts as a
    failed login) and the new one must follow the rule (:func:`crm.core.auth.password_problem`).
    Returns the user row with the new hash (the session keeps a mark of it)."""
    now = runtime.clock()
    with own_transaction(runtime, write=False) as session:
        user = auth.get_user(session, user_id=user_id)
    if user is None or not user["active"]:
        raise Unauthorized("log in again")
    _refuse_if_locked(user, now)
    problems = {}   # short codes per field (the pages show them in the user's language)
    if auth.password_problem(new):
        problems["password"] = "too short"
    elif new == current:
        problems["password"] = "same"
    if not auth.verify_password(user["password_hash"], current or ""):
        problems["current_password"] = "wrong"
        _count_failure(runtime, user_id, now)
    if problems:
        raise ValidationFailed("the password was not changed", problems)
    with own_transaction(runtime) as session:
        auth.set_password(session, user_id, new)
        return auth.get_user(session, user_id=user_id)


def locked_until(user, now):
    """When the user's lock ends, or None when the account is not locked."""
    until = user.get("locked_until")
    return until if until is not None and until > now else None


def unlock(session, user_id):
    """Forget the failures and lift a lock (a right password, or an administrator)."""
    session.execute(users.update().where(users.c.id == user_id).values(failed_logins=0, locked_until=None))


def _refuse_if_locked(user, now):
    until = locked_until(user, now)
    if until is not None:
        raise AccountLocked(until)


def _count_failure(runtime, user_id, now):
    """One more wrong password, committed at once; locks the account when the count reaches the
    limit (then AccountLocked: the attempt that locks says so). The increment is one UPDATE, so
    concurrent attempts each count (the row lock, or SQLite's write lock, orders them)."""
    policy = policy_of(runtime)
    with own_transaction(runtime) as session:
        session.execute(users.update().where(users.c.id == user_id).values(failed_logins=users.c.failed_logins + 1))
        count = session.execute(sa.select(users.c.failed_logins).where(users.c.id == user_id)).scalar()
        until = None
        if policy.max_failures and count >= policy.max_failures:
            until = now + policy.lockout
            session.execute(users.update().where(users.c.id == user_id).values(failed_logins=0, locked_until=until))
    if until is not None:
        raise AccountLocked(until)


def _waste_time(password):
    """Verify against a dummy hash so an unknown user answers as slowly as a wrong password."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = auth.hash_password(secrets.token_hex(16))
    auth.verify_password(_dummy_hash, password or "")
