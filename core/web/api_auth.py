"""``/api/v1/auth/token``: trade a username and password for an API token, or revoke the token
the call is made with. The rules live in :mod:`crm.core.logins` (password, lockout: 401, or 403
``account_locked``) and :mod:`crm.core.tokens`."""
from pyramid.response import Response
from pyramid.view import view_config

from crm.core import logins, tokens
from crm.core.errors import BadRequest
from crm.core.web import security
from crm.core.web.api import RENDERER
from crm.core.web.api_input import json_body


@view_config(route_name="api.auth.token", request_method="POST", renderer=RENDERER)
def create_token(request):
    body = json_body(request)
    username, password, name = body.get("username"), body.get("password"), body.get("name")
    days = body.get("expires_in_days")
    problems = {k: "a string is required" for k, v in (("username", username), ("password", password)) if not isinstance(v, str) or not v}
    if name is not None and not isinstance(name, str):
        problems["name"] = "a string"
    if days is not None and (isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= tokens.MAX_DAYS):
        problems["expires_in_days"] = f"a whole number of days from 1 to {tokens.MAX_DAYS}"
    if problems:
        raise BadRequest("username and password are required" if set(problems) & {"username", "password"} else "invalid input", problems)
    user = logins.login(request.registry.crm, username, password)  # before the request's own session: see crm.core.logins
    now = request.registry.crm.clock()
    expires_at = tokens.expiry(now, days)
    token = tokens.create_token(request.dbsession, user["id"], name=name or "api", expires_at=expires_at, now=now)
    return {"token": token, "token_type": "bearer", "user": {"id": user["id"], "username": user["username"]},
            "expires_at": expires_at.isoformat() if expires_at else None}


@view_config(route_name="api.auth.token", request_method="DELETE", permission=security.LOGOUT)
def revoke_token(request):
    tokens.revoke(request.dbsession, security.bearer_token(request), now=request.registry.crm.clock())
    return Response(status=204)
