"""Import records from .xlsx / .csv through the record service (so every row is validated,
numbered, audited and permission-checked like a record typed in by hand).

- Columns map to fields by field name or label (zh_CN or en); a mapping given once is
  remembered for files with the same headers.
- Modes: ``create``, ``update`` (only matching records), ``upsert`` (update or create); records
  match on the duplicate criteria the user picks (e.g. ``name`` or ``phone`` or ``name,region``).
- Cells are read the way people fill them in: dictionary labels (or values), user names, titles
  of linked records, 是/否, Excel dates.
- All or nothing by default: a run with a bad row commits nothing and lists every bad row and
  why; ``partial=True`` commits the good rows. A dry run does everything, reports, and rolls back.
- A finished import can be reverted: created records go to the recycle bin, updated ones get
  their before-images back.
"""
import hashlib
import json
import re
from dataclasses import dataclass, field as dc_field

import sqlalchemy as sa

from crm.core import tabular
from crm.core.errors import BadRequest, CrmError, Forbidden, NotFound
from crm.core.records import record_to_json
from crm.core.tables import dictionary_items, import_mappings, import_rows, imports, users

MODES = ("create", "update", "upsert")
NOT_IMPORTABLE = {"table", "json", "file", "image", "computed", "mnemonic", "autonumber"}
TRUE_WORDS = {"是", "true", "yes", "y", "1", "对", "✓"}
FALSE_WORDS = {"否", "false", "no", "n", "0", "不"}
SPLIT = re.compile(r"[,，;；、]\s*")
PLACE_SUFFIX = re.compile(r"(壮族自治区|回族自治区|维吾尔自治区|自治区|特别行政区|省|市|区|县)$")


@dataclass
class RowOutcome:
    row: int
    action: str          # created, updated, skipped, error
    record_id: int | None = None
    reason: str = ""
    fields: dict = dc_field(default_factory=dict)


@dataclass
class ImportResult:
    entity: str
    mode: str
    dry_run: bool
    mapping: dict
    unmapped: list
    outcomes: list = dc_field(default_factory=list)
    import_id: int | None = None
    committed: bool = False

    def count(self, action):
        return sum(1 for o in self.outcomes if o.action == action)

    @property
    def counts(self):
        return {a: self.count(a) for a in ("created", "updated", "skipped", "error")}

    @property
    def errors(self):
        return [o for o in self.outcomes if o.action == "error"]


class ImportFailed(CrmError):
    """Some rows are bad and the import was all-or-nothing: nothing was committed."""
    status, code = 422, "import_failed"

    def __init__(self, result):
        super().__init__(f"{result.count('error')} rows have errors; nothing was imported", {})
        self.result = result


def headers_key(headers):
    return hashlib.sha1("\x1f".join(headers).encode()).hexdigest()


def importable_fields(records, entity):
    """{name: field} of the fields a file may fill for this user (not hidden, not generated)."""
    hidden = records.access.hidden_fields(entity.name)
    return {n: f for n, f in entity.fields.items() if f.type not in NOT_IMPORTABLE and not f.hidden and n not in hidden}


def remembered_mapping(records, entity, headers):
    stmt = sa.select(import_mappings.c.mapping).where(import_mappings.c.entity == entity.name,
                                                      import_mappings.c.headers_key == headers_key(headers))
    return records.session.execute(stmt).scalar()


def map_columns(records, entity, headers, mapping=None):
    """{column index: field name} from an explicit mapping {header: field}, the remembered one,
    or field names and labels; plus the headers left unmapped. A header the mapping maps to
    ``""`` is left out even when its name matches a field."""
    if mapping is None:
        mapping = remembered_mapping(records, entity, headers)
    importable = importable_fields(records, entity)
    names = {}
    for name, field in importable.items():
        labels = field.spec.get("label") or {}
        for text in [name] + (list(labels.values()) if isinstance(labels, dict) else [labels]):
            names.setdefault(str(text).strip().lower(), name)
    columns, unmapped = {}, []
    for i, header in enumerate(headers):
        target = mapping[header] if mapping and header in mapping else names.get(header.strip().lower())
        if target in importable and target not in columns.values():
            columns[i] = target
        elif header:
            unmapped.append(header)
    return columns, unmapped


def remember_mapping(records, entity, headers, mapping):
    key = headers_key(headers)
    where = (import_mappings.c.entity == entity.name, import_mappings.c.headers_key == key)
    records.session.execute(import_mappings.delete().where(*where))
    records.session.execute(import_mappings.insert().values(entity=entity.name, headers_key=key, mapping=mapping, updated_at=records.now()))


class CellReader:
    """Turns spreadsheet cells into the JSON the record service takes, field type by field type."""

    def __init__(self, records, entity):
        self.records, self.entity = records, entity
        self._labels, self._titles, self._users = {}, {}, None

    def value(self, field, cell):
        if cell is None or (isinstance(cell, str) and not cell.strip()):
            return None
        kind = field.type
        if isinstance(cell, str):
            cell = cell.strip()
        if kind in ("integer", "rating"):
            return int(cell) if isinstance(cell, float) and cell.is_integer() else cell if isinstance(cell, int) else _int(cell)
        if kind in ("decimal", "money", "percent"):
            return cell if isinstance(cell, (int, float)) else str(cell).replace(",", "").replace("¥", "").strip()
        if kind == "boolean":
            if isinstance(cell, bool):
                return cell
            word = str(cell).strip().lower()
            if word in TRUE_WORDS or word in FALSE_WORDS:
                return word in TRUE_WORDS
            raise ValueError(f"use 是 or 否, not {cell!r}")
        if kind in ("date", "datetime", "time"):
            if hasattr(cell, "isoformat"):
                return cell.isoformat()
            return str(cell).replace("/", "-")
        if kind in ("select", "region"):
            return self.choice(field.dictionary, cell)
        if kind == "multiselect":
            return [self.choice(field.dictionary, part) for part in SPLIT.split(str(cell)) if part]
        if kind == "link":
            return self.link(field.entity, cell)
        if kind == "links":
            return [self.link(field.entity, part) for part in SPLIT.split(str(cell)) if part]
        if kind == "user":
            return self.user(cell)
        if isinstance(cell, float) and cell.is_integer():  # phone numbers typed into number cells
            return str(int(cell))
        return cell if isinstance(cell, str) else str(cell)

    def choice(self, dictionary, cell):
        if dictionary not in self._labels:
            rows = self.records.session.execute(sa.select(dictionary_items.c.value, dictionary_items.c.label)
                                                .where(dictionary_items.c.dictionary == dictionary, dictionary_items.c.active))
            table = {}
            for value, label in rows:
                table[value.lower()] = value
                for text in (label.values() if isinstance(label, dict) else [label]):
                    text = str(text).strip().lower()
                    table.setdefault(text, value)
                    short = PLACE_SUFFIX.sub("", text)  # 北京市 → 北京, 广西壮族自治区 → 广西
                    if short and short != text:
                        table.setdefault(short, value)
            self._labels[dictionary] = table
        text = str(cell).split("/")[-1].strip().lower()
        if text not in self._labels[dictionary]:
            raise ValueError(f"{cell!r} is not in dictionary {dictionary}")
        return self._labels[dictionary][text]

    def link(self, entity_name, cell):
        if isinstance(cell, (int, float)) and float(cell).is_integer():
            return int(cell)
        target = self.records.entity(entity_name)
        key = (entity_name, str(cell))
        if key not in self._titles:
            title = target.title_field
            found = self.records.list(entity_name, filters=[(title, "eq", str(cell))], limit=2).items if title else []
            if len(found) != 1:
                raise ValueError(f"{'no' if not found else 'more than one'} {target.label_in(self.records.locale)} named {cell!r}")
            self._titles[key] = found[0]["id"]
        return self._titles[key]

    def user(self, cell):
        if isinstance(cell, (int, float)) and float(cell).is_integer():
            return int(cell)
        if self._users is None:
            self._users = {}
            for row in self.records.session.execute(sa.select(users.c.id, users.c.username, users.c.display_name)):
                self._users.setdefault(row.username.lower(), row.id)
                if row.display_name:
                    self._users.setdefault(row.display_name.lower(), row.id)
        if str(cell).lower() not in self._users:
            raise ValueError(f"no user {cell!r}")
        return self._users[str(cell).lower()]


def _int(text):
    try:
        return int(str(text).replace(",", ""))
    except ValueError:
        raise ValueError(f"not a whole number: {text!r}")


def run(records, entity_name, path, *, mode="create", match=(), mapping=None, dry_run=False, partial=False, progress=None,
        table=None):
    """Import ``path`` into ``entity_name``. Raises ImportFailed (nothing committed) when rows are
    bad and ``partial`` is off; the caller's transaction commits otherwise. ``table``: the
    (headers, rows) of ``path`` when the caller has read it already (to size a progress bar)."""
    entity = records.entity(entity_name)
    if entity.is_child or entity.singleton:
        raise BadRequest(f"{entity_name} cannot be imported on its own")
    if mode not in MODES:
        raise BadRequest(f"mode must be one of {', '.join(MODES)}", {"mode": "invalid"})
    if not records.access.allowed(entity_name, "import"):
        raise Forbidden(f"you may not import {entity.label_in(records.locale)}")
    match = [m for m in match if m]
    for name in match:
        if name not in entity.fields or entity.fields[name].type in NOT_IMPORTABLE | {"links"}:
            raise BadRequest(f"cannot match on {name!r}", {"match": f"unknown or unsuitable field {name!r}"})
    if mode != "create" and not match:
        raise BadRequest(f"mode {mode} needs duplicate criteria (--match)", {"match": "required"})
    headers, rows = table or tabular.read(path)
    columns, unmapped = map_columns(records, entity, headers, mapping)
    missing = [m for m in match if m not in columns.values()]
    if missing:
        raise BadRequest(f"the file has no column for {', '.join(missing)}", {"match": "column missing"})
    if not columns:
        raise BadRequest("no column matches a field of " + entity.name, {"file": "no known columns"})
    result = ImportResult(entity_name, mode, dry_run, {headers[i]: f for i, f in columns.items()}, unmapped)
    reader = CellReader(records, entity)
    seen_keys = {}
    savepoint = records.session.begin_nested()
    try:
        for number, cells in rows:
            result.outcomes.append(_row(records, entity, reader, columns, number, cells, mode, match, seen_keys))
            if progress:
                progress(1)
        if (result.errors and not partial) or dry_run:
            savepoint.rollback()
        else:
            savepoint.commit()
            result.committed = True
    except BaseException:
        savepoint.rollback()
        raise
    if result.errors and not partial and not dry_run:
        raise ImportFailed(result)
    if result.committed:
        result.import_id = _record_run(records, entity, path, result, match)
        if mapping:
            remember_mapping(records, entity, headers, mapping)
    return result


def _row(records, entity, reader, columns, number, cells, mode, match, seen_keys):
    values, problems = {}, {}
    for i, name in columns.items():
        try:
            value = reader.value(entity.fields[name], cells[i])
        except ValueError as e:
            problems[name] = str(e)
            continue
        if value is not None or mode == "create":
            values[name] = value
    if problems:
        return RowOutcome(number, "error", reason="; ".join(f"{k}: {v}" for k, v in problems.items()), fields=problems)
    existing = None
    if match:
        key = tuple(values.get(m) for m in match)
        if any(v is None for v in key):
            return RowOutcome(number, "error", reason="empty duplicate criteria: " + ", ".join(match),
                              fields={m: "required" for m, v in zip(match, key) if v is None})
        if mode == "create" and key in seen_keys:
            return RowOutcome(number, "skipped", reason=f"same {', '.join(match)} as row {seen_keys[key]}")
        seen_keys.setdefault(key, number)
        found = records.list(entity.name, filters=[(m, "eq", v) for m, v in zip(match, key)], limit=2).items
        if len(found) > 1:
            return RowOutcome(number, "error", reason=f"several records match {', '.join(match)}")
        existing = found[0] if found else None
    try:
        if existing is None:
            if mode == "update":
                return RowOutcome(number, "skipped", reason="no matching record")
            record = records.create(entity.name, values)
            return RowOutcome(number, "created", record["id"])
        if mode == "create":
            return RowOutcome(number, "skipped", existing["id"], reason=f"already exists as #{existing['id']} (same {', '.join(match)})")
        before = record_to_json(records.model, entity, existing)
        record = records.update(entity.name, existing["id"], {k: v for k, v in values.items() if k not in match})
        outcome = RowOutcome(number, "updated", record["id"])
        outcome.fields = {"before": {k: before.get(k) for k in values if k in before}}
        return outcome
    except CrmError as e:
        return RowOutcome(number, "error", reason=e.message if not e.fields else "; ".join(f"{k}: {v}" for k, v in e.fields.items()),
                          fields=dict(e.fields))


def _record_run(records, entity, path, result, match):
    import_id = records.session.execute(imports.insert().values(
        entity=entity.name, filename=str(getattr(path, "name", path))[-255:], mode=result.mode, match=list(match),
        mapping=result.mapping, status="done", counts=result.counts, created_at=records.now(), created_by=records.user_id,
    ).returning(imports.c.id)).scalar()
    rows = [dict(import_id=import_id, row_number=o.row, action=o.action, record_id=o.record_id,
                 before=o.fields.get("before") if o.action == "updated" else None)
            for o in result.outcomes if o.action in ("created", "updated")]
    if rows:
        records.session.execute(import_rows.insert(), rows)
    return import_id


def revert(records, import_id):
    """Undo a finished import: created records to the recycle bin, updated ones restored from their
    before-images (newest rows first). Returns {"removed": n, "restored": n}."""
    run_row = records.session.execute(sa.select(imports).where(imports.c.id == import_id)).mappings().first()
    if run_row is None:
        raise NotFound(f"no import {import_id}")
    if run_row["reverted_at"] is not None:
        raise BadRequest(f"import {import_id} was reverted already")
    removed = restored = 0
    stmt = sa.select(import_rows).where(import_rows.c.import_id == import_id).order_by(import_rows.c.row_number.desc())
    with records.session.begin_nested():
        for row in records.session.execute(stmt).mappings().all():
            if row["action"] == "created":
                records.delete(run_row["entity"], row["record_id"], reason=f"import {import_id} reverted")
                removed += 1
            else:
                records.update(run_row["entity"], row["record_id"], row["before"] or {})
                restored += 1
        records.session.execute(imports.update().where(imports.c.id == import_id).values(status="reverted", reverted_at=records.now()))
    return {"removed": removed, "restored": restored}


def write_errors(path, headers, rows, result):
    """The bad rows with their original cells and a last column saying why, to fix and re-import."""
    bad = {o.row: o.reason for o in result.errors}
    writer = tabular.Writer(path, list(headers) + ["错误 / error"])
    for number, cells in rows:
        if number in bad:
            writer.row(list(cells) + [bad[number]])
    writer.close()


def summary_json(result):
    return json.dumps({"counts": result.counts, "unmapped": result.unmapped, "import_id": result.import_id,
                       "errors": [{"row": o.row, "reason": o.reason} for o in result.errors]}, ensure_ascii=False)
