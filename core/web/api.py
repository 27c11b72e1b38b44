"""REST API under /api/v1: JSON in and out, generated for every entity (contract section 7)."""
from pyramid.view import view_config

from crm.core.errors import CrmError
from crm.core.registry import text_in


def includeme(config):
    config.add_route("api.meta.entities", "/api/v1/meta/entities")
    config.add_route("api.health", "/api/v1/health")
    config.scan(__name__)


@view_config(route_name="api.health", renderer="json")
def health(request):
    return {"ok": True}


@view_config(route_name="api.meta.entities", renderer="json")
def meta_entities(request):
    model = request.registry.crm.metadata
    return {"items": [{"name": e.name, "label": e.spec.get("label"), "owner": e.owner, "child_of": e.spec.get("child_of")}
                      for e in model.entities.values()]}


@view_config(context=CrmError, renderer="json")
def crm_error(exc, request):
    request.response.status_int = exc.status
    return exc.as_json()
