"""Record endpoints, the same for every entity: parse the request, call the record service,
return JSON (:func:`crm.core.records.record_to_json`). No entity has code of its own here.

    GET    /api/v1/{entity}                list (q, sort, limit, cursor, count, filters)
    POST   /api/v1/{entity}                create                      → 201
    GET    /api/v1/{entity}/{id}           read
    PATCH  /api/v1/{entity}/{id}           update ("version" → 409 when stale)
    DELETE /api/v1/{entity}/{id}           to the recycle bin          → 204
    POST   /api/v1/{entity}/{id}/restore   back from the recycle bin
    GET    /api/v1/{entity}/{id}/history   audit trail, newest first
    POST   /api/v1/{entity}/{id}/copy      a new record with the same values → 201
    POST   /api/v1/{entity}/merge          {"survivor", "duplicate", "values"}
    GET    /api/v1/trash?entity=           the recycle bin
    GET/PATCH /api/v1/{entity}             for singleton entities: the one record

Child-table entities (``child_of``) are saved with their parent and are no resource of their own.
"""
from pyramid.response import Response
from pyramid.view import view_config

from crm.core import query
from crm.core.errors import BadRequest, NotFound
from crm.core.records import record_to_json
from crm.core.web import security
from crm.core.web.api import RENDERER, RESERVED_NAMES, MethodNotAllowed
from crm.core.web.api_input import FilterPairs, ListParams, body_id, json_body, limit, query_params, record_id, version


def api_entity(request, name=None):
    """The top-level entity the URL names, or 404 (unknown, or a child table)."""
    name = request.matchdict["entity"] if name is None else name
    entity = request.registry.crm.metadata.entities.get(name)
    if entity is None or entity.is_child or name in RESERVED_NAMES:
        raise NotFound(f"no entity {name!r}")
    return entity


def plain_entity(request):
    """An entity with records addressed by id (not a singleton)."""
    entity = api_entity(request)
    if entity.singleton:
        raise NotFound(f"{entity.name} has a single record: use {request.route_path('api.collection', entity=entity.name)}")
    return entity


def as_json(request, entity, record):
    return record_to_json(request.registry.crm.metadata, entity, record, iso_dates=False)  # the renderer writes them


def created(request, entity, record):
    request.response.status_int = 201
    request.response.location = request.route_url("api.record", entity=entity.name, id=record["id"])
    return as_json(request, entity, record)


# --- collection ------------------------------------------------------------------------------

@view_config(route_name="api.collection", request_method="GET", permission=security.READ, renderer=RENDERER)
def list_records(request):
    entity = api_entity(request)
    if entity.singleton:
        query_params(request)
        record = request.records.singleton(entity.name)
        return as_json(request, entity, record)
    params = ListParams(request)
    filters = query.parse_filters(entity, FilterPairs(params.filters))
    page = request.records.list(entity.name, filters=filters, sort=params.sort, limit=params.limit,
                                cursor=params.cursor, q=params.q, count=params.count, json_numbers=True)
    return {"items": [as_json(request, entity, r) for r in page.items], "next_cursor": page.next_cursor, "total": page.total}


@view_config(route_name="api.collection", request_method="POST", permission=security.CREATE, renderer=RENDERER)
def create_record(request):
    entity = api_entity(request)
    if entity.singleton:
        raise MethodNotAllowed(f"{entity.name} has a single record: read it with GET, change it with PATCH", ("GET", "PATCH"))
    return created(request, entity, request.records.create(entity.name, json_body(request)))


@view_config(route_name="api.collection", request_method="PATCH", permission=security.UPDATE, renderer=RENDERER)
def update_singleton(request):
    entity = api_entity(request)
    if not entity.singleton:
        raise MethodNotAllowed(f"PATCH a {entity.name} at /api/v1/{entity.name}/{{id}}", ("GET", "POST"))
    body = json_body(request)
    expected = version(body)
    record = request.records.singleton(entity.name)
    return as_json(request, entity, request.records.update(entity.name, record["id"], body, version=expected))


# --- one record ------------------------------------------------------------------------------

@view_config(route_name="api.record", request_method="GET", permission=security.READ, renderer=RENDERER)
def get_record(request):
    entity = plain_entity(request)
    return as_json(request, entity, request.records.get(entity.name, record_id(request.matchdict["id"], entity.name)))


@view_config(route_name="api.record", request_method="PATCH", permission=security.UPDATE, renderer=RENDERER)
def update_record(request):
    entity = plain_entity(request)
    rid = record_id(request.matchdict["id"], entity.name)
    body = json_body(request)
    expected = version(body)
    return as_json(request, entity, request.records.update(entity.name, rid, body, version=expected))


@view_config(route_name="api.record", request_method="DELETE", permission=security.DELETE)
def delete_record(request):
    entity = plain_entity(request)
    request.records.delete(entity.name, record_id(request.matchdict["id"], entity.name))
    return Response(status=204)


@view_config(route_name="api.record.restore", request_method="POST", permission=security.RESTORE, renderer=RENDERER)
def restore_record(request):
    entity = plain_entity(request)
    return as_json(request, entity, request.records.restore(entity.name, record_id(request.matchdict["id"], entity.name)))


@view_config(route_name="api.record.history", request_method="GET", permission=security.READ, renderer=RENDERER)
def record_history(request):
    entity = plain_entity(request)
    rows = request.records.history(entity.name, record_id(request.matchdict["id"], entity.name))
    return {"items": [{k: row[k] for k in ("id", "action", "field", "old_value", "new_value", "user_id", "at", "note")}
                      for row in rows]}


@view_config(route_name="api.record.copy", request_method="POST", permission=security.CREATE, renderer=RENDERER)
def copy_record(request):
    entity = plain_entity(request)
    rid = record_id(request.matchdict["id"], entity.name)
    overrides = json_body(request, required=False)
    return created(request, entity, request.records.copy(entity.name, rid, overrides))


@view_config(route_name="api.merge", request_method="POST", permission=security.MERGE, renderer=RENDERER)
def merge_records(request):
    entity = plain_entity(request)
    body = json_body(request)
    survivor, duplicate = body_id(body, "survivor"), body_id(body, "duplicate")
    values = body.get("values", {})
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise BadRequest("values must be an object (field → surviving value)", {"values": "an object"})
    survivor, duplicate = record_id(survivor, entity.name), record_id(duplicate, entity.name)
    return as_json(request, entity, request.records.merge(entity.name, survivor, duplicate, values))


# --- recycle bin -----------------------------------------------------------------------------

@view_config(route_name="api.trash", request_method="GET", permission=security.READ, renderer=RENDERER)
def trash(request):
    params = dict(query_params(request))
    name = params.get("entity")
    if name is not None:
        api_entity(request, name)
    rows = request.records.trash(name, limit=limit(params.get("limit"), default=100))
    return {"items": [{k: row[k] for k in ("id", "entity", "record_id", "title", "deleted_at", "deleted_by", "reason")}
                      for row in rows]}
