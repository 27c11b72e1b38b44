"""The OpenAPI 3.1 document of the REST API, generated from the effective metadata.

Each entity's schemas come from :meth:`crm.core.runtime.Runtime.input_schema`, the JSON Schema the
record service validates input with, so what is published and what is enforced cannot drift
apart; a field added to the metadata (a plugin's, a custom ``x_`` field) appears at once. On top
of it: the system fields (``id``, ``version``, ``created_at`` ...) as ``readOnly``, child rows
as references to the child entity's record schema, and the fields a create requires.

The document is built once per effective metadata (``runtime.reload()`` makes a new one).
"""
import copy
import weakref

from crm.core import query
from crm.core.records import COUNT_CAP, COUNT_SECONDS, MAX_LIMIT, READONLY_INPUT
from crm.core.registry import text_in
from crm.core.web.api import PREFIX, RESERVED_NAMES
from crm.core.web.api_input import IGNORED_PARAMS, LIST_PARAMS, MAX_INT

OPENAPI = "3.1.0"
_documents = weakref.WeakKeyDictionary()  # effective metadata → document


def document(runtime):
    model = runtime.metadata
    if model not in _documents:
        _documents[model] = build(runtime)
    return _documents[model]


def ref(kind, name=None):
    return {"$ref": f"#/components/{kind}/{name}" if name else f"#/components/schemas/{kind}"}


def schema_ref(prefix, entity):
    return {"$ref": f"#/components/schemas/{prefix}.{entity.name}"}


# --- fixed parts --------------------------------------------------------------------------------

NULLABLE_STRING = {"type": ["string", "null"]}
NULLABLE_INT = {"type": ["integer", "null"]}
TIMESTAMP = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?$",
             "description": "date and time as stored, without an offset: YYYY-MM-DDTHH:MM:SS"}
SYSTEM_FIELDS = {
    "id": {"type": "integer", "minimum": 1},
    "version": {"type": "integer", "minimum": 1, "description": "send it back with PATCH: a stale version answers 409"},
    "created_at": {**TIMESTAMP, "type": ["string", "null"]},
    "created_by": NULLABLE_INT,
    "updated_at": {**TIMESTAMP, "type": ["string", "null"]},
    "updated_by": NULLABLE_INT,
    "deleted_at": {**TIMESTAMP, "type": ["string", "null"]},
    "deleted_by": NULLABLE_INT,
    "parent_id": {"type": "integer", "minimum": 1},
    "sort_order": {"type": "integer"},
}

ERROR = {
    "type": "object",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {"error": {
        "type": "object",
        "required": ["code", "message", "fields"],
        "properties": {
            "code": {"type": "string", "description": "bad_request, unauthorized, forbidden, account_locked, not_found, "
                                                      "method_not_allowed, conflict, validation_failed, vetoed, internal_error"},
            "message": {"type": "string"},
            "fields": {"type": "object", "additionalProperties": {"type": "string"},
                       "description": "field name (child rows: table.index.field) → message"},
        },
    }},
}
ERRORS = {
    "400": "Malformed request: JSON body, parameters, cursor",
    "401": "No valid API token (send Authorization: Bearer <token>)",
    "403": "Not permitted",
    "404": "No such entity or record (or one the caller may not see)",
    "409": "The record changed since the version sent, or a workflow step does not leave from its state (nothing was changed)",
    "422": "Validation failed or a plugin vetoed the operation; `fields` has a message per field",
}

COMMON_SCHEMAS = {
    "Error": ERROR,
    "TokenRequest": {
        "type": "object",
        "required": ["username", "password"],
        "properties": {"username": {"type": "string", "minLength": 1}, "password": {"type": "string", "minLength": 1},
                       "name": {"type": "string", "maxLength": 100, "description": "what the token is for"},
                       "expires_in_days": {"type": "integer", "minimum": 1, "maximum": 3650,
                                           "description": "the token stops working after this many days (default: never)"}},
    },
    "Token": {
        "type": "object",
        "required": ["token", "token_type", "user"],
        "properties": {"token": {"type": "string"}, "token_type": {"const": "bearer"},
                       "user": {"type": "object", "required": ["id", "username"],
                                "properties": {"id": {"type": "integer"}, "username": {"type": "string"}}},
                       "expires_at": {"type": ["string", "null"], "format": "date-time"}},
    },
    "Label": {"anyOf": [{"type": "string"}, {"type": "object", "additionalProperties": {"type": "string"}}],
              "description": "a text, or a text per locale: {\"zh_CN\": ..., \"en\": ...}"},
    "EntitySummary": {
        "type": "object",
        "required": ["name", "label", "owner", "child_of", "singleton"],
        "properties": {"name": {"type": "string"}, "label": ref("Label"), "owner": {"type": "string"},
                       "child_of": NULLABLE_STRING, "singleton": {"type": "boolean"}},
    },
    "EntityMeta": {
        "type": "object",
        "required": ["name", "label", "owner", "fields", "json_schema"],
        "properties": {"name": {"type": "string"}, "label": ref("Label"), "owner": {"type": "string"},
                       "fields": {"type": "object", "additionalProperties": {"type": "object", "required": ["type", "owner"]}},
                       "json_schema": {"type": "object", "description": "the JSON Schema record input is validated with"}},
    },
    "HistoryEntry": {
        "type": "object",
        "required": ["id", "action", "field", "old_value", "new_value", "user_id", "at", "note"],
        "additionalProperties": False,
        "properties": {"id": {"type": "integer"}, "action": {"type": "string"}, "field": NULLABLE_STRING,
                       "old_value": {}, "new_value": {}, "user_id": NULLABLE_INT, "at": TIMESTAMP,
                       "note": NULLABLE_STRING},
    },
    "TrashItem": {
        "type": "object",
        "required": ["id", "entity", "record_id", "title", "deleted_at", "deleted_by", "reason"],
        "additionalProperties": False,
        "properties": {"id": {"type": "integer"}, "entity": {"type": "string"}, "record_id": {"type": "integer"},
                       "title": NULLABLE_STRING, "deleted_at": TIMESTAMP, "deleted_by": NULLABLE_INT,
                       "reason": NULLABLE_STRING},
    },
    "WorkflowStep": {
        "type": "object",
        "required": ["id", "label", "to", "to_label", "comment_required"],
        "additionalProperties": False,
        "properties": {"id": {"type": "string"}, "label": {"type": "string", "description": "the button text, in the caller's language"},
                       "to": {"type": "string", "description": "the state the step leads to"}, "to_label": {"type": "string"},
                       "comment_required": {"type": "boolean", "description": "true: send a comment (e.g. a rejection reason)"}},
    },
    "WorkflowSteps": {
        "type": "object",
        "required": ["workflow", "label", "state", "state_label", "items"],
        "additionalProperties": False,
        "properties": {"workflow": {"type": "string"}, "label": {"type": "string"}, "state": NULLABLE_STRING,
                       "state_label": {"type": "string"},
                       "items": {"type": "array", "items": ref("WorkflowStep"),
                                 "description": "the steps the caller may take now (state, principals, condition, self-approval checked)"}},
    },
    "TransitionRequest": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"comment": {"type": ["string", "null"], "maxLength": 2000,
                                   "description": "kept in the workflow log; required by some steps"},
                       "version": {"type": ["integer", "null"], "minimum": 0,
                                   "description": "the version you read; when the record has changed since, 409"}},
    },
    "WorkflowLogEntry": {
        "type": "object",
        "required": ["id", "transition", "transition_label", "from_state", "from_label", "to_state", "to_label", "user_id", "at", "comment"],
        "additionalProperties": False,
        "properties": {"id": {"type": "integer"}, "transition": {"type": "string"}, "transition_label": {"type": "string"},
                       "from_state": NULLABLE_STRING, "from_label": NULLABLE_STRING, "to_state": {"type": "string"},
                       "to_label": {"type": "string"}, "user_id": NULLABLE_INT, "at": TIMESTAMP, "comment": NULLABLE_STRING},
    },
    "Approval": {
        "type": "object",
        "required": ["entity", "id", "title", "state", "state_label", "transitions"],
        "additionalProperties": False,
        "properties": {"entity": {"type": "string"}, "id": {"type": "integer"}, "title": {"type": "string"},
                       "state": NULLABLE_STRING, "state_label": {"type": "string"},
                       "transitions": {"type": "array", "items": ref("WorkflowStep")}},
    },
}

LIST_PARAMETERS = {
    "q": {"name": "q", "in": "query", "schema": {"type": "string"},
          "description": "quick search over the entity's search fields; ASCII letters also match pinyin initials (助记码)"},
    "sort": {"name": "sort", "in": "query", "schema": {"type": "string"},
             "description": "fields, comma-separated, `-` for descending: `-amount,title`"},
    "limit": {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 50}},
    "cursor": {"name": "cursor", "in": "query", "schema": {"type": "string"},
               "description": "opaque keyset cursor: the `next_cursor` of the previous page (same sort)"},
    "count": {"name": "count", "in": "query", "schema": {"type": "boolean", "default": False},
              "description": f"true: `total` is the number of matching records, or null when there are more than {COUNT_CAP} "
                             f"or counting took longer than {COUNT_SECONDS} s (then given up); "
                             "false: `total` is null (no count is made)"},
}
ID_PARAMETER = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1, "maximum": MAX_INT}}


def responses(success, *errors, content=None, description="OK"):
    out = {}
    if success == "204":
        out["204"] = {"description": description}
    else:
        out[success] = {"description": description, "content": {"application/json": {"schema": content or {"type": "object"}}}}
    for status in errors:
        out[status] = ref("responses", status)
    return out


def json_body(schema, required=True):
    return {"required": required, "content": {"application/json": {"schema": schema}}}


# --- per entity ---------------------------------------------------------------------------------

def record_schema(runtime, entity):
    """A record as the API returns it (records.record_to_json): system fields, then every visible field."""
    properties = {name: {**SYSTEM_FIELDS[name], "readOnly": True} for name in entity.system_fields}
    inputs = runtime.input_schema(entity)["properties"]
    for field in entity.fields.values():
        if field.hidden:
            continue
        schema = published(inputs[field.name])
        if field.type == "table":
            schema = {"type": "array", "items": schema_ref("Record", runtime.metadata.entities[field.entity])}
        if field.readonly:
            schema["readOnly"] = True
        schema.setdefault("title", field.label_in("en"))
        properties[field.name] = schema
    # fields hidden from a user (access rules) are left out of their records: only system fields are always there
    return {"type": "object", "title": entity.label_in("en"), "properties": properties,
            "required": list(entity.system_fields), "additionalProperties": False}


def published(schema):
    """A field's input schema as published: ``format`` is only a hint in our field types (the record
    service checks the ``pattern`` and converts the value itself), so it goes into the description
    instead, where no client or test tool takes it for a rule the server enforces."""
    schema = copy.deepcopy(schema)
    fmt = schema.pop("format", None)
    if fmt:
        schema.setdefault("description", f"format: {fmt}")
    return schema


def ignored(schema=None):
    """A property the server ignores on input (system fields, generated and computed fields)."""
    return {"readOnly": True, "description": "set by the server; ignored on input",
            **({"title": schema["title"]} if schema and "title" in schema else {})}


def values_schema(runtime, entity):
    """Record input: the fields' input schemas, closed (other names are refused with 422)."""
    schema = copy.deepcopy(runtime.input_schema(entity))
    properties = {}
    for name, field_schema in schema["properties"].items():
        field = entity.fields.get(name)
        properties[name] = ignored(field_schema) if field is not None and field.ftype.system_filled else published(field_schema)
    properties.update({name: ignored() for name in sorted(READONLY_INPUT)})
    schema["properties"] = properties
    schema["additionalProperties"] = False
    schema["description"] = "field values; conditional rules (required_if, readonly_if) and references are checked too"
    return schema


def create_schema(runtime, entity):
    schema = values_schema(runtime, entity)
    required = [f.name for f in entity.fields.values()
                if f.required and not f.hidden and f.default is None and not f.ftype.system_filled]
    if required:
        schema["required"] = required
        for name in required:  # a required field takes no null (nor, for text, an empty string)
            field = schema["properties"][name]
            if isinstance(field.get("type"), list) and "null" in field["type"]:
                field["type"] = [t for t in field["type"] if t != "null"]
                field["type"] = field["type"][0] if len(field["type"]) == 1 else field["type"]
            if "string" in field.get("type", ()) and "minLength" not in field:
                field["minLength"] = 1
    return schema


def patch_schema(runtime, entity):
    schema = values_schema(runtime, entity)
    schema["properties"]["version"] = {"type": ["integer", "null"], "minimum": 0,
                                       "description": "the version you read; when the record has changed since, 409"}
    return schema


def filter_ops(ftype):
    if ftype == "links":
        return ("eq", "in")
    if ftype == "multiselect":
        return ("contains", "isnull")
    if ftype == "json":
        return ("isnull",)
    if ftype == "boolean":
        return ("eq", "ne", "in", "isnull")
    if ftype in query.TEXT_LIKE:
        return query.OPERATORS
    return ("eq", "ne", "gt", "gte", "lt", "lte", "in", "isnull")


def filter_parameter(entity):
    """Every other query parameter is a filter: ``field=value`` or ``field__op=value``."""
    names = [n for n in entity.system_fields if n not in ("deleted_at", "deleted_by")]
    names += [f.name for f in entity.fields.values() if not f.hidden and f.type != "table"]
    properties, groups = {}, {}
    for name in names:
        ops = filter_ops(query.field_type(entity, name))
        if "eq" in ops and name not in LIST_PARAMS + IGNORED_PARAMS:
            properties[name] = {"type": "string"}
        groups.setdefault(tuple(o for o in ops if o != "isnull"), []).append(name)
        if "isnull" in ops:
            groups.setdefault(("isnull",), []).append(name)
    patterns = {}
    for ops, fields in groups.items():
        if ops:
            pattern = f"^({'|'.join(fields)})__({'|'.join(ops)})$"
            patterns[pattern] = {"type": "boolean"} if ops == ("isnull",) else {"type": "string"}
    return {
        "name": "filter", "in": "query", "style": "form", "explode": True,
        "description": "filters, each a query parameter: `field=value` (equals) or `field__op=value`, op one of "
                       f"{', '.join(query.OPERATORS)}; `in` takes comma-separated values, `isnull` true or false. "
                       "A parameter may repeat; all conditions apply.",
        "schema": {"type": "object", "properties": properties, "patternProperties": patterns, "additionalProperties": False},
    }


def entity_paths(runtime, entity):
    name, tag = entity.name, [entity.name]
    record = schema_ref("Record", entity)
    base = f"{PREFIX}/{name}"
    label = entity.label_in("en")
    if entity.singleton:
        return {base: {
            "get": {"operationId": f"{name}.get", "tags": tag, "summary": f"The {label} record (there is only one)",
                    "responses": responses("200", "400", "401", "403", "404", "422", content=record)},
            "patch": {"operationId": f"{name}.update", "tags": tag, "summary": f"Change the {label} record",
                      "requestBody": json_body(schema_ref("Patch", entity)),
                      "responses": responses("200", "400", "401", "403", "404", "409", "422", content=record)},
        }}
    params = [ref("parameters", p) for p in LIST_PARAMETERS] + [filter_parameter(entity)]
    one = [ref("parameters", "id")]
    return {
        base: {
            "get": {"operationId": f"{name}.list", "tags": tag, "summary": f"List {label} records (keyset pages)",
                    "parameters": params,
                    "responses": responses("200", "400", "401", "403", "404", content=schema_ref("Page", entity))},
            "post": {"operationId": f"{name}.create", "tags": tag, "summary": f"Create a {label}",
                     "requestBody": json_body(schema_ref("Create", entity)),
                     "responses": responses("201", "400", "401", "403", "404", "422", content=record, description="Created")},
        },
        f"{base}/merge": {
            "post": {"operationId": f"{name}.merge", "tags": tag,
                     "summary": f"Merge a duplicate {label} into another (the duplicate goes to the recycle bin)",
                     "requestBody": json_body({
                         "type": "object", "required": ["survivor", "duplicate"],
                         "properties": {"survivor": ID_PARAMETER["schema"], "duplicate": ID_PARAMETER["schema"],
                                        "values": {**schema_ref("Values", entity),
                                                   "description": "the surviving values the user picked"}}}),
                     "responses": responses("200", "400", "401", "403", "404", "409", "422", content=record)},
        },
        f"{base}/{{id}}": {
            "parameters": one,
            "get": {"operationId": f"{name}.get", "tags": tag, "summary": f"Read a {label}",
                    "responses": responses("200", "400", "401", "403", "404", content=record)},
            "patch": {"operationId": f"{name}.update", "tags": tag, "summary": f"Change a {label}",
                      "requestBody": json_body(schema_ref("Patch", entity)),
                      "responses": responses("200", "400", "401", "403", "404", "409", "422", content=record)},
            "delete": {"operationId": f"{name}.delete", "tags": tag, "summary": f"Move a {label} to the recycle bin",
                       "responses": responses("204", "400", "401", "403", "404", "422", description="In the recycle bin")},
        },
        f"{base}/{{id}}/restore": {
            "parameters": one,
            "post": {"operationId": f"{name}.restore", "tags": tag, "summary": f"Bring a {label} back from the recycle bin",
                     "responses": responses("200", "400", "401", "403", "404", "422", content=record)},
        },
        f"{base}/{{id}}/history": {
            "parameters": one,
            "get": {"operationId": f"{name}.history", "tags": tag, "summary": f"Change history of a {label}, newest first",
                    "responses": responses("200", "400", "401", "403", "404", content=items(ref("HistoryEntry")))},
        },
        f"{base}/{{id}}/copy": {
            "parameters": one,
            "post": {"operationId": f"{name}.copy", "tags": tag, "summary": f"Copy a {label} (optional body: values to change)",
                     "requestBody": json_body(schema_ref("Values", entity), required=False),
                     "responses": responses("201", "400", "401", "403", "404", "422", content=record, description="Created")},
        },
    }


def workflow_paths(runtime, entity):
    """The workflow endpoints of an entity that has a workflow (docs/workflows.md)."""
    flow = runtime.metadata.workflows.get(entity.name)
    if flow is None or entity.singleton:
        return {}
    name, tag, base, label = entity.name, [entity.name], f"{PREFIX}/{entity.name}/{{id}}", entity.label_in("en")
    one = [ref("parameters", "id")]
    step = {"name": "transition", "in": "path", "required": True, "schema": {"type": "string", "enum": sorted(flow.transitions)}}
    return {
        f"{base}/transitions": {
            "parameters": one,
            "get": {"operationId": f"{name}.transitions", "tags": tag,
                    "summary": f"The workflow steps the caller may take on a {label} now",
                    "responses": responses("200", "400", "401", "403", "404", content=ref("WorkflowSteps"))},
        },
        f"{base}/transitions/{{transition}}": {
            "parameters": one + [step],
            "post": {"operationId": f"{name}.transition", "tags": tag,
                     "summary": f"Take a workflow step on a {label} (403 not yours to take, 409 wrong state or stale version, "
                                "422 comment required or vetoed)",
                     "requestBody": json_body(ref("TransitionRequest"), required=False),
                     "responses": responses("200", "400", "401", "403", "404", "409", "422", content=schema_ref("Record", entity))},
        },
        f"{base}/workflow_log": {
            "parameters": one,
            "get": {"operationId": f"{name}.workflow_log", "tags": tag, "summary": f"The workflow steps taken on a {label}, oldest first",
                    "responses": responses("200", "400", "401", "403", "404", content=items(ref("WorkflowLogEntry")))},
        },
    }


def items(schema):
    return {"type": "object", "required": ["items"], "additionalProperties": False,
            "properties": {"items": {"type": "array", "items": schema}}}


def page_schema(entity):
    return {"type": "object", "required": ["items", "next_cursor", "total"], "additionalProperties": False,
            "properties": {"items": {"type": "array", "items": schema_ref("Record", entity)},
                           "next_cursor": {"type": ["string", "null"], "description": "null on the last page"},
                           "total": {"type": ["integer", "null"],
                                     "description": f"with count=true: the number of matches, null above {COUNT_CAP} or when counting took longer than {COUNT_SECONDS} s; else null"}}}


# --- the document ------------------------------------------------------------------------------

def build(runtime):
    model = runtime.metadata
    top = [e for e in model.entities.values() if not e.is_child and e.name not in RESERVED_NAMES]
    schemas = copy.deepcopy(COMMON_SCHEMAS)
    paths = fixed_paths(model, top)
    for entity in model.entities.values():
        schemas[f"Record.{entity.name}"] = record_schema(runtime, entity)
    for entity in top:
        schemas[f"Values.{entity.name}"] = values_schema(runtime, entity)
        schemas[f"Patch.{entity.name}"] = patch_schema(runtime, entity)
        if not entity.singleton:
            schemas[f"Create.{entity.name}"] = create_schema(runtime, entity)
            schemas[f"Page.{entity.name}"] = page_schema(entity)
        paths.update(entity_paths(runtime, entity))
        paths.update(workflow_paths(runtime, entity))
    return {
        "openapi": OPENAPI,
        "info": {"title": "CRM REST API", "version": "1",
                 "description": "Generated from the effective metadata of this instance: every entity, "
                                "with the fields core, plugins and customizations give it."},
        "security": [{"bearerAuth": []}],
        "tags": [{"name": e.name, "description": text_in(e.spec.get("label") or e.name, "en")} for e in top],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "parameters": {**copy.deepcopy(LIST_PARAMETERS), "id": copy.deepcopy(ID_PARAMETER)},
            "responses": {status: {"description": text, "content": {"application/json": {"schema": ref("Error")}}}
                          for status, text in ERRORS.items()},
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                               "description": "a token from POST /api/v1/auth/token"}},
        },
    }


def fixed_paths(model, top):
    public = []
    names = sorted(model.entities)
    return {
        f"{PREFIX}/auth/token": {
            "post": {"operationId": "auth.create_token", "tags": ["auth"], "security": public,
                     "summary": "Log in: a new API token for a username and password",
                     "requestBody": json_body(ref("TokenRequest")),
                     "responses": responses("200", "400", "401", "403", content=ref("Token"))},
            "delete": {"operationId": "auth.revoke_token", "tags": ["auth"], "summary": "Revoke the token of this call",
                       "responses": responses("204", "401", description="Revoked")},
        },
        f"{PREFIX}/openapi.json": {
            "get": {"operationId": "openapi", "tags": ["meta"], "security": public, "summary": "This document",
                    "responses": responses("200", content={"type": "object"})},
        },
        f"{PREFIX}/health": {
            "get": {"operationId": "health", "tags": ["meta"], "security": public, "summary": "Liveness",
                    "responses": responses("200", content={"type": "object", "required": ["ok"],
                                                           "properties": {"ok": {"const": True}}})},
        },
        f"{PREFIX}/meta/entities": {
            "get": {"operationId": "meta.entities", "tags": ["meta"], "summary": "Every entity (effective metadata)",
                    "responses": responses("200", "401", "403", content=items(ref("EntitySummary")))},
        },
        f"{PREFIX}/meta/entities/{{entity}}": {
            "get": {"operationId": "meta.entity", "tags": ["meta"],
                    "summary": "One entity's effective metadata: fields with their owners, and its JSON Schema",
                    "parameters": [{"name": "entity", "in": "path", "required": True, "schema": {"type": "string", "enum": names}}],
                    "responses": responses("200", "401", "403", "404", content=ref("EntityMeta"))},
        },
        f"{PREFIX}/approvals": {
            "get": {"operationId": "approvals.list", "tags": ["workflow"],
                    "summary": "What waits for the caller (待我审批): records in a state where they may take an approval step",
                    "parameters": [{"name": "limit", "in": "query",
                                    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 100}}],
                    "responses": responses("200", "400", "401", "403", content=items(ref("Approval")))},
        },
        f"{PREFIX}/trash": {
            "get": {"operationId": "trash.list", "tags": ["trash"], "summary": "The recycle bin, newest first",
                    "parameters": [
                        {"name": "entity", "in": "query", "schema": {"type": "string", "enum": [e.name for e in top]}},
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 100}},
                    ],
                    "responses": responses("200", "400", "401", "403", "404", content=items(ref("TrashItem")))},
        },
    }
