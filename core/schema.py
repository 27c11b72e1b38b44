"""Schema sync: database tables from the effective metadata, changed only additively.

Core tables move through versioned alembic migrations (``upgrade_core``). Entity tables are
built from metadata (``build_tables``), compared with the database by alembic's
``compare_metadata`` and brought up to date by ``sync``: tables, columns and indexes are
created and columns widened; nothing is ever dropped, narrowed or renamed, but an index the core
made itself that a wider one supersedes (see ``_successor``); what sync will not do is reported
as skipped.
"""
import hashlib
import io
from dataclasses import dataclass, field as dc_field
from importlib import resources

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.operations import Operations, ops

from crm.core import dictionaries
from crm.core.access import owner_field
from crm.core.fieldtypes import ID_TYPE
from crm.core.tables import dictionary_items

VERSION_TABLE = "crm_alembic_version"


# --- tables from metadata ------------------------------------------------------------------

def index_name(prefix, table, columns):
    name = f"{prefix}_{table}_{'_'.join(columns)}"
    if len(name) > 60:  # PostgreSQL cuts names at 63 bytes; keep them unique and stable
        name = name[:51] + "_" + hashlib.sha1(name.encode()).hexdigest()[:8]
    return name


def build_tables(model, metadata=None):
    """A SQLAlchemy ``MetaData`` with one ``Table`` per entity; sets ``entity.table``."""
    metadata = metadata or sa.MetaData()
    for entity in model.entities.values():
        columns = [sa.Column("id", ID_TYPE, primary_key=True, autoincrement=True)]
        if entity.is_child:
            columns += [sa.Column("parent_id", ID_TYPE, nullable=False),
                        sa.Column("sort_order", sa.Integer, nullable=False, server_default="0")]
        else:
            columns += [sa.Column("version", sa.Integer, nullable=False, server_default="1"),
                        sa.Column("created_at", sa.DateTime), sa.Column("created_by", ID_TYPE),
                        sa.Column("updated_at", sa.DateTime), sa.Column("updated_by", ID_TYPE),
                        sa.Column("deleted_at", sa.DateTime), sa.Column("deleted_by", ID_TYPE)]
        columns += [sa.Column(f.name, f.ftype.column_type(f), nullable=True) for f in entity.stored_fields]
        table = sa.Table(entity.name, metadata, *columns)
        for cols, unique, name in wanted_indexes(entity):
            name = name or index_name("ux" if unique else "ix", entity.name, cols)
            sa.Index(name, *[table.c[c] for c in cols], unique=unique)
        entity.table = table
    return metadata


def wanted_indexes(entity):
    """(columns, unique, name or None) for every index the entity needs, without repeats.

    Besides the declared ones: unique fields and autonumbers, link/user/department/mnemonic fields
    (related lists, scopes, merges, pinyin search; a link with the default sort's columns after
    it), the default sort (the first list page), the owner with the default sort (scoped lists,
    :mod:`crm.core.narrow_lists`), and (updated_by, updated_at) (the home page lists each
    entity's records the user changed last).

    On an entity with a recycle bin every index that is neither unique nor named by its
    declaration ends with ``id`` and ``deleted_at``: every read of live records says
    ``deleted_at IS NULL``, and with both in the index a count of a filter's matches (the list
    page's "10000+") is read from the index alone, where a plain ``(level)`` index made the
    database fetch each of the 10 001 rows to look at its ``deleted_at`` (13 ms → 0.8 ms on
    SQLite, 100 000 customers). ``id`` comes first: the index keeps the order of its columns and
    then the id, which keyset pages sort by (with ``deleted_at`` right after the column, SQLite
    sorted such pages in a temporary b-tree)."""
    derived = []  # (columns, unique)
    sort = () if entity.is_child else tuple(part.lstrip("-") for part in entity.default_sort.split(","))
    owner = None if entity.is_child else owner_field(entity)
    owner = None if owner == "created_by" else owner  # no owner of its own: scopes by creator are rare
    if entity.is_child:
        derived.append((("parent_id", "sort_order"), False))
    for f in entity.stored_fields:
        if f.unique or f.type == "autonumber":
            derived.append(((f.name,), True))
        elif f.type == "link" and sort not in ((), ("id",)) and f.name not in sort:
            # a related list: records linking to one record, in the default order. With the sort
            # columns in the index no database walks the sort index instead (SQLite does, for a
            # link that is mostly empty: its statistics count all the NULLs as one value)
            derived.append(((f.name, *sort), False))
        elif f.name == owner:
            continue  # the owner's index comes below, with the default sort after it
        elif f.index or f.type in ("link", "user", "department", "mnemonic"):
            derived.append(((f.name,), False))
    if not entity.is_child:
        if sort != ("id",):
            derived.append((sort, False))
        if owner:
            # a narrow scope's list reads a page of ids per owner from this index alone
            # (crm.core.narrow_lists); it also serves "my records" (scope own) and the owner's related lists
            derived.append(((owner, *sort), False))
        derived.append((("updated_by", "updated_at"), False))  # the home page's "my recent records"
    wanted = [(cols, unique, None) for cols, unique in derived]
    wanted += [(tuple(index["fields"]), bool(index.get("unique")), index.get("name")) for index in entity.spec.get("indexes", [])]
    if not entity.is_child:
        wanted = [(cols if unique or name else live_rows_index(cols), unique, name) for cols, unique, name in wanted]
    seen, out = set(), []
    for cols, unique, name in wanted:
        if cols not in seen:
            seen.add(cols)
            out.append((cols, unique, name))
    return out


def live_rows_index(columns):
    """An index's columns followed by ``id`` and ``deleted_at`` (see :func:`wanted_indexes`)."""
    return tuple(dict.fromkeys((*columns, "id", "deleted_at")))


# --- core migrations -----------------------------------------------------------------------

def alembic_config(connection, plugin_locations=()):
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("crm.core").joinpath("migrations")))
    locations = [str(resources.files("crm.core").joinpath("migrations/versions"))] + list(plugin_locations)
    cfg.set_main_option("version_locations", " ".join(locations))
    cfg.set_main_option("path_separator", "space")
    cfg.attributes["connection"] = connection
    return cfg


def upgrade_core(connection, plugin_locations=()):
    """Apply the core's (and plugins') versioned migrations up to their heads."""
    command.upgrade(alembic_config(connection, plugin_locations), "heads")


def core_revision(connection):
    return MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}).get_current_heads()


# --- entity sync ---------------------------------------------------------------------------

@dataclass
class SyncPlan:
    operations: list = dc_field(default_factory=list)   # alembic ops to apply
    summary: list = dc_field(default_factory=list)      # one line per op, for people
    skipped: list = dc_field(default_factory=list)      # what additive sync will not do

    @property
    def empty(self):
        return not self.operations


def _widens(old, new, dialect):
    """True when ``new`` holds every value ``old`` does."""
    if isinstance(old, sa.String) and isinstance(new, sa.Text):
        return True
    if isinstance(old, sa.String) and isinstance(new, sa.String) and not isinstance(old, sa.Text):
        return (new.length or 10**9) >= (old.length or 10**9)
    if isinstance(old, sa.Integer) and isinstance(new, sa.Integer):
        rank = {sa.SmallInteger: 0, sa.Integer: 1, sa.BigInteger: 2}
        return rank.get(type(new), 1) >= rank.get(type(old), 1)
    if isinstance(old, sa.Numeric) and isinstance(new, sa.Numeric):
        return (new.scale or 0) >= (old.scale or 0) and \
            (new.precision or 0) - (new.scale or 0) >= (old.precision or 0) - (old.scale or 0)
    return False


def plan(connection, metadata):
    """What ``sync`` would do, computed with alembic's ``compare_metadata``; changes nothing."""
    names = set(metadata.tables)

    def include(obj, name, type_, reflected, compare_to):
        if type_ == "table":
            return name in names
        return True

    context = MigrationContext.configure(connection, opts={"compare_type": True, "include_object": include})
    result = SyncPlan()
    dialect = connection.dialect.name
    drops = []
    for diff in compare_metadata(context, metadata):
        changes = diff if isinstance(diff, list) else [diff]
        for change in changes:
            kind = change[0]
            if kind == "add_table":
                table = change[1]
                result.operations.append(ops.CreateTableOp.from_table(table))
                result.summary.append(f"create table {table.name}")  # its indexes follow as add_index
            elif kind == "add_column":
                _, schema, tname, column = change
                result.operations.append(ops.AddColumnOp.from_column_and_tablename(schema, tname, sa.Column(column.name, column.type, nullable=True)))
                result.summary.append(f"add column {tname}.{column.name} {column.type.compile(connection.dialect)}")
            elif kind == "add_index":
                index = change[1]
                result.operations.append(ops.CreateIndexOp.from_index(index))
                result.summary.append(f"create index {index.name} on {index.table.name}")
            elif kind == "modify_type":
                _, schema, tname, cname, info, old, new = change
                if not _widens(old, new, dialect):
                    result.skipped.append(f"{tname}.{cname}: {old} → {new} would narrow or convert the column")
                elif dialect == "sqlite":
                    pass  # SQLite does not enforce declared lengths or precision: nothing to widen
                else:
                    result.operations.append(ops.AlterColumnOp(tname, cname, schema=schema, modify_type=new, existing_type=old,
                                                               existing_nullable=info.get("existing_nullable")))
                    result.summary.append(f"widen column {tname}.{cname}: {old} → {new}")
            elif kind in ("remove_column",):
                result.skipped.append(f"{change[2]}.{change[3].name}: no longer in metadata; column and data kept")
            elif kind == "remove_index":
                index = change[1]
                successor = _successor(metadata, index)
                if successor is None:
                    result.skipped.append(f"index {index.name}: no longer in metadata; kept")
                else:  # after the successor is made, so that reads keep an index meanwhile
                    drops.append((ops.DropIndexOp.from_index(index), f"drop index {index.name} on {index.table.name} (superseded by {successor})"))
            elif kind == "modify_nullable":
                pass  # every field column is nullable; required is checked by the record service
            else:
                result.skipped.append(f"{kind}: not applied by additive sync")
    for op, line in drops:
        result.operations.append(op)
        result.summary.append(line)
    return result


def _successor(metadata, index):
    """The name of the wanted index that serves every query ``index`` did, when ``index`` is one
    the core made itself (non-unique, named by :func:`index_name` for its columns) and the
    wanted one starts with the same columns — e.g. ``ix_customer_level`` superseded by
    ``ix_customer_level_id_deleted_at``. Dropping it loses no data and saves its upkeep on
    every write; an index made by hand, or one nothing supersedes, is kept."""
    columns = [c.name for c in index.columns]
    if index.unique or not columns or index.name != index_name("ix", index.table.name, columns):
        return None
    table = metadata.tables.get(index.table.name)
    for wanted in sorted(table.indexes if table is not None else (), key=lambda i: i.name):
        names = [c.name for c in wanted.columns]
        if len(names) > len(columns) and names[:len(columns)] == columns:
            return wanted.name
    return None


def apply(connection, sync_plan):
    operations = Operations(MigrationContext.configure(connection))
    for op in sync_plan.operations:
        operations.invoke(op)
    _analyze_new_indexes(connection, sync_plan)


def _analyze_new_indexes(connection, sync_plan):
    """On SQLite, statistics for the indexes sync made on tables that have statistics already.
    SQLite's planner weighs an index by its row in ``sqlite_stat1``; one without a row beside
    others with theirs is guessed at, and the guess made it choose the new ``(level, id,
    deleted_at)`` index over ``name``'s for a page filtered by level and sorted by name: 35 ms
    instead of 4 for 100 000 customers. PostgreSQL keeps its statistics per column, which
    serve a new index at once."""
    if connection.dialect.name != "sqlite":
        return
    tables = sorted({op.table_name for op in sync_plan.operations if isinstance(op, ops.CreateIndexOp)})
    if not tables or not connection.exec_driver_sql(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'").first():
        return
    analyzed = {name for (name,) in connection.exec_driver_sql("SELECT DISTINCT tbl FROM sqlite_stat1")}
    for table in tables:
        if table in analyzed:
            connection.exec_driver_sql(f'ANALYZE "{table}"')


def render_sql(connection, sync_plan):
    """The DDL the plan would run, as SQL text for the connection's dialect (nothing is run)."""
    buffer = io.StringIO()
    context = MigrationContext.configure(dialect_name=connection.dialect.name,
                                         opts={"as_sql": True, "output_buffer": buffer})
    operations = Operations(context)
    for op in sync_plan.operations:
        operations.invoke(op)
    return buffer.getvalue()


def seed_dictionaries(connection, model):
    """Insert dictionary items the metadata declares and the database lacks; edits are kept."""
    existing = {(d, v) for d, v in connection.execute(sa.select(dictionary_items.c.dictionary, dictionary_items.c.value))}
    rows = [dict(dictionary=d.name, value=value, label=label if isinstance(label, dict) else {"zh_CN": label},
                 parent_value=parent, position=pos, active=True, owner=d.owner)
            for d in model.dictionaries.values() for value, label, parent, pos in d.flat_items()
            if (d.name, value) not in existing]
    if rows:
        connection.execute(dictionary_items.insert(), rows)
        dictionaries.changed(connection)
    return len(rows)
