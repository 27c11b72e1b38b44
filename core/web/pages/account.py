"""The user's own account (``/app/account``): change the password, create and revoke API tokens.

Password change: the current password is asked for (a wrong one counts as a failed login, see
:mod:`crm.core.logins`); afterwards this session carries on and every other session of the user
ends (the session keeps a mark of the password hash, :func:`crm.core.web.security.password_mark`).
The change runs in a transaction of its own, so the view reaches it before touching the request's
database session.

API tokens: a new token's text is shown once, on the page that answers the creating POST (never
put into the session cookie, which is signed but readable, and never stored: only its hash is).
"""
from pyramid.httpexceptions import HTTPFound
from pyramid.view import view_config

from crm.core import auth, logins, tokens
from crm.core.errors import NotFound, ValidationFailed
from crm.core.web import security
from crm.core.web.pages.helpers import N_, _, flash, problem_texts, render

EXPIRY_DAYS = (30, 90, 365)   # offered on the page; no expiry is also possible
STATUS_LABELS = {"active": N_("Active"), "expired": N_("Expired"), "revoked": N_("Revoked")}


def token_rows(request, user_id, revoke_url):
    """The user's tokens for a page, each with its state in words and the URL that revokes it."""
    now = request.registry.crm.clock()
    return [{**t, "status_label": _(request, STATUS_LABELS[t["status"]]), "revoke_url": revoke_url(t["id"])}
            for t in tokens.list_tokens(request.dbsession, user_id, now=now)]


def account_page(request, password_errors=None, new_token=None, token_values=None, token_errors=None, status=200):
    me = request.identity
    rows = token_rows(request, me["id"], lambda token_id: request.route_path("page.account.token.revoke", id=token_id))
    response = render(request, "account.pt", {
        "me": me, "min_password": auth.MIN_PASSWORD, "password_errors": problem_texts(request, password_errors),
        "tokens": rows, "new_token": new_token,
        "token_values": token_values or {"name": "", "expires": ""}, "token_errors": problem_texts(request, token_errors),
        "expiry_days": EXPIRY_DAYS}, status=status)
    if new_token:
        response.headers["Cache-Control"] = "no-store"
    return response


@view_config(route_name="page.account", request_method="GET", permission=security.READ)
def account(request):
    return account_page(request)


@view_config(route_name="page.account.password", request_method="POST", permission=security.READ)
def change_password(request):
    post = request.POST
    current, new, again = post.get("current_password", ""), post.get("password", ""), post.get("password_again", "")
    try:
        if new != again:
            raise ValidationFailed("the passwords differ", {"password_again": "mismatch"})
        user = logins.change_password(request.registry.crm, request.identity["id"], current, new)
    except logins.AccountLocked as e:
        flash(request, _(request, "Too many failed logins: this account is locked until ${time}. Try again then, or ask an administrator to unlock it.",
                         time=e.until.strftime("%Y-%m-%d %H:%M")), "error")
        return HTTPFound(request.route_path("page.account"))
    except ValidationFailed as e:
        return account_page(request, password_errors=e.fields, status=422)
    security.log_in(request, user)   # this session goes on with the new password's mark
    flash(request, _(request, "Your password was changed. Other sessions of yours have ended."), "success")
    return HTTPFound(request.route_path("page.account"))


@view_config(route_name="page.account.tokens", request_method="POST", permission=security.READ)
def create_token(request):
    post = request.POST
    values = {"name": post.get("name", "").strip(), "expires": post.get("expires", "")}
    days = int(values["expires"]) if values["expires"].isdigit() else None
    if values["expires"] and days not in EXPIRY_DAYS:
        return account_page(request, token_values=values, token_errors={"expires": "invalid"}, status=422)
    if not values["name"]:
        return account_page(request, token_values=values, token_errors={"name": "required"}, status=422)
    now = request.registry.crm.clock()
    expires_at = tokens.expiry(now, days)
    token = tokens.create_token(request.dbsession, request.identity["id"], name=values["name"], expires_at=expires_at, now=now)
    return account_page(request, new_token={"token": token, "name": values["name"], "expires_at": expires_at})


@view_config(route_name="page.account.token.revoke", request_method="POST", permission=security.READ)
def revoke_token(request):
    if not tokens.revoke_id(request.dbsession, int(request.matchdict["id"]), user_id=request.identity["id"],
                            now=request.registry.crm.clock()):
        raise NotFound("no such live token of yours")
    flash(request, _(request, "The token was revoked."), "success")
    return HTTPFound(request.route_path("page.account") + "#tokens")
