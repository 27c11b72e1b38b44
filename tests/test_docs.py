"""The documentation keeps up with the code: every hook, field type and metadata key is documented.

Like datasette's test_docs.py: adding a hook to ``hooks/specs.py`` without a ``### crm_...`` section
in ``docs/plugins.md`` (or documenting a hook that does not exist) fails here.
"""
import inspect
import json
import re
from pathlib import Path

import pytest

from crm.hooks import specs

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SCHEMA = json.loads((ROOT / "metadata" / "schema" / "entity.schema.json").read_text("utf-8"))


def hook_names():
    return sorted(name for name, obj in inspect.getmembers(specs, inspect.isfunction) if name.startswith("crm_"))


def documented_hooks():
    text = (DOCS / "plugins.md").read_text("utf-8")
    return sorted(re.findall(r"^### (crm_\w+)\s*$", text, re.MULTILINE))


def test_hook_specs_exist():
    assert hook_names(), "no hook specifications found in crm.hooks.specs"


@pytest.mark.parametrize("hook", hook_names())
def test_every_hook_is_documented(hook):
    assert hook in documented_hooks(), f"docs/plugins.md has no '### {hook}' section"


def test_every_documented_hook_exists():
    unknown = sorted(set(documented_hooks()) - set(hook_names()))
    assert not unknown, f"docs/plugins.md documents hooks that hooks/specs.py does not define: {unknown}"


def test_no_hook_is_documented_twice():
    found = documented_hooks()
    assert len(found) == len(set(found)), "a hook has two sections in docs/plugins.md"


def metadata_doc():
    return (DOCS / "metadata.md").read_text("utf-8")


@pytest.mark.parametrize("field_type", SCHEMA["$defs"]["fieldType"]["enum"])
def test_every_field_type_is_documented(field_type):
    assert re.search(rf"^\| `{re.escape(field_type)}` \|", metadata_doc(), re.MULTILINE), \
        f"docs/metadata.md has no row for the field type {field_type!r} in its field type table"


@pytest.mark.parametrize("key", sorted(SCHEMA["$defs"]["entityProperties"]["properties"])
                         + sorted(SCHEMA["$defs"]["entity"]["properties"]))
def test_every_entity_key_is_documented(key):
    assert f"`{key}`" in metadata_doc(), f"docs/metadata.md does not mention the entity key {key!r}"


@pytest.mark.parametrize("key", sorted(SCHEMA["$defs"]["fieldProperties"]["properties"]))
def test_every_field_key_is_documented(key):
    assert f"`{key}`" in metadata_doc(), f"docs/metadata.md does not mention the field key {key!r}"


@pytest.mark.parametrize("page", ["architecture.md", "metadata.md", "plugins.md", "operations.md", "expressions.md"])
def test_relative_links_point_at_files(page):
    text = (DOCS / page).read_text("utf-8")
    for target in re.findall(r"\]\(([^)#:\s]+)(?:#[^)]*)?\)", text):
        assert (DOCS / target).exists(), f"docs/{page} links to {target}, which does not exist"
