"""The workflow engine: multi-step approvals with amount routing, permissions, vetoes, log, inbox."""
import pytest

from crm.core import access, auth, directory as org, notifications, registry, workflow
from crm.core.errors import Conflict, Forbidden, ValidationFailed, Vetoed
from crm.hooks import Veto, hookimpl

EXPENSE = {
    "name": "expense", "label": {"zh_CN": "报销", "en": "Expense"}, "title_field": "title",
    "fields": {
        "title": {"type": "text", "required": True},
        "amount": {"type": "money", "required": True},
        "status": {"type": "select", "dictionary": "expense_status"},
        "owner_id": {"type": "user"},
        "approved_on": {"type": "date", "readonly": True},
    },
}
STATUS = {"dictionary": "expense_status", "label": "状态", "items": [
    {"value": v, "label": l} for v, l in (("draft", "草稿"), ("submitted", "已提交"), ("manager_approved", "主管已批"),
                                          ("gm_pending", "待总经理审批"), ("approved", "已批准"), ("rejected", "已驳回"))]}
APPROVAL = {
    "workflow": "expense_approval", "label": {"zh_CN": "报销审批", "en": "Expense approval"},
    "entity": "expense", "state_field": "status", "initial": "draft",
    "states": {
        "draft": {"label": "草稿", "editable_by": ["owner"]},
        "submitted": {"label": "已提交"},
        "manager_approved": {"label": "主管已批"},
        "gm_pending": {"label": "待总经理审批"},
        "approved": {"label": "已批准", "final": True, "set": {"approved_on": {"today": []}}},
        "rejected": {"label": "已驳回", "final": True, "editable_by": ["owner"]},
    },
    "transitions": [
        {"id": "submit", "from": ["draft", "rejected"], "to": "submitted", "allowed": ["owner"], "label": "提交"},
        {"id": "manager_approve", "from": ["submitted"], "to": "manager_approved", "allowed": ["manager"], "self_approval": False},
        {"id": "finance_approve", "from": ["manager_approved"], "to": "approved", "allowed": ["role:finance"],
         "condition": {"<=": [{"var": "amount"}, 10000]}},
        {"id": "finance_escalate", "from": ["manager_approved"], "to": "gm_pending", "allowed": ["role:finance"],
         "condition": {">": [{"var": "amount"}, 10000]}},
        {"id": "gm_approve", "from": ["gm_pending"], "to": "approved", "allowed": ["role:general_manager"], "self_approval": False},
        {"id": "reject", "from": ["submitted"], "to": "rejected", "allowed": ["manager"], "comment_required": True},
        {"id": "finance_reject", "from": ["manager_approved"], "to": "rejected", "allowed": ["role:finance"], "comment_required": True},
        {"id": "gm_reject", "from": ["gm_pending"], "to": "rejected", "allowed": ["role:general_manager"], "comment_required": True},
    ],
}


class ExpensePlugin:
    def __init__(self, veto_over=None):
        self.veto_over = veto_over
        self.after = []

    @hookimpl
    def crm_metadata(self):
        return [EXPENSE, STATUS, APPROVAL]

    @hookimpl
    def crm_before_transition(self, ctx, entity, record, transition, comment):
        if self.veto_over and transition["to"] == "approved" and record["amount"] > self.veto_over:
            ctx.create("expense", {"title": "side effect", "amount": 1})     # rolled back with the veto
            raise Veto("超出成本中心上限")

    @hookimpl
    def crm_after_transition(self, ctx, entity, record, transition, comment):
        self.after.append((record["id"], transition["id"], record["status"]))


@pytest.fixture
def office(make_runtime):
    plugin = ExpensePlugin(veto_over=50000)
    rt = make_runtime(plugins=[("expenses", plugin)])
    with rt.transaction() as records:
        s, now = records.session, records.now()
        rules = {"entities": {"expense": {"read": "all", "create": "all", "update": "own"}}}
        for role in ("staff", "finance", "general_manager"):
            access.save_role(s, role, {"zh_CN": role}, rules)
        ids = {}
        ids["boss"] = org.add_user(s, "boss", "password-boss", now=now, role_names=["staff"])
        ids["rep"] = org.add_user(s, "rep", "password-rep", now=now, role_names=["staff"], manager_id=ids["boss"])
        ids["cfo"] = org.add_user(s, "cfo", "password-cfo", now=now, role_names=["staff", "finance"])
        ids["gm"] = org.add_user(s, "gm", "password-gm", now=now, role_names=["staff", "general_manager"])
        users = {n: auth.get_user(s, user_id=i) for n, i in ids.items()}
    return rt, users, plugin


def act(rt, user, name, record_id, step, **kw):
    with rt.transaction(user=user) as records:
        return workflow.transition(records, "expense", record_id, step, **kw)


def test_two_step_approval_with_amount_routing(office):
    rt, u, plugin = office
    with rt.transaction(user=u["rep"]) as records:
        small = records.create("expense", {"title": "出差", "amount": 800, "owner_id": u["rep"]["id"]})
        big = records.create("expense", {"title": "设备", "amount": 20000, "owner_id": u["rep"]["id"]})
    assert small["status"] == "draft"
    for expense in (small, big):
        act(rt, u["rep"], "rep", expense["id"], "submit")
        act(rt, u["boss"], "boss", expense["id"], "manager_approve")
    with rt.transaction(user=u["cfo"]) as records:
        assert [t["id"] for t in workflow.available(records, "expense", small["id"])] == ["finance_approve", "finance_reject"]
        assert [t["id"] for t in workflow.available(records, "expense", big["id"])] == ["finance_escalate", "finance_reject"]
    done = act(rt, u["cfo"], "cfo", small["id"], "finance_approve")
    assert done["status"] == "approved" and done["approved_on"].isoformat() == "2026-11-23"
    with pytest.raises(Forbidden):
        act(rt, u["cfo"], "cfo", big["id"], "finance_approve")       # over 10000: finance may only escalate
    assert act(rt, u["cfo"], "cfo", big["id"], "finance_escalate")["status"] == "gm_pending"
    assert act(rt, u["gm"], "gm", big["id"], "gm_approve")["status"] == "approved"
    with rt.transaction(user=u["rep"]) as records:
        log = workflow.log(records, "expense", big["id"])
        assert [(l["from_state"], l["to_state"]) for l in log] == [
            ("draft", "submitted"), ("submitted", "manager_approved"), ("manager_approved", "gm_pending"), ("gm_pending", "approved")]
        assert [l["user_id"] for l in log] == [u[n]["id"] for n in ("rep", "boss", "cfo", "gm")]
        titles = [n["title"] for n in notifications.for_user(records, u["rep"]["id"])]
        assert titles == ["报销 设备：已批准", "报销 出差：已批准"]
    assert plugin.after[-1] == (big["id"], "gm_approve", "approved")


def test_unauthorized_and_impossible_transitions(office):
    rt, u, _ = office
    with rt.transaction(user=u["boss"]) as records:
        own = records.create("expense", {"title": "自己的", "amount": 100, "owner_id": u["boss"]["id"]})
    with rt.transaction(user=u["rep"]) as records:
        mine = records.create("expense", {"title": "A", "amount": 100, "owner_id": u["rep"]["id"]})
    with pytest.raises(Forbidden):
        act(rt, u["boss"], "boss", mine["id"], "submit")            # only the owner submits
    act(rt, u["rep"], "rep", mine["id"], "submit")
    with pytest.raises(Forbidden):
        act(rt, u["rep"], "rep", mine["id"], "manager_approve")     # a rep is not their own manager
    with pytest.raises(Forbidden):
        act(rt, u["cfo"], "cfo", mine["id"], "manager_approve")
    with pytest.raises(Conflict):
        act(rt, u["cfo"], "cfo", mine["id"], "finance_approve")     # not in that state yet
    with pytest.raises(ValidationFailed) as failed:
        act(rt, u["boss"], "boss", mine["id"], "reject")            # a comment is required
    assert list(failed.value.fields) == ["comment"]
    assert act(rt, u["boss"], "boss", mine["id"], "reject", comment="缺发票")["status"] == "rejected"
    act(rt, u["boss"], "boss", own["id"], "submit")
    admin = {"id": 999, "is_admin": True, "username": "root"}
    with rt.transaction(user=admin) as records:
        assert workflow.transition(records, "expense", own["id"], "manager_approve")["status"] == "manager_approved"


def test_state_field_and_editing_follow_the_workflow(office):
    rt, u, _ = office
    with rt.transaction(user=u["rep"]) as records:
        mine = records.create("expense", {"title": "A", "amount": 100, "owner_id": u["rep"]["id"]})
        with pytest.raises(ValidationFailed) as failed:
            records.update("expense", mine["id"], {"status": "approved"})
        assert list(failed.value.fields) == ["status"]
        records.update("expense", mine["id"], {"amount": 120})          # editable in draft
    act(rt, u["rep"], "rep", mine["id"], "submit")
    with rt.transaction(user=u["rep"]) as records, pytest.raises(Forbidden):
        records.update("expense", mine["id"], {"amount": 99999})        # not once submitted


def test_veto_rolls_back_the_transition(office):
    rt, u, plugin = office
    with rt.transaction(user=u["rep"]) as records:
        huge = records.create("expense", {"title": "服务器", "amount": 60000, "owner_id": u["rep"]["id"]})
    act(rt, u["rep"], "rep", huge["id"], "submit")
    act(rt, u["boss"], "boss", huge["id"], "manager_approve")
    act(rt, u["cfo"], "cfo", huge["id"], "finance_escalate")
    with pytest.raises(Vetoed, match="超出成本中心上限"):
        act(rt, u["gm"], "gm", huge["id"], "gm_approve")
    with rt.transaction() as records:
        assert records.get("expense", huge["id"])["status"] == "gm_pending"
        assert [e["title"] for e in records.list("expense").items] == ["服务器"]
        assert len(workflow.log(records, "expense", huge["id"])) == 3


def test_my_approvals_inbox(office):
    rt, u, _ = office
    with rt.transaction(user=u["rep"]) as records:
        a = records.create("expense", {"title": "A", "amount": 100, "owner_id": u["rep"]["id"]})
        b = records.create("expense", {"title": "B", "amount": 100, "owner_id": u["rep"]["id"]})
    act(rt, u["rep"], "rep", a["id"], "submit")
    act(rt, u["rep"], "rep", b["id"], "submit")
    act(rt, u["boss"], "boss", b["id"], "manager_approve")
    def inbox(name):
        with rt.transaction(user=u[name]) as records:
            return [(r["title"], [t["id"] for t in steps]) for _, r, steps in workflow.my_approvals(records)]
    assert inbox("boss") == [("A", ["manager_approve", "reject"])]
    assert inbox("cfo") == [("B", ["finance_approve", "finance_reject"])]
    assert inbox("rep") == []


def test_workflow_metadata_references_are_checked():
    bad = dict(APPROVAL, initial="nowhere", transitions=APPROVAL["transitions"] + [
        {"id": "jump", "from": ["limbo"], "to": "approved", "condition": {"==": [{"var": "ghost"}, 1]}}])
    bad["states"] = dict(APPROVAL["states"], archived={"label": "归档"})
    with pytest.raises(registry.MetadataError) as failed:
        registry.build([("expenses", [EXPENSE, STATUS, bad])])
    pointers = {p.pointer for p in failed.value.problems}
    assert pointers == {"/initial", "/states/archived", "/transitions/8/from/0", "/transitions/8/condition/==/0"}


def test_my_approvals_page_menu_home_and_outcome(office):
    """Through HTTP: the manager finds the expense under 待我审批 (menu, home page count, the list),
    approves it there and comes back to the list; a rejection needs its comment; the requester is
    told the outcome; a rep with nothing to approve has no such menu entry."""
    from tests.test_pages import Site
    rt, u, _ = office
    with rt.transaction(user=u["rep"]) as records:
        a = records.create("expense", {"title": "差旅", "amount": 100, "owner_id": u["rep"]["id"]})
        b = records.create("expense", {"title": "打车", "amount": 50, "owner_id": u["rep"]["id"]})
    for record in (a, b):
        act(rt, u["rep"], "rep", record["id"], "submit")

    def site(name):
        browser = Site(rt)
        browser.login(name, "password-" + name)
        return browser

    boss, rep = site("boss"), site("rep")
    home = boss.get("/app")
    menu = [link.text for link in home.html.select(".sidebar a")]
    assert "待我审批" in menu
    assert home.html.select_one("#approvals-heading .badge").text == "2"
    assert [li.a.text for li in home.html.select("#approvals li")] == ["差旅", "打车"]
    page = boss.get("/app/approvals")
    rows = page.html.select("#approvals-table tbody tr")
    assert [r.a.text for r in rows] == ["差旅", "打车"]
    assert "已提交" in rows[0].text and "rep" in rows[0].text and "2026-11-23 09:30" in rows[0].text
    assert [b.text.strip() for b in rows[0].select("button")] == ["主管已批", "已驳回 *"]
    back = boss.post(f"/app/expense/{a['id']}/transition",
                     {"transition": "manager_approve", "version": rows[0].select_one("[name=version]")["value"], "next": "/app/approvals"})
    assert back.location.endswith("/app/approvals")
    after = back.follow()
    assert "已完成此步骤" in after.text and [r.a.text for r in after.html.select("#approvals-table tbody tr")] == ["打车"]
    refused = boss.post(f"/app/expense/{b['id']}/transition", {"transition": "reject", "next": "/app/approvals"}).follow()
    assert "此步骤必须填写意见" in refused.text
    rejected = boss.post(f"/app/expense/{b['id']}/transition", {"transition": "reject", "comment": "不报销", "next": "https://evil.example/"})
    assert rejected.location.endswith(f"/app/expense/{b['id']}")                       # never to another site
    assert "待我审批" not in [link.text for link in rep.get("/app").html.select(".sidebar a")]
    assert "没有待你审批的单据" in rep.get("/app/approvals").text
    home = rep.get("/app")
    assert "报销 打车：已驳回" in home.html.select_one("#reminders").text            # the outcome, with the reason
    assert "不报销" in home.html.select_one("#reminders").text
    detail = rep.get(f"/app/expense/{b['id']}")
    log = detail.html.select(".workflow-card details tbody tr")
    assert [[td.text for td in row.select("td")][2:] for row in log] == [["草稿", "已提交", ""], ["已提交", "已驳回", "不报销"]]
