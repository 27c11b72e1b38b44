"""The record service: the only way records are read or written (web, API, CLI, import, jobs).

    request → view → RecordService → SQL

Each write runs in a savepoint with its hooks, so a veto or an error leaves nothing behind,
and records an audit trail. Reads go through ``_visible`` so that permission scopes (see the
access issue) apply on every path. ``create_many`` creates a batch (imports) with the same
validation, hooks and audit in a few statements per batch instead of ~15 per record.
"""
import contextlib
import copy
import datetime as dt
import re
import weakref
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from crm.core import audit_log, expressions, narrow_lists, query, time_limit
from crm.core.access import Access
from crm.core.autonumber import next_numbers
from crm.core.bulk import insert_rows
from crm.core.errors import BadRequest, Conflict, CrmError, Forbidden, NotFound, ValidationFailed, Vetoed
from crm.core.fieldtypes import DICTIONARY_TYPES, JSON_SAFE_INTEGER, REFERENCE_TYPES, Date, FieldType, Number, quantize
from crm.core.id_lists import in_ids
from crm.core.mnemonic import mnemonic
from crm.core.workflow import may_edit
from crm.core.tables import attachments, departments, dictionary_items, links, trash, users
from crm.hooks import Veto

MAX_LIMIT = 500
SETTINGS_CACHE = "crm.settings_record"   # transaction_cache key: the system settings record
COUNT_CAP = 10000
COUNT_SECONDS = 0.2  # a list's count is given up after this long (crm.core.time_limit)
READONLY_INPUT = {"id", "version", "created_at", "created_by", "updated_at", "updated_by", "deleted_at", "deleted_by",
                  "parent_id", "sort_order"}
MESSAGES = {
    "required": {"zh_CN": "必填", "en": "required"},
    "unknown": {"zh_CN": "没有这个字段", "en": "unknown field"},
    "unique": {"zh_CN": "已存在相同的值", "en": "already used by another record"},
    "choice": {"zh_CN": "不是可选的值", "en": "not one of the allowed values"},
    "missing_link": {"zh_CN": "关联的记录不存在", "en": "the linked record does not exist"},
    "readonly": {"zh_CN": "当前不可修改", "en": "read-only now"},
    "invalid": {"zh_CN": "格式不正确", "en": "invalid value"},
    "too_long": {"zh_CN": "太长", "en": "too long"},
    "range": {"zh_CN": "超出范围", "en": "out of range"},
    "cycle": {"zh_CN": "不能选择自己或下级", "en": "cannot be itself or one of its descendants"},
}


@dataclass
class Page:
    items: list
    next_cursor: str | None
    total: int | None  # exact when at most COUNT_CAP, else None ("10000+")
    count_stopped: bool = False  # the count took longer than COUNT_SECONDS and was given up

    @property
    def count_text(self):
        """The count as pages show it: the number, "10000+" above the cap, "50+" (the rows in
        hand, and more) when counting was given up."""
        if self.total is not None:
            return str(self.total)
        return f"{len(self.items)}+" if self.count_stopped else f"{COUNT_CAP}+"


class RecordService:
    def __init__(self, runtime, session, user=None, locale="zh_CN"):
        self.runtime = runtime
        self.session = session
        self.user = user
        self.locale = locale
        self.model = runtime.metadata
        self._choices = {}
        self._known_references = None  # {(table, id)} seen to exist, while create_many runs
        self._rule_memo = {}            # see _rule_holds
        self._one_by_one = set()        # entities whose hooks read the database: create_many goes row by row
        self.access = Access(self)
        self._connection = None         # see _read

    # --- context for hooks and callers -----------------------------------------------------

    @property
    def user_id(self):
        return self.user["id"] if self.user else None

    def now(self):
        return self.runtime.clock()

    def today(self):
        return self.now().date()

    def entity(self, name):
        entity = self.model.entities.get(name)
        if entity is None:
            raise NotFound(f"no entity {name!r}")
        return entity

    def message(self, key):
        return MESSAGES[key].get(self.locale) or MESSAGES[key]["en"]

    @property
    def db(self):
        return self.session

    @property
    def dialect(self):
        """The database's name: ``sqlite`` or ``postgresql``."""
        return self.session.bind.dialect.name

    def as_system(self):
        """The same transaction without a person: for hooks and jobs that keep read-only fields
        (statistics, states) up to date."""
        return RecordService(self.runtime, self.session, user=None, locale=self.locale)

    def _hook(self, name, **kwargs):
        try:
            getattr(self.runtime.plugins.hook, name)(ctx=self, **kwargs)
        except Veto as veto:
            raise Vetoed(veto.message, {veto.field: veto.message} if veto.field else None) from veto

    # --- reading ---------------------------------------------------------------------------

    def _visible(self, entity, deleted=False, action="read", reach=None):
        """The where clause every read goes through: recycle-bin state, then access scopes."""
        state = _bin_state(entity, deleted)
        scope = (reach or self.access.reach(entity, action)).clause()
        return state if scope is None else sa.and_(state, scope)

    def _read(self, stmt, params=None):
        """Run a select on the session's connection: for a Core statement what ``session.execute``
        does, without its ORM bookkeeping (an API read sends up to 7). The connection is kept
        while it is open: ``session.connection()`` costs ~25 µs even when the session has one, and
        the session closes it when its transaction ends (the next call then asks for a new one)."""
        connection = self._connection
        if connection is None or connection.closed:
            connection = self._connection = self.session.connection()
        return connection.execute(stmt, params)

    def _require(self, entity, record, action):
        """403 unless ``action`` on this (visible) record is within the user's reach."""
        if not self.access.allowed(entity.name, action):
            raise Forbidden(f"you may not {action} {entity.label_in(self.locale)}")
        scope = self.access.clause(entity, action)
        if scope is not None and not self.session.execute(
                sa.select(entity.table.c.id).where(entity.table.c.id == record["id"], scope)).first():
            raise Forbidden(f"you may not {action} {entity.label_in(self.locale)} #{record['id']}")

    def _strip(self, entity, records):
        """Leave out the fields hidden from the user (on every path: API, pages, export)."""
        hidden = self.access.hidden_fields(entity.name)
        if hidden:
            for record in records:
                for name in hidden:
                    record.pop(name, None)
        return records

    def _row(self, entity, record_id, deleted=False, lock=False, scoped=True, probed=False):
        """The record's own row as a dict; 404 when it does not exist or is out of reach.
        ``probed``: the row also says which many-links and child tables hold rows for it, under
        the labels of :func:`_probe_label` (see :meth:`_get`)."""
        try:
            record_id = int(record_id)
        except (TypeError, ValueError):
            raise NotFound(f"no {entity.name} {record_id!r}")
        stmt = _row_statement(entity, deleted, probed and self.model)
        if scoped and not entity.is_child:
            scope = self.access.clause(entity, "read")  # as _visible: the recycle-bin state is in the statement
            if scope is not None:
                stmt = stmt.where(scope)
        if lock and self.dialect == "postgresql":
            stmt = stmt.with_for_update()
        result = self._read(stmt, {"record_id": record_id})
        values = result.first()
        if values is None:
            raise NotFound(f"no {entity.name} {record_id}")
        return dict(zip(_columns(result), values))

    def get(self, name, record_id, deleted=False):
        entity = self.entity(name)
        return self._strip(entity, [self._get(entity, record_id, deleted)])[0]

    def _get(self, entity, record_id, deleted=False, scoped=True):
        """The whole record (hidden fields included), for the service's own use; ``scoped=False``
        only to read back what this operation itself just wrote. The row's statement asks which
        many-links and child tables hold rows for the record (an ``EXISTS`` per table, an index
        probe each), and only those are read: most records have few, and a statement costs far
        more than the probe (a customer's detail: 8 statements → 3 on SQLite)."""
        row = self._row(entity, record_id, deleted, scoped=scoped, probed=True)
        present = _present([row], [name for name, *_ in _completion_plan(self.model, entity)])
        return self._complete(entity, [row], present=present)[0]

    def _complete(self, entity, rows, children=True, present=None):
        """Add many-links (and, unless ``children`` is off, child rows) to records read from the
        entity's table. Lists leave child rows out: one query per child table and page is the
        largest cost of a list; a record's detail has them (one query per child table).
        ``present``: the names of the many-links and child tables known to hold rows for these
        records (the others are known to be empty and not read); None: unknown, read them all."""
        ids = [r["id"] for r in rows]
        one = len(ids) == 1  # a record's detail: "= :id" (expanding "IN" costs its statement to be rewritten)
        params = {"id": ids[0]} if one else {"ids": ids}
        for name, child_name, for_many, for_one, _ in _completion_plan(self.model, entity):
            stmt = for_one if one else for_many
            if present is not None and name not in present:
                if child_name is None or children:
                    for r in rows:
                        r[name] = []
            elif child_name is None:  # many-links
                found = {}
                if ids:
                    for source, target in self._read(stmt, params):
                        found.setdefault(source, []).append(target)
                for r in rows:
                    r[name] = found.get(r["id"], [])
            elif children:
                found = {}
                if ids:
                    for row in _dicts(self._read(stmt, params)):
                        found.setdefault(row["parent_id"], []).append(row)
                child = self.entity(child_name)
                for r in rows:
                    r[name] = self._complete(child, found.get(r["id"], []))
        return rows

    def list(self, name, filters=(), sort=None, limit=50, cursor=None, q=None, count=False, deleted=False, action="read",
             where=(), json_numbers=False, count_seconds=None):
        """A page of records. ``filters``: [(field, op, value)] (see :mod:`crm.core.query`);
        ``action``: the scope that applies (``export`` for exports); ``where``: more SQLAlchemy
        clauses over the entity's table, for conditions the filter language cannot say (code
        only, never built from request input). ``json_numbers``: decimal fields as the driver
        reads them (:class:`JsonNumber`), for :func:`record_to_json` and nothing else.
        ``count_seconds``: how long a count that reads the table may take (default COUNT_SECONDS)."""
        entity = self.entity(name)
        if entity.is_child:
            raise BadRequest(f"{name} rows belong to their {entity.child_of}; list them with it")
        if not self.access.allowed(name, action):
            raise Forbidden(f"you may not {action} {entity.label_in(self.locale)}")
        hidden = self.access.hidden_fields(name)
        for field_name, _, _ in filters:
            if field_name in hidden:
                raise BadRequest(f"unknown field {field_name!r}", {field_name: "unknown field"})
        if sort and any(part.strip().lstrip("-") in hidden for part in sort.split(",")):
            raise BadRequest("cannot sort by a hidden field", {"sort": "unknown field"})
        try:
            limit = int(limit)
        except (TypeError, ValueError):
            raise BadRequest("limit must be a number", {"limit": "not a number"})
        if not 1 <= limit <= MAX_LIMIT:
            raise BadRequest(f"limit must be between 1 and {MAX_LIMIT}", {"limit": f"1 to {MAX_LIMIT}"})
        dialect = self.dialect
        conditions = [*where, *(query.filter_clause(entity, f, op, v, dialect) for f, op, v in filters)]
        if q:
            conditions.append(self.search_clause(entity, q))
        keys = query.parse_sort(entity, sort)
        values = query.decode_cursor(entity, keys, cursor) if cursor else None
        reach = self.access.reach(entity, action)
        visible = self._visible(entity, deleted, action, reach)
        params, rest = None, None
        if narrow_lists.is_narrow(reach, dialect, keys, filtered=bool(filters or where), searched=bool(q)):
            extra = [*reach.restrictions, *conditions]
            stmt, params = narrow_lists.page_statement(reach, [_bin_state(entity, deleted), *extra], keys, limit + 1,
                                                       cursor=values, reusable=not extra)
        else:
            stmt, rest, params = _page_statement(self.model, entity, visible, conditions, keys, limit + 1, values,
                                                 dialect == "postgresql", reusable=visible is _bin_state(entity, deleted),
                                                 json_numbers=json_numbers)
        rows = _dicts(self._read(stmt, params))
        if rest is not None and len(rows) <= limit:
            rows += _dicts(self._read(rest))[:limit + 1 - len(rows)]
        next_cursor = query.encode_cursor(keys, rows[limit - 1]) if len(rows) > limit else None
        total, stopped = None, False
        if count and cursor is None and next_cursor is None:  # the page holds every match: its own count
            total = len(rows) if len(rows) <= COUNT_CAP else None  # (a search finding 47 of a million)
        elif count:
            scoped = visible is not _bin_state(entity, deleted)
            total, stopped = self._count(entity, [visible, *conditions], bounded=bool(conditions or deleted or scoped),
                                         seconds=COUNT_SECONDS if count_seconds is None else count_seconds)
        rows = rows[:limit]
        rows = self._complete(entity, rows, children=False, present=_linked(self.model, entity, rows))
        return Page(self._strip(entity, rows), next_cursor, total, stopped)

    def _count(self, entity, where, *, bounded, seconds):
        """(the number of matches or None above COUNT_CAP, whether counting was given up).

        ``bounded``: the count may have to read the table to find its matches (a quick search,
        a filter, the recycle bin, a scope), so it stops after ``seconds``. A list of every
        record out of the bin finds its COUNT_CAP + 1 rows at once and needs no limit, which
        costs three statements (0.6 ms of a 5 ms first page on PostgreSQL)."""
        capped = sa.select(sa.literal(1)).select_from(entity.table).where(*where).limit(COUNT_CAP + 1).subquery()
        stmt = sa.select(sa.func.count()).select_from(capped)
        n = time_limit.scalar_within(self.session, stmt, seconds) if bounded else self.session.execute(stmt).scalar()
        if n is None:
            return None, True
        return (n if n <= COUNT_CAP else None), False

    def group_counts(self, name, field, filters=(), q=None, limit=200):
        """[(value, count)] per value of ``field`` over the records the user may read, with the same
        filters and quick search as :meth:`list`; largest groups first, at most ``limit`` groups.
        For the list page's group-by panel (select, region, boolean, rating, user, department)."""
        entity = self.entity(name)
        if not self.access.allowed(name, "read"):
            raise Forbidden(f"you may not read {entity.label_in(self.locale)}")
        hidden = self.access.hidden_fields(name)
        if field not in entity.fields or field in hidden or entity.fields[field].type not in (
                "select", "region", "boolean", "rating", "user", "department"):
            raise BadRequest(f"cannot group by {field!r}", {"group": "not groupable"})
        for field_name, _, _ in filters:
            if field_name in hidden:
                raise BadRequest(f"unknown field {field_name!r}", {field_name: "unknown field"})
        where = [self._visible(entity)] + [query.filter_clause(entity, f, op, v, self.dialect) for f, op, v in filters]
        if q:
            where.append(self.search_clause(entity, q))
        column, n = entity.table.c[field], sa.func.count().label("n")
        stmt = sa.select(column, n).where(*where).group_by(column).order_by(n.desc(), column).limit(limit)
        return [(value, count) for value, count in self.session.execute(stmt)]

    def search_clause(self, entity, q):
        """Quick search: any search field contains ``q``; ASCII letters also match 助记码 initials."""
        q = str(q).strip()
        pattern = "%" + query.escape_like(q) + "%"
        hidden = self.access.hidden_fields(entity.name)
        clauses = [query.any_case_like(entity.table.c[f], pattern, self.dialect) for f in entity.search_fields
                   if f in entity.table.c and f not in hidden]
        for field in entity.stored_fields:
            if field.type == "mnemonic" and q.isascii() and q.isalnum():
                clauses.append(entity.table.c[field.name].like(query.escape_like(q.upper()) + "%", escape="\\"))
        if not clauses:
            raise BadRequest(f"{entity.name} has no search fields", {"q": "not searchable"})
        return sa.or_(*clauses)

    def singleton(self, name):
        """The one record of a singleton entity (system settings), created on first use."""
        entity = self.entity(name)
        row = self.session.execute(sa.select(entity.table.c.id).where(entity.table.c.deleted_at.is_(None)).limit(1)).scalar()
        return self.get(name, row) if row else self.create(name, {})

    def setting(self, name, default=None):
        """A system setting's stored value, ``default`` when unset or before the settings record
        exists. Read as the system and creating nothing: settings steer behaviour for everyone,
        whatever the user may read (a sales rep's page must not try to create the record). The
        row is read once per transaction (validation asks for it per money field and record) and
        again after it was written."""
        entity = self.model.entities.get("system_settings")
        if entity is None or name not in entity.table.c:
            return default
        cache = transaction_cache(self.session)
        if SETTINGS_CACHE not in cache:
            table = entity.table
            row = self.session.execute(sa.select(table).where(table.c.deleted_at.is_(None)).order_by(table.c.id).limit(1)).mappings().first()
            cache[SETTINGS_CACHE] = dict(row) if row else None
        stored = cache[SETTINGS_CACHE]
        value = stored[name] if stored is not None else entity.fields[name].default   # no record yet: what it would be created with
        return default if value is None else value

    # --- validation ------------------------------------------------------------------------

    def _clean(self, entity, values, old=None):
        """Validate input values and turn them into Python values; fill generated fields.

        Returns (changes, children, many_links). Raises ValidationFailed with every field's message.
        """
        if not isinstance(values, dict):
            raise BadRequest("a record is a JSON object")
        plan = _clean_plan(entity)
        fields = entity.fields
        errors = {}
        hidden = self.access.hidden_fields(entity.name)
        kept = {}
        for key, value in values.items():
            if key in READONLY_INPUT:
                continue
            if key not in fields or key in hidden:
                errors[key] = self.message("unknown")
            elif key not in plan.system_filled:
                kept[key] = value
        values = kept
        if self.user is not None:  # people may not write read-only fields; the system (jobs, hooks run as system) may
            workflow = self.model.workflows.get(entity.name)
            state_field = workflow.state_field if workflow else None   # only transitions move the state
            field_access = None if self.access.root else self.access.field_access   # root: every field editable
            for key in [k for k in values if k in plan.readonly or k == state_field
                        or (field_access is not None and field_access(entity.name, k) == "readonly")]:
                if old is not None and values[key] == to_json(entity, key, old.get(key)):
                    del values[key]
                else:
                    errors[key] = self.message("readonly")
        if not self.runtime.input_valid(entity, values):
            for error in self.runtime.input_validator(entity).iter_errors(values):
                if error.absolute_path:
                    name = error.absolute_path[0]
                    errors.setdefault(name, self._schema_message(error))
        changes, children, many = {}, {}, {}
        convert = plan.convert
        for name, value in values.items():
            if name in errors:
                continue
            field, to_python, kind, decimals_setting = convert[name]
            try:
                python = to_python(value, field)
            except ValueError as e:
                errors[name] = str(e)
                continue
            if kind == "table":
                children[name] = python
            elif kind == "links":
                many[name] = python
            else:
                if decimals_setting and python is not None:
                    python = quantize(python, int(self.setting(decimals_setting, 2)))
                changes[name] = python
        if old is None:
            for name, default in plan.defaults(values):
                changes[name] = default
            workflow = self.model.workflows.get(entity.name)
            if workflow and not changes.get(workflow.state_field):
                changes[workflow.state_field] = workflow.initial
        merged = {**(old or {}), **changes}
        for name in many:
            merged[name] = many[name]
        self._check_rules(entity, merged, changes, old, errors)
        for name, rows in children.items():
            child = self.entity(entity.fields[name].entity)
            cleaned = []
            for i, row in enumerate(rows):
                try:
                    c, _, _ = self._clean(child, {k: v for k, v in row.items() if k != "id"})
                    if isinstance(row.get("id"), int):
                        c["id"] = row["id"]
                    cleaned.append(c)
                except ValidationFailed as e:
                    for k, m in e.fields.items():
                        errors[f"{name}.{i}.{k}"] = m
            children[name] = cleaned
        if errors:
            raise ValidationFailed(self._summary(entity, errors), errors)
        self._generate(entity, merged, changes, old)
        return changes, children, many

    def _schema_message(self, error):
        kind = error.validator
        if kind in ("maxLength", "maxItems"):
            return self.message("too_long")
        if kind in ("minimum", "maximum"):
            return self.message("range") + f" ({error.message})"
        return self.message("invalid") + f": {error.message}"

    def _summary(self, entity, errors):
        names = ", ".join(entity.fields[k].label_in(self.locale) if k in entity.fields else k for k in list(errors)[:5])
        return ("请检查这些字段: " if self.locale.startswith("zh") else "please check these fields: ") + names

    def _check_rules(self, entity, merged, changes, old, errors):
        today = self.today()
        tree_parent = entity.tree["parent_field"] if entity.tree else None
        for field, only_changed in _ruled_fields(entity):
            name = field.name
            if only_changed and name not in changes or name in errors:
                continue
            value = merged.get(name)
            empty = value is None or value == [] or value == ""
            required = field.required or (field.required_if is not None and self._rule_holds(field.required_if, merged, today))
            if required and empty and not field.hidden:
                errors[name] = self.message("required")
                continue
            if old is not None and name in changes and field.readonly_if is not None and changes[name] != old.get(name) \
                    and expressions.truthy(expressions.evaluate(field.readonly_if, old, today=today)):
                errors[name] = self.message("readonly")
                continue
            if empty or (name not in changes and field.type != "links"):
                continue
            kind = field.type
            if kind in DICTIONARY_TYPES:
                allowed = self._dictionary_values(field.dictionary)
                if any(v not in allowed for v in value) if isinstance(value, list) else value not in allowed:
                    errors[name] = self.message("choice")
            elif kind in REFERENCE_TYPES or kind == "links":
                if not self._references_exist(field, value if isinstance(value, list) else [value]):
                    errors[name] = self.message("missing_link")
            if name == tree_parent and old is not None and self._tree_cycle(entity, old["id"], value):
                errors[name] = self.message("cycle")
            if field.unique and name not in errors:
                stmt = sa.select(entity.table.c.id).where(entity.table.c[name] == value)
                if old:
                    stmt = stmt.where(entity.table.c.id != old["id"])
                if self.session.execute(stmt.limit(1)).first():
                    errors[name] = self.message("unique")

    def _rule_holds(self, expr, data, today):
        """``truthy(evaluate(expr, data))``, remembered per value of the fields the expression
        reads (when they are plain strings, numbers or None): an import asks 100 000 times
        whether 代理级别 is required, for the few categories there are."""
        used = _rule_fields(expr)
        if used is None:
            return expressions.truthy(expressions.evaluate(expr, data, today=today))
        key = [id(expr), today]
        for name in used:
            value = data.get(name)
            if type(value) not in _MEMO_TYPES:
                return expressions.truthy(expressions.evaluate(expr, data, today=today))
            key += (type(value), value)
        key = tuple(key)
        found = self._rule_memo.get(key)
        if found is None or found[0] is not expr:
            if len(self._rule_memo) > 10_000:
                self._rule_memo.clear()
            found = self._rule_memo[key] = (expr, expressions.truthy(expressions.evaluate(expr, data, today=today)))
        return found[1]

    def _tree_cycle(self, entity, record_id, parent_id):
        """True when ``parent_id`` is the record itself or one of its descendants."""
        column = entity.table.c[entity.tree["parent_field"]]
        seen = set()
        while parent_id is not None and parent_id not in seen:
            if parent_id == record_id:
                return True
            seen.add(parent_id)
            parent_id = self.session.execute(sa.select(column).where(entity.table.c.id == parent_id)).scalar()
        return False

    def descendants(self, name, record_id):
        """Ids of every record below ``record_id`` in a tree entity (上级单位 → 下级单位), any depth."""
        entity = self.entity(name)
        if not entity.tree:
            raise BadRequest(f"{name} is not a tree")
        table, parent = entity.table, entity.table.c[entity.tree["parent_field"]]
        root = self._row(entity, record_id)["id"]
        tree = sa.select(table.c.id).where(parent == root).cte("tree", recursive=True)
        tree = tree.union(sa.select(table.c.id).join(tree, parent == tree.c.id))
        stmt = sa.select(table.c.id).where(table.c.id.in_(sa.select(tree.c.id)), self._visible(entity)).order_by(table.c.id)
        return list(self.session.execute(stmt).scalars())

    def _dictionary_values(self, dictionary):
        if dictionary not in self._choices:
            stmt = sa.select(dictionary_items.c.value).where(dictionary_items.c.dictionary == dictionary, dictionary_items.c.active)
            self._choices[dictionary] = set(self.session.execute(stmt).scalars())
        return self._choices[dictionary]

    def _references_exist(self, field, ids):
        table_name = REFERENCE_TYPES.get(field.type) or field.entity
        known = self._known_references
        if known is not None and (((table_name, ids[0]) in known) if len(ids) == 1 else all((table_name, i) in known for i in ids)):
            return True  # a batch links its records to the same few owners, departments, customers
        if field.type in ("link", "links"):
            target = self.entity(field.entity)
            stmt = sa.select(target.table.c.id).where(target.table.c.id.in_(ids), self._visible(target))
        else:
            table = {"crm_users": users, "crm_departments": departments, "crm_attachments": attachments}[table_name]
            stmt = sa.select(table.c.id).where(table.c.id.in_(ids))
        found = set(self.session.execute(stmt).scalars())
        if known is not None:
            known.update((table_name, i) for i in found)
        return len(found) == len(set(ids))

    def _generate(self, entity, merged, changes, old):
        """Computed fields and 助记码; autonumbers are drawn at insert time."""
        today = self.today()
        for field in _clean_plan(entity).generated:
            if field.type == "mnemonic" and (old is None or field.source in changes):
                changes[field.name] = merged[field.name] = mnemonic(merged.get(field.source))
            elif field.type == "computed":
                value = expressions.evaluate(field.expression, merged, today=today)
                try:
                    value = field.ftype.to_python(value, field)
                except (ValueError, TypeError):
                    value = None
                if old is None or value != old.get(field.name):
                    changes[field.name] = merged[field.name] = value

    # --- writing ---------------------------------------------------------------------------

    def create(self, name, values):
        entity = self.entity(name)
        if entity.is_child:
            raise BadRequest(f"{name} rows are saved with their parent {entity.child_of}")
        if not self.access.allowed(name, "create"):
            raise Forbidden(f"you may not create {entity.label_in(self.locale)}")
        if entity.singleton and self.session.execute(sa.select(entity.table.c.id).where(entity.table.c.deleted_at.is_(None)).limit(1)).first():
            raise Conflict(f"{entity.label_in(self.locale)} has one record only; update it", {"id": "singleton"})
        with self.session.begin_nested():
            changes, children, many = self._clean(entity, values)
            self._hook("crm_before_create", entity=entity, values=changes)
            row = self._new_rows(entity, [changes])[0]
            record_id = self.session.execute(entity.table.insert().values(row).returning(entity.table.c.id)).scalar()
            self._save_children(entity, record_id, children)
            self._save_links(entity, record_id, many)
            record = self._read_new(entity, [record_id], bool(children or many))[0]
            audit_log.created(self, entity, record)
            self._hook("crm_after_create", entity=entity, record=record)
        if entity.singleton:
            forget_transaction_cache(self.session)
        return self._strip(entity, [record])[0]

    def _new_rows(self, entity, changes_list):
        """Table rows for new records: bookkeeping columns, autonumbers drawn as one block, every
        row with the same keys (so that a batch is one executemany)."""
        now = self.now()
        for field in entity.stored_fields:
            if field.type == "autonumber":
                numbers = next_numbers(self.session.connection(), entity.name, field.name, field.autonumber, now, len(changes_list))
                for changes, number in zip(changes_list, numbers):
                    changes[field.name] = number
        keys = dict.fromkeys(k for changes in changes_list for k in changes)
        return [{**dict.fromkeys(keys), **changes, "version": 1, "created_at": now, "created_by": self.user_id,
                 "updated_at": now, "updated_by": self.user_id} for changes in changes_list]

    def _read_new(self, entity, ids, with_related):
        """Records this operation has just inserted, read back with one query (the database's own
        types and values, as any later read gives them). A new record has many-links and child
        rows only where they were given, so those are read only when ``with_related``."""
        table = entity.table
        contiguous = len(ids) > 1 and ids[-1] - ids[0] == len(ids) - 1 and len(set(ids)) == len(ids)   # SQLite's batches
        where = table.c.id.between(ids[0], ids[-1]) if contiguous else table.c.id.in_(ids)
        found = {r["id"]: r for r in _dicts(self.session.execute(sa.select(table).where(where)))}
        rows = [found[i] for i in ids]
        if with_related:
            return self._complete(entity, rows)
        related = [f.name for f in entity.fields.values() if f.type in ("links", "table")]
        for r in rows:
            for name in related:
                r[name] = []
        return rows

    def create_many(self, name, items):
        """Create a record from each of ``items`` (a list of values), as :meth:`create` would one
        after the other, in a handful of statements per batch: one validation per record with
        the cached validator, ``crm_before_create`` per record in order, one block of
        autonumbers, one executemany of the rows (and of their links and audit rows), one
        read-back, then ``crm_after_create`` per record in order.

        Returns one entry per item: the record created, or the :class:`CrmError` that refused it
        (the other records are created all the same; the caller decides whether to keep them).

        Inserting the batch at once is only the same as inserting one record after the other
        while the hooks cannot tell the difference. So the batch is rolled back and created
        record by record with :meth:`create` (and so is every later batch of this entity on this
        service) when a ``crm_before_create`` hook sends any SQL while earlier records of the
        batch are still unwritten (e.g. a capacity check counting the owner's customers), when a
        ``crm_after_create`` hook (but the last one's) sends SQL naming a table the batch wrote
        (the entity's, its child tables, crm_links, crm_audit) and could thus see the later
        records too early, or when a hook refuses after the batch was written. Hooks that read
        other tables after the insert (settings, rules) keep the batch. Validation sees the
        earlier records of the batch for ``unique`` fields."""
        entity = self.entity(name)
        if entity.is_child or entity.singleton:
            raise BadRequest(f"{name} records are not created in batches")
        if not self.access.allowed(name, "create"):
            raise Forbidden(f"you may not create {entity.label_in(self.locale)}")
        with self.references_remembered():
            return self._create_many(entity, name, items)

    @contextlib.contextmanager
    def references_remembered(self):
        """Within the block a referenced record (owner, department, linked record) seen to exist is
        not looked up again: a batch of 500 records names the same few owners, and an import
        (:func:`crm.core.importer.run`) checks them once, not once per batch."""
        outer_cache = self._known_references
        self._known_references = set() if outer_cache is None else outer_cache
        try:
            yield
        finally:
            self._known_references = outer_cache

    def _create_many(self, entity, name, items):
        if name not in self._one_by_one:
            savepoint = self.session.begin_nested()
            try:
                results = self._create_batch(entity, items)
            except _OneByOne:
                results = None
            except BaseException:
                savepoint.rollback()
                raise
            if results is None:
                savepoint.rollback()
                self._one_by_one.add(name)
            else:
                savepoint.commit()
                return results
        results = []
        for values in items:
            try:
                results.append(self.create(name, values))
            except CrmError as e:
                results.append(e)
        return results

    def _create_batch(self, entity, items):
        """The batched path of :meth:`create_many`; raises _OneByOne where it would not give the
        same result as creating the records one after the other."""
        results = [None] * len(items)
        accepted = []  # (index, changes, children, many)
        unique = {f.name: set() for f in entity.stored_fields if f.unique}
        written = [entity.table.name, links.name, audit_log.audit.name] + [c.table.name for c in self.model.children_of(entity.name)]
        with _StatementCounter(self.session.connection(), written) as statements:
            for index, values in enumerate(items):
                try:
                    changes, children, many = self._clean(entity, values)
                    for field_name, seen in unique.items():
                        if changes.get(field_name) is not None and changes[field_name] in seen:
                            raise ValidationFailed(self._summary(entity, {field_name: 1}), {field_name: self.message("unique")})
                    before = statements.count
                    try:
                        self._hook("crm_before_create", entity=entity, values=changes)
                    except CrmError:
                        if statements.count != before:
                            raise _OneByOne()  # the hook may have written before it refused
                        raise
                    if statements.count != before and accepted:
                        raise _OneByOne()      # it read the database without the batch's earlier records
                except CrmError as e:
                    results[index] = e
                    continue
                for field_name, seen in unique.items():
                    seen.add(changes.get(field_name))
                accepted.append((index, changes, children, many))
            if not accepted:
                return results
            rows = self._new_rows(entity, [changes for _, changes, _, _ in accepted])
            try:
                ids = self._insert_many(entity, rows)
            except sa.exc.IntegrityError:
                raise _OneByOne()  # e.g. a unique index: create() tells which record and why
            link_rows = []
            for record_id, (_, _, children, many) in zip(ids, accepted):
                self._save_children(entity, record_id, children)
                link_rows += [dict(entity=entity.name, field=field_name, source_id=record_id, target_id=t)
                              for field_name, targets in many.items() for t in targets]
            if link_rows:
                insert_rows(self.session, links, link_rows)
            records = self._read_new(entity, ids, any(children or many for _, _, children, many in accepted))
            audit_log.created_many(self, entity, records)
            last = len(records) - 1
            for position, ((index, _, _, _), record) in enumerate(zip(accepted, records)):
                before = statements.touching
                try:
                    self._hook("crm_after_create", entity=entity, record=record)
                except CrmError:
                    raise _OneByOne()
                if statements.touching != before and position != last:
                    raise _OneByOne()          # it may have seen the batch's later records, written already
                results[index] = self._strip(entity, [record])[0]
        return results

    def _insert_many(self, entity, rows):
        """Insert ``rows`` with executemany; their ids, in the order of ``rows``.

        PostgreSQL returns them in parameter order (SQLAlchemy's insertmanyvalues with a sentinel).
        SQLite cannot order RETURNING rows, and SQLAlchemy would then send one INSERT per row;
        instead the ids are given here as SQLite itself would give them (one more than the
        largest rowid, the table having no AUTOINCREMENT): the transaction holds the write lock."""
        table = entity.table
        if self.dialect != "sqlite":
            insert = table.insert().returning(table.c.id, sort_by_parameter_order=True)
            return list(self.session.execute(insert, rows).scalars())
        first = (self.session.execute(sa.select(sa.func.max(table.c.id))).scalar() or 0) + 1
        ids = list(range(first, first + len(rows)))
        for row, i in zip(rows, ids):
            row["id"] = i   # the rows are this batch's own (made by _new_rows)
        insert_rows(self.session, table, rows)
        return ids

    def match_many(self, name, fields, keys):
        """The records (as :meth:`list` shows them: read scope, hidden fields left out) whose
        ``fields`` equal one of ``keys`` (tuples of values in the order of ``fields``), as
        ``{key: [records]}``: the duplicate lookup of an import, one query per batch of rows
        instead of one per row. Values are parsed as list filters parse them."""
        entity = self.entity(name)
        if not self.access.allowed(name, "read"):
            raise Forbidden(f"you may not read {entity.label_in(self.locale)}")
        hidden = self.access.hidden_fields(name)
        types = []
        for field_name in fields:
            ftype = query.field_type(entity, field_name) if field_name not in hidden else None
            if ftype is None or ftype in ("links", "table", "multiselect", "json") or field_name not in entity.table.c:
                raise BadRequest(f"cannot match on {field_name!r}", {field_name: "not matchable"})
            types.append(ftype)
        parsed = {}
        for key in keys:
            parsed.setdefault(tuple(query.parse_value(t, v, f) for t, v, f in zip(types, key, fields)), []).append(key)
        found = {key: [] for key in keys}
        if not parsed:
            return found
        where = [self._visible(entity)] + [entity.table.c[f].in_({k[i] for k in parsed}) for i, f in enumerate(fields)]
        # sorted here, not by ORDER BY id: with the sort in SQL, SQLite scans the whole table in id
        # order instead of looking 500 names up in their index (a 100 000-row import got quadratic)
        rows = sorted(_dicts(self.session.execute(sa.select(entity.table).where(*where))), key=lambda r: r["id"])
        rows = [r for r in rows if tuple(r[f] for f in fields) in parsed]
        for record in self._strip(entity, self._complete(entity, rows, children=False)):
            for key in parsed[tuple(record[f] for f in fields)]:
                found[key].append(record)
        return found

    def update(self, name, record_id, values, version=None):
        """Change fields of a record. ``version``: the version the caller read; when it is not the
        stored one any more, Conflict (409) and nothing changes."""
        entity = self.entity(name)
        if not entity.singleton:
            return self._update(entity, record_id, values, version)
        try:
            return self._update(entity, record_id, values, version)
        finally:
            forget_transaction_cache(self.session)  # settings read again (also plugins'), whether the change stood or not

    def _update(self, entity, record_id, values, version):
        with self.session.begin_nested():
            old = self._get(entity, record_id)
            self._require(entity, old, "update")
            if self.user is not None and not may_edit(self, entity, old):
                raise Forbidden(f"{entity.label_in(self.locale)} #{old['id']} cannot be edited in its current state")
            if version is not None and int(version) != old["version"]:
                raise Conflict(f"{entity.label_in(self.locale)} #{old['id']} was changed by someone else "
                               f"(version {old['version']}, yours {version}); reload and apply your change again",
                               {"version": "stale"})
            changes, children, many = self._clean(entity, values, old)
            changes = {k: v for k, v in changes.items() if v != old.get(k)}
            self._hook("crm_before_update", entity=entity, old=old, changes=changes)
            now = self.now()
            stmt = entity.table.update().where(entity.table.c.id == old["id"], entity.table.c.version == old["version"]).values(
                **changes, version=old["version"] + 1, updated_at=now, updated_by=self.user_id)
            if self.session.execute(stmt).rowcount != 1:
                raise Conflict(f"{entity.name} #{old['id']} was changed meanwhile; reload and try again", {"version": "stale"})
            self._save_children(entity, old["id"], children)
            self._save_links(entity, old["id"], many)
            record = self._get(entity, old["id"], scoped=False)
            changed = {k for k in list(changes) + list(children) + list(many) if record.get(k) != old.get(k)}
            audit_log.updated(self, entity, old, record, changed)
            self._hook("crm_after_update", entity=entity, old=old, record=record, changes={k: record.get(k) for k in changed})
        return self._strip(entity, [record])[0]

    def _save_children(self, entity, parent_id, children):
        for name, rows in children.items():
            child = self.entity(entity.fields[name].entity)
            keep = [r["id"] for r in rows if "id" in r]
            delete = child.table.delete().where(child.table.c.parent_id == parent_id)
            if keep:
                delete = delete.where(child.table.c.id.not_in(keep))
            self.session.execute(delete)
            for position, row in enumerate(rows):
                values = {**row, "parent_id": parent_id, "sort_order": position}
                exists = "id" in row and self.session.execute(
                    sa.select(child.table.c.id).where(child.table.c.id == row["id"], child.table.c.parent_id == parent_id)).first()
                if exists:
                    self.session.execute(child.table.update().where(child.table.c.id == row["id"]).values(values))
                else:
                    values.pop("id", None)
                    self.session.execute(child.table.insert().values(values))

    def _save_links(self, entity, source_id, many):
        for name, targets in many.items():
            self.session.execute(links.delete().where(links.c.entity == entity.name, links.c.field == name, links.c.source_id == source_id))
            if targets:
                self.session.execute(links.insert(), [dict(entity=entity.name, field=name, source_id=source_id, target_id=t) for t in targets])

    def delete(self, name, record_id, reason=None):
        """Move a record to the recycle bin."""
        entity = self.entity(name)
        with self.session.begin_nested():
            record = self._get(entity, record_id)
            self._require(entity, record, "delete")
            self._hook("crm_before_delete", entity=entity, record=record)
            now = self.now()
            self.session.execute(entity.table.update().where(entity.table.c.id == record["id"]).values(
                deleted_at=now, deleted_by=self.user_id, version=record["version"] + 1))
            self.session.execute(trash.insert().values(entity=name, record_id=record["id"], title=self.title(entity, record),
                                                       deleted_at=now, deleted_by=self.user_id, reason=reason))
            audit_log.event(self, entity, record["id"], "delete", reason)
            self._hook("crm_after_delete", entity=entity, record=record)
        return self._strip(entity, [record])[0]

    def restore(self, name, record_id):
        entity = self.entity(name)
        with self.session.begin_nested():
            record = self._get(entity, record_id, deleted=True)
            if not self.access.allowed(name, "restore"):
                raise Forbidden(f"you may not restore {entity.label_in(self.locale)}")
            self._hook("crm_before_restore", entity=entity, record=record)
            self.session.execute(entity.table.update().where(entity.table.c.id == record["id"]).values(
                deleted_at=None, deleted_by=None, version=record["version"] + 1))
            self.session.execute(trash.delete().where(trash.c.entity == name, trash.c.record_id == record["id"]))
            record = self._get(entity, record["id"], scoped=False)
            audit_log.event(self, entity, record["id"], "restore")
            self._hook("crm_after_restore", entity=entity, record=record)
        return self._strip(entity, [record])[0]

    def trash(self, entity_name=None, limit=100):
        """The recycle bin: deleted records the user may restore (and may reach), newest first."""
        if not self.access.has("recycle_bin"):
            raise Forbidden("you may not see the recycle bin")
        names = [entity_name] if entity_name else [e.name for e in self.model.entities.values() if not e.is_child]
        reachable = []
        for name in names:
            entity = self.entity(name)
            if not self.access.allowed(name, "restore"):
                continue
            deleted_ids = sa.select(entity.table.c.id).where(self._visible(entity, deleted=True))
            reachable.append(sa.and_(trash.c.entity == name, trash.c.record_id.in_(deleted_ids)))
        if not reachable:
            return []
        stmt = sa.select(trash).where(sa.or_(*reachable)).order_by(trash.c.deleted_at.desc(), trash.c.id.desc()).limit(limit)
        return [dict(r) for r in self.session.execute(stmt).mappings()]

    def copy(self, name, record_id, overrides=None):
        """A new record with the same values (generated, unique and read-only fields made anew)."""
        entity = self.entity(name)
        source = self.get(name, record_id)  # what the user sees is what gets copied
        values = {}
        for field in entity.fields.values():
            if field.ftype.system_filled or field.unique or field.readonly or field.name not in source:
                continue
            value = source[field.name]
            if field.type == "table":
                child = self.entity(field.entity)
                value = [{k: to_json(child, k, v) for k, v in row.items() if k in child.fields and not child.fields[k].ftype.system_filled}
                         for row in value]
            else:
                value = to_json(entity, field.name, value)
            values[field.name] = value
        values.update(overrides or {})
        return self.create(name, values)

    def merge(self, name, survivor_id, duplicate_id, values=None):
        """Merge ``duplicate`` into ``survivor``: ``values`` (field → value) are the surviving
        values the user picked; every link, many-link, child row and attachment of the duplicate
        moves to the survivor; the duplicate goes to the recycle bin; history is kept."""
        entity = self.entity(name)
        if int(survivor_id) == int(duplicate_id):
            raise BadRequest("cannot merge a record with itself")
        with self.session.begin_nested():
            survivor = self._get(entity, survivor_id)
            duplicate = self._get(entity, duplicate_id)
            self._require(entity, survivor, "update")
            self._require(entity, duplicate, "delete")
            values = dict(values or {})
            self._hook("crm_before_merge", entity=entity, survivor=survivor, duplicate=duplicate, values=values)
            moved = self._repoint(entity, duplicate["id"], survivor["id"])
            if values:
                self.update(name, survivor["id"], values)
            self.delete(name, duplicate["id"], reason=f"merged into #{survivor['id']}")
            audit_log.event(self, entity, survivor["id"], "merge", f"merged #{duplicate['id']} ({moved} links moved)")
            survivor = self._get(entity, survivor["id"], scoped=False)
            self._hook("crm_after_merge", entity=entity, survivor=survivor, duplicate=duplicate)
        return self._strip(entity, [survivor])[0]

    def _repoint(self, entity, old_id, new_id):
        moved = 0
        for other, field in self.model.references_to(entity.name):
            if field.type == "link":
                moved += self.session.execute(other.table.update().where(other.table.c[field.name] == old_id)
                                              .values({field.name: new_id})).rowcount
            else:
                already = sa.select(links.c.source_id).where(links.c.entity == other.name, links.c.field == field.name,
                                                             links.c.target_id == new_id).scalar_subquery()
                base = [links.c.entity == other.name, links.c.field == field.name, links.c.target_id == old_id]
                self.session.execute(links.delete().where(*base, links.c.source_id.in_(already)))
                moved += self.session.execute(links.update().where(*base).values(target_id=new_id)).rowcount
        for child in self.model.children_of(entity.name):
            moved += self.session.execute(child.table.update().where(child.table.c.parent_id == old_id).values(parent_id=new_id)).rowcount
        own = [links.c.entity == entity.name, links.c.source_id == old_id]
        mine = sa.select(links.c.target_id).where(links.c.entity == entity.name, links.c.source_id == new_id)
        self.session.execute(links.delete().where(*own, links.c.target_id.in_(mine)))
        moved += self.session.execute(links.update().where(*own).values(source_id=new_id)).rowcount
        moved += self.session.execute(attachments.update().where(attachments.c.entity == entity.name, attachments.c.record_id == old_id)
                                      .values(record_id=new_id)).rowcount
        return moved

    def set_derived(self, name, record_id, values):
        """Write derived values (statistics kept up to date by hooks, e.g. 最近联系) straight into
        their columns: no version bump (nobody's edit form goes stale), no audit, no hooks."""
        entity = self.entity(name)
        self.session.execute(entity.table.update().where(entity.table.c.id == record_id).values(values))

    def add_links(self, name, record_id, field, target_ids):
        """Add targets to a many-links field without touching the record (e.g. auto-linked 关心产品)."""
        have = set(self.session.execute(sa.select(links.c.target_id).where(
            links.c.entity == name, links.c.field == field, links.c.source_id == record_id)).scalars())
        new = [t for t in dict.fromkeys(target_ids) if t not in have]
        if new:
            self.session.execute(links.insert(), [dict(entity=name, field=field, source_id=record_id, target_id=t) for t in new])
        return new

    def history(self, name, record_id):
        entity = self.entity(name)
        try:
            record = self._row(entity, record_id)
        except NotFound:
            record = self._row(entity, record_id, deleted=True)
        return audit_log.history(self, entity, record["id"], self.access.hidden_fields(name))

    def title(self, entity, record):
        field = entity.title_field
        value = record.get(field) if field else None
        return str(value) if value not in (None, "") else f"{entity.name} #{record['id']}"


def _columns(result):
    """The names of ``result``'s columns as plain ``str``: SQLAlchemy's are ``quoted_name``, a
    subclass orjson refuses as a key, so every API document of records took orjson's slow way for
    keys that are not strings after a failed first try (runtime.json_bytes). 6 µs for 160 names."""
    return [str(name) for name in result.keys()]


def _dicts(result):
    """The rows of ``result`` as dicts, fetched at once, not row by row (zipped with the column
    names: dict(RowMapping) costs several times more per row, which batches of 500 records notice)."""
    columns = _columns(result)
    return [dict(zip(columns, row)) for row in result.all()]


TRANSACTION_CACHE = "crm.transaction_cache"


def transaction_cache(session):
    """A dict for what is read once per transaction instead of once per record (the settings
    record, a plugin's rules); emptied when the transaction commits or rolls back (a savepoint
    too), so nobody reads another transaction's values."""
    return session.info.setdefault(TRANSACTION_CACHE, {})


@sa.event.listens_for(Session, "after_commit")
@sa.event.listens_for(Session, "after_rollback")
@sa.event.listens_for(Session, "after_soft_rollback")
def forget_transaction_cache(session, *args):
    session.info.pop(TRANSACTION_CACHE, None)


_RULED_FIELDS = weakref.WeakKeyDictionary()


def _ruled_fields(entity):
    """The fields :meth:`RecordService._check_rules` can find fault with (required, conditions,
    dictionaries, references, the tree's parent, unique), computed once per entity: a wide
    entity has many plain fields, and every record's validation skipped them one by one.
    [(field, only when changed)]: a field that is neither required, nor conditional, nor a
    many-link is checked only when the operation sets it (an import sets a dozen of 40)."""
    if entity not in _RULED_FIELDS:
        parent = entity.tree["parent_field"] if entity.tree else None
        _RULED_FIELDS[entity] = [
            (f, not (f.required or f.required_if is not None or f.readonly_if is not None or f.type == "links"))
            for f in entity.fields.values() if not f.ftype.system_filled and (
                f.required or f.required_if is not None or f.readonly_if is not None or f.unique or f.name == parent
                or f.type in DICTIONARY_TYPES or f.type in REFERENCE_TYPES or f.type == "links")]
    return _RULED_FIELDS[entity]


_MEMO_TYPES = {str, int, bool, type(None)}
_RULE_FIELDS = {}  # id → (expression, names of the fields it reads, or None: not to be remembered)


def _rule_fields(expr):
    """The fields a metadata expression reads (first path segments of its ``var`` s), or None when
    it reads the whole record (``{"var": ""}``)."""
    found = _RULE_FIELDS.get(id(expr))
    if found is None or found[0] is not expr:
        whole = []

        def visit(op, args, path):
            if op == "var" and args and args[0] == "":
                whole.append(path)
        try:
            expressions._walk(expr, "", visit)
            used = None if whole else tuple(sorted(expressions.fields_used(expr)))
        except RecursionError:
            used = None
        if len(_RULE_FIELDS) > 10_000:
            _RULE_FIELDS.clear()
        found = _RULE_FIELDS[id(expr)] = (expr, used)
    return found[1]


_CLEAN_PLANS = weakref.WeakKeyDictionary()
_IMMUTABLE = {str, int, float, bool, Decimal, dt.date, dt.datetime, dt.time, type(None)}


class _CleanPlan:
    """What :meth:`RecordService._clean` asks of an entity's fields, worked out once per entity
    (an import validates 100 000 records of the same entity): field name → (field, its type's
    ``to_python``, type, decimals setting of a money field), the system-filled and read-only
    fields, the defaults of new records, the generated fields in field order."""

    def __init__(self, entity):
        fields = entity.fields.values()
        self.system_filled = frozenset(f.name for f in fields if f.ftype.system_filled)
        self.readonly = frozenset(f.name for f in fields if f.readonly)
        self.convert = {f.name: (f, f.ftype.to_python, f.type, f.decimals_setting if f.type == "money" else None) for f in fields}
        self._defaults = [f for f in fields if f.default is not None and f.stored]
        self._default_values = {}   # name → converted default, when it is immutable (else made anew each time)
        self.generated = [f for f in fields if f.type in ("mnemonic", "computed")]

    def defaults(self, values):
        """(name, value) of the defaults a new record with ``values`` gets, in field order."""
        out = []
        for field in self._defaults:
            if field.name in values:
                continue
            value = self._default_values.get(field.name, _NO_DEFAULT)
            if value is _NO_DEFAULT:
                value = field.ftype.to_python(copy.deepcopy(field.default), field)
                if type(value) in _IMMUTABLE:
                    self._default_values[field.name] = value
            out.append((field.name, value))
        return out


_NO_DEFAULT = object()


def _clean_plan(entity):
    plan = _CLEAN_PLANS.get(entity)
    if plan is None:
        plan = _CLEAN_PLANS[entity] = _CleanPlan(entity)
    return plan


class _OneByOne(Exception):
    """create_many: this batch must be created record by record."""


class _StatementCounter:
    """Counts the SQL statements sent on one connection while the block runs, and those naming
    one of ``tables`` (create_many uses it to see whether a hook read the database)."""

    def __init__(self, connection, tables):
        self.connection, self.count, self.touching = connection, 0, 0
        self.names = re.compile(r"\b(?:%s)\b" % "|".join(re.escape(t) for t in tables))

    def _seen(self, connection, cursor, statement, *args, **kwargs):
        self.count += 1
        if self.names.search(statement):
            self.touching += 1

    def __enter__(self):
        sa.event.listen(self.connection, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *exc):
        sa.event.remove(self.connection, "before_cursor_execute", self._seen)


def to_json(entity, name, value):
    """One value as the API shows it."""
    if name in entity.fields:
        field = entity.fields[name]
        return value if field.type == "table" else field.ftype.to_json(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def record_to_json(model, entity, record, iso_dates=True):
    """A record as JSON values. ``iso_dates=False`` leaves dates and datetimes as they are, for a
    writer that writes them as ISO text itself (the API's orjson renderer): the same document,
    without a Python call per date (three a record at least, the system dates)."""
    numbers, convert, hidden, tables, known = _json_plan(entity, iso_dates)
    out = dict(record)  # a copy at C speed, in the record's order; most values are written as they are
    for name in hidden:  # a few names: faster than a set intersection with the record's 150 keys
        out.pop(name, None)
    for name in numbers:  # Number.to_json written out: a call per value was most of this loop
        value = out.get(name)
        if value is not None:
            value = float(value)
            out[name] = int(value) if value.is_integer() and -JSON_SAFE_INTEGER < value < JSON_SAFE_INTEGER else value
    for name, how in convert:
        value = out.get(name)
        if value is not None:
            out[name] = how(value)
    if iso_dates:
        for name in out.keys() - known:  # system columns (created_at ...): dates as ISO text
            value = out[name]
            if isinstance(value, (dt.date, dt.datetime)):
                out[name] = value.isoformat()
    for name in tables:  # in field order (a set's order changed from one process to the next)
        if name in record:
            child = model.entities[entity.fields[name].entity]
            out[name] = [record_to_json(model, child, row, iso_dates) for row in record[name]]
    return out


def _json_plan(entity, iso_dates=True):
    """How :func:`record_to_json` writes an entity's values, worked out once per entity (looking
    each field up again for every value was most of the time an API page of wide records took):
    the names of the decimal fields (:meth:`Number.to_json`, written out in the loop), [(field
    name, the type's ``to_json``)] for the other fields whose type converts, the hidden fields,
    the child tables, and every field name (the other names are system columns)."""
    key = "_json_plan" if iso_dates else "_json_plan_native_dates"
    plan = entity.__dict__.get(key)
    if plan is None:
        numbers, convert, hidden, tables = [], [], set(), []
        for name, field in entity.fields.items():
            how = type(field.ftype).to_json
            if field.type == "table":
                tables.append(name)
                hidden.add(name)  # written after the others, row by row
            elif field.hidden:
                hidden.add(name)
            elif how is Number.to_json:
                numbers.append(name)
            elif how is not FieldType.to_json and (iso_dates or how is not Date.to_json):
                convert.append((name, field.ftype.to_json))
        plan = entity.__dict__[key] = (tuple(numbers), tuple(convert), tuple(hidden), tuple(tables),
                                       frozenset(entity.fields))
    return plan


def _completion_plan(model, entity):
    """What :meth:`RecordService._complete` adds to an entity's records, with its statements, built
    once per entity (as :func:`_json_plan`; the metadata is rebuilt, with new entities, on reload):
    [(field name, child entity name or None for many-links, select for a list ``:ids`` (one parameter), the
    same for one ``:id``, ``EXISTS`` of such rows for the entity's row in a select of its table)]."""
    plan = entity.__dict__.get("_completion_plan")
    if plan is None:
        plan = []
        own_id = entity.table.c.id
        for field in entity.fields.values():
            if field.type == "links":
                where = (links.c.entity == entity.name, links.c.field == field.name)
                stmt = sa.select(links.c.source_id, links.c.target_id).where(*where).order_by(links.c.target_id)
                plan.append((field.name, None, stmt.where(in_ids(links.c.source_id)),
                             stmt.where(links.c.source_id == sa.bindparam("id")),
                             sa.exists().where(*where, links.c.source_id == own_id)))
            elif field.type == "table":
                child = model.entities[field.entity].table
                stmt = sa.select(child).order_by(child.c.sort_order, child.c.id)
                plan.append((field.name, field.entity, stmt.where(in_ids(child.c.parent_id)),
                             stmt.where(child.c.parent_id == sa.bindparam("id")),
                             sa.exists().where(child.c.parent_id == own_id)))
        plan = entity.__dict__["_completion_plan"] = plan
    return plan


def _row_statement(entity, deleted, model=None):
    """``select(entity) where id = :record_id`` and, for top-level entities, in or out of the
    recycle bin: built once per entity (access scopes are added per user by the caller). Given
    the ``model``, with the probes of :func:`_completion_plan` as columns (:func:`_probe_label`)."""
    key = ("_row_statement_deleted" if deleted else "_row_statement") + ("_probed" if model else "")
    stmt = entity.__dict__.get(key)
    if stmt is None:
        table = entity.table
        probes = _probes(model, entity) if model else []
        stmt = sa.select(table, *probes).where(table.c.id == sa.bindparam("record_id"))
        if not entity.is_child:
            stmt = stmt.where(_bin_state(entity, deleted))
        entity.__dict__[key] = stmt
    return stmt


def _probe_label(name):
    """The column of a probed row saying whether the many-link or child table ``name`` has rows
    for it (a leading underscore: no field name starts with one)."""
    return "_has_" + name


def _probes(model, entity, links_only=False):
    """The ``EXISTS`` probes of :func:`_completion_plan` as columns labelled :func:`_probe_label`:
    of every many-links field and child table, or of the many-links alone (lists read no child rows)."""
    return [probe.label(_probe_label(name)) for name, child, *_, probe in _completion_plan(model, entity)
            if child is None or not links_only]


def _present(rows, names):
    """Those of ``names`` (probed many-links and child tables) that hold rows for at least one of
    ``rows``, taking the probes off every row."""
    present = set()
    for name in names:
        label = _probe_label(name)
        if any([row.pop(label) for row in rows]):  # a list, not a generator: off every row
            present.add(name)
    return present


KEPT_PAGES = 64  # plain list statements kept per entity


def _page_statement(model, entity, visible, conditions, keys, size, cursor, postgres, reusable, json_numbers=False):
    """(the select of a list page, the select of the rows after those or None (:func:`_select_page`),
    the parameters of the first). ``reusable``: ``visible`` is the recycle-bin state alone (no
    scope). A list without conditions is then the same statement for every call but the cursor's
    values: it is kept per entity, order, size and which cursor values are NULL, with those values
    as parameters. Building it and its cache key cost 64 µs of a 1.3 ms API page on SQLite.
    ``json_numbers``: see :func:`_all_columns`."""
    after = cursor is not None
    base = _all_columns(model, entity, json_numbers)
    if not reusable or conditions:
        return (*_select_page(entity, base, [visible, *conditions], keys, size, cursor, postgres), None)
    params = {f"cursor_{i}": value for i, value in enumerate(cursor) if value is not None} if after else None
    kept = entity.__dict__.setdefault("_kept_pages", {})
    key = (visible is entity.__dict__.get("_in_bin"), tuple(keys), size, after and tuple(v is None for v in cursor),
           json_numbers)
    statements = kept.get(key)
    if statements is None:
        if len(kept) >= KEPT_PAGES:
            kept.clear()
        statements = kept[key] = _select_page(entity, base, [visible], keys, size, cursor, postgres, named="cursor")
    return (*statements, params)


def _select_page(entity, base, where, keys, size, cursor, postgres, named=None):
    """(``base`` (:func:`_all_columns`) for ``size`` rows in the order ``keys`` after ``cursor``,
    if there is one; the select of the rows that follow those, or None). Where rows without a
    first key follow the cursor (:func:`crm.core.query.nulls_follow`), the first select bounds
    the cursor's value and reads from where the sort's index has it, and the second reads the rows
    without a value, which come after all of those, in the same order: only when the first fell
    short (a newest-first list's page 201 on SQLite: 3.7 → 1.8 ms; one statement, a UNION ALL of
    both, 2.9)."""
    order = query.order_by(entity, keys)
    if cursor is None:
        return base.where(*where).order_by(*order).limit(size), None
    nulls = query.nulls_follow(entity, keys, cursor, postgres)
    after = query.after_cursor(entity, keys, cursor, postgres, named=named, nulls_apart=nulls is not None)
    page = base.where(*where, after).order_by(*order).limit(size)
    return page, None if nulls is None else base.where(*where, nulls.is_(None)).order_by(*order).limit(size)


class JsonNumber(sa.types.TypeDecorator):
    """A decimal column read as the driver gives it, without SQLAlchemy's conversion to Decimal:
    an int or a float on SQLite (whose NUMERIC affinity keeps a whole number as an integer and
    the others as REAL, which is all it stores), a Decimal on PostgreSQL. :func:`record_to_json`
    writes each as the same JSON number. On SQLite the conversion to Decimal and back was a
    quarter of the time an API page of customers (20 decimal columns) took to be read."""
    impl = sa.Numeric
    cache_ok = True

    def result_processor(self, dialect, coltype):
        return None


def _all_columns(model, entity, json_numbers=False):
    """A select of the entity's columns and the probes of its many-links (:func:`_linked`), built
    once, for list pages to add their where, order and limit to; ``json_numbers``: the columns of
    decimal fields read as :class:`JsonNumber`. Coercing the 150 labelled columns of a customer
    anew for each filtered page cost 0.2 ms of its 2."""
    key = "_json_columns" if json_numbers else "_all_columns"
    columns = entity.__dict__.get(key)
    if columns is None:
        numbers = set(_json_plan(entity)[0]) if json_numbers else ()  # those record_to_json writes as Number.to_json
        probes = _probes(model, entity, links_only=True)
        columns = entity.__dict__[key] = sa.select(*(
            sa.type_coerce(column, JsonNumber()).label(column.name) if column.name in numbers else column
            for column in entity.table.c), *probes) if numbers else sa.select(entity.table, *probes)
    return columns


def _linked(model, entity, rows):
    """The many-links fields some of a page's rows have links in, taking the probes that say so
    (:func:`_all_columns`) off every row; None for rows read without probes (narrow lists). A
    page whose rows have no links reads none: on PostgreSQL that statement was 0.5 ms of a 5 ms
    API page, a probe per row costs an index lookup inside the page's own statement."""
    names = [name for name, child, *_ in _completion_plan(model, entity) if child is None]
    if not names or not rows or _probe_label(names[0]) not in rows[0]:
        return None
    return _present(rows, names)


def _bin_state(entity, deleted):
    """``deleted_at IS [NOT] NULL`` of a top-level entity, built once per entity."""
    key = "_in_bin" if deleted else "_not_in_bin"
    clause = entity.__dict__.get(key)
    if clause is None:
        column = entity.table.c.deleted_at
        clause = entity.__dict__[key] = column.is_not(None) if deleted else column.is_(None)
    return clause
