"""Create customers through the record service, then time list pages beside raw SQLAlchemy Core.

    python -m bench records                       # SQLite, 100 000 customers
    python -m bench records --rows 20000 --runs 10
    python -m bench records --database-url postgresql+psycopg://postgres@127.0.0.1:5432/crm_bench

A temporary instance (crm init) is made and thrown away at the end. With --database-url the named
PostgreSQL database is created by the benchmark and dropped at the end; it must not exist yet.
CRM_DATABASE_URL is ignored: --database-url chooses the database.

Customers are created with RecordService.create, one transaction per batch, exactly as the web,
API and import do (validation, autonumber, 助记码, audit, hooks). Then each list query is run
through RecordService.list and, beside it, as the same query written by hand in SQLAlchemy Core
on the same table (the floor); the table shows median and p95 in ms and the ratio service/raw.
"""
import cProfile
import datetime as dt
import os
import pstats
import random
import secrets
import statistics
import sys
import time

import sqlalchemy as sa
from faker import Faker
from tqdm import tqdm

from bench.common import (AGENT_CATEGORIES, BenchError, CompanyNames, StatementCounter, analyze, dictionary_values,
                          load, percentile, print_context, table as text_table, temporary_instance)
from crm.core import auth, directory
from crm.core.mnemonic import mnemonic
from crm.core.runtime import DATABASE_ENV

ENTITY = "customer"


def add_arguments(parser):
    parser.add_argument("--rows", type=int, default=100_000, help="customers to create (default 100000)")
    parser.add_argument("--batch", type=int, default=1000, help="creates per transaction (default 1000)")
    parser.add_argument("--runs", type=int, default=30, help="timed runs per query (default 30)")
    parser.add_argument("--page-size", type=int, default=50, help="rows per list page (default 50)")
    parser.add_argument("--deep", type=int, default=200, help="pages followed by cursor before the deep page (default 200)")
    parser.add_argument("--database-url", help="a PostgreSQL URL naming a new database (default: SQLite in the instance)")
    parser.add_argument("--seed", type=int, default=2026, help="random seed of the generated data")
    parser.add_argument("--keep", action="store_true", help="keep the instance folder and the database afterwards")
    parser.add_argument("--profile", metavar="QUERY", help="also profile the service side of QUERY with cProfile "
                                                           "(first, first_total, level, region, deep, search_name, search_pinyin)")


# --- data ----------------------------------------------------------------------------------------

class CustomerMaker:
    """Realistic Chinese customers: 城市 + 字号 + 行业 + 组织形式, e.g. 邯郸群英医药有限公司."""

    def __init__(self, seed, choices, owners):
        Faker.seed(seed)
        self.fake = Faker("zh_CN")
        self.rnd = random.Random(seed)
        self.names = CompanyNames(self.fake, self.rnd)
        self.choices = choices
        self.owners = owners
        self.first = None  # (city, 字号) of the first customer: the search terms

    def pick(self, dictionary):
        return self.rnd.choice(self.choices[dictionary])

    def __call__(self):
        fake, rnd = self.fake, self.rnd
        name, city, brand = self.names()
        self.first = self.first or (city, brand)
        values = {
            "name": name, "category": self.pick("customer_category"), "level": self.pick("customer_level"),
            "status": self.pick("customer_status"), "region": self.pick("region"), "industry": self.pick("industry"),
            "source": self.pick("customer_source"), "nature": self.pick("customer_nature"),
            "company_scale": self.pick("company_scale"), "phone": fake.phone_number(), "email": fake.company_email(),
            "address": fake.address()[:255], "postcode": fake.postcode(), "employee_count": rnd.randint(5, 5000),
            "credit_rating": rnd.randint(1, 5), "owner_id": rnd.choice(self.owners),
            "registered_on": (dt.date(2020, 1, 1) + dt.timedelta(days=rnd.randint(0, 2500))).isoformat(),
        }
        if values["category"] in AGENT_CATEGORIES:
            values["agent_level"] = self.pick("agent_level")
        return values


def make_users(runtime):
    """An administrator (who creates the customers) and eight sales reps with the seeded role
    sales_rep (their owners). Returns the user rows, as the web layer passes them to the service."""
    with runtime.transaction() as records:
        session = records.session
        admin = directory.add_user(session, "admin", secrets.token_urlsafe(12), now=records.now(), admin=True, display_name="管理员")
        reps = [directory.add_user(session, f"rep{i}", secrets.token_urlsafe(12), now=records.now(), display_name=name,
                                   role_names=["sales_rep"])
                for i, name in enumerate(["张伟", "李娜", "王芳", "刘洋", "陈静", "杨磊", "赵敏", "黄勇"])]
        admin, reps = auth.get_user(session, admin), [auth.get_user(session, r) for r in reps]
    return admin, reps


def create_customers(runtime, rows, batch, maker, user):
    """RecordService.create, ``batch`` per transaction; returns the seconds spent in the service."""
    spent = 0.0
    with tqdm(total=rows, desc="create customers", unit="row", file=sys.stderr, disable=None) as bar:
        done = 0
        while done < rows:
            values = [maker() for _ in range(min(batch, rows - done))]
            start = time.perf_counter()
            with runtime.transaction(user=user) as records:
                for v in values:
                    records.create(ENTITY, v)
            spent += time.perf_counter() - start
            done += len(values)
            bar.update(len(values))
    return spent


# --- the queries ---------------------------------------------------------------------------------

class Queries:
    """Each query twice: through RecordService.list and written by hand in SQLAlchemy Core."""

    def __init__(self, runtime, records, rep_records, connection, page_size, deep_pages, probe):
        self.records = records
        self.rep_records = rep_records
        self.connection = connection
        self.limit = page_size
        self.entity = runtime.metadata[ENTITY]
        self.t = self.entity.table
        self.live = self.t.c.deleted_at.is_(None)
        self.newest = [self.t.c.created_at.desc(), self.t.c.id.desc()]
        self.probe = probe
        self.deep_pages = deep_pages
        self.service_cursor = None
        self.raw_after = None

    def raw(self, *where, order):
        stmt = sa.select(self.t).where(self.live, *where).order_by(*order).limit(self.limit + 1)
        return [dict(r) for r in self.connection.execute(stmt).mappings()]

    def service(self, **kwargs):
        return self.records.list(ENTITY, limit=self.limit, **kwargs).items

    # (key, description, service, raw)
    def cases(self):
        t, level, region = self.t, self.probe["level"], self.probe["region"]
        return [
            ("first", "first page, default sort (-created_at)",
             lambda: self.service(),
             lambda: self.raw(order=self.newest)),
            ("first_total", "first page + total (count capped at 10000)",
             lambda: self.service(count=True),
             lambda: (self.raw(order=self.newest), self.raw_count())),
            ("level", f"filter level = {level}, sort name",
             lambda: self.service(filters=[("level", "eq", level)], sort="name"),
             lambda: self.raw(t.c.level == level, order=[t.c.name.asc(), t.c.id.asc()])),
            ("region", f"filter region = {region}, default sort",
             lambda: self.service(filters=[("region", "eq", region)]),
             lambda: self.raw(t.c.region == region, order=self.newest)),
            ("deep", f"keyset page {self.deep_pages + 1} (cursor), default sort",
             lambda: self.service(cursor=self.service_cursor),
             lambda: self.raw(self.after(self.raw_after), order=self.newest)),
            ("search_name", f"quick search q={self.probe['name']}",
             lambda: self.service(q=self.probe["name"]),
             lambda: self.raw(self.search(self.probe["name"]), order=self.newest)),
            ("search_pinyin", f"quick search q={self.probe['pinyin']} (拼音首字母)",
             lambda: self.service(q=self.probe["pinyin"]),
             lambda: self.raw(self.search(self.probe["pinyin"]), order=self.newest)),
            ("rep", "first page as a sales rep (scope own)",
             lambda: self.rep_records.list(ENTITY, limit=self.limit).items,
             lambda: self.raw(t.c.owner_id == self.rep_records.user["id"], order=self.newest)),
        ]

    def raw_count(self):
        capped = sa.select(sa.literal(1)).select_from(self.t).where(self.live).limit(10001).subquery()
        n = self.connection.execute(sa.select(sa.func.count()).select_from(capped)).scalar()
        return n if n <= 10000 else None

    def after(self, row):
        """Keyset: rows after ``row`` in the order -created_at, -id."""
        created, ident = row
        return sa.or_(self.t.c.created_at < created, sa.and_(self.t.c.created_at == created, self.t.c.id < ident))

    def search(self, q):
        """The quick search written by hand: any search field contains q; ASCII also matches 助记码 initials."""
        clauses = [self.t.c[f].ilike(f"%{q}%") for f in self.entity.search_fields]
        if q.isascii() and q.isalnum():
            clauses.append(self.t.c.mnemonic.like(q.upper() + "%"))
        return sa.or_(*clauses)

    def go_deep(self):
        """Follow ``deep_pages`` pages by cursor, on both sides, to the page that is timed."""
        cursor = None
        for _ in range(self.deep_pages):
            page = self.records.list(ENTITY, limit=self.limit, cursor=cursor)
            cursor = page.next_cursor
            if cursor is None:
                raise BenchError(f"fewer than {self.deep_pages + 1} pages of {self.limit}; use more --rows or a smaller --deep")
        self.service_cursor = cursor
        after = None
        for _ in range(self.deep_pages):
            rows = self.raw(*([self.after(after)] if after else []), order=self.newest)
            after = (rows[self.limit - 1]["created_at"], rows[self.limit - 1]["id"])
        self.raw_after = after


def ids(result):
    rows = result[0] if isinstance(result, tuple) else result
    return [r["id"] for r in rows]


def measure(queries, counter, runs):
    """Median, p95 (ms) and statements per call of both sides of every query, interleaved."""
    results = []
    for key, label, service, raw in queries.cases():
        for _ in range(3):  # warm-up: caches, compiled statements, the database's pages
            service_ids, raw_ids = ids(service()), ids(raw())[:queries.limit]
        if service_ids != raw_ids:
            raise BenchError(f"{key}: the service and the raw query return different rows")
        before = counter.n
        service()
        service_statements = counter.n - before
        before = counter.n
        raw()
        raw_statements = counter.n - before
        times = {"service": [], "raw": []}
        for _ in range(runs):
            for side, fn in (("service", service), ("raw", raw)):
                start = time.perf_counter()
                fn()
                times[side].append((time.perf_counter() - start) * 1000)
        results.append({"key": key, "label": label, "rows": len(service_ids),
                        "service": (statistics.median(times["service"]), percentile(times["service"], 95), service_statements),
                        "raw": (statistics.median(times["raw"]), percentile(times["raw"], 95), raw_statements)})
    return results


def profile(queries, key, runs):
    service = {k: s for k, _, s, _ in queries.cases()}.get(key)
    if service is None:
        raise BenchError(f"no query {key!r} to profile")
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(runs):
        service()
    profiler.disable()
    print(f"\ncProfile of the service side of {key!r}, {runs} calls (cumulative):")
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(30)


# --- output --------------------------------------------------------------------------------------

def table(results):
    header = ["query", "rows", "service median", "service p95", "raw median", "raw p95", "ratio", "SQL stmts"]
    lines = [[r["label"], str(r["rows"]), f"{r['service'][0]:.2f}", f"{r['service'][1]:.2f}", f"{r['raw'][0]:.2f}",
              f"{r['raw'][1]:.2f}", f"{r['service'][0] / r['raw'][0]:.2f}x", f"{r['service'][2]} / {r['raw'][2]}"]
             for r in results]
    return text_table(header, lines)


# --- the benchmark -------------------------------------------------------------------------------

def run(args):
    if args.rows < args.page_size * (args.deep + 1):
        raise BenchError(f"--rows must be at least page size × (deep + 1) = {args.page_size * (args.deep + 1)}")
    os.environ.pop(DATABASE_ENV, None)
    with temporary_instance(args.database_url, "crm-bench-", args.keep) as (runtime, _folder):
        print(f"crm bench records: {args.rows} customers on {runtime.engine.dialect.name} "
              f"({runtime.engine.url.render_as_string(hide_password=True)})")
        print_context(runtime)

        admin, reps = make_users(runtime)
        maker = CustomerMaker(args.seed, dictionary_values(runtime), [r["id"] for r in reps])
        spent = create_customers(runtime, args.rows, args.batch, maker, admin)
        print(f"\ncreate: {args.rows} customers through RecordService.create in {spent:.1f} s "
              f"= {args.rows / spent:.0f} rows/s (batches of {args.batch} per transaction)")
        analyze(runtime.engine)

        counter = StatementCounter(runtime.engine)
        connection = runtime.engine.connect()
        try:
            with runtime.transaction(user=admin, write=False) as records:
                queries = make_queries(runtime, records, reps[0], connection, maker, args)
                results = measure(queries, counter, args.runs)
                print(f"\nlist: {args.runs} timed runs each (after 3 warm-up runs), page size {args.page_size}, "
                      f"times in ms; ratio = service median / raw median; SQL stmts = statements per call, service / raw\n")
                print(table(results))
                print(f"\nfinished {dt.datetime.now():%Y-%m-%d %H:%M}, {load()}")
                if args.profile:
                    profile(queries, args.profile, args.runs)
        finally:
            connection.close()


def make_queries(runtime, records, rep, connection, maker, args):
    """The queries, with search terms and filter values taken from the data, positioned deep."""
    sample = records.list(ENTITY, limit=1, sort="id").items[0]
    city, brand = maker.first
    probe = {"level": "A", "region": sample["region"], "name": brand, "pinyin": mnemonic(city + brand)[:4]}
    queries = Queries(runtime, records, runtime.records(records.session, user=rep), connection,
                      args.page_size, args.deep, probe)
    queries.go_deep()
    return queries
