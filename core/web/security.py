"""Who is calling and what they may do: the Pyramid 2 security policy, in one place.

- ``identity``: the user row (a dict, without the password hash) of the caller. For the REST API it
  comes from ``Authorization: Bearer <token>`` (see :mod:`crm.core.tokens`). The browser session
  (signed cookie) of the web UI belongs here too, as a second source in :meth:`CrmSecurityPolicy.load_identity`.
- ``permits``: anonymous callers are denied everything that needs a permission; for a logged-in
  user the decision is made by :func:`check_action`, the single place where per-entity and
  per-action rules go.

Views name the action they perform as their ``permission`` (``read``, ``create``, ``update``,
``delete``, ``restore``, ``merge``, ``meta``, ``logout``); the route factory :class:`EntityContext`
tells ``check_action`` which entity the request is about. A denied permission raises
``HTTPForbidden``; the API's forbidden view answers 401 to anonymous callers and 403 to others.
"""
import hashlib
import logging
from contextlib import closing

from pyramid.security import Allowed, Denied
from pyramid.request import RequestLocalCache

from crm.core import auth, tokens

log = logging.getLogger(__name__)

# permission names views use
READ, CREATE, UPDATE, DELETE, RESTORE, MERGE, META, LOGOUT = (
    "read", "create", "update", "delete", "restore", "merge", "meta", "logout")
READING = ("GET", "HEAD", "OPTIONS")  # methods whose request.dbsession only reads (crm.core.app)


def includeme(config):
    config.set_security_policy(CrmSecurityPolicy())


class EntityContext:
    """Route factory for ``/api/v1/{entity}...``: names the entity (and record) a request is about,
    without resolving it (an unknown entity still answers 401 to an anonymous caller, not 404)."""

    def __init__(self, request):
        matchdict = request.matchdict or {}
        self.entity_name = matchdict.get("entity")
        self.record_id = matchdict.get("id")


def bearer_token(request):
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    header = request.environ.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


class CrmSecurityPolicy:
    def __init__(self):
        self.identity_cache = RequestLocalCache(self.load_identity)

    def load_identity(self, request):
        token = bearer_token(request)
        if token is None:
            return session_identity(request)
        return token_identity(request, token)

    def identity(self, request):
        return self.identity_cache.get_or_create(request)

    def authenticated_userid(self, request):
        identity = self.identity(request)
        return identity["id"] if identity else None

    def permits(self, request, context, permission):
        identity = self.identity(request)
        if identity is None:
            return Denied("authentication required")
        return check_action(request, identity, permission, context)

    def remember(self, request, userid, **kw):
        return []

    def forget(self, request, **kw):
        return []


def token_identity(request, token):
    """The user of an API token, checked against the database on every request (a revoked token
    stops working at once, in every process). A reading request (GET, HEAD, OPTIONS, inside its
    pyramid_tm transaction) reads the token in ``request.dbsession``, which the view uses next: one
    statement, no session and connection of its own. A writing request reads it in a short session
    of its own, so that its write transaction (SQLite's write lock) starts only for a known caller.
    ``last_used_at`` is written at most once a minute, in a short write transaction of its own
    once the request's transaction has ended (SQLite has one writer at a time, and a write
    committed during a read transaction would make that transaction's own later write fail)."""
    runtime = request.registry.crm
    now = runtime.clock()
    found = read_caller(request, lambda session: tokens.lookup(session, token, now=now))
    if found is None:
        return None
    user, token_id, last_used = found
    if tokens.stale(last_used, now):
        request.add_finished_callback(lambda request: touch_token(runtime, token_id, now))
    return user


def read_caller(request, read):
    """``read(session)``: who the caller is, read in ``request.dbsession`` for a reading request
    inside its pyramid_tm transaction (which the view uses next), else in a short session of its
    own, so that a writing request's transaction (SQLite's write lock) starts only for a known
    caller."""
    if request.method in READING and request.environ.get("tm.active"):
        return read(request.dbsession)
    with closing(request.registry.crm.session(write=False)) as session:
        found = read(session)
        session.rollback()
    return found


def touch_token(runtime, token_id, now):
    try:
        with closing(runtime.session(write=True)) as session:
            tokens.touch(session, token_id, now=now)
            session.commit()
    except Exception:  # bookkeeping only: never fail a request for it
        log.warning("could not record the use of API token %s", token_id, exc_info=True)


# --- web UI: the browser session (signed cookie, see crm.core.web.pages.session) -------------------

SESSION_USER = "crm.user_id"  # session key of the logged-in user's id
SESSION_MARK = "crm.mark"     # session key of a mark of the user's password hash (see password_mark)


def password_mark(user):
    """A short digest of the user's password hash, kept in the session at login: when the password
    changes (the user's own change, an administrator's reset), every other session of the user
    stops identifying them. The hash holds a random salt, so the mark reveals nothing usable."""
    return hashlib.sha256((user.get("password_hash") or "").encode()).hexdigest()[:32]


def log_in(request, user):
    """Make ``user`` (a row with its password hash) the session's user."""
    request.session[SESSION_USER] = user["id"]
    request.session[SESSION_MARK] = password_mark(user)


def session_identity(request):
    """The user logged in through the web UI's signed session cookie, or None. Only pages use it:
    the REST API (paths under /api/v1) authenticates by Bearer token alone, so a cookie can never
    act on the API on someone's behalf (and the API needs no CSRF token). An inactive user's
    session, or one from before a password change, no longer identifies anyone. The user is read
    with :func:`read_caller`, as a token is: in ``request.dbsession`` for a reading request (a
    session of its own ended with ROLLBACK made psycopg forget, on every page, the statements it
    had prepared on the connection), in a short session of its own for a writing one."""
    path = request.environ.get("PATH_INFO", "")
    if path == "/api/v1" or path.startswith("/api/v1/"):
        return None
    try:
        user_id = request.session.get(SESSION_USER)
    except Exception:  # no session factory configured (an app without pages)
        return None
    if not isinstance(user_id, int):
        return None
    user = read_caller(request, lambda session: auth.get_user(session, user_id=user_id))
    if user is None or not user["active"] or request.session.get(SESSION_MARK) != password_mark(user):
        return None
    return tokens.public(user)


def check_action(request, user, action, context):
    """May ``user`` (a logged-in, active user) perform ``action`` on ``context``?

    This is where permission rules go (roles, per-entity actions, field and record scopes are
    compiled into the record service's query layer, not checked here). ``context`` is an
    :class:`EntityContext` for record routes (``context.entity_name``), else the root.
    Return ``Allowed(reason)`` or ``Denied(reason)``. For now every active user may do everything.
    """
    return Allowed(f"{user['username']} is logged in")
