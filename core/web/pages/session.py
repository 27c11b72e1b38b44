"""Browser sessions: login, logout, the language switch, the signed session cookie and CSRF.

The session lives in a cookie signed with ``crm.secret`` (Pyramid's SignedCookieSessionFactory,
JSON-serialized, HttpOnly, SameSite=Lax, ``Secure`` when ``crm.secure_cookies`` is true). It
holds the user's id (read back by :func:`crm.core.web.security.session_identity`), the chosen
language, flash messages and the CSRF token. Every unsafe request (POST ...) to a page must carry
that token (form field ``csrf_token`` or header ``X-CSRF-Token``), else 400 — the login form
too (the token comes with the login page), so no other site can log a browser in to an account of
its choosing. The REST API is exempt: it is authenticated by Bearer token only, never by the cookie.

Logging in goes through :func:`crm.core.logins.login` (failure count and lockout in transactions
of their own), before anything touches the request's database session.
"""
import logging
import secrets
from urllib.parse import urlsplit

from pyramid.csrf import new_csrf_token
from pyramid.httpexceptions import HTTPFound
from pyramid.session import SignedCookieSessionFactory
from pyramid.settings import asbool
from pyramid.view import view_config

from crm.core import logins
from crm.core.errors import Unauthorized
from crm.core.web.pages.helpers import _, render
from crm.core.web.pages.i18n import LOCALES, SESSION_LOCALE
from crm.core.web.security import log_in

log = logging.getLogger(__name__)
SESSION_HOURS = 8


def includeme(config):
    settings = config.get_settings()
    config.set_session_factory(session_factory(settings))
    config.set_default_csrf_options(require_csrf=True, callback=csrf_applies)


def session_factory(settings):
    secret = settings.get("crm.secret")
    if not secret:
        log.warning("crm.secret is not set: sessions last until the server restarts (set it in crm.ini)")
        secret = secrets.token_hex(32)
    timeout = int(settings.get("crm.session_timeout", SESSION_HOURS * 3600))
    return SignedCookieSessionFactory(
        secret, cookie_name="crm_session", httponly=True, samesite="Lax",
        secure=asbool(settings.get("crm.secure_cookies", False)),
        timeout=timeout, reissue_time=max(timeout // 10, 1), hashalg="sha512", salt="crm.session")


def csrf_applies(request):
    """CSRF tokens protect what the session cookie authenticates: the pages. API calls (under
    /api/v1, or with a Bearer header anywhere) carry their credentials explicitly."""
    path = request.environ.get("PATH_INFO", "")
    if path == "/api/v1" or path.startswith("/api/v1/"):
        return False
    return request.environ.get("HTTP_AUTHORIZATION", "").split(" ")[0].lower() != "bearer"


def safe_next(value, default="/app"):
    """A local path to go to after login (never another site)."""
    value = str(value or "")
    parts = urlsplit(value)
    if not value.startswith("/") or value.startswith("//") or parts.scheme or parts.netloc or "\\" in value:
        return default
    return value


@view_config(route_name="page.login", request_method="GET")
def login_form(request):
    if request.identity is not None:
        return HTTPFound(safe_next(request.GET.get("next")))
    return render(request, "login.pt", {"username": "", "error": None, "next": safe_next(request.GET.get("next"))})


@view_config(route_name="page.login", request_method="POST")
def login(request):
    username = request.POST.get("username", "").strip()
    password = request.POST.get("password", "")
    target = safe_next(request.POST.get("next"))
    try:
        user = logins.login(request.registry.crm, username, password)
    except Unauthorized:
        error = _(request, "Wrong username or password.")
    except logins.AccountLocked as e:
        error = _(request, "Too many failed logins: this account is locked until ${time}. Try again then, or ask an administrator to unlock it.",
                  time=e.until.strftime("%Y-%m-%d %H:%M"))
    except logins.AccountDisabled:
        error = _(request, "This account is disabled.")
    else:
        locale = request.session.get(SESSION_LOCALE)
        request.session.invalidate()  # a new session (and CSRF token) for the logged-in user
        log_in(request, user)
        if locale:
            request.session[SESSION_LOCALE] = locale
        new_csrf_token(request)
        return HTTPFound(target)
    return render(request, "login.pt", {"username": username, "error": error, "next": target}, status=200)


@view_config(route_name="page.logout", request_method="POST")
def logout(request):
    locale = request.session.get(SESSION_LOCALE)
    request.session.invalidate()
    if locale:
        request.session[SESSION_LOCALE] = locale
    return HTTPFound(request.route_path("page.login"))


@view_config(route_name="page.locale", request_method="POST")
def switch_locale(request):
    locale = request.POST.get("locale")
    if locale in LOCALES:
        request.session[SESSION_LOCALE] = locale
    return HTTPFound(safe_next(request.POST.get("next"), default=request.route_path("page.home")))
