"""API tokens: random secrets handed to a user once, kept only as a sha256 hash (table
``crm_api_tokens``). Used by the REST API (``Authorization: Bearer <token>``), and meant for the
CLI and the web UI too (create, list, revoke).

Every function takes the caller's SQLAlchemy session and commits nothing itself.
"""
import hashlib
import secrets

import sqlalchemy as sa

from crm.core import auth
from crm.core.errors import Forbidden, Unauthorized
from crm.core.tables import api_tokens, users

PREFIX = "crm_"            # makes leaked tokens easy to recognise (secret scanners, logs)
TOUCH_EVERY = 60           # seconds: last_used_at is written at most this often per token
_dummy_hash = None


def hash_token(token):
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create_token(session, user_id, *, name=None, now):
    """A new token for ``user_id``; returns the token text (shown once, never stored)."""
    token = PREFIX + secrets.token_urlsafe(32)
    session.execute(api_tokens.insert().values(user_id=user_id, name=(name or None) and str(name)[:100],
                                               token_hash=hash_token(token), created_at=now))
    return token


def authenticate(session, username, password, *, now):
    """The active user with these credentials, or Unauthorized (401) / Forbidden (403, disabled or
    locked account). The same message for an unknown user and a wrong password."""
    user = auth.get_user(session, username=str(username or "").strip()) if username else None
    if user is None:
        _waste_time(password)
        raise Unauthorized("wrong username or password")
    if not auth.verify_password(user["password_hash"], password or ""):
        raise Unauthorized("wrong username or password")
    if not user["active"]:
        raise Forbidden("this account is disabled")
    if user["locked_until"] is not None and user["locked_until"] > now:
        raise Forbidden("this account is locked for now; try again later")
    return _public(user)


def _waste_time(password):
    """Verify against a dummy hash so an unknown user answers as slowly as a wrong password."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = auth.hash_password(secrets.token_hex(16))
    auth.verify_password(_dummy_hash, password or "")


def user_for_token(session, token, *, now):
    """The active user a live token belongs to (a dict without the password hash), or None.
    Records when the token was last used (at most once a minute)."""
    found = lookup(session, token)
    if found is None:
        return None
    user, token_id, last_used = found
    if stale(last_used, now):
        touch(session, token_id, now=now)
    return user


def lookup(session, token):
    """(user, token id, last used) for a live token of an active user, or None. Reads only."""
    if not token:
        return None
    stmt = (sa.select(users, api_tokens.c.id.label("_token_id"), api_tokens.c.last_used_at.label("_last_used"))
            .join(api_tokens, api_tokens.c.user_id == users.c.id)
            .where(api_tokens.c.token_hash == hash_token(token), api_tokens.c.revoked_at.is_(None), users.c.active))
    row = session.execute(stmt).mappings().first()
    if row is None:
        return None
    row = dict(row)
    token_id, last_used = row.pop("_token_id"), row.pop("_last_used")
    return _public(row), token_id, last_used


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


def list_tokens(session, user_id):
    """The user's tokens (never their text), newest first."""
    stmt = (sa.select(api_tokens.c.id, api_tokens.c.name, api_tokens.c.created_at, api_tokens.c.last_used_at,
                      api_tokens.c.revoked_at)
            .where(api_tokens.c.user_id == user_id).order_by(api_tokens.c.id.desc()))
    return [dict(r) for r in session.execute(stmt).mappings()]


def _public(user):
    return {k: v for k, v in user.items() if k != "password_hash"}
