"""The runtime of one instance: settings, database engine, plugins and effective metadata.

Built once per process (``Runtime.from_ini`` or ``Runtime(settings)``) and shared by the web
app, the CLI, jobs and tests. Everything per request or per command (a session, a user) is
passed to the :class:`~crm.core.records.RecordService` instead of living here.
"""
import datetime as dt
import os
import time
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import fastjsonschema
import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import sessionmaker

from crm.core import access, registry, schema
from crm.core.plugins import PluginHost, parse_plugin_setting
from crm.core.records import RecordService
from crm.core.tables import customizations

DATABASE_ENV = "CRM_DATABASE_URL"


POOL_SIZE = 10  # connections kept open per process: waitress' 8 threads (crm.ini) and a job or two
SQLITE_MMAP_MB = 1024  # how much of a SQLite database file is read through memory mapping
PING_AFTER_IDLE_SECONDS = 5.0  # a pooled PostgreSQL connection idle this long is checked before use


def json_bytes(value, default=None):
    """``value`` as JSON by orjson. Keys that are not strings (a number, a date) are written as
    strings, like the standard library does; orjson's option for them halves its speed even
    where there is none (64 against 29 µs for an API page of 50 records), so it is asked for
    only when a first try meets one."""
    try:
        return orjson.dumps(value, default=default)
    except orjson.JSONEncodeError:
        return orjson.dumps(value, default=default, option=orjson.OPT_NON_STR_KEYS)


def json_text(value):
    """JSON columns (history values, labels, documents) written by orjson: the standard library's
    encoder was 5 % of an import (three history values a record)."""
    return json_bytes(value).decode()


def make_engine(url, pool_size=POOL_SIZE, sqlite_mmap_mb=SQLITE_MMAP_MB):
    """The engine of an instance. The pool keeps ``pool_size`` connections: with fewer than the
    server's threads, every request beyond them opened and closed a connection of its own
    (SQLAlchemy's default of 5 under waitress' 8 threads).

    SQLite reads the first ``sqlite_mmap_mb`` MB of its file through a memory map instead of
    copying every page it reads out of the operating system's cache with ``read()`` into its own
    small cache (2 MB): a search that reads the whole customer table takes a third less time. The
    pages stay in the operating system's cache, shared by every connection and process; writes
    still go through ``write()``. 0 turns it off."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30}, pool_size=pool_size, json_serializer=json_text)

        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection, _record):
            dbapi_connection.isolation_level = None  # let SQLAlchemy emit BEGIN: savepoints then work
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute(f"PRAGMA mmap_size={int(sqlite_mmap_mb) * 1024 * 1024}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(connection):
            # a writing transaction takes the write lock at once: taking it later fails at once
            # (SQLITE_BUSY_SNAPSHOT) whenever another writer committed in between
            connection.exec_driver_sql("BEGIN IMMEDIATE" if connection.get_execution_options().get("crm_write") else "BEGIN")
        return engine
    connect_args = {}
    if sa.engine.make_url(url).get_driver_name() == "psycopg":
        from crm.core.pg_cursor import LazyDescriptionCursor
        connect_args["cursor_factory"] = LazyDescriptionCursor
    engine = sa.create_engine(url, pool_size=pool_size, json_serializer=json_text, connect_args=connect_args)
    ping_when_idle(engine, PING_AFTER_IDLE_SECONDS)
    return engine


def ping_when_idle(engine, seconds):
    """Check a pooled connection that sat idle more than ``seconds`` before handing it out, as
    SQLAlchemy's ``pool_pre_ping`` checks every one: a connection the server, a firewall or a
    pooler closed while it waited is replaced, and with it every connection pooled before
    (SQLAlchemy's ``InvalidatePoolError``: after a restart they are all gone). A connection in
    use a moment ago is handed out as it is: the ping was a round trip to the server on every
    request, 0.05–0.12 ms here (2–5 % of an API request on PostgreSQL). Should the server go away
    within those seconds, the first statement on such a connection fails (that one request gets
    an error) and SQLAlchemy then replaces every pooled connection, as above."""
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi_connection, record):
        record.info["crm_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection, record, _proxy):
        idle_since = record.info.get("crm_idle_since")  # none on a new connection: just made
        if idle_since is None or time.monotonic() - idle_since <= seconds:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if dialect.is_disconnect(error, dbapi_connection, None):
                raise sa.exc.InvalidatePoolError(str(error)) from error
            raise


class Runtime:
    def __init__(self, settings, extra_plugins=(), clock=None):
        """``settings``: the ``[app:main]`` settings of crm.ini (``sqlalchemy.url``, ``crm.plugins``,
        ``crm.instance_dir`` ...); ``extra_plugins``: (name, object) pairs registered besides the
        installed plugins; ``clock``: a function returning now (tests make time stand still)."""
        self.settings = dict(settings)
        self.instance_dir = Path(self.settings.get("crm.instance_dir") or ".").resolve()
        self.database_url = os.environ.get(DATABASE_ENV) or self.settings.get("sqlalchemy.url") \
            or f"sqlite:///{self.instance_dir / 'crm.sqlite'}"
        self.clock = clock or (lambda: dt.datetime.now().replace(microsecond=0))
        self.plugins = PluginHost(enabled=parse_plugin_setting(self.settings.get("crm.plugins")),
                                  disabled=(self.settings.get("crm.plugins.disabled") or "").replace(",", " ").split(),
                                  extra=extra_plugins)
        self.engine = make_engine(self.database_url, int(self.settings.get("crm.database.pool_size") or POOL_SIZE),
                                  int(self.settings.get("crm.database.sqlite_mmap_mb") or SQLITE_MMAP_MB))
        self.sessionmaker = sessionmaker(bind=self.engine)
        self._schemas = {}
        self.reload()

    # --- metadata --------------------------------------------------------------------------

    def layers(self):
        core_dir = resources.files("crm.metadata")
        layers = [(registry.CORE, [Path(str(core_dir))])]
        for name, items in self.plugins.call_each("crm_metadata"):
            layers.append((name, list(items)))
        custom_dir = self.instance_dir / "custom"
        custom = [custom_dir] if custom_dir.is_dir() else []
        custom += self.stored_customizations()
        layers.append((registry.CUSTOM, custom))
        return layers

    def stored_customizations(self):
        """Customizations saved from the web designer (table crm_customizations), if it exists yet."""
        with self.engine.connect() as connection:
            if not sa.inspect(connection).has_table(customizations.name):
                return []
            rows = connection.execute(sa.select(customizations.c.name, customizations.c.document).order_by(customizations.c.id))
            return [{"__source__": f"customization {row.name}", **row.document} for row in rows]

    def reload(self):
        """Rebuild the effective metadata and tables (after a customization was saved)."""
        self.metadata = registry.build(self.layers())
        self.tables = schema.build_tables(self.metadata)
        self._schemas = {}

    def input_schema(self, entity):
        """The JSON Schema record input is validated with (also published in OpenAPI)."""
        if entity.name not in self._schemas:
            self._schemas[entity.name] = entity_json_schema(entity)
        return self._schemas[entity.name]

    def input_validator(self, entity):
        key = ("validator", entity.name)
        if key not in self._schemas:
            import jsonschema
            self._schemas[key] = jsonschema.Draft202012Validator(self.input_schema(entity))
        return self._schemas[key]

    def input_valid(self, entity, values):
        """True when ``values`` certainly pass :meth:`input_validator`: the same schema compiled to
        Python by fastjsonschema (10–50× faster, which an import of 100 000 rows notices). False
        means "ask the validator", which has the authoritative answer and the messages; the
        compiled check is stricter in places (e.g. it knows no 2020-12 specifics), never looser."""
        key = ("compiled", entity.name)
        if key not in self._schemas:
            self._schemas[key] = fastjsonschema.compile(_without_formats(self.input_schema(entity)))
        try:
            self._schemas[key](values)
        except fastjsonschema.JsonSchemaException:
            return False
        return True

    # --- database ----------------------------------------------------------------------------

    def plugin_migrations(self):
        """Migration branches of every *installed* plugin, enabled or not: a disabled plugin's
        revisions stay in the version table and alembic must still find them."""
        locations = []
        for info in self.plugins.installed.values():
            hook = getattr(info.module, "crm_migrations", None)
            location = hook() if callable(hook) else None
            if location:
                locations.append(str(location))
        return locations

    def upgrade(self):
        """``crm db upgrade``: core and plugin migrations, then schema sync, then dictionary and role seeds."""
        with self.engine.begin() as connection:
            schema.upgrade_core(connection, self.plugin_migrations())
        self.reload()
        with self.engine.begin() as connection:
            sync_plan = schema.plan(connection, self.tables)
            schema.apply(connection, sync_plan)
            seeded = schema.seed_dictionaries(connection, self.metadata)
            new_roles, additions = access.plugin_roles(self)
            access.seed_roles(connection, new_roles, additions, now=self.clock())
        return sync_plan, seeded

    def diff(self):
        """``crm db diff``: the sync plan and its SQL; changes nothing."""
        with self.engine.connect() as connection:
            sync_plan = schema.plan(connection, self.tables)
            return sync_plan, schema.render_sql(connection, sync_plan)

    def session(self, write=True, before_begin=None, maker=None):
        """A new session; ``write=False`` for read-only work (no write lock on SQLite).
        ``before_begin(session)`` runs before the transaction starts (zope.sqlalchemy joins there);
        ``maker``: the session factory, when not :attr:`sessionmaker` (the web app's request sessions)."""
        session = (maker or self.sessionmaker)()
        if before_begin:
            before_begin(session)
        if write:
            session.connection(execution_options={"crm_write": True})
        return session

    @contextmanager
    def transaction(self, user=None, locale="zh_CN", write=True):
        """A record service in one transaction: committed when the block ends, rolled back on error."""
        session = self.session(write)
        try:
            yield RecordService(self, session, user=user, locale=locale)
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def records(self, session, user=None, locale="zh_CN"):
        return RecordService(self, session, user=user, locale=locale)

    def dispose(self):
        self.engine.dispose()


def _without_formats(schema):
    """``format`` is an annotation for the 2020-12 validator (no format checker is given), but
    fastjsonschema asserts it: leave it out so that both judge by the same keywords."""
    if isinstance(schema, dict):
        return {k: _without_formats(v) for k, v in schema.items() if not (k == "format" and isinstance(v, str))}
    if isinstance(schema, list):
        return [_without_formats(v) for v in schema]
    return schema


def entity_json_schema(entity):
    return {
        "type": "object",
        "properties": {f.name: f.ftype.json_schema(f) for f in entity.fields.values()},
    }
