"""Metadata documents that passed the meta-schema are remembered between processes."""
import json

import pytest

from crm.core import registry, schema_cache

GOOD = {"name": "x_gadget", "label": {"zh_CN": "小工具", "en": "Gadget"},
        "fields": {"x_name": {"type": "text", "label": {"zh_CN": "名称", "en": "Name"}, "required": True}}}
BAD = {"name": "x_gadget", "fields": {"x_name": {"type": "no-such-type"}}}


def build(tmp_path, doc):
    path = tmp_path / "custom" / "x_gadget.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(doc, ensure_ascii=False))
    return registry.build([(registry.CUSTOM, [path])])


def fresh_check(monkeypatch, folder):
    """A new process: its own SchemaCheck, reading the cache folder anew."""
    monkeypatch.setenv(schema_cache.ENV, str(folder))
    registry.schema_check.cache_clear()


def test_a_valid_document_is_validated_once_across_processes(tmp_path, monkeypatch):
    fresh_check(monkeypatch, tmp_path / "cache")
    assert "x_gadget" in build(tmp_path, GOOD).entities
    [cache_file] = (tmp_path / "cache").iterdir()
    assert len(cache_file.read_text().split()) == 1
    fresh_check(monkeypatch, tmp_path / "cache")
    validators = registry.schema_check().validators
    monkeypatch.setitem(validators, "name", None)      # a validation would fail now: the cache answers
    assert "x_gadget" in build(tmp_path, GOOD).entities
    changed = {**GOOD, "label": {"zh_CN": "小工具二", "en": "Gadget 2"}}
    with pytest.raises(AttributeError):                 # different content is validated again
        build(tmp_path, changed)
    registry.schema_check.cache_clear()


def test_bad_documents_are_never_remembered(tmp_path, monkeypatch):
    fresh_check(monkeypatch, tmp_path / "cache")
    for _ in range(2):
        with pytest.raises(registry.MetadataError) as failed:
            build(tmp_path, BAD)
        assert "/fields/x_name" in str(failed.value)
        fresh_check(monkeypatch, tmp_path / "cache")
    assert not (tmp_path / "cache").exists() or not any(
        line for f in (tmp_path / "cache").iterdir() for line in f.read_text().split())
    monkeypatch.setenv(schema_cache.ENV, "off")
    registry.schema_check.cache_clear()
    assert "x_gadget" in build(tmp_path, GOOD).entities and not any((tmp_path / "cache").glob("*"))
    registry.schema_check.cache_clear()
