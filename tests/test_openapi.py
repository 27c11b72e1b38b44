"""GET /api/v1/openapi.json: valid OpenAPI 3.1, generated from the effective metadata with the
same JSON Schemas that validate input; and Schemathesis against the running WSGI app."""
import json
import os
import time

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from openapi_spec_validator import validate

from crm.hooks import hookimpl
from tests.api_fixtures import make_api, api  # noqa: F401 (fixtures)
from tests.test_workflow import ExpensePlugin

EXTRA_FIELD = {"extends": "partner", "fields": {"rating_plugin_level": {"type": "integer", "min": 1, "max": 9,
                                                                         "label": {"zh_CN": "等级", "en": "Level"}}}}


class RatingPlugin:
    """A plugin adding a field to another plugin's entity."""

    @hookimpl
    def crm_metadata(self):
        return [EXTRA_FIELD]


def test_document_is_valid_openapi_31(make_api):
    api = make_api(enabled="*")                                        # with every installed plugin
    doc = api.as_anonymous().get("openapi.json").json                 # public: shape only, no data
    validate(doc)                                                      # raises when invalid
    assert doc["openapi"] == "3.1.0"
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "description": "a token from POST /api/v1/auth/token"}
    paths = doc["paths"]
    assert set(paths["/api/v1/deal"]) == {"get", "post"}
    assert set(paths["/api/v1/deal/{id}"]) == {"parameters", "get", "patch", "delete"}
    for suffix in ("merge", "{id}/restore", "{id}/history", "{id}/copy"):
        assert f"/api/v1/deal/{suffix}" in paths
    assert not any(p.startswith("/api/v1/deal_line") for p in paths)  # child tables are no resource
    assert paths["/api/v1/auth/token"]["post"]["security"] == []
    assert "409" in paths["/api/v1/deal/{id}"]["patch"]["responses"]
    # the workflow endpoints, for the entities that have a workflow (cost_centers' here)
    assert not any("/api/v1/deal/{id}/transitions" in p for p in paths)
    step = paths["/api/v1/company_transaction/{id}/transitions/{transition}"]
    assert step["parameters"][1]["schema"]["enum"] == sorted(
        t["id"] for t in api.runtime.metadata.workflows["company_transaction"].spec["transitions"])
    assert set(step["post"]["responses"]) == {"200", "400", "401", "403", "404", "409", "422"}
    assert "/api/v1/company_transaction/{id}/workflow_log" in paths and "/api/v1/approvals" in paths


def test_entity_schemas_are_the_input_schemas(api):
    runtime = api.runtime
    doc = api.get("openapi.json").json
    schemas = doc["components"]["schemas"]
    deal = runtime.metadata.entities["deal"]
    input_schema = runtime.input_schema(deal)
    create = schemas["Create.deal"]
    assert create["required"] == ["title"]
    assert create["properties"]["title"] == {"type": "string", "maxLength": 100, "minLength": 1}   # required: no null
    for name in ("amount", "quantity", "stage", "partner_id", "partners", "lines", "lost_reason"):
        assert create["properties"][name] == input_schema["properties"][name]
    assert create["properties"]["closed_on"] == {**{k: v for k, v in input_schema["properties"]["closed_on"].items()
                                                    if k != "format"}, "description": "format: date"}
    assert create["additionalProperties"] is False                   # unknown names are refused (422) ...
    assert create["properties"]["id"]["readOnly"] is True             # ... system and generated ones ignored
    assert create["properties"]["code"]["readOnly"] is True and "type" not in create["properties"]["code"]
    assert schemas["Patch.deal"]["properties"]["version"]["type"] == ["integer", "null"]
    record = schemas["Record.deal"]
    assert record["properties"]["id"]["readOnly"] is True and record["properties"]["created_at"]["readOnly"] is True
    assert record["properties"]["amount"]["type"] == input_schema["properties"]["amount"]["type"]
    assert record["properties"]["lines"]["items"] == {"$ref": "#/components/schemas/Record.deal_line"}
    assert record["properties"]["code"]["readOnly"] is True
    # every record the API returns matches its published schema
    import jsonschema
    created = api.post("deal", {"title": "A", "amount": 3, "lines": [{"product": "笔"}]}, status=201).json
    resolver_doc = {"$defs": {}, **record}
    validator = jsonschema.Draft202012Validator(
        json.loads(json.dumps(resolver_doc).replace("#/components/schemas/", "#/$defs/")) | {"$defs": {
            k: json.loads(json.dumps(v).replace("#/components/schemas/", "#/$defs/")) for k, v in schemas.items()}})
    assert list(validator.iter_errors(created)) == []


def test_a_field_a_plugin_adds_appears_in_the_document(make_api):
    api = make_api(plugins=[("rating", RatingPlugin())])
    doc = api.get("openapi.json").json
    field = doc["components"]["schemas"]["Create.partner"]["properties"]["rating_plugin_level"]
    assert field == api.runtime.input_schema(api.runtime.metadata.entities["partner"])["properties"]["rating_plugin_level"]
    assert field == {"type": ["integer", "null"], "minimum": 1, "maximum": 9}
    assert "rating_plugin_level" in doc["components"]["schemas"]["Record.partner"]["properties"]
    partner = api.post("partner", {"name": "甲", "rating_plugin_level": 3}, status=201).json
    assert partner["rating_plugin_level"] == 3
    assert api.post("partner", {"name": "乙", "rating_plugin_level": 10}, status=422).json["error"]["fields"] == {
        "rating_plugin_level": "超出范围 (10 is greater than the maximum of 9)"}


def test_a_custom_field_appears_at_once(api, instance_dir):
    before = api.get("openapi.json").json
    assert "x_wechat" not in before["components"]["schemas"]["Record.partner"]["properties"]
    (instance_dir / "custom" / "partner.json").write_text(json.dumps(
        {"extends": "partner", "fields": {"x_wechat": {"type": "text", "max_length": 50, "label": "微信"}}}), "utf-8")
    api.runtime.upgrade()                                             # what saving a customization does
    after = api.get("openapi.json").json
    assert after["components"]["schemas"]["Create.partner"]["properties"]["x_wechat"] == {
        "type": ["string", "null"], "maxLength": 50}
    validate(after)
    assert api.post("partner", {"name": "甲", "x_wechat": "wx_1"}, status=201).json["x_wechat"] == "wx_1"
    assert api.get("meta/entities/partner").json["fields"]["x_wechat"]["owner"] == "custom"


# --- Schemathesis --------------------------------------------------------------------------

# small and derandomized for the suite; CRM_SCHEMATHESIS_EXAMPLES=200 explores further (random seeds)
MAX_EXAMPLES = int(os.environ.get("CRM_SCHEMATHESIS_EXAMPLES", "6"))
DERANDOMIZE = "CRM_SCHEMATHESIS_EXAMPLES" not in os.environ
# the suite fuzzes the core entities and the test plugin's (about a minute); exploring, every installed plugin too
PLUGINS = "deals" if DERANDOMIZE else "*"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_schemathesis_finds_no_server_errors_and_no_schema_violations(make_api, database_url):
    """Requests generated from the document (valid and invalid ones) against the WSGI app:
    no 5xx, and every response conforms to the document (status, content type, body schema)."""
    import schemathesis
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (content_type_conformance, ignored_auth, negative_data_rejection,
                                                   response_headers_conformance, response_schema_conformance,
                                                   status_code_conformance, unsupported_method)

    api = make_api(enabled=PLUGINS, plugins=[("expenses", ExpensePlugin(veto_over=50000))])   # with a workflow
    app = api.app.app
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, config=schemathesis.Config())
    schema.config.generation.update(with_security_parameters=False, max_examples=MAX_EXAMPLES)
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
              response_headers_conformance, negative_data_rejection, ignored_auth, unsupported_method]
    headers = api.headers()
    # a few records, so that generated ids sometimes exist
    partner = api.post("partner", {"name": "甲"}, status=201).json["id"]
    for i in range(3):
        api.post("deal", {"title": f"单{i}", "partner_id": partner, "lines": [{"product": "笔"}]}, status=201)
        api.post("expense", {"title": f"报销{i}", "amount": 100 * (i + 1)}, status=201)

    failures, started, ran = [], time.monotonic(), 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.label == "DELETE /api/v1/auth/token":
            continue                                                  # would log the test out
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=DERANDOMIZE,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case):
                case.call_and_validate(headers=headers, checks=checks)

            try:
                run()
                ran += 1
            except Unsatisfiable:
                pass                                                  # nothing to make invalid (no parameters)
            except (Exception, BaseExceptionGroup) as e:  # collect every operation's failure, report them together
                failures.append(f"{operation.label} ({mode.value}): {e}")
    print(f"schemathesis: {ran} operation runs in {time.monotonic() - started:.1f} s")
    assert ran > 20
    assert not failures, "\n\n".join(failures)
