"""The customer_care plugin: statistics, primary contacts, comments, reminders (with a real SMTP server)."""
import datetime as dt
import socket

import pytest
from aiosmtpd.controller import Controller

from crm.core import auth, directory as org, notifications
from crm.core.errors import Vetoed
from crm.core.jobs import run_due
from plugins.customer_care import views


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, envelope.content.decode("utf-8", "replace")))
        return "250 OK"


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, inbox
    controller.stop()


@pytest.fixture
def team(runtime):
    with runtime.transaction() as records:
        s, now = records.session, records.now()
        boss = org.add_user(s, "boss", "password-boss", now=now, role_names=["sales_manager"])
        rep = org.add_user(s, "rep", "password-rep", now=now, role_names=["sales_rep"], manager_id=boss)
        other = org.add_user(s, "other", "password-other", now=now, role_names=["sales_rep"])
        s.execute(auth.users.update().where(auth.users.c.id == rep).values(email="rep@example.com"))
        return {n: auth.get_user(s, user_id=i) for n, i in (("boss", boss), ("rep", rep), ("other", other))}


def test_last_contact_follows_follow_ups_and_products_are_auto_linked(runtime, clock):
    with runtime.transaction() as records:
        product = records.create("product", {"name": "云客CRM企业版"})
        customer = records.create("customer", {"name": "华信科技"})
        first = records.create("follow_up", {"customer_id": customer["id"], "subject": "电话", "occurred_at": "2026-11-01T10:00:00",
                                             "content": "客户对云客CRM企业版很感兴趣"})
        assert records.get("follow_up", first["id"])["products"] == [product["id"]]
        assert records.get("customer", customer["id"])["products"] == [product["id"]]
        later = records.create("follow_up", {"customer_id": customer["id"], "subject": "拜访", "occurred_at": "2026-11-20T15:00:00"})
        assert records.get("customer", customer["id"])["last_contact_at"] == dt.datetime(2026, 11, 20, 15)
        assert records.get("customer", customer["id"])["version"] == 1   # derived values do not bump the version
        records.delete("follow_up", later["id"])
        assert records.get("customer", customer["id"])["last_contact_at"] == dt.datetime(2026, 11, 1, 10)


def test_one_primary_contact_per_customer(runtime):
    with runtime.transaction() as records:
        a = records.create("customer", {"name": "甲"})
        b = records.create("customer", {"name": "乙"})
        first = records.create("contact", {"name": "张三", "customer_id": a["id"]})
        second = records.create("contact", {"name": "李四", "customer_id": a["id"]})
        assert records.get("contact", first["id"])["is_primary"] and not second["is_primary"]
        records.update("contact", second["id"], {"is_primary": True})
        assert not records.get("contact", first["id"])["is_primary"]
        moved = records.update("contact", first["id"], {"customer_id": b["id"]})
        assert moved["is_primary"]                         # alone at the new customer
        back = records.update("contact", first["id"], {"customer_id": a["id"]})
        assert not back["is_primary"]                      # 李四 stays primary at 甲


def test_only_the_owners_manager_may_comment(runtime, team):
    with runtime.transaction(user=team["rep"]) as records:
        customer = records.create("customer", {"name": "丙", "owner_id": team["rep"]["id"]})
        follow_up = records.create("follow_up", {"customer_id": customer["id"], "subject": "拜访", "owner_id": team["rep"]["id"],
                                                 "occurred_at": "2026-11-20T09:00:00"})
    with runtime.transaction(user=team["other"]) as records:
        records.as_system().get("follow_up", follow_up["id"])
    with runtime.transaction(user=team["boss"]) as records:
        commented = records.update("follow_up", follow_up["id"], {"manager_comment": "跟进及时，继续推进"})
        assert commented["commented_by"] == team["boss"]["id"] and commented["commented_at"]
    with runtime.transaction(user=team["rep"]) as records, pytest.raises(Vetoed):
        records.update("follow_up", follow_up["id"], {"manager_comment": "自己点评自己"})


def test_daily_reminders_once_per_day_and_emailed(make_runtime, smtp, clock):
    controller, inbox = smtp
    runtime = make_runtime(**{"crm.mail.host": "127.0.0.1", "crm.mail.port": str(controller.port), "crm.mail.from": "crm@example.com"})
    with runtime.transaction() as records:
        rep = org.add_user(records.session, "rep", "password-rep", now=records.now(), role_names=["sales_rep"])
        records.session.execute(auth.users.update().where(auth.users.c.id == rep).values(email="rep@example.com"))
        silent = records.create("customer", {"name": "沉默客户", "owner_id": rep})
        weekly = records.create("customer", {"name": "周联系客户", "owner_id": rep, "contact_strategy": "every_7_days"})
        records.create("customer", {"name": "老买家", "owner_id": rep, "purchase_strategy": "every_30_days",
                                    "registered_on": "2026-09-01"})
        records.create("follow_up", {"customer_id": weekly["id"], "subject": "电话", "occurred_at": "2026-11-23T09:00:00",
                                     "next_contact_on": "2026-11-30"})
        records.create("contact", {"name": "王五", "customer_id": silent["id"], "birthday": "1980-12-02", "owner_id": rep})
        records.create("contact", {"name": "赵六", "customer_id": silent["id"], "birthday": "1980-12-20", "owner_id": rep})

    def titles():
        with runtime.transaction() as records:
            return sorted(n["title"] for n in notifications.for_user(records, rep))

    first = dict(run_due(runtime))["customer_care.reminders"]
    assert "'business_decline': 1" in first
    assert titles() == ["业务下滑：老买家 已 83 天没有购买"]
    assert len(inbox.messages) == 1 and inbox.messages[0][0] == ["rep@example.com"]
    assert dict(run_due(runtime))["customer_care.reminders"] == "already ran today"

    clock.advance(days=1)       # 11-24: 王五's birthday (12-02) is 8 days away, outside the 7-day window
    list(run_due(runtime))
    assert not any("王五" in t for t in titles())
    clock.advance(days=7)       # 12-01: birthday in 1 day; the weekly customer's plan (11-30) is due; 8 days silent
    list(run_due(runtime))
    after = titles()
    assert any("王五" in t and "12月2日生日" in t for t in after)
    assert any(t.startswith("跟进计划到期：周联系客户") for t in after)
    assert any(t.startswith("客户 周联系客户 已超过 7 天未联系") for t in after)
    assert not any("沉默客户 已超过" in t for t in after)       # default 30 days not reached yet
    clock.advance(days=30)
    list(run_due(runtime))
    assert sum("沉默客户 已超过 30 天未联系" in t for t in titles()) == 1
    with runtime.transaction() as records:
        assert len(records.list("business_decline").items) == 1    # logged once, not every day
    assert all("rep@example.com" in rcpt for rcpt, _ in inbox.messages) and len(inbox.messages) == 3


def test_customer_views_respect_access(runtime, team, clock):
    with runtime.transaction() as records:
        mine = records.create("customer", {"name": "我的客户", "owner_id": team["rep"]["id"], "region": "CN-BJ"})
        records.create("customer", {"name": "别人的客户", "owner_id": team["other"]["id"], "region": "CN-BJ"})
        records.set_derived("customer", mine["id"], {"deal_amount": 5000})
    clock.advance(days=40)
    with runtime.transaction(user=team["rep"]) as records:
        assert [c["name"] for c in views.not_contacted(records, 30)] == ["我的客户"]
        assert [c["name"] for c in views.ranking(records)] == ["我的客户"]
        assert views.distribution(records, "region") == [("CN-BJ", {"zh_CN": "北京市", "en": "Beijing"}, 1)]
    with runtime.transaction(user=team["boss"]) as records:
        assert sorted(c["name"] for c in views.not_contacted(records, 30)) == ["我的客户"]   # boss leads rep, not other
