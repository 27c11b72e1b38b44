"""API tokens: random secrets handed to a user once, kept only as a sha256 hash (table
``crm_api_tokens``). Used by the REST API (``Authorization: Bearer <token>``); created, listed and
revoked by ``POST /api/v1/auth/token``, the account and user pages and ``crm tokens``.

A token may expire (``expires_at``; NULL: never). An expired or revoked token, or one of a
disabled user, identifies nobody. Every function takes the caller's SQLAlchemy session and
commits nothing itself. Password checks (and the lockout) are :mod:`crm.core.logins`.
"""
import datetime as dt
import hashlib
import secrets

import sqlalchemy as sa

from crm.core.errors import ValidationFailed
from crm.core.tables import api_tokens, users

PREFIX = "crm_"            # makes leaked tokens easy to recognise (secret scanners, logs)
TOUCH_EVERY = 60           # seconds: last_used_at is written at most this often per token
MAX_NAME = 100
MAX_DAYS = 3650            # the longest expiry one can ask for (ten years); no expiry is also possible


def hash_token(token):
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def expiry(now, days):
    """The end of a token asked to live ``days`` days (None: no expiry)."""
    return None if days is None else now + dt.timedelta(days=days)


def create_token(session, user_id, *, name=None, expires_at=None, now):
    """A new token for ``user_id``, valid until ``expires_at`` (None: until revoked); returns the
    token text (shown once, never stored)."""
    if expires_at is not None and expires_at <= now:
        raise ValidationFailed("the expiry must lie in the future", {"expires_at": "in the past"})
    token = PREFIX + secrets.token_urlsafe(32)
    name = str(name or "").strip()[:MAX_NAME] or None
    session.execute(api_tokens.insert().values(user_id=user_id, name=name, token_hash=hash_token(token), created_at=now,
                                               expires_at=expires_at))
    return token


def user_for_token(session, token, *, now):
    """The active user a live token belongs to (a dict without the password hash), or None.
    Records when the token was last used (at most once a minute)."""
    found = lookup(session, token, now=now)
    if found is None:
        return None
    user, token_id, last_used = found
    if stale(last_used, now):
        touch(session, token_id, now=now)
    return user


def lookup(session, token, *, now):
    """(user, token id, last used) for a live (not revoked, not expired) token of an active user,
    or None. Reads only: one statement, built once (it runs on every API request)."""
    if not token:
        return None
    row = session.connection().execute(_LOOKUP, {"token_hash": hash_token(token), "now": now}).mappings().first()
    if row is None:
        return None
    row = dict(row)
    token_id, last_used = row.pop("_token_id"), row.pop("_last_used")
    return public(row), token_id, last_used


_LOOKUP = (sa.select(users, api_tokens.c.id.label("_token_id"), api_tokens.c.last_used_at.label("_last_used"))
           .join(api_tokens, api_tokens.c.user_id == users.c.id)
           .where(api_tokens.c.token_hash == sa.bindparam("token_hash"), api_tokens.c.revoked_at.is_(None), users.c.active,
                  sa.or_(api_tokens.c.expires_at.is_(None), api_tokens.c.expires_at > sa.bindparam("now"))))


def stale(last_used, now):
    """Is ``last_used_at`` old enough to be written again?"""
    return last_used is None or (now - last_used).total_seconds() >= TOUCH_EVERY


def touch(session, token_id, *, now):
    session.execute(api_tokens.update().where(api_tokens.c.id == token_id).values(last_used_at=now))


def revoke(session, token, *, now):
    """Revoke the token given by its text; True when a live token was revoked."""
    stmt = api_tokens.update().where(api_tokens.c.token_hash == hash_token(token), api_tokens.c.revoked_at.is_(None))
    return session.execute(stmt.values(revoked_at=now)).rowcount == 1


def revoke_id(session, token_id, *, user_id=None, now):
    """Revoke a token by its id (optionally only if it belongs to ``user_id``)."""
    stmt = api_tokens.update().where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
    if user_id is not None:
        stmt = stmt.where(api_tokens.c.user_id == user_id)
    return session.execute(stmt.values(revoked_at=now)).rowcount == 1


def list_tokens(session, user_id=None, *, now):
    """Tokens (never their text) of one user, or of everyone, newest first; each with its
    ``username`` and ``status`` (``active``, ``expired`` or ``revoked``)."""
    stmt = (sa.select(api_tokens.c.id, api_tokens.c.user_id, users.c.username, api_tokens.c.name, api_tokens.c.created_at,
                      api_tokens.c.last_used_at, api_tokens.c.expires_at, api_tokens.c.revoked_at)
            .join(users, users.c.id == api_tokens.c.user_id).order_by(api_tokens.c.id.desc()))
    if user_id is not None:
        stmt = stmt.where(api_tokens.c.user_id == user_id)
    return [{**row, "status": status(row, now)} for row in map(dict, session.execute(stmt).mappings())]


def status(token, now):
    if token["revoked_at"] is not None:
        return "revoked"
    if token["expires_at"] is not None and token["expires_at"] <= now:
        return "expired"
    return "active"


def public(user):
    """A user row without its password hash."""
    return {k: v for k, v in user.items() if k != "password_hash"}

