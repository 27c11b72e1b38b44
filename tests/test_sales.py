"""The sales plugin (销售管理): deal statistics on the customer, lead conversion, quote and order
totals, the contract approval, payment plans and payments (no overpayment), the receivables job,
the other plugins fed through their configuration, disable/enable, the API and the pages."""
import datetime as dt
import email
import email.policy
import re
import threading
from decimal import Decimal

import pytest
from webtest import TestApp

from crm.core import access, auth, directory as org, notifications, workflow
from crm.core.app import make_app
from crm.core.errors import Conflict, Forbidden, ValidationFailed, Vetoed
from crm.core.jobs import all_jobs, run_due
from crm.plugins.sales import documents, leads
from tests.test_customer_care import smtp  # noqa: F401  (the real SMTP test server)

SALES = ("lead", "opportunity", "quote", "contract", "sales_order", "payment_plan", "payment")
TODAY = dt.date(2026, 11, 23)   # the test clock's day


@pytest.fixture
def team(runtime):
    """rep (销售代表: the sales entities in own scope, every lead readable) and boss (rep's manager, 销售经理)."""
    with runtime.transaction() as records:
        s, now = records.session, records.now()
        own = {"read": "own", "create": "all", "update": "own", "delete": "own"}
        rules = {"entities": {"*": {"read": "all"}, **{e: own for e in ("customer", "contact", "follow_up") + SALES},
                              "lead": {**own, "read": "all"}}}
        access.save_role(s, "sales_team", {"zh_CN": "销售团队"}, rules)
        boss = org.add_user(s, "boss", "password-boss", now=now, role_names=["sales_manager"])
        rep = org.add_user(s, "rep", "password-rep", now=now, role_names=["sales_team"], manager_id=boss)
        return {n: auth.get_user(s, user_id=i) for n, i in (("boss", boss), ("rep", rep))}


def mail_text(content):
    return email.message_from_string(content, policy=email.policy.default).get_content()


def stats(records, customer_id, deleted=False):
    c = records.as_system().get("customer", customer_id, deleted=deleted)
    return c["deal_count"], c["deal_amount"], c["first_deal_on"], c["last_deal_on"]


def signed_contract(records, customer_id, amount, signed_on=None, **values):
    """A contract entered as signed by the system (history, imports); the workflow is tested apart."""
    return records.as_system().create("contract", {"name": "年度采购合同", "customer_id": customer_id, "amount": amount,
                                                   "status": "signed", "signed_on": signed_on, **values})


def order(records, customer_id, lines, **values):
    return records.create("sales_order", {"customer_id": customer_id, "lines": lines, **values})


def test_deal_statistics_follow_signed_contracts_and_direct_orders(runtime, team, clock):
    with runtime.transaction(user=team["rep"]) as records:
        customer = records.create("customer", {"name": "华信科技", "owner_id": team["rep"]["id"]})
        contract = records.create("contract", {"name": "ERP实施合同", "customer_id": customer["id"], "amount": "10000"})
        assert contract["status"] == "draft" and stats(records, customer["id"]) == (0, 0, None, None)
        workflow.transition(records, "contract", contract["id"], "submit")
    with runtime.transaction(user=team["boss"]) as records:
        workflow.transition(records, "contract", contract["id"], "approve")
    with runtime.transaction(user=team["rep"]) as records:
        signed = workflow.transition(records, "contract", contract["id"], "sign")
        assert signed["status"] == "signed" and signed["signed_on"] == TODAY
        assert stats(records, customer["id"]) == (1, Decimal(10000), TODAY, TODAY)
        # an order of the contract delivers it: not a deal of its own
        order(records, customer["id"], [{"description": "实施服务", "quantity": 1, "unit_price": "10000"}],
              contract_id=contract["id"], status="confirmed")
        assert stats(records, customer["id"])[0] == 1
        direct = order(records, customer["id"], [{"description": "加购模块", "quantity": 2, "unit_price": "1000"}],
                       status="confirmed", ordered_on="2026-10-01")
        assert stats(records, customer["id"]) == (2, Decimal(12000), dt.date(2026, 10, 1), TODAY)
        records.update("sales_order", direct["id"], {"lines": [{"description": "加购模块", "quantity": 3, "unit_price": "1000"}]})
        assert stats(records, customer["id"])[1] == Decimal(13000)
        records.update("sales_order", direct["id"], {"status": "cancelled"})
        assert stats(records, customer["id"]) == (1, Decimal(10000), TODAY, TODAY)
        records.update("sales_order", direct["id"], {"status": "completed"})
        records.delete("sales_order", direct["id"])
        assert stats(records, customer["id"]) == (1, Decimal(10000), TODAY, TODAY)
        assert records.get("customer", customer["id"])["version"] == 1      # derived values: no version bump
    with runtime.transaction() as records:
        records.restore("sales_order", direct["id"])
        assert stats(records, customer["id"]) == (2, Decimal(13000), dt.date(2026, 10, 1), TODAY)
    with runtime.transaction(user=team["rep"]) as records, pytest.raises(ValidationFailed) as readonly:
        records.update("customer", customer["id"], {"deal_count": 99})     # people cannot write the statistics
    assert "deal_count" in readonly.value.fields


def test_merging_customers_moves_their_deals(runtime):
    with runtime.transaction() as records:
        a = records.create("customer", {"name": "华信科技"})
        b = records.create("customer", {"name": "华信科技有限公司"})
        signed_contract(records, a["id"], "5000", signed_on="2026-03-01")
        order(records, b["id"], [{"description": "耗材", "quantity": 10, "unit_price": "80"}], status="delivered", ordered_on="2026-06-01")
        assert stats(records, b["id"]) == (1, Decimal(800), dt.date(2026, 6, 1), dt.date(2026, 6, 1))
        records.merge("customer", a["id"], b["id"])
        assert stats(records, a["id"]) == (2, Decimal(5800), dt.date(2026, 3, 1), dt.date(2026, 6, 1))
        assert stats(records, b["id"], deleted=True) == (0, 0, None, None)
        assert records.list("sales_order", filters=[("customer_id", "eq", a["id"])]).items


def test_lead_conversion_makes_customer_contact_and_opportunity_once(runtime, team):
    with runtime.transaction(user=team["rep"]) as records:
        lead = records.create("lead", {"company_name": "北京云帆科技有限公司", "contact_name": "刘经理", "mobile": "13800138000",
                                       "job_title": "采购经理", "source": "exhibition", "estimated_amount": "80000",
                                       "requirement": "需要CRM系统，50用户"})
        assert lead["owner_id"] == team["rep"]["id"] and lead["code"].startswith("XS202611-")
        with pytest.raises(Vetoed):
            records.update("lead", lead["id"], {"status": "converted"})      # only the conversion converts
        done = leads.convert(records, lead["id"], opportunity_name="云帆CRM项目")
        customer, contact, opportunity = done["customer"], done["contact"], done["opportunity"]
        assert customer["name"] == "北京云帆科技有限公司" and customer["phone"] == "13800138000" and customer["source"] == "exhibition"
        assert (contact["name"], contact["customer_id"], contact["title"], contact["is_primary"]) == ("刘经理", customer["id"], "采购经理", True)
        assert (opportunity["name"], opportunity["customer_id"], opportunity["contact_id"], opportunity["amount"]) == \
            ("云帆CRM项目", customer["id"], contact["id"], Decimal(80000))
        assert opportunity["stage"] == "initial" and opportunity["probability"] == 10
        stored = records.get("lead", lead["id"])
        assert stored["status"] == "converted" and stored["converted_customer_id"] == customer["id"]
        assert stored["converted_opportunity_id"] == opportunity["id"] and stored["converted_at"]
        assert records.get("opportunity", opportunity["id"])["lead_id"] == lead["id"]
        with pytest.raises(Conflict):
            leads.convert(records, lead["id"])
        with pytest.raises(Vetoed):
            records.update("lead", lead["id"], {"status": "new"})
        # a second lead of the same company joins the existing customer, without an opportunity
        again = records.create("lead", {"company_name": "北京云帆科技有限公司", "contact_name": "王工"})
        assert [c["id"] for c in leads.similar_customers(records, again)] == [customer["id"]]
        second = leads.convert(records, again["id"], customer_id=customer["id"], with_opportunity=False)
        assert second["customer"]["id"] == customer["id"] and second["opportunity"] is None
        assert len(records.list("customer", filters=[("name", "eq", "北京云帆科技有限公司")]).items) == 1
        invalid = records.create("lead", {"company_name": "无效公司", "status": "invalid"})
        with pytest.raises(Conflict):
            leads.convert(records, invalid["id"])
    with runtime.transaction(user=team["boss"]) as records:
        other = records.as_system().create("lead", {"company_name": "别人的线索", "owner_id": team["boss"]["id"]})
    with runtime.transaction(user=team["rep"]) as records:
        with pytest.raises(Forbidden):   # the rep may read but not change the boss's lead
            leads.convert(records, other["id"])
        assert not records.list("customer", filters=[("name", "eq", "别人的线索")]).items


def test_quote_and_order_totals_from_lines(runtime):
    with runtime.transaction() as records:
        customer = records.create("customer", {"name": "华信科技"})
        crm = records.create("product", {"name": "CRM企业版", "kind": "tangible", "price": "1200", "unit": "license"})
        quote = records.create("quote", {"subject": "CRM报价", "customer_id": customer["id"], "discount_amount": "100", "lines": [
            {"product_id": crm["id"], "quantity": 5, "discount": 10},                    # price and unit from the product
            {"description": "实施服务", "quantity": "2.5", "unit": "man_day", "unit_price": "2000"}]})
        lines = quote["lines"]
        assert (lines[0]["unit_price"], lines[0]["unit"], lines[0]["amount"]) == (Decimal(1200), "license", Decimal(5400))
        assert lines[1]["amount"] == Decimal(5000)
        assert (quote["subtotal"], quote["total"], quote["quoted_on"]) == (Decimal(10400), Decimal(10300), TODAY)
        changed = records.update("quote", quote["id"], {"lines": [{**lines[0], "quantity": 1}], "discount_amount": 0})
        assert (changed["subtotal"], changed["total"]) == (Decimal(1080), Decimal(1080))
        assert records.get("quote", quote["id"])["total"] == Decimal(1080)
        with pytest.raises(Vetoed) as refused:
            records.update("quote", quote["id"], {"discount_amount": "2000"})
        assert refused.value.fields == {"discount_amount": refused.value.message} and "明细合计" in refused.value.message
        contract = documents.contract_from_quote(records, quote["id"])
        assert (contract["amount"], contract["quote_id"], contract["status"]) == (Decimal(1080), quote["id"], "draft")
        with pytest.raises(Conflict):           # a draft contract makes no orders yet
            documents.order_from(records, "contract", contract["id"])
        records.as_system().update("contract", contract["id"], {"status": "approved"})
        made = documents.order_from(records, "contract", contract["id"])
        assert (made["contract_id"], made["quote_id"], made["total"], made["status"]) == (contract["id"], quote["id"], Decimal(1080), "draft")
        assert [line["product_id"] for line in made["lines"]] == [crm["id"]]
        extra = records.create("quote", {"subject": "补充报价", "customer_id": customer["id"],
                                         "lines": [{"description": "培训", "quantity": 1, "unit_price": "500"}]})
        merged = records.merge("quote", quote["id"], extra["id"])
        assert (len(merged["lines"]), records.get("quote", quote["id"])["total"]) == (2, Decimal(1580))


def test_opportunity_probability_follows_the_stage(runtime, clock):
    with runtime.transaction() as records:
        customer = records.create("customer", {"name": "华信科技"})
        opp = records.create("opportunity", {"name": "CRM项目", "customer_id": customer["id"], "amount": "50000"})
        assert (opp["stage"], opp["probability"], opp["weighted_amount"]) == ("initial", 10, Decimal(5000))
        opp = records.update("opportunity", opp["id"], {"stage": "negotiation"})
        assert (opp["probability"], opp["weighted_amount"], opp["closed_on"]) == (70, Decimal(35000), None)
        opp = records.update("opportunity", opp["id"], {"probability": 85})
        assert opp["weighted_amount"] == Decimal(42500)
        with pytest.raises(ValidationFailed) as missing:
            records.update("opportunity", opp["id"], {"stage": "lost"})           # 输单原因 required
        assert "lost_reason" in missing.value.fields
        clock.advance(days=2)
        opp = records.update("opportunity", opp["id"], {"stage": "won"})
        assert (opp["probability"], opp["closed_on"]) == (100, TODAY + dt.timedelta(days=2))
        opp = records.update("opportunity", opp["id"], {"stage": "proposal", "probability": 40})
        assert (opp["probability"], opp["closed_on"]) == (40, None)
        follow_up = records.create("follow_up", {"customer_id": customer["id"], "subject": "方案交流", "occurred_at": "2026-11-20T10:00:00",
                                                 "sales_opportunity_id": opp["id"]})
        assert follow_up["sales_opportunity_id"] == opp["id"]
        other = records.create("customer", {"name": "别的客户"})
        with pytest.raises(Vetoed) as elsewhere:
            records.create("follow_up", {"customer_id": other["id"], "subject": "电话", "occurred_at": "2026-11-21T10:00:00",
                                         "sales_opportunity_id": opp["id"]})
        assert "sales_opportunity_id" in elsewhere.value.fields
        with pytest.raises(Vetoed) as wrong:
            records.create("quote", {"subject": "报价", "customer_id": other["id"], "opportunity_id": opp["id"]})
        assert "opportunity_id" in wrong.value.fields


def test_payment_plans_and_payments_keep_amounts_and_refuse_overpayment(runtime, team, clock):
    with runtime.transaction() as records:
        clerk = auth.get_user(records.session, user_id=org.add_user(records.session, "finance", "password-fin", now=records.now(), admin=True))
    with runtime.transaction(user=clerk) as records:      # finance enters the plan of the rep's contract
        customer = records.create("customer", {"name": "华信科技", "owner_id": team["rep"]["id"]})
        contract = signed_contract(records, customer["id"], "10000", owner_id=team["rep"]["id"])
        first = records.create("payment_plan", {"contract_id": contract["id"], "term": "首付款", "due_on": "2026-12-01", "amount": "6000"})
        assert (first["customer_id"], first["owner_id"], first["status"], first["outstanding"]) == \
            (customer["id"], team["rep"]["id"], "unpaid", Decimal(6000))     # the contract's owner gets the reminders
    with runtime.transaction(user=team["rep"]) as records:
        records.create("payment_plan", {"contract_id": contract["id"], "term": "尾款", "due_on": "2027-01-15", "amount": "4000"})
        with pytest.raises(Vetoed) as too_much:
            records.create("payment_plan", {"contract_id": contract["id"], "term": "多余", "due_on": "2027-02-01", "amount": "1"})
        assert "收款计划合计超出" in too_much.value.message
        with pytest.raises(Vetoed):
            records.create("payment_plan", {"term": "无合同", "due_on": "2027-02-01", "amount": "1"})
        paid = records.create("payment", {"payment_plan_id": first["id"], "amount": "2500", "method": "bank_transfer"})
        assert (paid["customer_id"], paid["contract_id"], paid["received_on"]) == (customer["id"], contract["id"], TODAY)
        plan = records.get("payment_plan", first["id"])
        assert (plan["received_amount"], plan["outstanding"], plan["status"]) == (Decimal(2500), Decimal(3500), "partial")
        assert records.get("contract", contract["id"])["received_amount"] == Decimal(2500)
        with pytest.raises(Vetoed) as over:
            records.create("payment", {"payment_plan_id": first["id"], "amount": "4000"})
        assert over.value.fields == {"amount": over.value.message}
        assert "应收 ¥6,000.00，已收 ¥2,500.00，本次最多还能收 ¥3,500.00" in over.value.message
        with pytest.raises(Vetoed):
            records.update("payment", paid["id"], {"amount": "6000.01"})
        rest = records.create("payment", {"payment_plan_id": first["id"], "amount": "3500"})
        assert records.get("payment_plan", first["id"])["status"] == "paid"
        with pytest.raises(Vetoed):   # the contract as a whole: 10000 due, 6000 received
            records.create("payment", {"contract_id": contract["id"], "amount": "4000.01"})
        with pytest.raises(Vetoed):
            records.update("payment_plan", first["id"], {"amount": "5000"})     # below what was received
        with pytest.raises(Vetoed) as kept:
            records.delete("payment_plan", first["id"])
        assert "已有收款" in kept.value.message
        with pytest.raises(Vetoed):
            records.delete("contract", contract["id"])
        records.delete("payment", rest["id"])
        assert records.get("payment_plan", first["id"])["status"] == "partial"
        assert records.get("contract", contract["id"])["received_amount"] == Decimal(2500)
    with runtime.transaction() as records:
        records.restore("payment", rest["id"])
        assert records.get("payment_plan", first["id"])["status"] == "paid"
        records.delete("payment", rest["id"])
        records.create("payment", {"payment_plan_id": first["id"], "amount": "3500"})
        with pytest.raises(Vetoed):   # restoring now would overpay the plan
            records.restore("payment", rest["id"])
    clock.advance(days=10)   # 12-03: the unpaid final instalment is not due yet; a new plan past due is overdue at once
    with runtime.transaction() as records:
        order_ = order(records, customer["id"], [{"description": "备件", "quantity": 1, "unit_price": "300"}], status="confirmed")
        plan = records.create("payment_plan", {"sales_order_id": order_["id"], "due_on": "2026-12-01", "amount": "300"})
        assert plan["status"] == "overdue"
        with pytest.raises(Vetoed):   # the order's total may not fall below its plans
            records.update("sales_order", order_["id"], {"lines": [{"description": "备件", "quantity": 1, "unit_price": "200"}]})
        with pytest.raises(Vetoed):
            records.update("sales_order", order_["id"], {"customer_id": records.create("customer", {"name": "另一家"})["id"]})


def test_concurrent_payments_never_overpay_a_plan(runtime):
    with runtime.transaction() as records:
        customer = records.create("customer", {"name": "华信科技"})
        contract = signed_contract(records, customer["id"], "1000")
        plan = records.create("payment_plan", {"contract_id": contract["id"], "due_on": "2026-12-01", "amount": "1000"})
    barrier, outcomes = threading.Barrier(3), []

    def pay():
        barrier.wait(timeout=10)
        try:
            with runtime.transaction() as records:
                records.create("payment", {"payment_plan_id": plan["id"], "amount": "400"})
            outcomes.append("ok")
        except Vetoed:
            outcomes.append("refused")

    threads = [threading.Thread(target=pay) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok", "ok", "refused"]
    with runtime.transaction() as records:
        stored = records.get("payment_plan", plan["id"])
        assert (stored["received_amount"], stored["status"]) == (Decimal(800), "partial")
        assert records.get("contract", contract["id"])["received_amount"] == Decimal(800)


def test_concurrent_deals_of_one_customer_are_all_counted(runtime):
    with runtime.transaction() as records:
        customer = records.create("customer", {"name": "华信科技"})
        drafts = [order(records, customer["id"], [{"description": f"批次{i}", "quantity": 1, "unit_price": "100"}])["id"] for i in range(3)]
    barrier = threading.Barrier(len(drafts))

    def confirm(order_id):
        barrier.wait(timeout=10)
        with runtime.transaction() as records:
            records.update("sales_order", order_id, {"status": "confirmed"})

    threads = [threading.Thread(target=confirm, args=(i,)) for i in drafts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with runtime.transaction() as records:
        assert stats(records, customer["id"])[:2] == (3, Decimal(300))


def test_receivables_job_reminds_once_per_day_and_emails(make_runtime, smtp, clock):  # noqa: F811
    controller, inbox = smtp
    runtime = make_runtime(**{"crm.mail.host": "127.0.0.1", "crm.mail.port": str(controller.port), "crm.mail.from": "crm@example.com"})
    with runtime.transaction() as records:
        records.update("system_settings", records.singleton("system_settings")["id"], {"receivable_remind_days": 5})
        rep = org.add_user(records.session, "rep", "password-rep", now=records.now(), role_names=["sales_rep"])
        records.session.execute(auth.users.update().where(auth.users.c.id == rep).values(email="rep@example.com"))
        customer = records.create("customer", {"name": "华信科技", "owner_id": rep})
        contract = signed_contract(records, customer["id"], "9000", owner_id=rep)
        soon = records.create("payment_plan", {"contract_id": contract["id"], "term": "首付款", "due_on": "2026-11-27", "amount": "3000"})
        records.create("payment_plan", {"contract_id": contract["id"], "term": "到货款", "due_on": "2026-12-20", "amount": "3000"})
        settled = records.create("payment_plan", {"contract_id": contract["id"], "term": "预付款", "due_on": "2026-11-25", "amount": "3000"})
        records.create("payment", {"payment_plan_id": settled["id"], "amount": "3000"})

    def titles():
        with runtime.transaction() as records:
            return sorted(n["title"] for n in notifications.for_user(records, rep))

    first = dict(run_due(runtime))["sales.receivables"]
    assert "'due': 1" in first and "'overdue': 0" in first
    assert titles() == ["应收款提醒：华信科技 首付款 ¥3,000.00 将于 2026-11-27 到期"]
    assert dict(run_due(runtime))["sales.receivables"] == "already ran today"
    assert len(inbox.messages) == 1 and "首付款" in mail_text(inbox.messages[0][1])
    clock.advance(days=1)
    list(run_due(runtime))
    assert len(titles()) == 1                                     # the same plan and due date: not again
    clock.advance(days=4)                                         # 11-28: the first instalment is overdue
    list(run_due(runtime))
    with runtime.transaction() as records:
        assert records.get("payment_plan", soon["id"])["status"] == "overdue"
        assert records.get("payment_plan", settled["id"])["status"] == "paid"
    assert "逾期未收款：华信科技 首付款 ¥3,000.00 已于 2026-11-27 到期" in titles()
    clock.advance(days=1)
    list(run_due(runtime))
    assert sum(t.startswith("逾期未收款") for t in titles()) == 1
    assert len(inbox.messages) == 2 and all(rcpt == ["rep@example.com"] for rcpt, _ in inbox.messages)


def test_other_plugins_take_sales_records_through_their_configuration(make_runtime):
    runtime = make_runtime(**{"crm.cost_centers.auto_for": "opportunity contract"})
    from crm.plugins.cost_centers import ledger
    from crm.plugins.points import service
    with runtime.transaction() as records:
        records.create("points_rule", {"name": "回款积分", "event": "record", "source_entity": "payment", "points_per_yuan": "0.01",
                                       "amount_field": "amount"})
        customer = records.create("customer", {"name": "华信科技"})
        opp = records.create("opportunity", {"name": "CRM项目", "customer_id": customer["id"]})
        contract = signed_contract(records, customer["id"], "20000")
        assert len(ledger.cost_centers_of(records, "opportunity", opp["id"])) == 1
        assert len(ledger.cost_centers_of(records, "contract", contract["id"])) == 1
        records.create("payment", {"contract_id": contract["id"], "amount": "12345"})
        assert records.get("customer", customer["id"])["points_balance"] == 123
        assert [e["source_entity"] for e in service.ledger(records, customer["id"])] == ["payment"]
        project = records.create("project", {"name": "CRM实施", "type": "implementation", "customer_id": customer["id"], "contract_ref": contract["code"]})
    app = TestApp(make_app(runtime))
    with runtime.transaction() as records:
        auth.create_user(records.session, "admin", "password-admin", admin=True, now=records.now())
    login(app, "admin", "password-admin")
    page = app.get(f"/app/contract/{contract['id']}")
    assert "CRM实施" in page.html.select_one("[data-related='project']").text
    assert f"合同 {contract['name']}" in page.html.select_one("[data-related='cost_center']").text
    assert f"contract_ref={contract['code']}" in page.html.select_one("[id='action-sales.new_project']")["href"]
    assert project["id"]


def test_disabled_plugin_loses_nothing_and_enabling_brings_it_back(make_runtime):
    on = make_runtime()
    with on.transaction() as records:
        customer = records.create("customer", {"name": "华信科技"})
        contract = signed_contract(records, customer["id"], "5000", signed_on="2026-05-05")
        records.create("payment", {"contract_id": contract["id"], "amount": "1000"})
        follow_up = records.create("follow_up", {"customer_id": customer["id"], "subject": "电话", "occurred_at": "2026-11-20T10:00:00",
                                                 "sales_opportunity_id": records.create("opportunity", {"name": "二期", "customer_id": customer["id"]})["id"]})
        auth.create_user(records.session, "admin", "password-admin", admin=True, now=records.now())
    off = make_runtime(**{"crm.plugins.disabled": "sales"})
    assert not set(SALES) & set(off.metadata.entities)
    assert "sales_opportunity_id" not in off.metadata["follow_up"].fields
    assert not any(job.name.startswith("sales.") for job in all_jobs(off))
    with off.transaction() as records:
        assert stats(records, customer["id"]) == (1, Decimal(5000), dt.date(2026, 5, 5), dt.date(2026, 5, 5))   # the core's fields stay
        assert "sales_opportunity_id" not in records.get("follow_up", follow_up["id"])
    client = TestApp(make_app(off))
    token = client.post_json("/api/v1/auth/token", {"username": "admin", "password": "password-admin"}).json["token"]
    headers = {"Authorization": f"Bearer {token}"}
    client.get("/api/v1/contract", headers=headers, status=404)
    assert "payment_plan" not in client.get("/api/v1/openapi.json", headers=headers).text
    on_again = make_runtime()
    with on_again.transaction() as records:
        assert records.get("contract", contract["id"])["received_amount"] == Decimal(1000)
        assert records.get("follow_up", follow_up["id"])["sales_opportunity_id"]
        assert [p["amount"] for p in records.list("payment").items] == [Decimal(1000)]


def login(app, username, password):
    form = app.get("/login").forms["login-form"]
    form["username"], form["password"] = username, password
    form.submit(status=302)
    return re.search(r'name="csrf-token" content="([^"]+)"', app.get("/app").text).group(1)


def test_api_lists_and_creates_every_sales_entity(runtime):
    with runtime.transaction() as records:
        auth.create_user(records.session, "admin", "password-admin", admin=True, now=records.now())
        product = records.create("product", {"name": "CRM企业版", "kind": "tangible", "price": "1000"})
    client = TestApp(make_app(runtime))
    token = client.post_json("/api/v1/auth/token", {"username": "admin", "password": "password-admin"}).json["token"]
    h = {"Authorization": f"Bearer {token}"}

    def post(entity, body, status=201):
        return client.post_json(f"/api/v1/{entity}", body, headers=h, status=status).json

    customer = post("customer", {"name": "华信科技"})
    lead = post("lead", {"company_name": "云帆科技", "contact_name": "刘经理"})
    opp = post("opportunity", {"name": "CRM项目", "customer_id": customer["id"], "stage": "proposal", "amount": 30000})
    quote = post("quote", {"subject": "CRM报价", "customer_id": customer["id"], "opportunity_id": opp["id"],
                           "lines": [{"product_id": product["id"], "quantity": 3}]})
    contract = post("contract", {"name": "CRM合同", "customer_id": customer["id"], "quote_id": quote["id"], "amount": 3000})
    sales_order = post("sales_order", {"customer_id": customer["id"], "status": "confirmed", "lines": [{"description": "耗材", "quantity": 2, "unit_price": 50}]})
    plan = post("payment_plan", {"contract_id": contract["id"], "due_on": "2026-12-31", "amount": 3000})
    payment = post("payment", {"payment_plan_id": plan["id"], "amount": 1000})
    assert (opp["probability"], quote["total"], sales_order["total"], plan["customer_id"], payment["contract_id"]) == \
        (50, 3000, 100, customer["id"], contract["id"])
    assert (lead["status"], contract["status"]) == ("new", "draft")
    for entity, made in (("lead", lead), ("opportunity", opp), ("quote", quote), ("contract", contract), ("sales_order", sales_order),
                         ("payment_plan", plan), ("payment", payment)):
        listed = client.get(f"/api/v1/{entity}", headers=h).json
        assert [r["id"] for r in listed["items"]] == [made["id"]], entity
    assert client.get(f"/api/v1/payment_plan/{plan['id']}", headers=h).json["status"] == "partial"
    assert client.get(f"/api/v1/customer/{customer['id']}", headers=h).json["deal_count"] == 1      # the direct order
    refused = post("payment", {"payment_plan_id": plan["id"], "amount": 2500}, status=422)
    assert refused["error"]["code"] == "vetoed" and "amount" in refused["error"]["fields"]
    client.patch_json(f"/api/v1/contract/{contract['id']}", {"status": "signed", "version": contract["version"]}, headers=h, status=422)
    assert client.get("/api/v1/sales_order", params={"customer_id": customer["id"], "status": "confirmed"}, headers=h).json["items"]


def test_pages_convert_a_lead_and_make_an_order_from_a_contract(runtime, team):
    with runtime.transaction(user=team["rep"]) as records:
        lead = records.create("lead", {"company_name": "华信科技", "contact_name": "张三"})
        existing = records.create("customer", {"name": "华信科技", "owner_id": team["rep"]["id"]})
        contract = records.create("contract", {"name": "CRM合同", "customer_id": existing["id"], "amount": "8000"})
    with runtime.transaction() as records:
        records.as_system().update("contract", contract["id"], {"status": "approved"})
    app = TestApp(make_app(runtime))
    csrf = login(app, "rep", "password-rep")
    detail = app.get(f"/app/lead/{lead['id']}")
    assert detail.html.select_one("[id='action-sales.convert']")
    form = app.get(f"/app/sales/leads/{lead['id']}/convert")
    assert form.html.select_one(f"input[name=customer_id][value='{existing['id']}']").has_attr("checked")
    app.post(f"/app/sales/leads/{lead['id']}/convert", {"customer_id": str(existing["id"]), "opportunity_name": "",
                                                         "csrf_token": "wrong"}, status=400)
    done = app.post(f"/app/sales/leads/{lead['id']}/convert", {"customer_id": str(existing["id"]), "with_opportunity": "1",
                                                                "opportunity_name": "华信CRM", "csrf_token": csrf}, status=302)
    assert re.fullmatch(r".*/app/opportunity/\d+", done.location)
    assert "华信CRM" in done.follow().text
    again = app.post(f"/app/sales/leads/{lead['id']}/convert", {"customer_id": "new", "csrf_token": csrf}, status=200)
    assert "线索已转化" in again.html.select_one("#convert-problem").text
    page = app.get(f"/app/contract/{contract['id']}")
    actions = [a.get_text(strip=True) for a in page.html.select(".page-head .actions .button")]
    assert "生成订单" in actions and "登记收款" in actions and "新建收款计划" in actions
    made = app.post(f"/app/sales/contracts/{contract['id']}/order", {"csrf_token": csrf}, status=302)
    order_page = made.follow()
    assert "CRM合同" in order_page.text
    lines = order_page.html.select_one("[data-field='lines'] table")
    assert [th.get_text(strip=True) for th in lines.select("th")][-1] == "金额"       # the computed line amount is shown
    assert lines.select("tbody td")[-1].get_text(strip=True) == "8,000.00"
    with runtime.transaction() as records:
        orders = records.list("sales_order", filters=[("contract_id", "eq", contract["id"])]).items
        assert len(orders) == 1 and orders[0]["total"] == Decimal(8000) and orders[0]["owner_id"] == team["rep"]["id"]
    payment_form = app.get(page.html.select_one("[id='action-sales.new_payment']")["href"])
    assert payment_form.html.select_one("[name=contract_id]")["value"] == str(contract["id"])
    with runtime.transaction() as records:
        plan = records.as_system().create("payment_plan", {"contract_id": contract["id"], "due_on": "2026-12-31", "amount": "8000"})
        records.as_system().create("payment", {"payment_plan_id": plan["id"], "amount": "2000"})
    pay = app.get(f"/app/payment_plan/{plan['id']}").html.select_one("[id='action-sales.new_payment']")["href"]
    assert f"payment_plan_id={plan['id']}" in pay and "amount=6000&" in pay + "&"
    assert app.get(pay).html.select_one("[name=amount]")["value"] in ("6000", "6000.00")
    menu = app.get("/app").text
    assert "销售管理" in menu and "应收款" in menu


def test_browser_lead_conversion_and_pipeline_drag(tmp_path):
    """In Debian's Chromium: convert a lead from its page, then drag the new opportunity on the
    pipeline board; the stage and the probability follow."""
    from tests import browser as b
    sync_api = b.playwright_api()
    runtime = b.sqlite_runtime(tmp_path)
    with runtime.transaction() as records:
        auth.create_user(records.session, "admin", "password-admin", admin=True, display_name="王管理", now=records.now())
        lead = records.create("lead", {"company_name": "浏览器线索公司", "contact_name": "赵经理", "estimated_amount": "60000"})
    errors = []
    try:
        with b.served(make_app(runtime)) as base, b.chromium(sync_api) as browser:
            page = b.new_page(browser, errors)
            b.login(page, base, "admin", "password-admin")
            page.goto(f"{base}/app/lead/{lead['id']}")
            with page.expect_navigation():
                page.click("[id='action-sales.convert']")
            page.fill("#convert-opportunity", "浏览器商机")
            with page.expect_navigation():
                page.click("#convert-submit")
            sync_api.expect(page.locator(".flashes")).to_contain_text("浏览器线索公司")
            sync_api.expect(page.locator("h1")).to_contain_text("浏览器商机")
            opp_id = int(page.url.rstrip("/").split("/")[-1])
            page.goto(f"{base}/app/opportunity/kanban")
            card = page.locator(f".kanban-card[data-id='{opp_id}']")
            sync_api.expect(card).to_be_visible()
            card.drag_to(page.locator(".kanban-column[data-value='negotiation'] [data-drop]"), source_position={"x": 6, "y": 6})
            sync_api.expect(page.locator("[data-kanban-status]")).to_contain_text("商务谈判")
        assert not errors, f"JavaScript errors: {errors}"
    finally:
        runtime.dispose()
    with runtime.transaction() as records:
        opp = records.get("opportunity", opp_id)
        assert (opp["stage"], opp["probability"], opp["weighted_amount"]) == ("negotiation", 70, Decimal(42000))
        assert records.get("lead", lead["id"])["status"] == "converted"
