"""Effective metadata over HTTP, and the OpenAPI document generated from it."""
import copy

from pyramid.view import view_config

from crm.core.errors import NotFound
from crm.core.web import openapi, security
from crm.core.web.api import RENDERER


def entity_summary(entity):
    return {"name": entity.name, "label": entity.spec.get("label") or entity.name, "owner": entity.owner,
            "child_of": entity.spec.get("child_of"), "singleton": bool(entity.spec.get("singleton"))}


def entity_detail(runtime, entity):
    """The effective definition: the merged spec, each field with its owner, and the JSON Schema
    record input is validated with."""
    spec = copy.deepcopy(entity.spec)
    spec["fields"] = {name: {**copy.deepcopy(field.spec), "owner": field.owner} for name, field in entity.fields.items()}
    return {**spec, **entity_summary(entity), "json_schema": copy.deepcopy(runtime.input_schema(entity))}


@view_config(route_name="api.meta.entities", request_method="GET", permission=security.META, renderer=RENDERER)
def meta_entities(request):
    model = request.registry.crm.metadata
    return {"items": [entity_summary(e) for e in model.entities.values()]}


@view_config(route_name="api.meta.entity", request_method="GET", permission=security.META, renderer=RENDERER)
def meta_entity(request):
    runtime = request.registry.crm
    entity = runtime.metadata.entities.get(request.matchdict["entity"])
    if entity is None:
        raise NotFound(f"no entity {request.matchdict['entity']!r}")
    return entity_detail(runtime, entity)


@view_config(route_name="api.openapi", request_method="GET", renderer=RENDERER)
def openapi_document(request):
    """Public: the document describes the API's shape (entity and field names), never data."""
    return openapi.document(request.registry.crm)
