"""The cost_centers plugin: approvals through its workflows, the ceiling and the warning line,
raising the ceiling, concurrent approvals, personal statements (多退少补), automatic cost centers,
reports. Runs on SQLite and PostgreSQL with the controllable clock."""
import datetime as dt
import threading
from decimal import Decimal

import pytest

from crm.core import access, auth, directory as org, notifications, workflow
from crm.core.errors import Conflict, Forbidden, NotFound, ValidationFailed, Vetoed
from crm.hooks import Veto, hookimpl
from crm.plugins.cost_centers import ledger, reports, statements
from crm.plugins.cost_centers.statements import Line

D = Decimal
OWN = {"read": "own", "create": "all", "update": "own", "delete": "own"}
ROLES = {
    "staff": {"entities": {"cost_center": {"read": "all"}, "company_transaction": OWN, "expense_advance": OWN,
                           "personal_settlement": {"read": "own"}}},
    "cost_editor": {"entities": {"cost_center": {"read": "all", "create": "all", "update": "all", "delete": "all"}}},
    "controller": {"entities": {"cost_center": {"read": "all", "create": "all", "update": "all"}},
                   "permissions": [ledger.RAISE_CEILING]},
    "finance": {"entities": {"*": {"read": "all"}}, "permissions": [statements.SETTLE]},
    "general_manager": {"entities": {"*": {"read": "all"}}},
}


class Guard:
    """A test plugin: vetoes after a transition of a transaction titled 'veto me', after the
    cost_centers plugin already recomputed the cost center's spending in the same savepoint."""

    @hookimpl
    def crm_after_transition(self, ctx, entity, record, transition, comment):
        if entity.name == "company_transaction" and record["title"] == "veto me" and transition["to"] == "approved":
            raise Veto("财务月结中，暂停审批")


@pytest.fixture
def office(make_runtime):
    rt = make_runtime(plugins=[("guard", Guard())])
    with rt.transaction() as records:
        s, now = records.session, records.now()
        for name, rules in ROLES.items():
            access.save_role(s, name, {"zh_CN": name}, rules)
        ids = {}
        ids["boss"] = org.add_user(s, "boss", "password-boss", now=now, role_names=["staff", "cost_editor"])
        ids["rep"] = org.add_user(s, "rep", "password-rep", now=now, role_names=["staff"], manager_id=ids["boss"])
        ids["rep2"] = org.add_user(s, "rep2", "password-rep2", now=now, role_names=["staff"], manager_id=ids["boss"])
        ids["cfo"] = org.add_user(s, "cfo", "password-cfo", now=now, role_names=["staff", "finance"], manager_id=ids["boss"])
        ids["gm"] = org.add_user(s, "gm", "password-gm", now=now, role_names=["staff", "general_manager"])
        ids["budget"] = org.add_user(s, "budget", "password-budget", now=now, role_names=["staff", "controller"])
        users = {n: auth.get_user(s, user_id=i) for n, i in ids.items()}
    return rt, users


def cost_center(rt, u, name="华东推广", ceiling=100000, owner="boss", **more):
    with rt.transaction(user=u["budget"]) as records:
        return records.create("cost_center", {"name": name, "ceiling": ceiling, "owner_id": u[owner]["id"], **more})


def expense(rt, u, cc, amount, owner="rep", title="出差", kind="employee_reimbursement", subject="travel", **more):
    values = {"title": title, "kind": kind, "cost_center_id": cc["id"], "amount": amount, "owner_id": u[owner]["id"], **more}
    if subject:
        values["subject"] = subject
    with rt.transaction(user=u[owner]) as records:
        return records.create("company_transaction", values)


def act(rt, user, record_id, step, entity="company_transaction", **kw):
    with rt.transaction(user=user) as records:
        return workflow.transition(records, entity, record_id, step, **kw)


def approve(rt, u, record, owner="rep"):
    """submit → manager → finance (→ general manager above 10,000)."""
    act(rt, u[owner], record["id"], "submit")
    act(rt, u["boss"], record["id"], "manager_approve")
    if D(str(record["amount"])) > 10000:
        act(rt, u["cfo"], record["id"], "finance_escalate")
        return act(rt, u["gm"], record["id"], "gm_approve")
    return act(rt, u["cfo"], record["id"], "finance_approve")


def read(rt, name, record_id):
    with rt.transaction() as records:
        return records.get(name, record_id)


def test_two_step_approval_with_amount_routing(office):
    rt, u = office
    cc = cost_center(rt, u)
    small, big = expense(rt, u, cc, 800), expense(rt, u, cc, "20000.50", title="设备", kind="supplier_payment", payee="联想")
    assert small["status"] == "draft" and small["code"].startswith("SZ202611-")
    for record in (small, big):
        act(rt, u["rep"], record["id"], "submit")
        act(rt, u["boss"], record["id"], "manager_approve")
    with rt.transaction(user=u["cfo"]) as records:
        assert [t["id"] for t in workflow.available(records, "company_transaction", small["id"])] == ["finance_approve", "finance_reject"]
        assert [t["id"] for t in workflow.available(records, "company_transaction", big["id"])] == ["finance_escalate", "finance_reject"]
        inbox = [(r["title"], [t["id"] for t in steps]) for _, r, steps in workflow.my_approvals(records)]
        assert inbox == [("出差", ["finance_approve", "finance_reject"]), ("设备", ["finance_escalate", "finance_reject"])]
    done = act(rt, u["cfo"], small["id"], "finance_approve")
    assert done["status"] == "approved" and done["approved_on"] == dt.date(2026, 11, 23)
    with pytest.raises(Forbidden):
        act(rt, u["cfo"], big["id"], "finance_approve")                # over 10,000: only escalation
    assert act(rt, u["cfo"], big["id"], "finance_escalate")["status"] == "gm_pending"
    assert read(rt, "cost_center", cc["id"])["spent"] == D("800")     # not approved yet
    assert act(rt, u["gm"], big["id"], "gm_approve")["status"] == "approved"
    assert read(rt, "cost_center", cc["id"])["spent"] == D("20800.50")
    with rt.transaction(user=u["rep"]) as records:
        log = workflow.log(records, "company_transaction", big["id"])
        assert [(l["from_state"], l["to_state"]) for l in log] == [
            ("draft", "submitted"), ("submitted", "manager_approved"), ("manager_approved", "gm_pending"), ("gm_pending", "approved")]
        assert [l["user_id"] for l in log] == [u[n]["id"] for n in ("rep", "boss", "cfo", "gm")]
        assert [n["title"] for n in notifications.for_user(records, u["rep"]["id"])] == ["企业收支 设备：已批准", "企业收支 出差：已批准"]


def test_unauthorized_transitions_are_refused(office):
    rt, u = office
    cc = cost_center(rt, u)
    mine = expense(rt, u, cc, 500)
    with pytest.raises(Forbidden):
        act(rt, u["boss"], mine["id"], "submit")                        # only the requester submits
    act(rt, u["rep"], mine["id"], "submit")
    for who in ("rep", "cfo", "gm"):                                     # only the requester's manager
        with pytest.raises(Forbidden):
            act(rt, u[who], mine["id"], "manager_approve")
    with pytest.raises(NotFound):
        act(rt, u["rep2"], mine["id"], "manager_approve")              # a colleague does not even see it
    with pytest.raises(Conflict):
        act(rt, u["cfo"], mine["id"], "finance_approve")               # not in that state yet
    with pytest.raises(ValidationFailed):
        act(rt, u["boss"], mine["id"], "manager_reject")               # a rejection needs a comment
    act(rt, u["boss"], mine["id"], "manager_approve")
    for who in ("rep", "boss", "gm"):
        with pytest.raises(Forbidden):
            act(rt, u[who], mine["id"], "finance_approve")
    own = expense(rt, u, cc, 300, owner="cfo", title="财务自己的")
    act(rt, u["cfo"], own["id"], "submit")
    act(rt, u["boss"], own["id"], "manager_approve")
    with pytest.raises(Forbidden, match="自己的单据"):
        act(rt, u["cfo"], own["id"], "finance_approve")                # no self-approval
    with rt.transaction(user=u["rep"]) as records, pytest.raises(Forbidden):
        records.update("company_transaction", mine["id"], {"amount": 99})   # not editable once submitted
    with rt.transaction(user=u["boss"]) as records, pytest.raises(ValidationFailed) as failed:
        records.update("cost_center", cc["id"], {"spent": 1})              # kept by the plugin only
    assert "spent" in failed.value.fields
    assert read(rt, "company_transaction", mine["id"])["status"] == "manager_approved"


def test_a_veto_rolls_back_the_whole_approval(office):
    rt, u = office
    cc = cost_center(rt, u, ceiling=10000)
    doomed = expense(rt, u, cc, 9000, title="veto me")
    with pytest.raises(Vetoed, match="暂停审批"):
        approve(rt, u, doomed)
    after = read(rt, "company_transaction", doomed["id"])
    assert after["status"] == "manager_approved" and after["approved_on"] is None
    assert read(rt, "cost_center", cc["id"])["spent"] == 0 and not read(rt, "cost_center", cc["id"])["warned"]
    with rt.transaction() as records:
        assert len(workflow.log(records, "company_transaction", doomed["id"])) == 2
        assert notifications.for_user(records, u["boss"]["id"]) == []     # no warning sent either


def test_the_ceiling_blocks_approval_and_the_warning_line_flags_once(office, clock):
    rt, u = office
    cc = cost_center(rt, u, name="双十一活动", ceiling=10000, warning_percent=80)
    assert cc["warning_amount"] == D("8000")
    approve(rt, u, expense(rt, u, cc, 5000))
    assert not read(rt, "cost_center", cc["id"])["warned"]
    approve(rt, u, expense(rt, u, cc, 3000, subject="entertainment"))
    state = read(rt, "cost_center", cc["id"])
    assert state["warned"] and state["spent"] == D("8000")               # reached the line exactly
    approve(rt, u, expense(rt, u, cc, "1000.01"))
    approve(rt, u, expense(rt, u, cc, 500, kind="income", subject=None, title="赞助收入"))   # income is not spending
    with rt.transaction() as records:
        warnings = [n for n in notifications.for_user(records, u["boss"]["id"]) if n["kind"] == "cost_centers.warning"]
    assert len(warnings) == 1 and "双十一活动" in warnings[0]["title"]

    too_much = expense(rt, u, cc, 1000)
    with pytest.raises(Vetoed) as refused:
        approve(rt, u, too_much)
    message = refused.value.args[0]
    for part in ("双十一活动", "CB2026-0001", "¥10,000.00", "¥9,000.01", "¥1,000.00", "¥0.01"):
        assert part in message
    assert read(rt, "company_transaction", too_much["id"])["status"] == "manager_approved"
    state = read(rt, "cost_center", cc["id"])
    assert (state["spent"], state["income"]) == (D("9000.01"), D("500"))

    with rt.transaction(user=u["budget"]) as records:                    # someone allowed raises the ceiling
        records.update("cost_center", cc["id"], {"ceiling": 20000})
    assert not read(rt, "cost_center", cc["id"])["warned"]               # 9000.01 < 16000
    assert act(rt, u["cfo"], too_much["id"], "finance_approve")["status"] == "approved"
    assert read(rt, "cost_center", cc["id"])["spent"] == D("10000.01")


def test_raising_the_ceiling_needs_the_permission(office):
    rt, u = office
    with rt.transaction(user=u["boss"]) as records:
        with pytest.raises(Vetoed) as refused:
            records.create("cost_center", {"name": "无权设定", "ceiling": 5000})
        assert list(refused.value.fields) == ["ceiling"]
        unbudgeted = records.create("cost_center", {"name": "待定预算"})      # ceiling 0: nothing can be approved
    assert unbudgeted["ceiling"] == 0
    cc = cost_center(rt, u, ceiling=10000)
    with rt.transaction(user=u["boss"]) as records:
        with pytest.raises(Vetoed, match="成本上限"):
            records.update("cost_center", cc["id"], {"ceiling": 10001})
        assert records.update("cost_center", cc["id"], {"ceiling": 8000, "name": "改名"})["ceiling"] == 8000   # lowering is fine
    with rt.transaction(user=u["budget"]) as records:
        assert records.update("cost_center", cc["id"], {"ceiling": 12000})["ceiling"] == 12000
    blocked = expense(rt, u, unbudgeted, 1)
    with pytest.raises(Vetoed, match="待定预算"):
        approve(rt, u, blocked)


def test_concurrent_approvals_that_together_exceed_the_ceiling(office):
    """Two finance clerks approve two expenses at the same moment; each fits the ceiling alone,
    together they do not: exactly one approval succeeds. On PostgreSQL both transactions are held
    at a barrier inside the transition (records read, before the ceiling check), so without the
    row lock both would pass; SQLite serializes write transactions, the result must be the same."""
    rt, u = office
    with rt.transaction() as records:
        org.add_user(records.session, "cfo2", "password-cfo2", now=records.now(), role_names=["staff", "finance"])
        u["cfo2"] = auth.get_user(records.session, username="cfo2")
    cc = cost_center(rt, u, ceiling=10000)
    first, second = expense(rt, u, cc, 6000), expense(rt, u, cc, 5000)
    for record in (first, second):
        act(rt, u["rep"], record["id"], "submit")
        act(rt, u["boss"], record["id"], "manager_approve")

    postgres = rt.engine.dialect.name == "postgresql"
    barrier = threading.Barrier(2, timeout=20)

    class Meet:
        @hookimpl(tryfirst=True)
        def crm_before_transition(self, ctx, entity, record, transition, comment):
            if postgres and transition["id"] == "finance_approve":
                barrier.wait()

    rt.plugins.pm.register(Meet(), name="meet")
    outcomes = {}

    def run(clerk, record):
        try:
            act(rt, u[clerk], record["id"], "finance_approve")
            outcomes[clerk] = "approved"
        except Vetoed as e:
            outcomes[clerk] = e.args[0]

    threads = [threading.Thread(target=run, args=args) for args in (("cfo", first), ("cfo2", second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes) == ["cfo", "cfo2"]
    assert sorted(o == "approved" for o in outcomes.values()) == [False, True]
    refused = next(o for o in outcomes.values() if o != "approved")
    assert "超过成本上限" in refused
    states = sorted(read(rt, "company_transaction", r["id"])["status"] for r in (first, second))
    assert states == ["approved", "manager_approved"]
    assert read(rt, "cost_center", cc["id"])["spent"] in (D("6000"), D("5000"))


# --- personal statements -----------------------------------------------------------------------

def lines(*items):
    """("a" | "r", "2026-11-01", amount) → statement lines."""
    out = []
    for i, (kind, day, amount) in enumerate(items, 1):
        advance = kind == "a"
        out.append(Line(dt.date.fromisoformat(day), "advance" if advance else "reimbursement", "x", i, f"N{i:02d}", "", None,
                        advance=D(amount) if advance else D(0), reimbursement=D(0) if advance else D(amount)))
    return out


@pytest.mark.parametrize("items, direction, amount, balances", [
    ([("a", "2026-11-01", "3000"), ("r", "2026-11-10", "3000.00")], "even", "0", ["-3000", "0"]),
    ([("a", "2026-11-01", "5000"), ("r", "2026-11-10", "3200.50")], "employee_returns", "1799.50", ["-5000", "-1799.50"]),
    ([("a", "2026-11-01", "2000"), ("r", "2026-11-10", "2350.25")], "pay_employee", "350.25", ["-2000", "350.25"]),
    ([("r", "2026-11-20", "100.10"), ("a", "2026-11-01", "1000"), ("a", "2026-11-05", "500.05"), ("r", "2026-11-12", "1200")],
     "employee_returns", "199.95", ["-1000", "-1500.05", "-300.05", "-199.95"]),
    ([("r", "2026-11-02", "0.10"), ("r", "2026-11-02", "0.20"), ("r", "2026-11-03", "0.30")], "pay_employee", "0.60",
     ["0.10", "0.30", "0.60"]),
    ([("r", "2026-11-05", "800"), ("a", "2026-11-05", "800")], "even", "0", ["-800", "0"]),   # advance first on the same day
    ([], "even", "0", []),
])
def test_offset_math(items, direction, amount, balances):
    result = statements.offset(7, lines(*items))
    assert result.direction == direction and result.amount == D(amount)
    assert [line.balance for line in result.lines] == [D(b) for b in balances]
    assert result.balance == result.reimbursements_total - result.advances_total
    assert [line.date for line in result.lines] == sorted(line.date for line in result.lines)


def test_personal_statement_and_settlement(office, clock):
    rt, u = office
    cc = cost_center(rt, u)

    def advance(amount, project=None, pay=True):
        with rt.transaction(user=u["rep"]) as records:
            record = records.create("expense_advance", {"title": "出差借款", "cost_center_id": cc["id"], "amount": amount,
                                                        "owner_id": u["rep"]["id"], "project_name": project})
        act(rt, u["rep"], record["id"], "submit", entity="expense_advance")
        act(rt, u["boss"], record["id"], "approve", entity="expense_advance")
        if pay:
            assert act(rt, u["cfo"], record["id"], "pay", entity="expense_advance")["paid_on"] == clock().date()
        return record

    first = advance(3000, project="南京项目")
    with pytest.raises(Forbidden):                                       # 发放 is finance's
        act(rt, u["boss"], advance(100, pay=False)["id"], "pay", entity="expense_advance")
    clock.advance(days=3)
    advance("1500.50", project="南京项目")
    advance(800, project="苏州项目")
    clock.advance(days=4)
    approve(rt, u, expense(rt, u, cc, "4200.75", project_name="南京项目"))
    approve(rt, u, expense(rt, u, cc, 999, kind="supplier_payment", payee="酒店", project_name="南京项目"))   # not personal
    approve(rt, u, expense(rt, u, cc, 600, owner="rep2", project_name="南京项目"), owner="rep2")              # someone else
    expense(rt, u, cc, 50, project_name="南京项目")                                                           # not approved

    with rt.transaction(user=u["rep"]) as records:
        nanjing = statements.statement(records, u["rep"]["id"], "南京项目")
        overall = statements.statement(records, u["rep"]["id"])
    assert [(l.kind, l.code[:2], l.advance, l.reimbursement, l.balance) for l in nanjing.lines] == [
        ("advance", "YZ", D("3000"), 0, D("-3000")), ("advance", "YZ", D("1500.50"), 0, D("-4500.50")),
        ("reimbursement", "SZ", 0, D("4200.75"), D("-299.75"))]
    assert (nanjing.direction, nanjing.amount, nanjing.describe()) == ("employee_returns", D("299.75"), "员工应退还公司 ¥299.75")
    assert [l.date for l in nanjing.lines] == [dt.date(2026, 11, 23), dt.date(2026, 11, 26), dt.date(2026, 11, 30)]
    assert (overall.advances_total, overall.reimbursements_total, overall.direction, overall.amount) == (
        D("5300.50"), D("4200.75"), "employee_returns", D("1099.75"))

    with rt.transaction(user=u["boss"]) as records, pytest.raises(Forbidden):
        statements.settle(records, u["rep"]["id"], "南京项目")
    with rt.transaction(user=u["cfo"]) as records:
        settlement = statements.settle(records, u["rep"]["id"], "南京项目", remark="项目结束")
    assert (settlement["direction"], settlement["amount"], settlement["advances_total"]) == ("employee_returns", D("299.75"), D("4500.50"))
    assert [line["balance"] for line in settlement["lines"]] == ["-3000.00", "-4500.50", "-299.75"]
    assert read(rt, "expense_advance", first["id"])["settlement_id"] == settlement["id"]
    with rt.transaction(user=u["rep"]) as records:
        assert statements.statement(records, u["rep"]["id"], "南京项目").lines == []     # settled
        assert statements.statement(records, u["rep"]["id"]).balance == D("-800")        # 苏州 is still open
        assert records.get("personal_settlement", settlement["id"])["code"].startswith("JS")   # the employee sees it
    with rt.transaction() as records, pytest.raises(Vetoed):
        records.delete("personal_settlement", settlement["id"])                            # not even the system
    with rt.transaction(user=u["cfo"]) as records, pytest.raises(ValidationFailed):
        statements.settle(records, u["rep"]["id"], "南京项目")                               # nothing left to settle
    with rt.transaction(user=u["rep2"]) as records:
        other = statements.statement(records, u["rep2"]["id"])
        assert (other.direction, other.amount) == ("pay_employee", D("600"))              # no advances: paid in full
        assert statements.statement(records, u["rep"]["id"]).lines == []                  # out of reach: nothing shown


# --- automatic cost centers, reports, deletion ----------------------------------------------------

CAMPAIGN = {
    "name": "campaign", "label": {"zh_CN": "市场活动", "en": "Campaign"}, "title_field": "title",
    "fields": {"title": {"type": "text", "required": True}, "owner_id": {"type": "user"},
               "cost_center_id": {"type": "link", "entity": "cost_center", "readonly": True}},
}
TRADE_SHOW = {"name": "trade_show", "label": "展会", "fields": {"title": {"type": "text"}}}


class Campaigns:
    @hookimpl
    def crm_metadata(self):
        return [CAMPAIGN, TRADE_SHOW]


def test_a_cost_center_is_created_for_configured_entities(make_runtime):
    rt = make_runtime(plugins=[("campaigns", Campaigns())], **{"crm.cost_centers.auto_for": "campaign project",
                                                               "crm.cost_centers.default_ceiling": "5000"})
    with rt.transaction() as records:
        owner = org.add_user(records.session, "mkt", "password-mkt", now=records.now())
        campaign = records.create("campaign", {"title": "双十一大促", "owner_id": owner})
        records.create("trade_show", {"title": "广交会"})                  # not configured: no cost center
        found = ledger.cost_centers_of(records, "campaign", campaign["id"])
        assert [(c["name"], c["owner_id"], c["ceiling"], c["source_entity"], c["source_id"]) for c in found] == [
            ("市场活动 双十一大促", owner, D("5000"), "campaign", campaign["id"])]
        assert records.get("campaign", campaign["id"])["cost_center_id"] == found[0]["id"]
        assert records.list("cost_center", count=True).total == 1
        tabs = rt.plugins.hook.crm_related_tabs(ctx=records, entity=records.entity("campaign"), record=campaign)
        assert [t["filters"] for ts in tabs for t in ts if t["id"] == "cost_centers.cost_center"] == [[["source_entity", "eq", "campaign"], ["source_id", "eq", str(campaign["id"])]]]


def test_reports_by_subject_and_month_and_the_over_warning_list(office, clock):
    rt, u = office
    busy = cost_center(rt, u, name="展会", ceiling=10000)
    quiet = cost_center(rt, u, name="办公室", ceiling=50000)
    approve(rt, u, expense(rt, u, busy, 2000, subject="travel"))
    approve(rt, u, expense(rt, u, busy, "1500.50", subject="entertainment"))
    approve(rt, u, expense(rt, u, quiet, 300, subject="office"))
    clock.advance(days=10)                                                   # December
    approve(rt, u, expense(rt, u, busy, 5000, subject="travel"))
    approve(rt, u, expense(rt, u, busy, 9999, kind="income", subject=None, title="赞助"))
    with rt.transaction(user=u["cfo"]) as records:
        report = reports.by_subject(records, busy["id"])
        assert report.months == ["2026-11", "2026-12"]
        assert report.rows == [
            {"month": "2026-11", "subject": "travel", "subject_label": "差旅费", "amount": D("2000")},
            {"month": "2026-11", "subject": "entertainment", "subject_label": "招待费", "amount": D("1500.50")},
            {"month": "2026-12", "subject": "travel", "subject_label": "差旅费", "amount": D("5000")}]
        assert (report.by_subject["travel"], report.total) == (D("7000"), D("8500.50"))
        assert reports.by_subject(records, date_from="2026-12-01").total == D("5000")
        assert reports.by_subject(records, date_to="2026-11-30").by_subject == {"travel": D("2000"), "entertainment": D("1500.50"), "office": D("300")}
        rows = reports.summary(records)
        assert [(r["name"], r["spent"], r["income"], r["remaining"], r["usage"], r["warned"]) for r in rows] == [
            ("展会", D("8500.50"), D("9999"), D("1499.50"), D("85.0"), True), ("办公室", D("300"), 0, D("49700"), D("0.6"), False)]
        assert [r["name"] for r in reports.over_warning(records)] == ["展会"]
        svg = reports.bar_chart_svg([(label, report.by_subject[v]) for v, label in report.subjects], title="展会")
        assert svg.startswith("<svg") and svg.count("<rect") == 2 and "差旅费" in svg and "¥7,000.00" in svg


def test_approved_documents_and_used_cost_centers_cannot_be_deleted(office):
    rt, u = office
    cc = cost_center(rt, u)
    draft, done = expense(rt, u, cc, 10), expense(rt, u, cc, 20)
    approve(rt, u, done)
    with rt.transaction(user=u["rep"]) as records:
        records.delete("company_transaction", draft["id"])
        with pytest.raises(Vetoed):
            records.delete("company_transaction", done["id"])
    with rt.transaction(user=u["boss"]) as records, pytest.raises(Vetoed):
        records.delete("cost_center", cc["id"])
    spare = cost_center(rt, u, name="空")
    with rt.transaction(user=u["boss"]) as records:
        records.delete("cost_center", spare["id"])


# --- pages -----------------------------------------------------------------------------------------

def test_pages_request_approval_report_and_statement(office, clock):
    """Through HTTP: the requester submits on the detail page, the approvers take their steps
    there, a refused approval shows the ceiling message; then the report, the over-warning list
    and the personal statement with its settlement."""
    from tests.test_pages import Site
    rt, u = office
    cc = cost_center(rt, u, name="上海展会", ceiling=1000)
    with rt.transaction(user=u["rep"]) as records:
        advance = records.create("expense_advance", {"title": "借款", "cost_center_id": cc["id"], "amount": 500, "owner_id": u["rep"]["id"]})
    for step, who in (("submit", "rep"), ("approve", "boss"), ("pay", "cfo")):
        act(rt, u[who], advance["id"], step, entity="expense_advance")
    hotel, extra = expense(rt, u, cc, 900, title="酒店"), expense(rt, u, cc, 200, title="加班餐")

    def browser(name):
        site = Site(rt)
        assert site.login(name, "password-" + name).status_int == 302
        return site

    rep, boss, cfo = browser("rep"), browser("boss"), browser("cfo")
    for record in (hotel, extra):
        page = rep.get(f"/app/company_transaction/{record['id']}")
        assert "提交审批" in page.text
        rep.post(f"/app/company_transaction/{record['id']}/transition", {"transition": "submit", "version": "1"})
        boss.post(f"/app/company_transaction/{record['id']}/transition", {"transition": "manager_approve"})
    cfo.post(f"/app/company_transaction/{hotel['id']}/transition", {"transition": "finance_approve"})
    cfo.post(f"/app/company_transaction/{extra['id']}/transition", {"transition": "finance_approve"})
    refused = cfo.get(f"/app/company_transaction/{extra['id']}")
    assert "超过成本上限" in refused.text and "上海展会" in refused.text
    assert [read(rt, "company_transaction", r["id"])["status"] for r in (hotel, extra)] == ["approved", "manager_approved"]

    listed = cfo.get("/app/cost_center").html.select_one(".list-table tbody tr")     # 900 of 1,000: over the warning line
    assert listed["data-style"] == "warning" and listed["title"] == "支出已达预警线" and "上海展会" in listed.text
    with rt.transaction(user=u["budget"]) as records:
        records.update("cost_center", cc["id"], {"ceiling": 800})                      # lowered below what was spent
    assert cfo.get("/app/cost_center").html.select_one(".list-table tbody tr")["data-style"] == "danger"
    with rt.transaction(user=u["budget"]) as records:
        records.update("cost_center", cc["id"], {"ceiling": 1000})
    detail = cfo.get(f"/app/cost_center/{cc['id']}")
    assert f"/app/cost_centers/report?cost_center={cc['id']}" in detail.text
    report = cfo.get(f"/app/cost_centers/report?cost_center={cc['id']}")
    assert "上海展会" in report.text and "差旅费" in report.text and "900.00" in report.text and "<svg" in report.text
    assert 'data-warned="true"' in report.text
    cfo.get("/app/cost_centers/report?date_from=nonsense", status=400)
    assert "上海展会" in cfo.get("/app/cost_centers/warnings").text
    assert "/app/cost_centers/statement" in cfo.get("/app/cost_centers/warnings").text     # the menu

    mine = rep.get("/app/cost_centers/statement")
    assert "员工应退还公司" not in mine.text and "公司应补付员工 ¥400.00" in mine.text and 'id="settle-form"' not in mine.text
    theirs = cfo.get(f"/app/cost_centers/statement?employee={u['rep']['id']}")
    assert 'id="settle-form"' in theirs.text
    done = cfo.post("/app/cost_centers/settle", {"employee": u["rep"]["id"], "project": ""})
    assert "/app/personal_settlement/" in done.location
    assert "两清" in rep.get("/app/cost_centers/statement").text                        # nothing open any more


# --- in a real browser -------------------------------------------------------------------------------

@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_browser_request_approval_and_statement(office, database_url):
    """A rep files a reimbursement in the form, submits it; the manager and finance approve on the
    detail page; the rep's personal statement offsets it against the advance paid earlier."""
    import re
    from crm.core.app import make_app
    from tests import browser as b
    playwright = b.playwright_api()
    rt, u = office
    cc = cost_center(rt, u, name="苏州项目部", ceiling=50000)
    with rt.transaction(user=u["rep"]) as records:
        advance = records.create("expense_advance", {"title": "出差借款", "cost_center_id": cc["id"], "amount": 2000, "owner_id": u["rep"]["id"]})
    for step, who in (("submit", "rep"), ("approve", "boss"), ("pay", "cfo")):
        act(rt, u[who], advance["id"], step, entity="expense_advance")
    errors = []
    artifacts = b.ARTIFACTS
    artifacts.mkdir(exist_ok=True)
    with b.served(make_app(rt)) as base:
        with b.chromium(playwright) as browser:

            def login(name):
                page = b.new_page(browser, errors)
                b.login(page, base, name, "password-" + name)
                return page

            rep = login("rep")
            rep.goto(base + "/app/company_transaction/new")
            rep.fill("#f-title", "苏州出差报销")
            rep.fill("#f-cost_center_id", "苏州")
            playwright.expect(rep.locator("#f-cost_center_id-list [role=option]").first).to_contain_text("苏州项目部")
            rep.keyboard.press("ArrowDown")
            rep.keyboard.press("Enter")
            rep.select_option("#f-subject", "travel")
            rep.fill("#f-amount", "2600.80")
            rep.click("#record-form button[type=submit]:not([name])")
            rep.wait_for_url(re.compile(r"/app/company_transaction/\d+$"))
            record_id = int(rep.url.rsplit("/", 1)[1])
            rep.click(".workflow-form button[value=submit]")
            playwright.expect(rep.locator(".workflow-head .state")).to_contain_text("待主管审批")

            for name, step, state in (("boss", "manager_approve", "待财务审批"), ("cfo", "finance_approve", "已批准")):
                page = login(name)
                page.goto(f"{base}/app/company_transaction/{record_id}")
                page.click(f".workflow-form button[value={step}]")
                playwright.expect(page.locator(".workflow-head .state")).to_contain_text(state)

            rep.goto(base + "/app/cost_centers/statement")
            table = rep.locator("[data-testid=statement]")
            playwright.expect(table).to_contain_text("出差借款")
            playwright.expect(table).to_contain_text("苏州出差报销")
            playwright.expect(rep.locator("[data-testid=statement-result]")).to_contain_text("公司应补付员工 ¥600.80")
            rep.screenshot(path=str(artifacts / "cost_centers_statement.png"), full_page=True)
            rep.goto(base + f"/app/cost_centers/report?cost_center={cc['id']}")
            playwright.expect(rep.locator("[data-testid=chart] svg")).to_be_visible()
            rep.screenshot(path=str(artifacts / "cost_centers_report.png"), full_page=True)
    assert not errors, f"JavaScript errors: {errors}"
    assert read(rt, "cost_center", cc["id"])["spent"] == D("2600.80")


def test_a_project_gets_its_cost_center_when_both_plugins_are_enabled(make_runtime):
    """The real projects plugin (not a test entity): a new project gets a cost center owned by its
    manager, shown as a related tab on the project's page."""
    from tests.test_pages import Site
    rt = make_runtime(**{"crm.cost_centers.default_ceiling": "20000"})
    with rt.transaction() as records:
        pm = org.add_user(records.session, "pm", "password-pm", now=records.now(), role_names=["project_manager"])
    with rt.transaction(user=_user(rt, "pm")) as records:
        project = records.create("project", {"name": "苏州工厂实施", "type": "implementation", "manager_id": pm})
    with rt.transaction() as records:
        found = ledger.cost_centers_of(records, "project", project["id"])
    assert [(c["name"], c["owner_id"], c["ceiling"]) for c in found] == [("项目 苏州工厂实施", pm, D("20000"))]
    site = Site(rt)
    site.login("pm", "password-pm")
    page = site.get(f"/app/project/{project['id']}")
    tabs = [t.get_text(" ", strip=True) for t in page.html.select('[role="tab"]')]
    assert any(t.startswith("成本中心") for t in tabs) and "项目 苏州工厂实施" in page.text


def _user(rt, username):
    with rt.transaction() as records:
        return auth.get_user(records.session, username=username)
