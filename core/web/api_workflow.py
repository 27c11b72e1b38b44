"""Workflow endpoints, the same for every entity that has a workflow (docs/workflows.md). They
parse the request and call :mod:`crm.core.workflow`; the engine decides who may take which step.

    GET  /api/v1/{entity}/{id}/transitions               the steps the caller may take now
    POST /api/v1/{entity}/{id}/transitions/{transition}  take one: {"comment", "version"} → the record
    GET  /api/v1/{entity}/{id}/workflow_log              the steps taken, oldest first
    GET  /api/v1/approvals                               what waits for the caller (待我审批)

A record the caller may not see answers 404 (as everywhere); an entity without a workflow, or a
step it does not have, 404 too. Taking a step: 403 when the caller may not take it, 409 when the
record is not in a state it leaves from or ``version`` is stale, 422 when a comment is required
(``fields.comment``) or a plugin vetoed it (``code = "vetoed"``, the plugin's message).
"""
from pyramid.view import view_config

from crm.core import workflow as workflows
from crm.core.errors import BadRequest, ValidationFailed
from crm.core.web import security
from crm.core.web.api import RENDERER
from crm.core.web.api_input import json_body, limit, query_params, record_id, version
from crm.core.web.api_records import as_json, plain_entity

MAX_COMMENT = 2000
BODY_KEYS = ("comment", "version")


def _workflow(request):
    entity = plain_entity(request)
    return entity, workflows.workflow_of(request.records, entity.name), record_id(request.matchdict["id"], entity.name)


@view_config(route_name="api.record.transitions", request_method="GET", permission=security.READ, renderer=RENDERER)
def list_transitions(request):
    entity, flow, rid = _workflow(request)
    records, locale = request.records, request.locale_name
    steps = workflows.available(records, entity.name, rid)
    state = records.get(entity.name, rid).get(flow.state_field)
    return {"workflow": flow.name, "label": flow.label(locale), "state": state, "state_label": flow.state_label(state, locale),
            "items": [flow.describe(t, locale) for t in steps]}


@view_config(route_name="api.record.transition", request_method="POST", permission=security.UPDATE, renderer=RENDERER)
def take_transition(request):
    entity, _flow, rid = _workflow(request)
    body = json_body(request, required=False)
    unknown = sorted(set(body) - set(BODY_KEYS))
    if unknown:
        raise BadRequest(f"unknown keys: {', '.join(unknown)} (send comment and version)", {k: "unknown" for k in unknown})
    expected = version(body)
    comment = body.get("comment")
    if comment is not None and not isinstance(comment, str):
        raise BadRequest("comment must be a text", {"comment": "a text"})
    if comment is not None and len(comment) > MAX_COMMENT:
        raise ValidationFailed(f"the comment is longer than {MAX_COMMENT} characters", {"comment": f"at most {MAX_COMMENT} characters"})
    record = workflows.transition(request.records, entity.name, rid, request.matchdict["transition"],
                                  comment=comment, version=expected)
    return as_json(request, entity, record)


@view_config(route_name="api.record.workflow_log", request_method="GET", permission=security.READ, renderer=RENDERER)
def workflow_log(request):
    entity, flow, rid = _workflow(request)
    locale = request.locale_name
    return {"items": [{
        "id": row["id"], "transition": row["transition"],
        "transition_label": flow.transition_label(flow.transitions[row["transition"]], locale)
        if row["transition"] in flow.transitions else row["transition"],
        "from_state": row["from_state"], "from_label": flow.state_label(row["from_state"], locale) if row["from_state"] else None,
        "to_state": row["to_state"], "to_label": flow.state_label(row["to_state"], locale),
        "user_id": row["user_id"], "at": row["at"], "comment": row["comment"],
    } for row in workflows.log(request.records, entity.name, rid)]}


@view_config(route_name="api.approvals", request_method="GET", permission=security.READ, renderer=RENDERER)
def approvals(request):
    params = dict(query_params(request))
    unknown = sorted(set(params) - {"limit"})
    if unknown:
        raise BadRequest(f"unknown parameters: {', '.join(unknown)}", {k: "unknown" for k in unknown})
    records, locale, model = request.records, request.locale_name, request.registry.crm.metadata
    items = []
    for name, record, steps in workflows.my_approvals(records, limit=limit(params.get("limit"), default=100)):
        entity, flow = model.entities[name], model.workflows[name]
        state = record.get(flow.state_field)
        items.append({"entity": name, "id": record["id"], "title": records.title(entity, record),
                      "state": state, "state_label": flow.state_label(state, locale),
                      "transitions": [flow.describe(t, locale) for t in steps]})
    return {"items": items}
