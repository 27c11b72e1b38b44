"""``/api/v1/auth/token``: trade a username and password for an API token, or revoke the token
the call is made with. The rules live in :mod:`crm.core.tokens`."""
from pyramid.response import Response
from pyramid.view import view_config

from crm.core import tokens
from crm.core.errors import BadRequest
from crm.core.web import security
from crm.core.web.api import RENDERER
from crm.core.web.api_input import json_body


@view_config(route_name="api.auth.token", request_method="POST", renderer=RENDERER)
def create_token(request):
    body = json_body(request)
    username, password, name = body.get("username"), body.get("password"), body.get("name")
    problems = {k: "a string is required" for k, v in (("username", username), ("password", password)) if not isinstance(v, str) or not v}
    if name is not None and not isinstance(name, str):
        problems["name"] = "a string"
    if problems:
        raise BadRequest("username and password are required", problems)
    now = request.registry.crm.clock()
    user = tokens.authenticate(request.dbsession, username, password, now=now)
    token = tokens.create_token(request.dbsession, user["id"], name=name or "api", now=now)
    return {"token": token, "token_type": "bearer", "user": {"id": user["id"], "username": user["username"]}}


@view_config(route_name="api.auth.token", request_method="DELETE", permission=security.LOGOUT)
def revoke_token(request):
    tokens.revoke(request.dbsession, security.bearer_token(request), now=request.registry.crm.clock())
    return Response(status=204)
