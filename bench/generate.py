"""Generate a benchmark instance: 1M customers, 3M follow-ups, 100 custom fields, 1,000 departments.

    python -m bench generate                              # SQLite, bench/_data/sqlite-1000000
    python -m bench generate --rows 100000                # a quicker instance (bench/_data/sqlite-100000)
    python -m bench generate --database-url postgresql+psycopg://postgres@127.0.0.1:5432/crm_bench_1m

The instance is a real one (crm init, then crm db upgrade) with 100 x_ fields on customers declared
in its custom/customer.json. Rows are bulk-inserted with SQLAlchemy Core executemany, one transaction
per batch; this is set-up, not what is measured (python -m bench records measures creating through
the record service). Generated values are what the record service would store: 助记码 from
crm.core.mnemonic, customer numbers from the autonumber pattern of the creation month (with the
crm_sequences counters left where the service continues), owners' departments, last contact times
matching the follow-ups.

Running it again re-uses the instance: a finished one is left as it is, an interrupted one goes on
from its last committed batch (batches are seeded by their position, so the data is the same as
in one go). --fresh throws the instance (and its PostgreSQL database) away first.
"""
import datetime as dt
import json
import random
import shutil
import sys
import time
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from faker import Faker
from tqdm import tqdm

from bench.common import AGENT_CATEGORIES, BenchError, CompanyNames, Database, analyze, dictionary_values, load, machine
from crm.core import auth, instance
from crm.core.autonumber import render
from crm.core.mnemonic import mnemonic
from crm.core.runtime import DATABASE_ENV, Runtime
from crm.core.tables import departments, roles, sequences, user_roles, users

DATA = Path(__file__).resolve().parent / "_data"
STATE = "bench.json"
PASSWORD = "bench-password"  # of every generated user; test data in a git-ignored folder
START, END = dt.datetime(2019, 1, 1, 8, 0), dt.datetime(2026, 11, 20, 18, 0)
COMPANIES = ["华北公司", "华东公司", "华南公司", "华中公司", "西南公司", "西北公司", "东北公司", "港澳公司", "海外公司", "电商公司"]
TEAMS = ["销售一组", "销售二组", "销售三组", "销售四组", "大客户组", "渠道组", "电销组", "商务组", "服务组"]
BRANCHES_PER_COMPANY, REPS_PER_TEAM = 10, 3
SUBJECTS = ["电话沟通需求", "上门拜访", "发送报价单", "产品演示", "商务谈判", "合同条款确认", "回款跟进", "售后回访",
            "节日问候", "技术交流会", "招标信息确认", "老客户续约沟通"]
CONTENT = ["客户对{p}的方案比较感兴趣，约下周再谈。", "已发送{p}报价，等待采购部门审批。", "{p}负责人出差，改期拜访。",
           "客户反馈{p}价格偏高，需申请折扣。", "与{p}技术负责人确认了实施范围。", "{p}的年度预算已批，准备合同。"]
# the 100 custom fields: (type, how many, extra spec); the first few of some types are indexed
CUSTOM_TYPES = [("text", 25, {"max_length": 100}), ("integer", 10, {}), ("decimal", 8, {}), ("money", 7, {}),
                ("percent", 3, {}), ("date", 10, {}), ("datetime", 5, {}), ("select", 15, {}), ("boolean", 5, {}),
                ("rating", 4, {}), ("textarea", 4, {}), ("email", 2, {}), ("phone", 2, {})]
INDEXED = {"text": 3, "integer": 1, "decimal": 1, "date": 1, "datetime": 1, "select": 3}
CUSTOM_DICTIONARIES = ["company_scale", "business_years", "industry_position", "settlement_method", "contact_strategy",
                       "purchase_strategy", "customer_source", "customer_nature", "common_remark", "customer_level",
                       "customer_status", "industry", "invoice_type", "gender", "decision_influence"]
TYPE_LABELS = {"text": "文本", "integer": "整数", "decimal": "小数", "money": "金额", "percent": "百分比", "date": "日期",
               "datetime": "时间", "select": "选项", "boolean": "是否", "rating": "评分", "textarea": "长文本",
               "email": "邮箱", "phone": "电话"}


def add_arguments(parser):
    parser.add_argument("--rows", type=int, default=1_000_000, help="customers (default 1000000)")
    parser.add_argument("--follow-ups", type=float, default=3.0, help="follow-ups per customer on average (default 3)")
    parser.add_argument("--database-url", help="PostgreSQL URL of the database to create (default: SQLite in the instance folder)")
    parser.add_argument("--dir", type=Path, help="instance folder (default bench/_data/<sqlite|postgresql>-<rows>)")
    parser.add_argument("--batch", type=int, default=5000, help="customers per transaction (default 5000)")
    parser.add_argument("--seed", type=int, default=2026, help="random seed of the generated data")
    parser.add_argument("--fresh", action="store_true", help="throw an existing instance (and its PostgreSQL database) away first")


def default_dir(database_url, rows):
    return DATA / f"{'postgresql' if database_url else 'sqlite'}-{rows}"


def read_state(folder):
    path = Path(folder) / STATE
    return json.loads(path.read_text("utf-8")) if path.is_file() else None


def write_state(folder, state):
    (Path(folder) / STATE).write_text(json.dumps(state, ensure_ascii=False, indent=2), "utf-8")


def open_runtime(folder):
    """The runtime of a generated instance (CRM_DATABASE_URL is ignored: the instance names its database)."""
    import os
    os.environ.pop(DATABASE_ENV, None)
    return Runtime(instance.settings(folder))


# --- the instance --------------------------------------------------------------------------------

def custom_fields():
    """The 100 x_ fields of custom/customer.json: mixed types, ten of them indexed."""
    fields, dictionaries = {}, iter(CUSTOM_DICTIONARIES)
    for kind, count, extra in CUSTOM_TYPES:
        for n in range(1, count + 1):
            spec = {"type": kind, "label": {"zh_CN": f"扩展{TYPE_LABELS[kind]}{n:02d}", "en": f"Extra {kind} {n:02d}"}, **extra}
            if kind == "select":
                spec["dictionary"] = next(dictionaries)
            if n <= INDEXED.get(kind, 0):
                spec["index"] = True
            fields[f"x_{kind}_{n:02d}"] = spec
    return fields


def customization():
    fields = custom_fields()
    names = list(fields)
    sections = [{"id": f"extra_{i + 1}", "label": {"zh_CN": f"扩展信息{i + 1}", "en": f"Extra {i + 1}"}, "columns": 2,
                 "fields": names[i * 20:(i + 1) * 20]} for i in range(5)]
    return {"extends": "customer", "fields": fields,
            "layout": {"tabs": {"$append": [{"id": "extra", "label": {"zh_CN": "扩展信息", "en": "Extra"}, "sections": sections}]}}}


def make_instance(folder, database):
    database.create()
    instance.init(folder, database.url)
    (folder / "custom" / "customer.json").write_text(json.dumps(customization(), ensure_ascii=False, indent=1), "utf-8")
    runtime = open_runtime(folder)
    runtime.upgrade()
    return runtime


def make_organisation(runtime, rnd, fake):
    """集团 → 10 公司 → 10 分公司 each → 9 小组 each (1,011 departments), a head per department
    (role sales_manager, scope department_tree) and three reps per 小组 (sales_rep); plus an
    administrator. Returns the owners (user id, department id) customers are spread over."""
    now = dt.datetime.now().replace(microsecond=0)
    password_hash = auth.hash_password(PASSWORD)  # one hash for all: argon2 is slow on purpose
    depts, people, owners = [], [], []

    def department(name, parent, head_manager):
        dept_id = len(depts) + 1
        head_id = len(people) + 2  # user 1 is the administrator
        depts.append(dict(id=dept_id, name=name, parent_id=parent, manager_id=head_id, sort_order=len(depts)))
        people.append(dict(id=head_id, username=f"head{dept_id}", display_name=fake.name(), department_id=dept_id,
                           manager_id=head_manager, role="sales_manager"))
        return dept_id, head_id

    top, top_head = department("华信集团", None, None)
    for company in COMPANIES:
        company_id, company_head = department(company, top, top_head)
        for _ in range(BRANCHES_PER_COMPANY):
            branch_id, branch_head = department(f"{fake.city_name()}分公司", company_id, company_head)
            for team in TEAMS:
                team_id, team_head = department(team, branch_id, branch_head)
                owners.append((team_head, team_id))
                for _ in range(REPS_PER_TEAM):
                    rep_id = len(people) + 2
                    people.append(dict(id=rep_id, username=f"rep{rep_id}", display_name=fake.name(), department_id=team_id,
                                       manager_id=team_head, role="sales_rep"))
                    owners.append((rep_id, team_id))
    with runtime.engine.begin() as connection:
        role_ids = dict(connection.execute(sa.select(roles.c.name, roles.c.id)).all())
        connection.execute(users.insert(), [dict(id=1, username="admin", display_name="管理员", password_hash=password_hash,
                                                  is_admin=True, active=True, created_at=now)])
        connection.execute(departments.insert(), depts)
        connection.execute(users.insert(), [dict(id=p["id"], username=p["username"], display_name=p["display_name"],
                                                  department_id=p["department_id"], manager_id=p["manager_id"],
                                                  password_hash=password_hash, is_admin=False, active=True, created_at=now)
                                             for p in people])
        connection.execute(user_roles.insert(), [dict(user_id=p["id"], role_id=role_ids[p["role"]]) for p in people])
        fix_sequences(connection, [users, departments])
    return owners


def fix_sequences(connection, tables):
    """Rows were inserted with explicit ids: move PostgreSQL's id sequences past them."""
    if connection.dialect.name != "postgresql":
        return
    for table in tables:
        connection.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                                   f"(SELECT COALESCE(MAX(id), 1) FROM {table.name}))"))


def load_owners(runtime):
    """The owners make_organisation returned: everyone in a 小组 (a department without sub-departments)."""
    parents = sa.select(departments.c.parent_id).where(departments.c.parent_id.is_not(None))
    teams = sa.select(departments.c.id).where(departments.c.id.not_in(parents))
    with runtime.engine.connect() as connection:
        return [tuple(r) for r in connection.execute(
            sa.select(users.c.id, users.c.department_id).where(users.c.department_id.in_(teams)).order_by(users.c.id))]


# --- rows ----------------------------------------------------------------------------------------

def batch_random(seed, start):
    """The random sources of the batch starting at row ``start``: a batch is the same whether it
    is made in one go or after an interruption (and python -m bench lists finds its names)."""
    fake = Faker("zh_CN")
    fake.seed_instance(seed * 1_000_003 + start)
    return random.Random(seed * 1_000_003 + start), fake


class Rows:
    """Customers and their follow-ups for one batch, seeded by the batch's position."""

    def __init__(self, runtime, choices, owners, total, follow_ups):
        self.customer = runtime.metadata["customer"]
        self.follow_up = runtime.metadata["follow_up"]
        self.code = self.customer.fields["code"].autonumber
        self.choices = choices
        self.owners = owners
        self.total = total
        self.follow_ups = follow_ups
        self.step = (END - START).total_seconds() / total
        self.custom = [f for f in self.customer.stored_fields if f.name.startswith("x_")]
        self.custom_dates = [f.name for f in self.custom if f.type == "datetime"]
        self.pools = {}
        self.mnemonics = {}
        self.counters = {}

    def batch(self, seed, start, stop):
        rnd, fake = batch_random(seed, start)
        names = CompanyNames(fake, rnd)
        customers, follow_ups = [], []
        for i in range(start, stop):
            customer, visits = self.one(i, rnd, fake, names)
            customers.append(customer)
            follow_ups += visits
        for field in self.custom:  # column by column: 100 fields × 1M rows is the bulk of the work
            pool = self.pools.get(field.name)
            if pool is None:
                pool = self.pools[field.name] = self.pool(random.Random(f"{seed}-{field.name}"), field)
            for row, value in zip(customers, rnd.choices(pool, k=len(customers))):
                row[field.name] = value
        for row in customers:  # dates stay after the customer was made
            for name in self.custom_dates:
                if row[name] is not None and row[name] < row["created_at"]:
                    row[name] = row["created_at"]
        return customers, follow_ups

    def pool(self, rnd, field):
        """1,000 values of a custom field, 30 % of them empty."""
        return [self.custom_value(rnd, field, START + dt.timedelta(days=rnd.randint(0, 2800))) if rnd.random() < 0.7 else None
                for _ in range(1000)]

    def pick(self, rnd, dictionary):
        return rnd.choice(self.choices[dictionary])

    def one(self, i, rnd, fake, names):
        name, _city, brand = names()
        code = self.mnemonics.get(name)
        if code is None:
            code = self.mnemonics[name] = mnemonic(name)
        created = (START + dt.timedelta(seconds=(i + rnd.random() * 0.9) * self.step)).replace(microsecond=0)
        key = f"customer.code:{render(self.code, created)}"
        self.counters[key] = self.counters.get(key, 0) + 1
        owner, department = rnd.choice(self.owners)
        visits = self.visits(rnd, i + 1, owner, created, brand)
        category = self.pick(rnd, "customer_category")
        row = {
            "id": i + 1, "version": 1, "created_at": created, "created_by": owner, "updated_at": created, "updated_by": owner,
            "name": name, "code": render(self.code, created, self.counters[key]), "mnemonic": code, "category": category,
            "agent_level": self.pick(rnd, "agent_level") if category in AGENT_CATEGORIES else None,
            "level": self.pick(rnd, "customer_level"), "status": self.pick(rnd, "customer_status"),
            "region": self.pick(rnd, "region"), "industry": self.pick(rnd, "industry"), "nature": self.pick(rnd, "customer_nature"),
            "source": self.pick(rnd, "customer_source"), "company_scale": self.pick(rnd, "company_scale"),
            "phone": fake.phone_number(), "email": f"info{i + 1}@{fake.domain_name()}", "postcode": fake.postcode(),
            "address": f"{fake.province()}{fake.city()}{fake.district()}{fake.street_name()}{rnd.randint(1, 999)}号",
            "employee_count": rnd.randint(5, 5000), "credit_rating": rnd.randint(1, 5),
            "credit_limit": Decimal(rnd.randrange(0, 500)) * 1000, "registered_on": (created - dt.timedelta(days=rnd.randint(30, 7000))).date(),
            "owner_id": owner, "department_id": department,
            "last_contact_at": max((v["occurred_at"] for v in visits), default=None),
        }
        return row, visits

    def custom_value(self, rnd, field, created):
        kind = field.type
        if kind in ("text", "textarea"):
            return f"{TYPE_LABELS[kind]}{rnd.randrange(100000):05d}" + ("，补充说明" * rnd.randint(1, 5) if kind == "textarea" else "")
        if kind == "integer":
            return rnd.randrange(100000)
        if kind in ("decimal", "money"):
            return Decimal(rnd.randrange(10_000_000)) / 100
        if kind == "percent":
            return Decimal(rnd.randrange(10000)) / 100
        if kind == "date":
            return (created + dt.timedelta(days=rnd.randint(-365, 365))).date()
        if kind == "datetime":
            return created + dt.timedelta(minutes=rnd.randint(0, 500000))
        if kind == "select":
            return self.pick(rnd, field.dictionary)
        if kind == "boolean":
            return rnd.random() < 0.5
        if kind == "rating":
            return rnd.randint(1, 5)
        if kind == "email":
            return f"u{rnd.randrange(10**6)}@example.cn"
        if kind == "phone":
            return f"0{rnd.randint(10, 999)}-{rnd.randint(2000000, 89999999)}"
        raise BenchError(f"no generator for custom field type {kind}")

    def visits(self, rnd, customer_id, owner, created, brand):
        n = rnd.randint(0, round(2 * self.follow_ups))
        out = []
        span = max(60.0, (END - created).total_seconds())
        for _ in range(n):
            at = (created + dt.timedelta(seconds=rnd.random() * span)).replace(microsecond=0)
            out.append({"version": 1, "created_at": at, "created_by": owner, "updated_at": at, "updated_by": owner,
                        "customer_id": customer_id, "type": self.pick(rnd, "follow_up_type"), "occurred_at": at,
                        "subject": rnd.choice(SUBJECTS), "content": rnd.choice(CONTENT).format(p=brand), "owner_id": owner,
                        "next_contact_on": (at + dt.timedelta(days=rnd.randint(3, 60))).date() if rnd.random() < 0.3 else None})
        return out


def load_counters(connection):
    return dict(connection.execute(sa.select(sequences.c.key, sequences.c.value).where(sequences.c.key.like("customer.code:%"))).all())


def save_counters(connection, counters):
    keys = set(load_counters(connection))
    connection.execute(sequences.delete().where(sequences.c.key.in_([k for k in counters if k in keys])))
    connection.execute(sequences.insert(), [{"key": k, "value": v} for k, v in counters.items()])


def fill(runtime, args, owners, done):
    """Customers ``done`` .. ``args.rows`` (and their follow-ups), one transaction per batch."""
    rows = Rows(runtime, dictionary_values(runtime), owners, args.rows, args.follow_ups)
    with runtime.engine.connect() as connection:
        rows.counters = load_counters(connection)
    customer, follow_up = rows.customer.table, rows.follow_up.table
    visits = 0
    with tqdm(total=args.rows, initial=done, desc="customers", unit="row", file=sys.stderr, disable=None) as bar:
        for start in range(done, args.rows, args.batch):
            stop = min(start + args.batch, args.rows)
            customers, follow_ups = rows.batch(args.seed, start, stop)
            with runtime.engine.begin() as connection:
                connection.execute(customer.insert(), customers)
                for i in range(0, len(follow_ups), 20000):
                    connection.execute(follow_up.insert(), follow_ups[i:i + 20000])
                save_counters(connection, rows.counters)
            visits += len(follow_ups)
            bar.update(stop - start)
    with runtime.engine.begin() as connection:
        fix_sequences(connection, [customer, follow_up])
    return visits


def counts(runtime):
    with runtime.engine.connect() as connection:
        return {name: connection.execute(sa.select(sa.func.count()).select_from(runtime.metadata[name].table)).scalar()
                for name in ("customer", "follow_up")} | {
            "departments": connection.execute(sa.select(sa.func.count()).select_from(departments)).scalar(),
            "users": connection.execute(sa.select(sa.func.count()).select_from(users)).scalar()}


def run(args):
    folder = (args.dir or default_dir(args.database_url, args.rows)).resolve()
    database = Database(args.database_url, folder)
    state = read_state(folder)
    if args.fresh and folder.exists():
        if state and state.get("database_url") and state["database_url"] != database.url:
            raise BenchError(f"{folder} belongs to {state['database_url']}; --fresh would not drop that")
        database.drop(force=True)
        shutil.rmtree(folder)
        state = None
    if state and (state["rows"], state["seed"], state["database_url"]) != (args.rows, args.seed, database.url):
        raise BenchError(f"{folder} holds another generation (rows {state['rows']}, seed {state['seed']}, "
                         f"{state['database_url']}); use --dir or --fresh")
    print(f"crm bench generate: {args.rows} customers on {database.dialect} in {folder}")
    print(f"machine: {machine()}")
    print(f"started {dt.datetime.now():%Y-%m-%d %H:%M}, {load()}")
    began = time.perf_counter()
    if state and state.get("complete"):
        print(f"already generated: {json.dumps(state['counts'], ensure_ascii=False)}; nothing to do (--fresh to start again)")
        return 0
    if state is None:
        folder.mkdir(parents=True, exist_ok=True)
        runtime = make_instance(folder, database)
        state = {"rows": args.rows, "seed": args.seed, "database_url": database.url, "password": PASSWORD, "complete": False}
        write_state(folder, state)
    else:
        runtime = open_runtime(folder)
        runtime.upgrade()  # a no-op on a complete schema; finishes an interrupted first upgrade
        print("resuming the interrupted generation")
    try:
        rnd = random.Random(args.seed)
        fake = Faker("zh_CN")
        fake.seed_instance(args.seed)
        with runtime.engine.connect() as connection:
            have_org = connection.execute(sa.select(sa.func.count()).select_from(departments)).scalar() > 0
            done = connection.execute(sa.select(sa.func.coalesce(sa.func.max(runtime.metadata["customer"].table.c.id), 0))).scalar()
        owners = load_owners(runtime) if have_org else make_organisation(runtime, rnd, fake)
        visits = fill(runtime, args, owners, done)
        print("analyze ...", file=sys.stderr)
        analyze(runtime.engine)
        state.update(complete=True, counts=counts(runtime))
        write_state(folder, state)
    finally:
        runtime.dispose()
    print(f"generated {json.dumps(state['counts'], ensure_ascii=False)} ({visits} follow-ups in this run) "
          f"in {time.perf_counter() - began:.0f} s")
    print(f"finished {dt.datetime.now():%Y-%m-%d %H:%M}, {load()}")
    return 0
