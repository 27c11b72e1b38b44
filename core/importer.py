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
from crm.core.bulk import insert_rows
from crm.core.errors import BadRequest, CrmError, Forbidden, NotFound
from crm.core.records import record_to_json
from crm.core.tables import dictionary_items, import_mappings, import_rows, imports, users

MODES = ("create", "update", "upsert")
BATCH = 500  # rows per duplicate lookup and per create_many
NOT_IMPORTABLE = {"table", "json", "file", "image", "computed", "mnemonic", "autonumber"}
TRUE_WORDS = {"是", "true", "yes", "y", "1", "对", "✓"}
FALSE_WORDS = {"否", "false", "no", "n", "0", "不"}
SPLIT = re.compile(r"[,，;；、]\s*")
MEMOIZED = {"select", "region", "multiselect", "user", "boolean"}   # cells converted once per distinct value
MEMO_SIZE = 10_000
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
        self._converters = {}   # field name → cell → value

    def value(self, field, cell):
        if cell is None or (isinstance(cell, str) and not cell.strip()):
            return None
        return self.converter(field)(cell.strip() if isinstance(cell, str) else cell)

    def converter(self, field):
        """A function (non-empty cell, strings stripped) → value for the column of ``field``: its
        type looked at once per column, not per cell; a dictionary, user or 是/否 column converts
        each distinct cell once (a file of 100 000 rows has a few dozen levels, regions, owners)."""
        convert = self._converters.get(field.name)
        if convert is None:
            convert = self._converters[field.name] = self._make_converter(field)
        return convert

    def _make_converter(self, field):
        kind = field.type
        if kind in ("integer", "rating"):
            convert = _integer_cell
        elif kind in ("decimal", "money", "percent"):
            convert = _number_cell
        elif kind == "boolean":
            convert = _boolean_cell
        elif kind in ("date", "datetime", "time"):
            convert = _date_cell
        elif kind in ("select", "region"):
            def convert(cell, dictionary=field.dictionary):
                return self.choice(dictionary, cell)
        elif kind == "multiselect":
            def convert(cell, dictionary=field.dictionary):
                return [self.choice(dictionary, part) for part in SPLIT.split(str(cell)) if part]
        elif kind == "link":
            def convert(cell, target=field.entity):
                return self.link(target, cell)
        elif kind == "links":
            def convert(cell, target=field.entity):
                return [self.link(target, part) for part in SPLIT.split(str(cell)) if part]
        elif kind == "user":
            convert = self.user
        else:
            convert = _text_cell
        return _memoized(convert) if kind in MEMOIZED else convert

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
        table = self._labels[dictionary]
        text = str(cell).strip().lower()
        if text not in table:  # a path such as 广东/深圳/南山区 names its last part (labels may hold a / too: IT/软件)
            text = text.split("/")[-1].strip()
        if text not in table:
            raise ValueError(f"{cell!r} is not in dictionary {dictionary}")
        return table[text]

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


def _integer_cell(cell):
    return int(cell) if isinstance(cell, float) and cell.is_integer() else cell if isinstance(cell, int) else _int(cell)


def _number_cell(cell):
    return cell if isinstance(cell, (int, float)) else str(cell).replace(",", "").replace("¥", "").strip()


def _boolean_cell(cell):
    if isinstance(cell, bool):
        return cell
    word = str(cell).strip().lower()
    if word in TRUE_WORDS or word in FALSE_WORDS:
        return word in TRUE_WORDS
    raise ValueError(f"use 是 or 否, not {cell!r}")


def _date_cell(cell):
    if hasattr(cell, "isoformat"):
        return cell.isoformat()
    return str(cell).replace("/", "-")


def _text_cell(cell):
    if isinstance(cell, float) and cell.is_integer():  # phone numbers typed into number cells
        return str(int(cell))
    return cell if isinstance(cell, str) else str(cell)


def _memoized(convert, size=MEMO_SIZE):
    """``convert`` remembering its answer (or its complaint) per distinct cell; the type is part
    of the key (True, 1 and 1.0 are equal but read differently). Lists come out as new lists."""
    memo = {}

    def remembered(cell):
        key = (type(cell), cell)
        found = memo.get(key)
        if found is None:
            try:
                found = (True, convert(cell))
            except ValueError as e:
                found = (False, str(e))
            if len(memo) < size:
                memo[key] = found
        ok, value = found
        if not ok:
            raise ValueError(value)
        return list(value) if isinstance(value, list) else value
    return remembered


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
        if name not in entity.fields or entity.fields[name].type in NOT_IMPORTABLE | {"links", "multiselect"}:
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
    batch = RowBatch(records, entity, CellReader(records, entity), columns, mode, match)
    savepoint = records.session.begin_nested()
    try:
        with records.references_remembered():
            for start in range(0, len(rows), BATCH):
                chunk = rows[start:start + BATCH]
                result.outcomes += batch.run(chunk)
                if progress:
                    progress(len(chunk))
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


class RowBatch:
    """Rows of one import, a batch at a time, with the outcome each row would have had on its
    own: cells read first, the duplicate criteria of the whole batch looked up with one query
    (RecordService.match_many), new records created together (RecordService.create_many) and
    updates one by one. Pending creates are written before anything that could see them: an
    update, a row repeating a pending row's key (upsert), a link to a record of the same entity
    that may be one of them."""

    def __init__(self, records, entity, reader, columns, mode, match):
        self.records, self.entity, self.reader, self.columns = records, entity, reader, columns
        self.mode, self.match = mode, match
        self.seen_keys = {}     # key → first row number with it, over the whole file
        self.converters = [(i, name, reader.converter(entity.fields[name])) for i, name in columns.items()]

    def run(self, chunk):
        parsed = [(number, cells, *self._values(cells)) for number, cells in chunk]
        keys = {self._key(values) for _, _, values, problems in parsed if not problems and self.match} - {None}
        self.found = self.records.match_many(self.entity.name, self.match, keys) if keys else {}
        self.pending, self.pending_keys, self.outcomes = [], set(), {}
        for number, cells, values, problems in parsed:
            if problems and self.pending and self._may_be_pending(problems):
                self._flush()
                values, problems = self._values(cells)
            self._row(number, values, problems)
        self._flush()
        return [self.outcomes[number] for number, _ in chunk]

    def _values(self, cells):
        values, problems = {}, {}
        keep_empty = self.mode == "create"
        for i, name, convert in self.converters:
            cell = cells[i]   # CellReader.value, with its empty-cell test inlined (18 columns × 100 000 rows)
            if cell is None or (isinstance(cell, str) and not (cell := cell.strip())):
                value = None
            else:
                try:
                    value = convert(cell)
                except ValueError as e:
                    problems[name] = str(e)
                    continue
            if value is not None or keep_empty:
                values[name] = value
        return values, problems

    def _may_be_pending(self, problems):
        """A link by title to a record of this entity that a pending row may create."""
        return any(self.entity.fields[name].type in ("link", "links") and self.entity.fields[name].entity == self.entity.name
                   for name in problems)

    def _key(self, values):
        key = tuple(map(values.get, self.match))
        return None if None in key else key

    def _row(self, number, values, problems):
        if problems:
            self.outcomes[number] = RowOutcome(number, "error", reason="; ".join(f"{k}: {v}" for k, v in problems.items()),
                                               fields=problems)
            return
        if self.match:
            key = self._key(values)
            if key is None:
                self.outcomes[number] = RowOutcome(number, "error", reason="empty duplicate criteria: " + ", ".join(self.match),
                                                   fields={m: "required" for m in self.match if values.get(m) is None})
                return
            if self.mode == "create" and key in self.seen_keys:
                self.outcomes[number] = RowOutcome(number, "skipped", reason=f"same {', '.join(self.match)} as row {self.seen_keys[key]}")
                return
            self.seen_keys.setdefault(key, number)
            if key in self.pending_keys:
                self._flush()
            if key not in self.found:
                self.found.update(self.records.match_many(self.entity.name, self.match, [key]))
            if self.found[key]:
                self._matched(number, values, key, self.found[key])
                return
        if self.mode == "update":
            self.outcomes[number] = RowOutcome(number, "skipped", reason="no matching record")
        else:
            self.pending.append((number, values, key if self.match else None))
            self.pending_keys.add(key if self.match else None)

    def _matched(self, number, values, key, found):
        """The outcome of a row whose duplicate criteria match ``found`` records."""
        if len(found) > 1:
            self.outcomes[number] = RowOutcome(number, "error", reason=f"several records match {', '.join(self.match)}")
            return
        existing = found[0]
        if self.mode == "create":
            self.outcomes[number] = RowOutcome(number, "skipped", existing["id"],
                                               reason=f"already exists as #{existing['id']} (same {', '.join(self.match)})")
            return
        self._flush()
        before = record_to_json(self.records.model, self.entity, existing)
        try:
            record = self.records.update(self.entity.name, existing["id"], {k: v for k, v in values.items() if k not in self.match})
        except CrmError as e:
            self.outcomes[number] = _refused(number, e)
            return
        self.found[key] = [record]
        self.outcomes[number] = RowOutcome(number, "updated", record["id"],
                                           fields={"before": {k: before.get(k) for k in values if k in before}})

    def _flush(self):
        pending, self.pending, self.pending_keys = self.pending, [], set()
        if not pending:
            return
        created = self.records.create_many(self.entity.name, [values for _, values, _ in pending])
        for (number, values, key), record in zip(pending, created):
            if isinstance(record, CrmError):
                if key is not None and set(record.fields) & set(self.match):
                    # refused over a duplicate criterion: someone (a concurrent import) entered that key
                    # since the batch's lookup; the row gets the outcome a lookup now gives
                    found = self.records.match_many(self.entity.name, self.match, [key])[key]
                    if found:
                        self.found[key] = found
                        self._matched(number, values, key, found)
                        continue
                self.outcomes[number] = _refused(number, record)
                continue
            self.outcomes[number] = RowOutcome(number, "created", record["id"])
            if key is not None:
                self.found[key] = [record]


def _refused(number, error):
    reason = error.message if not error.fields else "; ".join(f"{k}: {v}" for k, v in error.fields.items())
    return RowOutcome(number, "error", reason=reason, fields=dict(error.fields))


def _record_run(records, entity, path, result, match):
    import_id = records.session.execute(imports.insert().values(
        entity=entity.name, filename=str(getattr(path, "name", path))[-255:], mode=result.mode, match=list(match),
        mapping=result.mapping, status="done", counts=result.counts, created_at=records.now(), created_by=records.user_id,
    ).returning(imports.c.id)).scalar()
    rows = [dict(import_id=import_id, row_number=o.row, action=o.action, record_id=o.record_id,
                 before=o.fields.get("before") if o.action == "updated" else None)
            for o in result.outcomes if o.action in ("created", "updated")]
    if rows:
        insert_rows(records.session, import_rows, rows)
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
