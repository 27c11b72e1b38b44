"""Demo data: Chinese companies, contacts and follow-ups made with Faker's zh_CN provider,
written through the record service (so they are validated, numbered and audited like any record)."""
import random
import secrets

import sqlalchemy as sa
from faker import Faker
from tqdm import tqdm

from crm.core import auth
from crm.core.tables import dictionary_items

SALES_REPS = [("zhangwei", "张伟"), ("lina", "李娜"), ("wangfang", "王芳"), ("liuyang", "刘洋")]


def ensure_admin(runtime):
    """Create the user admin with a new random password (returned) unless it exists (None)."""
    with runtime.transaction() as records:
        if auth.get_user(records.session, username="admin"):
            return None
        password = secrets.token_urlsafe(9)
        auth.create_user(records.session, "admin", password, admin=True, display_name="管理员", now=records.now())
        return password


def _values(session, dictionary, leaves_only=False):
    rows = session.execute(sa.select(dictionary_items.c.value, dictionary_items.c.parent_value)
                           .where(dictionary_items.c.dictionary == dictionary)).all()
    parents = {p for _, p in rows if p}
    return [v for v, _ in rows if not (leaves_only and v in parents)]


def generate(runtime, customers=300, seed=2026, progress=True):
    """Add ``customers`` demo customers (with contacts and follow-ups) unless demo data exists."""
    fake = Faker("zh_CN")
    Faker.seed(seed)
    rnd = random.Random(seed)
    with runtime.transaction() as records:
        if records.list("customer", limit=1).items:
            return 0
        session = records.session
        rep_ids = []
        for username, name in SALES_REPS:
            user = auth.get_user(session, username=username)
            rep_ids.append(user["id"] if user else auth.create_user(
                session, username, secrets.token_urlsafe(12), display_name=name, now=records.now()))
        pick = {d: _values(session, d) for d in ("industry", "customer_level", "customer_source", "customer_status",
                                                  "customer_category", "follow_up_type", "gender", "decision_influence")}
        regions = _values(session, "region", leaves_only=True)
        products = [records.create("product", {"name": name, "price": price})["id"] for name, price in
                    (("云客CRM标准版", 19800), ("云客CRM企业版", 59800), ("实施服务(人天)", 2000), ("年度维护", 9800))]
        for _ in tqdm(range(customers), desc="demo customers", disable=not progress, unit="customer"):
            category = rnd.choice([c for c in pick["customer_category"] if "agent" not in c] or pick["customer_category"])
            customer = records.create("customer", {
                "name": fake.unique.company(), "category": category, "level": rnd.choice(pick["customer_level"]),
                "industry": rnd.choice(pick["industry"]), "source": rnd.choice(pick["customer_source"]),
                "status": rnd.choice(pick["customer_status"]), "region": rnd.choice(regions),
                "address": fake.address(), "postcode": fake.postcode(), "phone": fake.phone_number(),
                "email": fake.company_email(), "employee_count": rnd.randint(5, 5000),
                "credit_rating": rnd.randint(1, 5), "owner_id": rnd.choice(rep_ids),
                "products": rnd.sample(products, rnd.randint(0, 2)),
            })
            for n in range(rnd.randint(1, 3)):
                contact = records.create("contact", {
                    "name": fake.name(), "customer_id": customer["id"], "is_primary": n == 0,
                    "gender": rnd.choice(pick["gender"]), "title": fake.job()[:50], "mobile": fake.phone_number(),
                    "email": fake.email(), "birthday": fake.date_of_birth(minimum_age=25, maximum_age=60).isoformat(),
                    "influence": rnd.choice(pick["decision_influence"]), "owner_id": customer["owner_id"],
                })
            for _ in range(rnd.randint(0, 3)):
                when = fake.date_time_between(start_date="-180d", end_date="now")
                records.create("follow_up", {
                    "customer_id": customer["id"], "contact_id": contact["id"], "type": rnd.choice(pick["follow_up_type"]),
                    "occurred_at": when.isoformat(), "subject": rnd.choice(["电话沟通需求", "上门拜访", "发送报价", "产品演示", "商务洽谈"]),
                    "content": fake.paragraph(nb_sentences=2), "owner_id": customer["owner_id"],
                })
    return customers
