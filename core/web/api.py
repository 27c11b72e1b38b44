"""REST API under /api/v1: JSON in and out, generated for every entity (contract section 7).

This module registers the routes (in match order: fixed paths before ``/api/v1/{entity}``), the
JSON renderer and every error view: whatever goes wrong under ``/api/v1`` answers
``{"error": {"code", "message", "fields"}}`` with the right status, never an HTML page. The views
live next to it: :mod:`.api_auth` (tokens), :mod:`.api_meta` (metadata, OpenAPI),
:mod:`.api_records` (records), :mod:`.api_workflow` (workflow steps, approvals); :mod:`.security` decides who may call them.
"""
import json
import logging
from decimal import Decimal

from pyramid.httpexceptions import HTTPException
from pyramid.response import Response
from pyramid.view import forbidden_view_config, notfound_view_config, view_config

from crm.core.errors import CrmError
from crm.core.runtime import json_bytes
from crm.core.web.security import EntityContext

log = logging.getLogger(__name__)

PREFIX = "/api/v1"
RENDERER = "api_json"
ID = r"{id:\d+}"

# (route name, pattern); the order is the match order. Routes naming an entity get the
# EntityContext route factory, which tells the security policy what the request is about.
ROUTES = [
    ("api.health", "/health"),
    ("api.openapi", "/openapi.json"),
    ("api.auth.token", "/auth/token"),
    ("api.meta.entities", "/meta/entities"),
    ("api.meta.entity", "/meta/entities/{entity}"),
    ("api.trash", "/trash"),
    ("api.approvals", "/approvals"),
    ("api.merge", "/{entity}/merge"),
    ("api.collection", "/{entity}"),
    ("api.record", "/{entity}/" + ID),
    ("api.record.restore", "/{entity}/" + ID + "/restore"),
    ("api.record.history", "/{entity}/" + ID + "/history"),
    ("api.record.copy", "/{entity}/" + ID + "/copy"),
    ("api.record.transitions", "/{entity}/" + ID + "/transitions"),
    ("api.record.transition", "/{entity}/" + ID + "/transitions/{transition}"),
    ("api.record.workflow_log", "/{entity}/" + ID + "/workflow_log"),
]
# methods each route answers; anything else is a 405 with an Allow header
METHODS = {
    "api.health": ("GET",), "api.openapi": ("GET",), "api.auth.token": ("POST", "DELETE"),
    "api.meta.entities": ("GET",), "api.meta.entity": ("GET",), "api.trash": ("GET",),
    "api.merge": ("POST",), "api.collection": ("GET", "POST", "PATCH"), "api.record": ("GET", "PATCH", "DELETE"),
    "api.record.restore": ("POST",), "api.record.history": ("GET",), "api.record.copy": ("POST",),
    "api.approvals": ("GET",), "api.record.transitions": ("GET",), "api.record.transition": ("POST",),
    "api.record.workflow_log": ("GET",),
}
RESERVED_NAMES = ("health", "openapi.json", "auth", "meta", "trash", "approvals")  # not usable as entity names in URLs


class MethodNotAllowed(CrmError):
    status, code = 405, "method_not_allowed"

    def __init__(self, message, allow):
        super().__init__(message)
        self.headers = {"Allow": ", ".join(allow)}


class ApiRequest:
    """View predicate ``api=True``: the request is for the REST API (path under /api/v1).
    Reads the raw WSGI path, so it works even for paths that are not valid UTF-8."""

    def __init__(self, value, config):
        self.value = bool(value)

    def text(self):
        return f"api = {self.value}"

    phash = text

    def __call__(self, context, request):
        path = request.environ.get("PATH_INFO", "")
        return (path == PREFIX or path.startswith(PREFIX + "/")) == self.value


def _json_default(value):
    """What orjson cannot write itself (it writes dates, datetimes and times as ISO text, as
    ``isoformat`` does)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class JsonRenderer:
    """The API's renderer: the view's value as UTF-8 JSON, written by orjson. The standard
    library's encoder (Pyramid's ``json`` renderer) was a quarter of the CPU time of a list page of
    50 records; orjson writes the same values, keys in the same order (without the blanks after
    ``,`` and ``:``), several times faster."""

    def __init__(self, info):
        pass

    def __call__(self, value, system):
        request = system.get("request")
        if request is not None:
            response = request.response
            if response.content_type == response.default_content_type:
                response.content_type = "application/json"
        return json_bytes(value, default=_json_default)


def includeme(config):
    config.include("crm.core.web.security")
    config.add_renderer(RENDERER, JsonRenderer)
    config.add_view_predicate("api", ApiRequest)
    for name, pattern in ROUTES:
        entity_route = pattern.startswith("/{entity}")
        config.add_route(name, PREFIX + pattern, factory=EntityContext if entity_route else None)
        # lowest-priority view on the route: a method it does not answer
        config.add_view(method_not_allowed, route_name=name, renderer=RENDERER)
    config.scan("crm.core.web.api")
    config.scan("crm.core.web.api_auth")
    config.scan("crm.core.web.api_meta")
    config.scan("crm.core.web.api_records")
    config.scan("crm.core.web.api_workflow")


def method_not_allowed(request):
    allow = METHODS[request.matched_route.name]
    raise MethodNotAllowed(f"{request.method} is not allowed here; use {', '.join(allow)}", allow)


@view_config(route_name="api.health", request_method="GET", renderer=RENDERER)
def health(request):
    return {"ok": True}


# --- errors: always JSON under /api/v1 ---------------------------------------------------------

def error_response(status, code, message, fields=None, headers=None):
    """The JSON error answer. Built here, not by a renderer: nothing else (renderer globals, locale
    negotiation) runs for it, so an error can always be reported, even for an undecodable request."""
    body = {"error": {"code": code, "message": message, "fields": fields or {}}}
    response = Response(json.dumps(body, ensure_ascii=False), status=status, charset="utf-8",
                         content_type="application/json")
    response.headers.update(headers or {})
    return response


@view_config(context=CrmError)
def crm_error(exc, request):
    """Errors of the record service and the API itself carry their status, code and fields."""
    status = exc.status if 400 <= exc.status < 600 else 500
    if status >= 500:
        log.error("%s %s: %s", request.method, request.environ.get("PATH_INFO"), exc.message)
    return error_response(status, exc.code, exc.message, exc.fields, getattr(exc, "headers", None))


@notfound_view_config(api=True)
def not_found(exc, request):
    return error_response(404, "not_found", "no such resource: " + request.environ.get("PATH_INFO", ""))


@forbidden_view_config(api=True)
def forbidden(exc, request):
    if request.identity is None:
        return error_response(401, "unauthorized", "send a valid API token: Authorization: Bearer <token>",
                              headers={"WWW-Authenticate": 'Bearer realm="crm"'})
    return error_response(403, "forbidden", "you may not do this")


@view_config(context=HTTPException, api=True)
def http_exception(exc, request):
    code = exc.title.lower().replace(" ", "_") if exc.title else "error"
    headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "www-authenticate", "location")}
    return error_response(exc.code, code, exc.explanation or exc.title, headers=headers)


@view_config(context=UnicodeDecodeError, api=True)
def bad_encoding(exc, request):
    return error_response(400, "bad_request", "the request is not valid UTF-8")


@view_config(context=Exception, api=True)
def server_error(exc, request):
    """Last resort: a bug. Logged with its traceback; the caller gets a JSON 500."""
    log.exception("unexpected error in %s %s", request.method, request.environ.get("PATH_INFO"))
    return error_response(500, "internal_error", "unexpected server error; it has been logged")
