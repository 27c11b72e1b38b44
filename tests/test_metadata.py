"""Metadata loading: meta-schema validation, layering, owners, reference checks, errors with file + pointer."""
import json

import pytest

from crm.core import registry
from crm.core.merge import deep_merge
from tests.plugin_fixtures import DEAL, DEAL_LINE, PARTNER, STAGES

BASE = [("deals", [DEAL, DEAL_LINE, PARTNER, STAGES])]


def write(folder, name, doc):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(doc, ensure_ascii=False) if not isinstance(doc, str) else doc, "utf-8")
    return path


def problems_of(layers):
    with pytest.raises(registry.MetadataError) as failed:
        registry.build(layers)
    return [(p.source, p.pointer, p.message) for p in failed.value.problems]


def test_core_metadata_is_valid():
    model = registry.build([("core", [registry.Path(str(registry.resources.files("crm.metadata")))])])
    assert {"customer", "contact", "follow_up", "product", "system_settings"} <= set(model.entities)
    assert model["customer"].fields["name"].owner == "core"


def test_schema_error_names_file_and_pointer(tmp_path):
    bad = dict(DEAL, fields={**DEAL["fields"], "level": {"type": "select"}, "size": {"type": "integer", "max_lenght": 3}})
    path = write(tmp_path, "deal.json", bad)
    problems = problems_of([("deals", [path, DEAL_LINE, PARTNER, STAGES])])
    assert (str(path), "/fields/level", "'dictionary' is a required property") in problems
    assert any(p[0] == str(path) and p[1] == "/fields/size" and "max_lenght" in p[2] for p in problems)


def test_invalid_json_names_file_and_line(tmp_path):
    path = write(tmp_path, "broken.json", '{"name": "x",\n "fields": }')
    [(source, pointer, message)] = problems_of([("core", [path])])
    assert source == str(path) and "line 2" in message


def test_references_to_missing_fields_are_errors(tmp_path):
    doc = dict(DEAL, list_columns=["title", "nope"], default_sort="-missing",
               indexes=[{"fields": ["stage", "ghost"]}],
               layout={"tabs": [{"id": "t", "sections": [{"id": "s", "fields": ["title", "phantom"]}]}]},
               fields={**DEAL["fields"], "shown": {"type": "text", "visible_if": {"==": [{"var": "unknown_field"}, 1]}}})
    path = write(tmp_path, "deal.json", doc)
    pointers = {p[1] for p in problems_of([("deals", [path, DEAL_LINE, PARTNER, STAGES])])}
    assert {"/list_columns/1", "/default_sort", "/indexes/0/fields/1", "/layout/tabs/0/sections/0/fields/1",
            "/fields/shown/visible_if/==/0"} <= pointers


def test_missing_entities_and_dictionaries_are_errors(tmp_path):
    doc = dict(PARTNER, fields={**PARTNER["fields"], "owner": {"type": "link", "entity": "nobody"},
                                "kind": {"type": "select", "dictionary": "no_such_dict"}})
    path = write(tmp_path, "partner.json", doc)
    pointers = {p[1] for p in problems_of([("deals", [DEAL, DEAL_LINE, path, STAGES])])}
    assert pointers == {"/fields/owner/entity", "/fields/kind/dictionary"}


def test_custom_fields_must_be_prefixed_and_plugin_fields_namespaced(tmp_path):
    custom = write(tmp_path / "custom", "deal.json", {"extends": "deal", "fields": {"wechat": {"type": "text"}}})
    other = {"extends": "deal", "fields": {"score": {"type": "integer"}}}
    problems = problems_of(BASE + [("points", [other]), ("custom", [custom])])
    assert (str(custom), "/fields/wechat", "custom fields must be named x_...") in problems
    assert any(p[1] == "/fields/score" and "points_" in p[2] for p in problems)


def test_layers_merge_with_owner_and_list_operations():
    plugin = {"extends": "deal", "fields": {"points_score": {"type": "integer", "label": "积分"}},
              "list_columns": {"$append": ["points_score"]}}
    custom = {"extends": "deal", "fields": {"x_wechat": {"type": "text"}, "title": {"label": {"zh_CN": "交易名称"}}},
              "list_columns": {"$prepend": ["x_wechat"], "$remove": ["amount"]},
              "layout": {"tabs": {"$merge": [{"id": "main", "sections": {"$append": [{"id": "extra", "fields": ["x_wechat"]}]}}]}}}
    model = registry.build(BASE + [("points", [plugin]), ("custom", [custom])])
    deal = model["deal"]
    assert deal.spec["list_columns"] == ["x_wechat", "code", "title", "stage", "points_score"]
    assert {n: f.owner for n, f in deal.fields.items() if n in ("title", "points_score", "x_wechat")} == \
        {"title": "deals", "points_score": "points", "x_wechat": "custom"}
    assert deal.fields["title"].label_in("zh_CN") == "交易名称" and deal.fields["title"].required
    assert [s["id"] for s in deal.spec["layout"]["tabs"][0]["sections"]] == ["basic", "extra"]


def test_extension_cannot_change_a_field_type():
    problems = problems_of(BASE + [("custom", [{"extends": "deal", "fields": {"title": {"type": "integer"}}}])])
    assert problems[0][1] == "/fields/title/type"


def test_deep_merge_leaves_inputs_alone():
    base = {"a": [1, 2], "b": {"c": 1}}
    merged = deep_merge(base, {"a": {"$append": [3]}, "b": {"d": 2}})
    assert merged == {"a": [1, 2, 3], "b": {"c": 1, "d": 2}} and base == {"a": [1, 2], "b": {"c": 1}}


def test_calendar_and_related_label_need_fitting_field_types(tmp_path):
    doc = dict(DEAL, fields={**DEAL["fields"],
                             "title": {**DEAL["fields"]["title"], "calendar": True},
                             "created_on": {"type": "datetime", "calendar": "yearly"},
                             "closed_on": {"type": "date", "calendar": "yearly"},
                             "amount": {**DEAL["fields"]["amount"], "related_label": {"zh_CN": "下级"}}})
    path = write(tmp_path, "deal.json", doc)
    problems = {p[1]: p[2] for p in problems_of([("deals", [path, DEAL_LINE, PARTNER, STAGES])])}
    assert set(problems) == {"/fields/title/calendar", "/fields/created_on/calendar", "/fields/amount/related_label"}
    assert "text" in problems["/fields/title/calendar"] and "datetime" in problems["/fields/created_on/calendar"]
