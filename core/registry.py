"""Effective metadata: the layers core ⊕ plugins ⊕ instance ``custom/`` ⊕ saved customizations,
validated and merged into :class:`Entity` objects.

Every document is validated against ``metadata/schema/entity.schema.json`` first; then the layers
are merged (see :mod:`crm.core.merge`); then every name a document refers to (layout, sort,
indexes, conditions, links, dictionaries ...) is checked against the merged result. All problems
are collected and raised together as :class:`MetadataError`, each with its file and JSON pointer,
so nothing is half-loaded.
"""
import importlib.metadata
import json
from dataclasses import dataclass
from functools import cache, cached_property, lru_cache
from importlib import resources
from pathlib import Path

import jsonschema

from crm.core import expressions
from crm.core.fieldtypes import TYPES, DICTIONARY_TYPES
from crm.core.merge import deep_merge, is_list_op
from crm.core.schema_cache import ValidDocuments

SYSTEM_FIELDS = ("id", "version", "created_at", "created_by", "updated_at", "updated_by", "deleted_at", "deleted_by")
CHILD_SYSTEM_FIELDS = ("id", "parent_id", "sort_order")
CORE, CUSTOM = "core", "custom"
# entity names the web paths use for themselves (/api/v1/trash, /app/admin ...)
RESERVED_ENTITY_NAMES = frozenset({"health", "auth", "meta", "trash", "admin", "files", "notifications", "openapi", "static", "api", "app",
                                  "approvals"})


def load_schema():
    return json.loads(resources.files("crm.metadata").joinpath("schema/entity.schema.json").read_text("utf-8"))


@dataclass
class Problem:
    source: str
    pointer: str
    message: str

    def __str__(self):
        return f"{self.source}: {self.pointer or '/'}: {self.message}"


class MetadataError(Exception):
    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("invalid metadata:\n" + "\n".join(f"  {p}" for p in self.problems))


@dataclass
class Document:
    """One metadata document and where it came from."""
    source: str   # file path, or a description such as "plugin demo (dict 1)"
    owner: str    # "core", a plugin name, or "custom"
    data: dict

    @property
    def kind(self):
        for key in ("name", "extends", "dictionary", "workflow"):
            if key in self.data:
                return key
        return None


def pointer(*parts):
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


# --- reading ---------------------------------------------------------------------------------

def read_documents(item, owner, problems):
    """Documents from a folder (recursively), a JSON file, or a dict."""
    if isinstance(item, dict):
        if "__source__" in item:  # stored customizations say where they come from
            item = dict(item)
            return [Document(item.pop("__source__"), owner, item)]
        return [Document(f"{owner} (inline {item.get('name') or item.get('extends') or item.get('dictionary')})", owner, item)]
    path = Path(item)
    files = sorted(p for p in path.rglob("*.json") if "schema" not in p.relative_to(path).parts) if path.is_dir() else [path]
    documents = []
    for file in files:
        try:
            data = json.loads(file.read_text("utf-8"))
        except (OSError, UnicodeDecodeError) as e:
            problems.append(Problem(str(file), "", f"cannot read: {e}"))
            continue
        except json.JSONDecodeError as e:
            problems.append(Problem(str(file), "", f"not valid JSON: {e.msg} at line {e.lineno} column {e.colno}"))
            continue
        documents.append(Document(str(file), owner, data))
    return documents


class SchemaCheck:
    def __init__(self):
        schema = load_schema()
        self.valid = ValidDocuments(json.dumps(schema, sort_keys=True), importlib.metadata.version("jsonschema"))
        self.validators = {
            kind: jsonschema.Draft202012Validator({"$ref": f"#/$defs/{ref}", "$defs": schema["$defs"]},
                                                  format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
            for kind, ref in (("name", "entity"), ("extends", "extension"), ("dictionary", "dictionary"), ("workflow", "workflow"))
        }
        self.new_field = jsonschema.Draft202012Validator({"$ref": "#/$defs/field", "$defs": schema["$defs"]})

    def field_problems(self, source, where, spec):
        """A field an extension adds must be complete (type and what the type needs)."""
        return [Problem(source, where + pointer(*e.absolute_path), e.message) for e in self.new_field.iter_errors(spec)]

    def problems(self, doc):
        if not isinstance(doc.data, dict) or doc.kind is None:
            return [Problem(doc.source, "", "a metadata document is an object with `name` (entity), `extends` (extension), "
                                            "`dictionary` or `workflow`")]
        text = json.dumps(doc.data, sort_keys=True, ensure_ascii=False, default=str)
        return [Problem(doc.source, where, message) for where, message in self._errors(doc.kind, text)]

    @lru_cache(maxsize=4096)
    def _errors(self, kind, text):
        """(pointer, message) of the schema errors of one document. Remembered by content: a
        process builds the same documents again on every reload (a saved customization, an
        upgrade, each test's runtime), and validating them is most of a build's time; documents
        that passed are also remembered between processes (:mod:`crm.core.schema_cache`)."""
        digest = self.valid.digest(kind, text)
        if digest in self.valid:
            return ()
        errors = sorted(self.validators[kind].iter_errors(json.loads(text)), key=lambda e: list(e.absolute_path))
        if not errors:
            self.valid.add(digest)
        return tuple((pointer(*e.absolute_path), e.message) for e in errors)


@cache
def schema_check():
    """The one SchemaCheck of the process (the meta-schema ships with the package)."""
    return SchemaCheck()


# --- the effective model ---------------------------------------------------------------------

class Field:
    def __init__(self, name, spec, owner):
        self.name = name
        self.spec = spec
        self.owner = owner
        self.type = spec["type"]
        self.ftype = TYPES[self.type]

    def __repr__(self):
        return f"<Field {self.name}:{self.type}>"

    def __getattr__(self, key):  # required, unique, dictionary, entity ... read straight from the spec
        if key.startswith("_"):
            raise AttributeError(key)
        value = self.spec.get(key)
        self.__dict__[key] = value  # specs do not change once built; validation asks ~100 times per record
        return value

    @property
    def stored(self):
        return self.ftype.stored

    def label_in(self, locale="zh_CN"):
        labels = self.__dict__.setdefault("_labels", {})   # a list page writes ~350 field labels
        label = labels.get(locale)
        if label is None:
            label = labels[locale] = text_in(self.spec.get("label") or self.name, locale)
        return label


def text_in(label, locale="zh_CN"):
    """A translatable label in ``locale``, falling back to zh_CN, en, then anything."""
    if isinstance(label, str):
        return label
    for key in (locale, locale.split("_")[0], "zh_CN", "en"):
        if label.get(key):
            return label[key]
    return next(iter(label.values()))


class Entity:
    def __init__(self, name, spec, owner, field_owners):
        self.name = name
        self.spec = spec
        self.owner = owner
        self.fields = {n: Field(n, s, field_owners.get(n, owner)) for n, s in spec["fields"].items()}
        self.table = None  # set by crm.core.schema

    def __repr__(self):
        return f"<Entity {self.name}>"

    def __getattr__(self, key):
        if key.startswith("_"):
            raise AttributeError(key)
        return self.spec.get(key)

    @property
    def is_child(self):
        return bool(self.spec.get("child_of"))

    @property
    def system_fields(self):
        return CHILD_SYSTEM_FIELDS if self.is_child else SYSTEM_FIELDS

    @cached_property
    def stored_fields(self):
        return [f for f in self.fields.values() if f.stored]

    @property
    def visible_fields(self):
        return [f for f in self.fields.values() if not f.hidden]

    def label_in(self, locale="zh_CN"):
        return text_in(self.spec.get("label") or self.name, locale)

    @property
    def title_field(self):
        return self.spec.get("title_field") or ("name" if "name" in self.fields else None)

    @property
    def default_sort(self):
        return self.spec.get("default_sort") or "-id"

    @property
    def search_fields(self):
        return self.spec.get("search_fields") or [f.name for f in self.fields.values() if f.searchable]


class Dictionary:
    def __init__(self, name, spec, owner):
        self.name = name
        self.spec = spec
        self.owner = owner

    @property
    def tree(self):
        return bool(self.spec.get("tree"))

    def flat_items(self):
        """(value, label, parent value, position) for every item, depth first."""
        out = []

        def walk(items, parent):
            for item in items:
                out.append((item["value"], item["label"], parent, len(out)))
                walk(item.get("children", []), item["value"])
        walk(self.spec.get("items", []), None)
        return out


class Metadata:
    """The effective metadata of one instance."""

    def __init__(self, entities, dictionaries, documents, workflows=None):
        self.entities = entities
        self.dictionaries = dictionaries
        self.documents = documents
        self.workflows = workflows or {}   # entity name → Workflow

    def __getitem__(self, name):
        return self.entities[name]

    def __contains__(self, name):
        return name in self.entities

    def children_of(self, entity_name):
        return [e for e in self.entities.values() if e.spec.get("child_of") == entity_name]

    def references_to(self, entity_name):
        """(entity, field) pairs whose link/links field points at ``entity_name``."""
        return [(e, f) for e in self.entities.values() for f in e.fields.values()
                if f.type in ("link", "links") and f.entity == entity_name]


# --- building --------------------------------------------------------------------------------

def build(layers):
    """``layers``: [(owner, [folder | file | dict, ...])] in merge order → :class:`Metadata`."""
    problems = []
    documents = [doc for owner, items in layers for item in items for doc in read_documents(item, owner, problems)]
    check = schema_check()
    for doc in documents:
        problems += check.problems(doc)
    if problems:
        raise MetadataError(problems)

    entities, entity_docs, field_owners, dictionaries, workflow_docs = {}, {}, {}, {}, {}
    for doc in documents:
        data = {k: v for k, v in doc.data.items() if k != "$schema"}
        if doc.kind == "name":
            name = data["name"]
            if name in entities:
                problems.append(Problem(doc.source, "/name", f"entity {name!r} is already defined by {entities[name][1]}; use \"extends\" to change it"))
                continue
            if name in RESERVED_ENTITY_NAMES:
                problems.append(Problem(doc.source, "/name", f"{name!r} is reserved for the web paths; choose another name"))
            if doc.owner == CUSTOM and not name.startswith("x_"):
                problems.append(Problem(doc.source, "/name", "custom entities must be named x_..."))
            entities[name] = [data, doc.source, doc.owner]
            entity_docs[name] = [doc]
            field_owners[name] = {f: doc.owner for f in data["fields"]}
        elif doc.kind == "workflow":
            workflow_docs[data["workflow"]] = doc   # a later layer replaces a workflow of the same name
        elif doc.kind == "dictionary":
            name = data["dictionary"]
            if name in dictionaries:
                base = dictionaries[name]
                items = data["items"] if is_list_op(data["items"]) else {"$append": data["items"]}
                base.spec = deep_merge(base.spec, {**data, "items": items})
            else:
                dictionaries[name] = Dictionary(name, deep_merge({}, data), doc.owner)
    for doc in documents:
        if doc.kind != "extends":
            continue
        name = doc.data["extends"]
        if name not in entities:
            problems.append(Problem(doc.source, "/extends", f"unknown entity {name!r}"))
            continue
        base, _, entity_owner = entities[name]
        for fname, patch in doc.data.get("fields", {}).items():
            where = pointer("fields", fname)
            if fname in base["fields"]:
                if "type" in patch and patch["type"] != base["fields"][fname]["type"]:
                    problems.append(Problem(doc.source, where + "/type", f"cannot change the type of {name}.{fname}"))
                continue
            if "type" not in patch:
                problems.append(Problem(doc.source, where, f"new field {name}.{fname} needs a type"))
            elif check.field_problems(doc.source, where, patch):
                problems += check.field_problems(doc.source, where, patch)
            elif doc.owner == CUSTOM and entity_owner != CUSTOM and not fname.startswith("x_"):
                problems.append(Problem(doc.source, where, "custom fields must be named x_..."))
            elif doc.owner not in (CORE, CUSTOM, entity_owner) and not fname.startswith(doc.owner + "_"):
                problems.append(Problem(doc.source, where, f"fields plugin {doc.owner!r} adds to {name!r} must be named {doc.owner}_..."))
            field_owners[name][fname] = doc.owner
        entities[name][0] = deep_merge(base, {k: v for k, v in doc.data.items() if k not in ("extends", "$schema")})
        entity_docs[name].append(doc)

    for name, (spec, source, owner) in entities.items():
        for fname in spec["fields"]:
            if field_owners[name].get(fname) == CORE and fname.startswith("x_"):
                problems.append(Problem(source, pointer("fields", fname), "x_ names are kept for custom fields"))
            if fname in SYSTEM_FIELDS + CHILD_SYSTEM_FIELDS:
                problems.append(Problem(source, pointer("fields", fname), f"{fname!r} is a system column"))
    if problems:
        raise MetadataError(problems)

    model = Metadata({n: Entity(n, spec, owner, field_owners[n]) for n, (spec, _, owner) in entities.items()},
                     dictionaries, documents)
    for name, docs in entity_docs.items():
        for doc in docs:
            problems += ReferenceCheck(model, model.entities[name], doc).run()
    from crm.core.workflow import Workflow, check_workflow
    for doc in workflow_docs.values():
        found = check_workflow(model, doc)
        problems += [Problem(doc.source, where, message) for where, message in found]
        entity = doc.data["entity"]
        if not found and entity in model.workflows:
            problems.append(Problem(doc.source, "/entity", f"{entity!r} already has workflow {model.workflows[entity].name!r}"))
        elif not found:
            model.workflows[entity] = Workflow(doc.data, doc.owner)
    if problems:
        raise MetadataError(problems)
    return model


class ReferenceCheck:
    """Every name a document mentions must exist in the effective entity."""

    def __init__(self, model, entity, doc):
        self.model, self.entity, self.doc = model, entity, doc
        self.known = set(entity.fields) | set(entity.system_fields)
        self.problems = []

    def problem(self, where, message):
        self.problems.append(Problem(self.doc.source, where, message))

    def field_names(self, value, *where):
        """Check a list of field names, or a list operation on one."""
        if is_list_op(value):
            for op, items in value.items():
                self.field_names(items, *where, op)
            return
        for i, name in enumerate(value or []):
            if isinstance(name, str) and name not in self.known:
                self.problem(pointer(*where, i), f"unknown field {name!r} in entity {self.entity.name!r}")

    def run(self):
        data = self.doc.data
        if data.get("title_field") and data["title_field"] not in self.known:
            self.problem("/title_field", f"unknown field {data['title_field']!r}")
        if "default_sort" in data:
            for part in data["default_sort"].split(","):
                if part.lstrip("-") not in self.known:
                    self.problem("/default_sort", f"unknown field {part.lstrip('-')!r}")
        for key in ("list_columns", "search_fields", "summary_fields"):
            self.field_names(data.get(key), key)
        indexes = data.get("indexes")
        for op, items in (indexes.items() if is_list_op(indexes) else [(None, indexes or [])]):
            for i, index in enumerate(items):
                if isinstance(index, dict):
                    self.field_names(index.get("fields"), "indexes", *([op] if op else []), i, "fields")
        tabs = data.get("layout", {}).get("tabs")
        for op, tab_list in (tabs.items() if is_list_op(tabs) else [(None, tabs or [])]):
            for t, tab in enumerate(tab_list):
                if not isinstance(tab, dict):
                    continue
                sections = tab.get("sections")
                for sop, section_list in (sections.items() if is_list_op(sections) else [(None, sections or [])]):
                    for s, section in enumerate(section_list):
                        if not isinstance(section, dict):
                            continue
                        base = ["layout", "tabs", *([op] if op else []), t, "sections", *([sop] if sop else []), s]
                        self.field_names(section.get("fields"), *base, "fields")
                        self.expression(section.get("visible_if"), pointer(*base, "visible_if"))
        if data.get("tree") and data["tree"]["parent_field"] not in self.entity.fields:
            self.problem("/tree/parent_field", f"unknown field {data['tree']['parent_field']!r}")
        if data.get("owner_field") and data["owner_field"] != "created_by" and \
                getattr(self.entity.fields.get(data["owner_field"]), "type", None) != "user":
            self.problem("/owner_field", f"{data['owner_field']!r} is not a user field of {self.entity.name!r}")
        if data.get("kanban") and data["kanban"]["field"] not in self.entity.fields:
            self.problem("/kanban/field", f"unknown field {data['kanban']['field']!r}")
        if data.get("child_of") and data["child_of"] not in self.model.entities:
            self.problem("/child_of", f"unknown entity {data['child_of']!r}")
        styles = data.get("row_style")
        for op, rules in (styles.items() if is_list_op(styles) else [(None, styles or [])]):
            for i, rule in enumerate(rules):
                if isinstance(rule, dict) and "when" in rule:
                    self.expression(rule["when"], pointer("row_style", *([op] if op else []), i, "when"))
        for fname, patch in data.get("fields", {}).items():
            self.field(fname, patch, pointer("fields", fname))
        return self.problems

    def field(self, fname, patch, where):
        field = self.entity.fields[fname]
        if "entity" in patch:
            target = self.model.entities.get(patch["entity"])
            if target is None:
                self.problem(where + "/entity", f"unknown entity {patch['entity']!r}")
            elif field.type == "table" and target.spec.get("child_of") != self.entity.name:
                self.problem(where + "/entity", f"{target.name!r} is not a child table of {self.entity.name!r} (set its child_of)")
            elif field.type in ("link", "links") and target.is_child:
                self.problem(where + "/entity", f"cannot link to child table {target.name!r}")
        if "dictionary" in patch and patch["dictionary"] not in self.model.dictionaries:
            self.problem(where + "/dictionary", f"unknown dictionary {patch['dictionary']!r}")
        if field.type in DICTIONARY_TYPES and field.type == "region" and field.dictionary in self.model.dictionaries \
                and not self.model.dictionaries[field.dictionary].tree:
            self.problem(where + "/dictionary", f"region fields need a tree dictionary; {field.dictionary!r} is flat")
        if "source" in patch and patch["source"] not in self.entity.fields:
            self.problem(where + "/source", f"unknown field {patch['source']!r}")
        calendar = patch.get("calendar")
        if calendar and field.type not in ("date", "datetime"):
            self.problem(where + "/calendar", f"only date and datetime fields can place records on a calendar; {fname!r} is {field.type}")
        elif calendar == "yearly" and field.type != "date":
            self.problem(where + "/calendar", f"\"yearly\" needs a date field; {fname!r} is {field.type}")
        if "related_label" in patch and field.type not in ("link", "links"):
            self.problem(where + "/related_label", f"only link and links fields have a related tab; {fname!r} is {field.type}")
        for key in ("visible_if", "required_if", "readonly_if", "expression"):
            if key in patch:
                self.expression(patch[key], where + "/" + key)

    def expression(self, expr, where):
        if expr is None:
            return
        for error in expressions.validate(expr, self.known):
            self.problem(where + error.path, error.message)
