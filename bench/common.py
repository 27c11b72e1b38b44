"""What the benchmarks share: the database they run on, realistic Chinese company names, timing
statistics and the printed table (CJK-aware), the machine and load-average lines."""
import contextlib
import datetime as dt
import math
import os
import platform
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from crm.core import instance
from crm.core.runtime import Runtime
from crm.core.tables import dictionary_items

TRADES = ["科技", "信息技术", "软件", "网络科技", "电子", "贸易", "医药", "生物科技", "建材", "物流", "食品", "机械",
          "化工", "文化传媒", "教育咨询", "环保科技", "新能源", "汽车配件", "服装", "家居", "餐饮管理", "建筑工程"]
SUFFIXES = ["有限公司", "有限公司", "有限公司", "股份有限公司", "集团有限公司", "有限责任公司"]
AGENT_CATEGORIES = {"potential_agent", "existing_agent"}


class BenchError(Exception):
    """A one-line reason; the benchmark stops with exit code 1."""


# --- the database ------------------------------------------------------------------------------

class Database:
    """SQLite in the instance folder, or a PostgreSQL database the benchmark creates (and drops
    when it is done with it). ``url`` None means SQLite."""

    def __init__(self, url, folder):
        self.created = False
        if not url:
            self.url = f"sqlite:///{folder / 'crm.sqlite'}"
            self.admin_url = None
            return
        parsed = sa.engine.make_url(url)
        if not parsed.drivername.startswith("postgresql") or not parsed.database:
            raise BenchError("--database-url must be a PostgreSQL URL with a database name, "
                             "e.g. postgresql+psycopg://postgres@127.0.0.1:5432/crm_bench")
        self.url = url
        self.name = parsed.database
        self.admin_url = parsed.set(database="postgres")

    @property
    def dialect(self):
        return "sqlite" if self.admin_url is None else "postgresql"

    def _admin(self):
        return sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")

    def exists(self):
        if self.admin_url is None:
            return True
        engine = self._admin()
        try:
            with engine.connect() as connection:
                return bool(connection.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": self.name}).first())
        except sa.exc.OperationalError as e:
            raise BenchError(f"cannot reach PostgreSQL: {str(e.orig).strip().splitlines()[0]}")
        finally:
            engine.dispose()

    def create(self):
        if self.admin_url is None:
            return
        if self.exists():
            raise BenchError(f"database {self.name!r} exists; name a new database (the benchmark creates and drops it)")
        engine = self._admin()
        try:
            with engine.connect() as connection:
                connection.execute(sa.text(f"CREATE DATABASE {connection.dialect.identifier_preparer.quote(self.name)}"))
                self.created = True
        finally:
            engine.dispose()

    def drop(self, force=False):
        """Drop the database this object created (``force``: whichever it names)."""
        if self.admin_url is None or not (self.created or force):
            return
        engine = self._admin()
        try:
            with engine.connect() as connection:
                quoted = connection.dialect.identifier_preparer.quote(self.name)
                connection.execute(sa.text(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
        finally:
            engine.dispose()


def dictionary_values(runtime):
    """Value lists of the seeded dictionaries; for the region tree only the leaves (districts)."""
    with runtime.engine.connect() as connection:
        rows = connection.execute(sa.select(dictionary_items.c.dictionary, dictionary_items.c.value, dictionary_items.c.parent_value)
                                  .where(dictionary_items.c.active).order_by(dictionary_items.c.position)).all()
    values, parents = {}, set()
    for dictionary, value, parent in rows:
        values.setdefault(dictionary, []).append(value)
        if parent:
            parents.add((dictionary, parent))
    values["region"] = [v for v in values["region"] if ("region", v) not in parents]
    return values


def analyze(engine):
    """Planner statistics, as autovacuum (PostgreSQL) or a periodic ANALYZE (SQLite) would keep
    them. On PostgreSQL a ``VACUUM`` too, as autovacuum does after a bulk load (where it is on:
    the server here runs with ``autovacuum = off``, which the header prints): without it no
    page of a freshly loaded table is marked all-visible and an index-only scan reads every
    row from the table all the same."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM (ANALYZE)")
        return
    with engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE")


# --- data ----------------------------------------------------------------------------------------

class CompanyNames:
    """Realistic Chinese company names: 城市 + 字号 + 行业 + 组织形式, e.g. 邯郸群英医药有限公司.
    Returns (name, city, 字号) so callers can search for what they made."""

    def __init__(self, fake, rnd=None):
        self.fake = fake
        self.rnd = rnd or random.Random()

    def __call__(self):
        city, brand = self.fake.city_name(), self.fake.company_prefix()
        return city + brand + self.rnd.choice(TRADES) + self.rnd.choice(SUFFIXES), city, brand


# --- timing and output ---------------------------------------------------------------------------

class StatementCounter:
    """Counts the SQL statements an engine sends (to show what each call costs in round trips)."""

    def __init__(self, engine):
        self.n = 0
        sa.event.listen(engine, "before_cursor_execute", self)

    def __call__(self, *args, **kwargs):
        self.n += 1


def percentile(values, p):
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def summary(times):
    """(median, p95) of a list of milliseconds."""
    return statistics.median(times), percentile(times, 95)


def interleaved(sides, runs, warmup=3):
    """Time each of ``sides`` ({name: fn}) ``runs`` times, taking turns so that a busy moment of
    the machine hits every side alike; ``warmup`` untimed calls of each first. {name: [ms]}."""
    for _ in range(warmup):
        for fn in sides.values():
            fn()
    times = {name: [] for name in sides}
    for _ in range(runs):
        for name, fn in sides.items():
            start = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - start) * 1000)
    return times


def table(header, lines):
    """A plain-text table; the first column left-aligned, the others right-aligned."""
    widths = [max(width(row[i]) for row in [header] + lines) for i in range(len(header))]

    def fmt(row):
        cells = [row[0] + " " * (widths[0] - width(row[0]))] + [" " * (widths[i] - width(row[i])) + row[i] for i in range(1, len(row))]
        return "  ".join(cells)
    return "\n".join([fmt(header), "  ".join("-" * w for w in widths)] + [fmt(row) for row in lines])


def width(text):
    """Display width: CJK characters take two columns."""
    return sum(2 if ord(c) > 0x2E80 else 1 for c in text)


def machine():
    try:
        memory = next(line for line in open("/proc/meminfo") if line.startswith("MemTotal")).split()[1]
        memory = f"{int(memory) / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration):
        memory = "?"
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, {memory} RAM, "
            f"Python {platform.python_version()}, SQLAlchemy {sa.__version__}")


def load():
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


PG_SETTINGS = ("server_version", "shared_buffers", "random_page_cost", "effective_cache_size", "work_mem", "autovacuum")


def database_settings(engine):
    """The PostgreSQL settings the figures depend on (as the benchmark's sessions see them), or None."""
    if engine.dialect.name != "postgresql":
        return None
    with engine.connect() as connection:
        return ", ".join(f"{name} {connection.exec_driver_sql(f'SHOW {name}').scalar()}" for name in PG_SETTINGS)


def print_context(runtime):
    """The lines under every benchmark's title: the machine and plugins, PostgreSQL's settings,
    then the start and load."""
    plugins = ", ".join(i.name for i in runtime.plugins.ordered) or "none"
    print(f"machine: {machine()}; plugins enabled: {plugins}")
    settings = database_settings(runtime.engine)
    if settings:
        print(f"postgresql: {settings}")
    print(f"started {dt.datetime.now():%Y-%m-%d %H:%M}, {load()}")


@contextlib.contextmanager
def temporary_instance(database_url, prefix, keep=False, configure=None):
    """A new instance (folder, and database on PostgreSQL) for a benchmark that makes its own data,
    upgraded; yields ``(runtime, folder)`` and throws both away afterwards unless ``keep``.
    ``configure(settings)`` may change the instance's settings before the runtime is built."""
    Database(database_url, Path("."))  # refuse a bad URL before making anything
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    database = Database(database_url, folder)
    runtime = None
    try:
        database.create()
        instance.init(folder, database.url)
        settings = instance.settings(folder)
        runtime = Runtime(configure(settings) if configure else settings)
        runtime.upgrade()
        yield runtime, folder
    finally:
        if runtime is not None:
            runtime.dispose()
        if keep:
            print(f"\nkept: instance {folder}" + (f", database {database.url}" if database.admin_url else ""))
        else:
            database.drop()
            shutil.rmtree(folder, ignore_errors=True)
