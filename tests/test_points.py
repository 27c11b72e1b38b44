"""The points plugin (客户积分): rules as records, accrual in hooks (idempotent), redemption and
adjustment that never go below zero, expiry and birthdays in the daily job, disable/enable."""
import threading

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from webtest import TestApp

from crm.core import access, auth, directory as org
from crm.core.app import make_app
from crm.core.errors import Forbidden, NotFound, ValidationFailed, Vetoed
from crm.core.jobs import all_jobs, run_due
from crm.hooks import hookimpl
from crm.plugins.points import service

SHOP_ORDER = {
    "name": "shop_order", "label": {"zh_CN": "订单", "en": "Order"},
    "fields": {"customer_id": {"type": "link", "entity": "customer", "required": True},
               "amount": {"type": "money", "label": "金额"},
               "status": {"type": "text", "label": "状态"}},
}


class ShopPlugin:
    """Stands for the sales plugin to come: an order entity with a customer and an amount."""

    @hookimpl
    def crm_metadata(self):
        return [SHOP_ORDER]


def user(records, user_id):
    return auth.get_user(records.session, user_id=user_id)


@pytest.fixture
def people(runtime):
    """rep (销售代表), clerk (may adjust points), as user dicts."""
    with runtime.transaction() as records:
        s, now = records.session, records.now()
        rules = {"entities": {"*": {"read": "all"}, "customer": {"read": "all", "update": "all", "create": "all"}},
                 "permissions": ["points.adjust"]}
        access.save_role(s, "points_clerk", {"zh_CN": "积分专员"}, rules, known_permissions=access.all_permissions(runtime))
        rep = org.add_user(s, "rep", "password-rep", now=now, role_names=["sales_rep"])
        clerk = org.add_user(s, "clerk", "password-clerk", now=now, role_names=["points_clerk"])
        return {"rep": user(records, rep), "clerk": user(records, clerk)}


def rule(records, name, event, **values):
    return records.create("points_rule", {"name": name, "event": event, **values})


def balance(records, customer_id):
    return records.as_system().get("customer", customer_id)["points_balance"]


def entries(records, customer_id):
    return [(e["kind"], e["points"], e["balance_after"]) for e in reversed(service.ledger(records.as_system(), customer_id))]


def test_rules_accrue_on_events_with_conditions_and_level_multipliers(runtime, clock):
    with runtime.transaction() as records:
        signup = rule(records, "新客户", "customer_created", fixed_points=100, condition={"!": {"empty": {"var": "phone"}}})
        visit = rule(records, "拜访", "follow_up_visit", fixed_points=10, level_multipliers={"A": 2, "B": 1.5}, expiry_months=12)
        rule(records, "推荐", "referral", fixed_points=50)
        rule(records, "停用的规则", "follow_up_visit", fixed_points=999, active=False)
        vip = records.create("customer", {"name": "甲公司", "level": "A", "phone": "010-1234"})
        quiet = records.create("customer", {"name": "乙公司", "level": "B"})          # no phone: no signup points
        friend = records.create("customer", {"name": "丙公司", "level": "C", "phone": "020-1", "points_referred_by": vip["id"]})
        for customer in (vip, quiet, friend):
            records.create("follow_up", {"customer_id": customer["id"], "subject": "拜访", "type": "visit", "occurred_at": "2026-11-20T10:00:00"})
        records.create("follow_up", {"customer_id": vip["id"], "subject": "电话", "type": "phone", "occurred_at": "2026-11-21T10:00:00"})
        assert balance(records, vip["id"]) == 100 + 20 + 50
        assert balance(records, quiet["id"]) == 15                      # 10 × 1.5
        assert balance(records, friend["id"]) == 100 + 10               # no multiplier for C
        ledger = service.ledger(records, vip["id"])
        by_rule = {e["rule_id"]: e for e in ledger}
        assert by_rule[visit["id"]]["expires_on"].isoformat() == "2027-11-23" and by_rule[visit["id"]]["source_entity"] == "follow_up"
        assert by_rule[signup["id"]]["source_id"] == vip["id"] and by_rule[signup["id"]]["reason"] == "新客户"
        assert [e["balance_after"] for e in reversed(ledger)] == [100, 150, 170]   # signup, referral (丙 signed up), visit


def test_accrual_is_idempotent(runtime):
    with runtime.transaction() as records:
        visit = rule(records, "拜访", "follow_up_visit", fixed_points=10)
        customer = records.create("customer", {"name": "甲"})
        follow_up = records.create("follow_up", {"customer_id": customer["id"], "subject": "电话", "type": "phone",
                                                 "occurred_at": "2026-11-20T10:00:00"})
        assert balance(records, customer["id"]) == 0
        records.update("follow_up", follow_up["id"], {"type": "visit"})            # now it qualifies
        records.update("follow_up", follow_up["id"], {"subject": "拜访（补记）"})      # re-processed: no double
        record = records.get("follow_up", follow_up["id"])
        rules = service.active_rules(records)
        assert service.accrue(records, rules[0], customer["id"], "follow_up", follow_up["id"], record) is None
        assert balance(records, customer["id"]) == 10 and len(service.ledger(records, customer["id"])) == 1
        key = f"rule:{visit['id']}:follow_up:{follow_up['id']}"
        table = records.entity("points_ledger").table
        assert records.session.execute(sa.select(table.c.dedupe_key)).scalars().all() == [key]
    with runtime.transaction() as records, pytest.raises(IntegrityError):   # the unique index, declared in metadata
        records.as_system().create("points_ledger", {"customer_id": customer["id"], "points": 10, "kind": "accrual", "dedupe_key": key})


def test_business_records_earn_points_per_yuan_once(make_runtime):
    runtime = make_runtime(plugins=[("shop", ShopPlugin())])
    with runtime.transaction() as records:
        with pytest.raises(Vetoed, match="customer_id|没有实体"):
            rule(records, "订单", "record", source_entity="product", points_per_yuan=1, amount_field="price")
        rule(records, "订单积分", "record", source_entity="shop_order", points_per_yuan="0.5", amount_field="amount",
             condition={"==": [{"var": "status"}, "paid"]},
             level_multipliers={"if": [{"==": [{"var": "customer.level"}, "A"]}, 2, 1]})
        customer = records.create("customer", {"name": "甲", "level": "A"})
        order = records.create("shop_order", {"customer_id": customer["id"], "amount": "1999.90", "status": "new"})
        assert balance(records, customer["id"]) == 0                        # not paid yet
        records.update("shop_order", order["id"], {"status": "paid"})
        assert balance(records, customer["id"]) == 1999                     # 1999.90 × 0.5 × 2, rounded down
        records.update("shop_order", order["id"], {"amount": "5000"})        # re-processing an order does not double
        assert balance(records, customer["id"]) == 1999


def test_rules_are_checked_when_saved(runtime):
    with runtime.transaction() as records:
        with pytest.raises(Vetoed) as bad:
            rule(records, "坏条件", "follow_up_visit", fixed_points=1, condition={"nope": [1]})
        assert bad.value.fields == {"condition": bad.value.message}
        with pytest.raises(Vetoed, match="unknown field"):
            rule(records, "拼错字段", "follow_up_visit", fixed_points=1, condition={"==": [{"var": "tpye"}, "visit"]})
        with pytest.raises(Vetoed, match="amount field"):
            rule(records, "按金额", "customer_created", points_per_yuan=1)
        with pytest.raises(Vetoed, match="multipliers must be numbers"):
            rule(records, "倍数", "customer_created", fixed_points=1, level_multipliers={"A": "double"})
        with pytest.raises(Vetoed, match="fixed points or points per yuan"):
            rule(records, "零分", "customer_created")
        ok = rule(records, "好", "follow_up_visit", fixed_points=1, condition={"==": [{"var": "customer.level"}, "A"]})
        with pytest.raises(Vetoed):
            records.update("points_rule", ok["id"], {"condition": {"==": [1]}})


def test_redemption_never_goes_below_zero_and_uses_soonest_expiring_points(runtime, people):
    with runtime.transaction() as records:
        rule(records, "拜访", "follow_up_visit", fixed_points=30, expiry_months=1)
        customer = records.create("customer", {"name": "甲", "owner_id": people["rep"]["id"]})
        records.create("follow_up", {"customer_id": customer["id"], "subject": "拜访", "type": "visit", "occurred_at": "2026-11-20T10:00:00"})
    with runtime.transaction(user=people["clerk"]) as records:
        service.adjust(records, customer["id"], 50, "老客户补偿")                   # no expiry
    with runtime.transaction(user=people["rep"]) as records:
        with pytest.raises(ValidationFailed, match="积分不足"):
            service.redeem(records, customer["id"], 81, "gift")
        with pytest.raises(ValidationFailed):
            service.redeem(records, customer["id"], 0, "gift")
        with pytest.raises(ValidationFailed):
            service.redeem(records, customer["id"], 5, None)
        entry = service.redeem(records, customer["id"], 40, "warranty_extension", "延保一年")
        assert entry["created_by"] == people["rep"]["id"] and entry["balance_after"] == 40
    with runtime.transaction() as records:
        lots = {e["reason"]: e["remaining"] for e in service.ledger(records, customer["id"]) if e["points"] > 0}
        assert lots == {"拜访": 0, "老客户补偿": 40}                                # the expiring credit went first
    with runtime.transaction(user=people["rep"]) as records:
        service.redeem(records, customer["id"], 40, "discount")
        with pytest.raises(ValidationFailed):
            service.redeem(records, customer["id"], 1, "discount")
        assert balance(records, customer["id"]) == 0
    with runtime.transaction() as records:
        other = records.create("customer", {"name": "别人的客户", "owner_id": people["clerk"]["id"]})
    with runtime.transaction(user=people["rep"]) as records, pytest.raises(NotFound):
        service.redeem(records, other["id"], 1, "gift")                            # not within the rep's reach


def test_adjustment_needs_the_permission_and_a_reason(runtime, people):
    with runtime.transaction() as records:
        customer = records.create("customer", {"name": "甲", "owner_id": people["rep"]["id"]})
        assert "points.adjust" in access.all_permissions(runtime)
    with runtime.transaction(user=people["rep"]) as records, pytest.raises(Forbidden):
        service.adjust(records, customer["id"], 100, "想加点分")
    with runtime.transaction(user=people["clerk"]) as records:
        with pytest.raises(ValidationFailed):
            service.adjust(records, customer["id"], 100, "  ")
        with pytest.raises(ValidationFailed):
            service.adjust(records, customer["id"], "1.5", "半分")
        entry = service.adjust(records, customer["id"], 100, "活动赠送")
        assert (entry["kind"], entry["created_by"], entry["reason"]) == ("adjustment", people["clerk"]["id"], "活动赠送")
        with pytest.raises(ValidationFailed, match="积分不足"):
            service.adjust(records, customer["id"], -101, "扣多了")
        service.adjust(records, customer["id"], -30, "录错更正")
        assert entries(records, customer["id"]) == [("adjustment", 100, 100), ("adjustment", -30, 70)]


def test_the_ledger_is_written_by_the_service_only(runtime, people):
    with runtime.transaction() as records:
        admin = user(records, auth.create_user(records.session, "admin", "password-admin", admin=True, now=records.now()))
        customer = records.create("customer", {"name": "甲"})
    with runtime.transaction(user=admin) as records:
        entry = service.adjust(records, customer["id"], 10, "开户")
        with pytest.raises(Vetoed):
            records.create("points_ledger", {"customer_id": customer["id"], "points": 1000, "kind": "adjustment"})
        with pytest.raises(Vetoed):
            records.update("points_ledger", entry["id"], {"points": 1000})
        with pytest.raises(Vetoed):
            records.delete("points_ledger", entry["id"])
        with pytest.raises(ValidationFailed):                                       # readonly for people
            records.update("customer", customer["id"], {"points_balance": 1000})
    with runtime.transaction(user=people["rep"]) as records, pytest.raises(Forbidden):
        records.create("points_ledger", {"customer_id": customer["id"], "points": 1000, "kind": "adjustment"})


def test_expiry_job_writes_off_what_is_left_once(runtime, people, clock):
    with runtime.transaction() as records:
        rule(records, "拜访", "follow_up_visit", fixed_points=30, expiry_months=1)
        customer = records.create("customer", {"name": "甲", "owner_id": people["rep"]["id"]})
        records.create("follow_up", {"customer_id": customer["id"], "subject": "拜访", "type": "visit", "occurred_at": "2026-11-23T09:00:00"})
    clock.advance(days=10)
    with runtime.transaction() as records:
        records.create("follow_up", {"customer_id": customer["id"], "subject": "再访", "type": "visit", "occurred_at": "2026-12-03T09:00:00"})
    with runtime.transaction(user=people["rep"]) as records:
        service.redeem(records, customer["id"], 20, "gift")                          # from the first credit
    clock.advance(days=19)                                                          # 12-22: nothing expired yet
    assert dict(run_due(runtime))["points.daily"] == "done ({'birthdays': 0, 'expired': 0})"
    clock.advance(days=1)                                                           # 12-23: the first credit expires
    assert dict(run_due(runtime))["points.daily"] == "done ({'birthdays': 0, 'expired': 1})"
    assert dict(run_due(runtime))["points.daily"] == "already ran today"
    with runtime.transaction() as records:
        assert service.expire(records, records.today()) == 0                        # idempotent when called again
        assert entries(records, customer["id"]) == [("accrual", 30, 30), ("accrual", 30, 60), ("redemption", -20, 40), ("expiry", -10, 30)]
    clock.advance(days=10)                                                          # 01-02: the second credit expires
    list(run_due(runtime))
    clock.advance(days=1)
    list(run_due(runtime))
    with runtime.transaction() as records:
        assert balance(records, customer["id"]) == 0
        assert [k for k, _, _ in entries(records, customer["id"])].count("expiry") == 2


def test_birthday_points_once_a_year(runtime, clock):
    with runtime.transaction() as records:
        rule(records, "生日礼", "birthday", fixed_points=88, condition={"var": "is_primary"})
        customer = records.create("customer", {"name": "甲"})
        records.create("contact", {"name": "王五", "customer_id": customer["id"], "birthday": "1980-11-24"})     # primary
        records.create("contact", {"name": "赵六", "customer_id": customer["id"], "birthday": "1985-11-24"})     # not primary
    list(run_due(runtime))
    with runtime.transaction() as records:
        assert balance(records, customer["id"]) == 0
    clock.advance(days=1)
    list(run_due(runtime))
    with runtime.transaction() as records:
        assert balance(records, customer["id"]) == 88
        assert service.birthdays(records, records.today()) == 0                      # once per year
    clock.advance(days=365)
    list(run_due(runtime))
    with runtime.transaction() as records:
        assert balance(records, customer["id"]) == 176


def test_accrual_can_be_paused_in_the_settings(runtime):
    with runtime.transaction() as records:
        rule(records, "新客户", "customer_created", fixed_points=5)
        settings = records.singleton("system_settings")
        records.update("system_settings", settings["id"], {"points_enabled": False})
        paused = records.create("customer", {"name": "甲"})
        records.update("system_settings", settings["id"], {"points_enabled": True})
        counted = records.create("customer", {"name": "乙"})
        assert (balance(records, paused["id"]), balance(records, counted["id"])) == (0, 5)


def test_merging_customers_moves_their_points(runtime):
    with runtime.transaction() as records:
        rule(records, "新客户", "customer_created", fixed_points=5)
        a = records.create("customer", {"name": "甲"})
        b = records.create("customer", {"name": "甲（重复）"})
        records.merge("customer", a["id"], b["id"])
        assert balance(records, a["id"]) == 10 and len(service.ledger(records, a["id"])) == 2


@pytest.mark.parametrize("attempts", [4])
def test_concurrent_redemptions_never_overdraw(runtime, people, attempts):
    with runtime.transaction(user=people["clerk"]) as records:
        customer = records.create("customer", {"name": "甲", "owner_id": people["rep"]["id"]})
        service.adjust(records, customer["id"], 100, "开户")
    barrier, outcomes = threading.Barrier(attempts), []

    def redeem():
        barrier.wait(timeout=10)
        try:
            with runtime.transaction(user=people["rep"]) as records:
                service.redeem(records, customer["id"], 30, "gift")
            outcomes.append("ok")
        except ValidationFailed:
            outcomes.append("refused")

    threads = [threading.Thread(target=redeem) for _ in range(attempts)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok", "ok", "ok", "refused"]
    with runtime.transaction() as records:
        assert balance(records, customer["id"]) == 10
        assert sum(e["points"] for e in service.ledger(records, customer["id"])) == 10


def test_disabled_plugin_leaves_no_trace_and_enabling_brings_the_data_back(make_runtime, clock):
    on = make_runtime()
    with on.transaction() as records:
        rule(records, "拜访", "follow_up_visit", fixed_points=10)
        customer = records.create("customer", {"name": "甲"})
        records.create("follow_up", {"customer_id": customer["id"], "subject": "拜访", "type": "visit", "occurred_at": "2026-11-20T10:00:00"})
        auth.create_user(records.session, "admin", "password-admin", admin=True, now=records.now())
    off = make_runtime(**{"crm.plugins.disabled": "points"})
    assert "points_ledger" not in off.metadata.entities and "points_rule" not in off.metadata.entities
    assert not any(f.startswith("points_") for f in off.metadata["customer"].fields)
    assert not any(f.startswith("points_") for f in off.metadata["system_settings"].fields)
    assert "points.adjust" not in access.all_permissions(off)
    assert not any(job.name.startswith("points.") for job in all_jobs(off))
    with off.transaction() as records:
        assert not any(k.startswith("points_") for k in records.get("customer", customer["id"]))
        records.create("follow_up", {"customer_id": customer["id"], "subject": "又拜访", "type": "visit", "occurred_at": "2026-11-21T10:00:00"})
    client = TestApp(make_app(off))
    token = client.post_json("/api/v1/auth/token", {"username": "admin", "password": "password-admin"}).json["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert "points" not in client.get("/api/v1/meta/entities", headers=headers).text
    assert "points" not in client.get("/api/v1/openapi.json", headers=headers).text
    assert "points" not in client.get(f"/api/v1/customer/{customer['id']}", headers=headers).text
    client.get("/api/v1/points_ledger", headers=headers, status=404)
    on_again = make_runtime()
    with on_again.transaction() as records:
        assert balance(records, customer["id"]) == 10
        assert [e["points"] for e in service.ledger(records, customer["id"])] == [10]
        assert [r["name"] for r in records.list("points_rule").items] == ["拜访"]


def test_pages_show_the_ledger_on_the_customer_and_redeem(runtime, people):
    import re
    with runtime.transaction() as records:
        rule(records, "新客户", "customer_created", fixed_points=100)
        customer = records.create("customer", {"name": "积分客户", "owner_id": people["rep"]["id"]})
    app = TestApp(make_app(runtime))
    form = app.get("/login").forms["login-form"]
    form["username"], form["password"] = "rep", "password-rep"
    form.submit(status=302)
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', app.get("/app").text).group(1)
    detail = app.get(f"/app/customer/{customer['id']}")
    assert "新客户" in detail.html.select_one('[data-related="points_ledger"]').text
    actions = [a.get_text(strip=True) for a in detail.html.select(".page-head .actions .button")]
    assert "积分消费" in actions and "调整积分" not in actions                    # no points.adjust for a rep
    app.post(f"/app/points/customers/{customer['id']}/redeem", {"points": "500", "redemption_type": "gift", "csrf_token": csrf}, status=302)
    page = app.get(f"/app/points/customers/{customer['id']}/redeem")
    assert "积分不足" in page.text and page.html.select_one("#points-balance").text == "100"
    done = app.post(f"/app/points/customers/{customer['id']}/redeem", {"points": "60", "redemption_type": "gift", "reason": "台历",
                                                                       "csrf_token": csrf}, status=302).follow()
    assert "余额 40" in done.text
    app.get(f"/app/points/customers/{customer['id']}/adjust", status=200)
    app.post(f"/app/points/customers/{customer['id']}/adjust", {"points": "10", "reason": "x", "csrf_token": csrf}, status=302)
    with runtime.transaction() as records:
        assert balance(records, customer["id"]) == 40                              # refused: no permission


def test_browser_points_ledger_on_the_customer(tmp_path):
    """In Debian's Chromium (Playwright): the ledger tab on the customer, then a redemption."""
    from tests import browser as b
    sync_api = b.playwright_api()
    runtime = b.sqlite_runtime(tmp_path)
    with runtime.transaction() as records:
        auth.create_user(records.session, "admin", "password-admin", admin=True, display_name="王管理", now=records.now())
        rule(records, "拜访积分", "follow_up_visit", fixed_points=20, expiry_months=12)
        customer = records.create("customer", {"name": "积分浏览器客户", "level": "A"})
        records.create("follow_up", {"customer_id": customer["id"], "subject": "上门拜访", "type": "visit", "occurred_at": "2026-11-20T10:00:00"})
    errors = []
    try:
        with b.served(make_app(runtime)) as base, b.chromium(sync_api) as browser:
            page = b.new_page(browser, errors)
            b.login(page, base, "admin", "password-admin")
            page.goto(f"{base}/app/customer/{customer['id']}")
            sync_api.expect(page.locator("[data-field='points_balance'] dd")).to_contain_text("20")
            page.click("[role=tab]:has-text('积分记录')")
            ledger = page.locator("[data-related='points_ledger']")
            sync_api.expect(ledger).to_contain_text("拜访积分")
            sync_api.expect(ledger).to_contain_text("累积")
            with page.expect_navigation():
                page.click("[id='action-points.redeem']")
            page.fill("#points-points", "15")
            page.select_option("#points-type", "warranty_extension")
            page.fill("#points-reason", "延保半年")
            with page.expect_navigation():
                page.click("#points-form button[type=submit]")
            sync_api.expect(page.locator(".flashes")).to_contain_text("余额 5")
            page.click("[role=tab]:has-text('积分记录')")
            sync_api.expect(page.locator("[data-related='points_ledger']")).to_contain_text("延保半年")
        assert not errors, f"JavaScript errors: {errors}"
    finally:
        runtime.dispose()
    with runtime.transaction() as records:
        assert balance(records, customer["id"]) == 5
