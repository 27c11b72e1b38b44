"""Time list pages, the list API, detail and edit pages and access scopes on a generated instance,
beside the same queries hand-written in SQLAlchemy Core and Django admin over the same tables.

    python -m bench generate --rows 100000 && python -m bench lists --rows 100000
    python -m bench lists                                   # bench/_data/sqlite-1000000
    python -m bench lists --database-url postgresql+psycopg://postgres@127.0.0.1:5432/crm_bench_1m

Every side runs in this one process, interleaved, on the same data: the CRM's HTML list page
(through the real WSGI app, WebTest, a logged-in session) and its API (``/api/v1/customer`` with a
bearer token); the floor (the same select written by hand with SQLAlchemy Core on an open
connection, rows fetched into dicts; for the HTML page with its capped count too); Django admin's
changelist (Django's test Client, a superuser) over models generated from the same tables and
indexes. Each cell is the median / p95 in ms of ``--runs`` timed calls after 3 warm-up calls.
"""
import datetime as dt
import json
import re
import shutil
import sys
import tempfile
from html import unescape
from pathlib import Path
from urllib.parse import urlencode

import sqlalchemy as sa

from bench import generate
from bench.common import BenchError, CompanyNames, StatementCounter, interleaved, load, print_context, summary, table
from crm.core import narrow_lists
from crm.core.access import Access
from crm.core.mnemonic import mnemonic
from crm.core.records import COUNT_CAP
from crm.core.tables import departments, users

ENTITY = "customer"
CASES = ("first", "filter_sort", "deep", "search_name", "search_pinyin")


def add_arguments(parser):
    parser.add_argument("--rows", type=int, default=1_000_000, help="customers of the generated instance (default 1000000)")
    parser.add_argument("--database-url", help="PostgreSQL URL the instance was generated on (default: SQLite)")
    parser.add_argument("--dir", type=Path, help="instance folder (default: the one python -m bench generate made)")
    parser.add_argument("--runs", type=int, default=30, help="timed runs per query and side (default 30)")
    parser.add_argument("--deep", type=int, default=200, help="pages followed by cursor before the deep page (default 200)")
    parser.add_argument("--no-django", action="store_true", help="leave Django admin out")
    parser.add_argument("--only", help="comma-separated parts: lists, records, scopes (default all)")
    parser.add_argument("--narrow-owners", type=int, help="crm.core.narrow_lists.NARROW_OWNERS for the scopes "
                                                           "(0: every scope with the plain statement)")
    parser.add_argument("--profile", metavar="SIDE:CASE", help="profile one side of one case with pyinstrument "
                                                               "(side page, api or core; case first, filter_sort, deep, "
                                                               "search_name, search_pinyin, detail, edit)")


# --- the sides -----------------------------------------------------------------------------------

class Crm:
    """The CRM through its WSGI app: a logged-in browser session and an API client with a token."""

    def __init__(self, runtime, username, password):
        from webtest import TestApp
        from crm.core.app import make_app
        self.app = TestApp(make_app(runtime))
        page = self.app.get("/login")
        form = page.forms["login-form"]
        form["username"], form["password"] = username, password
        if form.submit().status_int != 302:
            raise BenchError(f"cannot log in as {username}")
        token = self.app.post_json("/api/v1/auth/token", {"username": username, "password": password}).json["token"]
        self.headers = {"Authorization": f"Bearer {token}"}
        self.api_app = TestApp(make_app(runtime))  # no session cookie: the API on its own

    def page(self, path):
        return self.app.get(path, status=200).text

    def api(self, path):
        return self.api_app.get(path, headers=self.headers, status=200).json

    def api_body(self, path):
        """The response as bytes: what is timed (decoding the JSON is the client's work)."""
        return self.api_app.get(path, headers=self.headers, status=200).body


def count_url(html):
    """The URL list.js asks for the count a list page gave up waiting for, or None."""
    found = re.search(r'data-count-url="([^"]+)"', html)
    return unescape(found.group(1)) if found else None


def page_ids(html):
    return [int(i) for i in re.findall(r'name="ids" value="(\d+)"', html)]


def api_ids(body):
    return [item["id"] for item in body["items"]]


def django_ids(response):
    return [int(i) for i in re.findall(r'name="_selected_action" value="(\d+)"', response.content.decode())]


class Floor:
    """The queries written by hand in SQLAlchemy Core (what the record service should cost)."""

    def __init__(self, runtime, connection, limit):
        self.connection = connection
        self.entity = runtime.metadata[ENTITY]
        self.t = self.entity.table
        self.limit = limit

    def rows(self, *where, order):
        stmt = sa.select(self.t).where(self.t.c.deleted_at.is_(None), *where).order_by(*order).limit(self.limit + 1)
        result = self.connection.execute(stmt)
        columns = list(result.keys())
        return [dict(zip(columns, row)) for row in result]

    def count(self, *where):
        capped = sa.select(sa.literal(1)).select_from(self.t).where(self.t.c.deleted_at.is_(None), *where).limit(COUNT_CAP + 1).subquery()
        return self.connection.execute(sa.select(sa.func.count()).select_from(capped)).scalar()

    @property
    def newest(self):
        return [self.t.c.created_at.desc(), self.t.c.id.desc()]

    def after(self, created, ident):
        """Rows after the cursor, with the bound on ``created_at`` said on its own so the index
        starts there (as the record service writes it, crm.core.query.after_cursor)."""
        t = self.t
        return sa.and_(t.c.created_at <= created,
                       sa.or_(t.c.created_at < created, sa.and_(t.c.created_at == created, t.c.id < ident)))

    def search(self, q):
        # SQLite's LIKE ignores the case of ASCII letters by itself (as the CRM and Django write it there)
        sqlite = self.connection.dialect.name == "sqlite"
        clauses = [self.t.c[f].like(f"%{q}%") if sqlite else self.t.c[f].ilike(f"%{q}%") for f in self.entity.search_fields]
        if q.isascii() and q.isalnum():
            clauses.append(self.t.c.mnemonic.like(q.upper() + "%"))
        return sa.or_(*clauses)


# --- the cases -----------------------------------------------------------------------------------

def probe(folder, runtime, connection, crm, deep):
    """Search terms and the deep cursor, taken from the generated data."""
    state = generate.read_state(folder)
    rnd, fake = generate.batch_random(state["seed"], 0)
    _name, city, brand = CompanyNames(fake, rnd)()
    t = runtime.metadata[ENTITY].table
    cursor, path = None, "/api/v1/customer?limit=50"
    for _ in range(deep):
        body = crm.api(path + (f"&cursor={cursor}" if cursor else ""))
        cursor = body["next_cursor"]
        if cursor is None:
            raise BenchError(f"fewer than {deep + 1} pages; use a bigger instance or a smaller --deep")
    last = body["items"][-1]
    return {"brand": brand, "pinyin": mnemonic(city + brand)[:4], "cursor": cursor,
            "after": (dt.datetime.fromisoformat(last["created_at"]), last["id"]),
            "detail": connection.execute(sa.select(t.c.id).where(t.c.last_contact_at.is_not(None), t.c.x_text_01.is_not(None))
                                         .order_by(t.c.id).limit(1)).scalar()}


def list_cases(floor, p, deep):
    """(key, label, CRM query string, core rows, core where (for the count), Django query string)."""
    t = floor.t
    return [
        ("first", "first page, default sort (-created_at)", {},
         lambda: floor.rows(order=floor.newest), (), {}),
        ("filter_sort", "filter level = A, sort by name", {"level": "A", "sort": "name"},
         lambda: floor.rows(t.c.level == "A", order=[t.c.name.asc(), t.c.id.asc()]), (t.c.level == "A",),
         {"level__exact": "A", "o": "2"}),
        ("deep", f"page {deep + 1} (cursor; Django: ?p={deep + 1})", {"cursor": p["cursor"]},
         lambda: floor.rows(floor.after(*p["after"]), order=floor.newest), (), {"p": str(deep + 1)}),
        ("search_name", f"quick search q={p['brand']}", {"q": p["brand"]},
         lambda: floor.rows(floor.search(p["brand"]), order=floor.newest), (floor.search(p["brand"]),), {"q": p["brand"]}),
        ("search_pinyin", f"quick search q={p['pinyin']} (拼音首字母)", {"q": p["pinyin"]},
         lambda: floor.rows(floor.search(p["pinyin"]), order=floor.newest), (floor.search(p["pinyin"]),), {"q": p["pinyin"]}),
    ]


def qs(params):
    return "?" + urlencode(params) if params else ""


def measure_lists(crm, floor, django, cases, runs, counter):
    results = []
    for key, label, params, core, where, django_params in cases:
        page_path, api_path = f"/app/{ENTITY}{qs(params)}", f"/api/v1/{ENTITY}{qs(params)}"
        sides = {"core": core, "core+json": lambda: json.dumps(core()[:50], default=str, ensure_ascii=False).encode(),
                 "core+count": lambda: (core(), floor.count(*where)),
                 "api": lambda: crm.api_body(api_path), "page": lambda: crm.page(page_path)}
        if django is not None:
            django_path = f"/admin/crm/{ENTITY}/{qs(django_params)}"
            sides["django"] = lambda: django.get(django_path)
        expected = [r["id"] for r in core()][:50]
        html = crm.page(page_path)
        found = {"api": api_ids(crm.api(api_path)), "page": page_ids(html)}
        later = count_url(html)
        if later:  # the page gave its count up: the browser asks for it afterwards (list.js)
            sides["count later"] = lambda: crm.page(later)
        for side, ids in found.items():
            if ids != expected:
                raise BenchError(f"{key}: the {side} side returns other rows than the hand-written query")
        statements = {}
        for side in ("api", "page"):
            before = counter.n
            sides[side]()
            statements[side] = counter.n - before
        django_rows = len(django_ids(django.get(django_path))) if django is not None else None
        times = interleaved(sides, runs)
        results.append({"key": key, "label": label, "rows": len(expected), "django_rows": django_rows,
                        "statements": statements, **{side: summary(ms) for side, ms in times.items()}})
    return results


def record_cases(crm, floor, django, record_id, runs):
    """The detail page and the edit form of one customer with its 100 custom fields."""
    t = floor.t
    one = lambda: [dict(r) for r in floor.connection.execute(sa.select(t).where(t.c.id == record_id)).mappings()]  # noqa: E731
    out = []
    for key, label, path in (("detail", f"detail page /app/customer/{record_id}", f"/app/{ENTITY}/{record_id}"),
                             ("edit", f"edit form /app/customer/{record_id}/edit", f"/app/{ENTITY}/{record_id}/edit"),
                             ("home", "home page /app (recent records of every entity)", "/app")):
        sides = {"page": lambda path=path: crm.page(path)}
        if key != "home":
            sides["core"] = one
        if django is not None and key != "home":
            sides["django"] = lambda: django.get(f"/admin/crm/{ENTITY}/{record_id}/change/")
        times = interleaved(sides, runs)
        out.append({"key": key, "label": label, **{side: summary(ms) for side, ms in times.items()}})
    return out


# --- access scopes -------------------------------------------------------------------------------

def scope_users(connection):
    """A head of a 公司, of a 分公司 and of a 小组 (role sales_manager: scope department_tree)."""
    tree = dict(connection.execute(sa.select(departments.c.id, departments.c.parent_id)).all())
    depth = {}
    for dept in tree:
        d, node = 0, dept
        while tree.get(node) is not None:
            d, node = d + 1, tree[node]
        depth[dept] = d
    out = []
    for level, label in ((1, "公司"), (2, "分公司"), (3, "小组")):
        dept = min(d for d, v in depth.items() if v == level)
        row = connection.execute(sa.select(users.c.username).join(departments, departments.c.manager_id == users.c.id)
                                 .where(departments.c.id == dept)).one()
        out.append((label, row.username))
    return out


SCOPE_DEEP = 20  # pages followed by cursor before the scopes' deep page


def cursor_after(records, pages):
    cursor = None
    for _ in range(pages):
        cursor = records.list(ENTITY, limit=50, cursor=cursor).next_cursor
    return cursor


def measure_scopes(runtime, password, floor, runs):
    """RecordService.list as a department head (scope department_tree) beside the administrator's
    unscoped list, on the same session, for the first page and the filter + sort."""
    results = []
    session = runtime.session(write=False)
    try:
        admin = runtime.records(session, user=dict(session.execute(sa.select(users).where(users.c.username == "admin")).mappings().one()))
        for label, username in scope_users(floor.connection):
            user = dict(session.execute(sa.select(users).where(users.c.username == username)).mappings().one())
            scoped = runtime.records(session, user=user)
            access = Access(scoped)
            people = len(access.people_for("department_tree"))
            reach = len(access.departments_for("department_tree"))
            deep = {"unscoped": {"cursor": cursor_after(admin, SCOPE_DEEP)}, "scoped": {"cursor": cursor_after(scoped, SCOPE_DEEP)}}
            for key, kwargs in (("first page", {}), (f"page {SCOPE_DEEP + 1} by cursor", deep),
                                ("level = A, sort name", {"filters": [("level", "eq", "A")], "sort": "name"})):
                sides = {"unscoped": lambda kw=kwargs: admin.list(ENTITY, limit=50, **kw.get("unscoped", kw)),
                         "scoped": lambda kw=kwargs, s=scoped: s.list(ENTITY, limit=50, **kw.get("scoped", kw))}
                times = interleaved(sides, runs)
                results.append({"label": f"head of a {label} ({reach} depts, {people} owners): {key}",
                                **{side: summary(ms) for side, ms in times.items()}})
    finally:
        session.close()
    return results


# --- output --------------------------------------------------------------------------------------

def cell(stats):
    return f"{stats[0]:.1f} / {stats[1]:.1f}" if stats else "-"


def ratio(a, b):
    return f"{a[0] / b[0]:.2f}x" if a and b else "-"


def print_lists(results):
    header = ["query", "rows", "core", "core+json", "core+count", "API", "API/core", "API/core+json", "page",
              "page/core+count", "count later", "Django admin", "Django/page", "Django/API", "stmts API/page"]
    lines = [[r["label"], str(r["rows"]) + (f" ({r['django_rows']})" if r.get("django_rows") is not None else ""),
              cell(r["core"]), cell(r["core+json"]), cell(r["core+count"]), cell(r["api"]), ratio(r["api"], r["core"]),
              ratio(r["api"], r["core+json"]), cell(r["page"]),
              ratio(r["page"], r["core+count"]), cell(r.get("count later")), cell(r.get("django")), ratio(r.get("django"), r["page"]),
              ratio(r.get("django"), r["api"]), f"{r['statements']['api']} / {r['statements']['page']}"] for r in results]
    print(table(header, lines))


def print_records(results):
    header = ["page", "core (the row)", "page", "page/core", "Django admin change form", "Django/page"]
    print(table(header, [[r["label"], cell(r.get("core")), cell(r["page"]), ratio(r["page"], r.get("core")), cell(r.get("django")),
                          ratio(r.get("django"), r["page"])] for r in results]))


def print_scopes(results):
    header = ["RecordService.list, 50 rows", "unscoped (admin)", "scoped", "scoped/unscoped"]
    print(table(header, [[r["label"], cell(r["unscoped"]), cell(r["scoped"]), ratio(r["scoped"], r["unscoped"])] for r in results]))


def profile(crm, floor, cases, record_id, spec, runs):
    from pyinstrument import Profiler
    side, _, key = spec.partition(":")
    paths = {c[0]: c[2] for c in cases}
    if key in ("detail", "edit"):
        path = f"/app/{ENTITY}/{record_id}" + ("/edit" if key == "edit" else "")
        fn = lambda: crm.page(path)  # noqa: E731
    elif key in paths and side in ("page", "api"):
        path = (f"/app/{ENTITY}" if side == "page" else f"/api/v1/{ENTITY}") + qs(paths[key])
        fn = (lambda: crm.page(path)) if side == "page" else (lambda: crm.api(path))
    elif key in paths and side == "core":
        fn = next(c[3] for c in cases if c[0] == key)
    else:
        raise BenchError(f"--profile: unknown {spec!r}")
    fn()
    profiler = Profiler(interval=0.0005)
    profiler.start()
    for _ in range(runs):
        fn()
    profiler.stop()
    print(f"\npyinstrument: {spec}, {runs} calls")
    print(profiler.output_text(unicode=True, color=False, show_all=False))


# --- the benchmark -------------------------------------------------------------------------------

def run(args):
    folder = (args.dir or generate.default_dir(args.database_url, args.rows)).resolve()
    state = generate.read_state(folder)
    if not state or not state.get("complete"):
        raise BenchError(f"no generated instance in {folder}: run python -m bench generate"
                         + (f" --rows {args.rows}" if args.rows != 1_000_000 else "")
                         + (f" --database-url {args.database_url}" if args.database_url else "") + " first")
    parts = set((args.only or "lists,records,scopes").split(","))
    runtime = generate.open_runtime(folder)
    plan, _seeded = runtime.upgrade()  # as crm db upgrade after a code change: indexes the metadata asks for now
    workdir = Path(tempfile.mkdtemp(prefix="crm-bench-django-"))
    try:
        print(f"crm bench lists: {state['counts']} on {runtime.engine.dialect.name} "
              f"({runtime.engine.url.render_as_string(hide_password=True)}), instance {folder}")
        print_context(runtime)
        for line in plan.summary:
            print(f"db upgrade: {line}")
        crm = Crm(runtime, "admin", state["password"])
        django = None
        if not args.no_django and parts & {"lists", "records"}:
            import django as django_module
            from bench import django_admin
            django = django_admin.start(runtime, workdir)
            print(f"Django {django_module.get_version()} admin over the same tables")
        counter = StatementCounter(runtime.engine)
        with runtime.engine.connect() as connection:
            floor = Floor(runtime, connection, 50)
            p = probe(folder, runtime, connection, crm, args.deep)
            cases = list_cases(floor, p, args.deep)
            if "lists" in parts:
                results = measure_lists(crm, floor, django, cases, args.runs, counter)
                print(f"\nlists as the administrator: median / p95 in ms of {args.runs} runs (after 3 warm-up runs), "
                      f"50 rows a page; ratios of medians; rows (Django's rows)\n")
                print_lists(results)
            if "records" in parts:
                print(f"\none customer (#{p['detail']}, 100 custom fields): median / p95 in ms\n")
                print_records(record_cases(crm, floor, django, p["detail"], args.runs))
            if "scopes" in parts:
                if args.narrow_owners is not None:
                    narrow_lists.NARROW_OWNERS = args.narrow_owners
                print(f"\nnarrow scopes (crm.core.narrow_lists): up to {narrow_lists.NARROW_OWNERS} owners")
                print("\naccess scopes: a department head's list (role sales_manager, scope department_tree) "
                      "beside the administrator's unscoped list; median / p95 in ms\n")
                print_scopes(measure_scopes(runtime, state["password"], floor, args.runs))
            print(f"\nfinished {dt.datetime.now():%Y-%m-%d %H:%M}, {load()}")
            if args.profile:
                profile(crm, floor, cases, p["detail"], args.profile, args.runs)
    finally:
        runtime.dispose()
        shutil.rmtree(workdir, ignore_errors=True)
    sys.stdout.flush()
    return 0
