"""The workflow over the REST API: the steps a caller may take, taking one with a comment, the
JSON errors (403, 404, 409, 422, veto), the log, the approvals inbox; on SQLite and PostgreSQL."""
import threading

import pytest
import sqlalchemy as sa

from crm.core import access, directory as org
from crm.core.tables import users
from tests.api_fixtures import PASSWORD, make_api  # noqa: F401 (fixture)
from tests.test_workflow import ExpensePlugin

RULES = {"entities": {"expense": {"read": "all", "create": "all", "update": "own"}}}


@pytest.fixture
def office(make_api):
    """boss leads rep; cfo has the finance role, gm the general manager's; outsider reads nothing."""
    admin = make_api(plugins=[("expenses", ExpensePlugin(veto_over=50000))])
    rt = admin.runtime
    with rt.transaction() as records:
        s, now = records.session, records.now()
        for role in ("staff", "finance", "general_manager"):
            access.save_role(s, role, {"zh_CN": role}, RULES)
        access.save_role(s, "nobody", {"zh_CN": "无"}, {"entities": {}})
        boss = org.add_user(s, "boss", PASSWORD, now=now, role_names=["staff"])
        org.add_user(s, "rep", PASSWORD, now=now, role_names=["staff"], manager_id=boss)
        org.add_user(s, "cfo", PASSWORD, now=now, role_names=["staff", "finance"])
        org.add_user(s, "gm", PASSWORD, now=now, role_names=["staff", "general_manager"])
        org.add_user(s, "outsider", PASSWORD, now=now, role_names=["nobody"])
    clients = {name: admin.login(name) for name in ("boss", "rep", "cfo", "gm", "outsider")}
    clients["admin"] = admin
    return clients


def step(api, record, transition, status=200, **body):
    return api.post(f"expense/{record['id']}/transitions/{transition}", body, status=status)


def test_steps_are_listed_with_labels_and_taken_with_a_comment(office):
    rep, boss, cfo = office["rep"], office["boss"], office["cfo"]
    record = rep.post("expense", {"title": "出差", "amount": 800, "owner_id": _user_id(office, "rep")}, status=201).json
    steps = rep.get(f"expense/{record['id']}/transitions").json
    assert steps == {"workflow": "expense_approval", "label": "报销审批", "state": "draft", "state_label": "草稿",
                     "items": [{"id": "submit", "label": "提交", "to": "submitted", "to_label": "已提交", "comment_required": False}]}
    english = rep.get(f"expense/{record['id']}/transitions", headers={"Accept-Language": "en"}, params={"_LOCALE_": "en"}).json
    assert english["label"] == "Expense approval"
    assert boss.get(f"expense/{record['id']}/transitions").json["items"] == []      # not the boss's step yet
    submitted = rep.post(f"expense/{record['id']}/transitions/submit", {"version": record["version"]}).json
    assert submitted["status"] == "submitted" and submitted["version"] == record["version"] + 1
    items = boss.get(f"expense/{record['id']}/transitions").json["items"]
    assert [(i["id"], i["label"], i["comment_required"]) for i in items] == [
        ("manager_approve", "主管已批", False), ("reject", "已驳回", True)]       # no label: the target state's
    step(boss, record, "manager_approve", comment="同意，注意控制预算")
    done = step(cfo, record, "finance_approve").json
    assert done["status"] == "approved" and done["approved_on"] == "2026-11-23"
    log = rep.get(f"expense/{record['id']}/workflow_log").json["items"]
    assert [(e["transition"], e["from_state"], e["to_state"], e["comment"]) for e in log] == [
        ("submit", "draft", "submitted", None), ("manager_approve", "submitted", "manager_approved", "同意，注意控制预算"),
        ("finance_approve", "manager_approved", "approved", None)]
    assert log[1]["from_label"] == "已提交" and log[1]["transition_label"] == "主管已批" and log[0]["at"] == "2026-11-23T09:30:00"
    assert rep.get(f"expense/{record['id']}/transitions").json["items"] == []       # a final state


def _user_id(office, name):
    from crm.core import auth
    with office["admin"].runtime.transaction() as records:
        return auth.get_user(records.session, username=name)["id"]


def test_errors_are_json_with_the_right_status(office):
    rep, boss, cfo, outsider = office["rep"], office["boss"], office["cfo"], office["outsider"]
    record = rep.post("expense", {"title": "A", "amount": 100, "owner_id": _user_id(office, "rep")}, status=201).json

    def error(response):
        assert response.content_type == "application/json"
        return response.json["error"]

    assert error(step(boss, record, "submit", status=403))["code"] == "forbidden"              # only the owner submits
    assert error(step(outsider, record, "submit", status=404))["code"] == "not_found"          # cannot see it
    assert error(outsider.get(f"expense/{record['id']}/transitions", status=404))["code"] == "not_found"
    assert error(outsider.get(f"expense/{record['id']}/workflow_log", status=404))["code"] == "not_found"
    assert error(step(rep, record, "fly_to_the_moon", status=404))["code"] == "not_found"     # no such step
    assert error(rep.get("partner/1/transitions", status=404))["message"] == "partner has no workflow"
    stale = error(step(rep, record, "submit", status=409, version=record["version"] - 1 or 99))
    assert stale["fields"] == {"version": "stale"}
    assert error(step(cfo, record, "finance_approve", status=409))["fields"]["transition"].startswith("当前状态")  # wrong state
    step(rep, record, "submit")
    missing = error(step(boss, record, "reject", status=422))
    assert missing["code"] == "validation_failed" and list(missing["fields"]) == ["comment"]
    assert error(step(boss, record, "reject", status=422, comment="   "))["fields"] == missing["fields"]
    assert error(step(boss, record, "reject", status=422, comment="长" * 2001))["fields"] == {"comment": "at most 2000 characters"}
    assert error(step(boss, record, "reject", status=400, comments="typo"))["fields"] == {"comments": "unknown"}
    assert error(step(boss, record, "reject", status=400, comment=5))["fields"] == {"comment": "a text"}
    assert error(boss.raw("POST", f"expense/{record['id']}/transitions/reject", b"[1]", status=400))["code"] == "bad_request"
    assert error(boss.get(f"expense/{record['id']}/transitions/reject", status=405))["code"] == "method_not_allowed"
    assert step(boss, record, "reject", comment="缺发票").json["status"] == "rejected"
    assert office["admin"].as_anonymous().get(f"expense/{record['id']}/transitions", status=401).json["error"]["code"] == "unauthorized"


def test_a_veto_is_a_422_with_the_plugins_message_and_changes_nothing(office):
    rep, boss, cfo, gm = office["rep"], office["boss"], office["cfo"], office["gm"]
    record = rep.post("expense", {"title": "服务器", "amount": 60000, "owner_id": _user_id(office, "rep")}, status=201).json
    step(rep, record, "submit")
    step(boss, record, "manager_approve")
    step(cfo, record, "finance_escalate")
    vetoed = step(gm, record, "gm_approve", status=422).json["error"]
    assert vetoed["code"] == "vetoed" and vetoed["message"] == "超出成本中心上限"
    assert rep.get(f"expense/{record['id']}").json["status"] == "gm_pending"
    assert len(rep.get(f"expense/{record['id']}/workflow_log").json["items"]) == 3
    assert [e["title"] for e in rep.get("expense").json["items"]] == ["服务器"]     # the hook's side effect is gone


def test_the_approvals_inbox(office):
    rep, boss, cfo = office["rep"], office["boss"], office["cfo"]
    rep_user = _user_id(office, "rep")
    a = rep.post("expense", {"title": "A", "amount": 100, "owner_id": rep_user}, status=201).json
    b = rep.post("expense", {"title": "B", "amount": 20000, "owner_id": rep_user}, status=201).json
    for record in (a, b):
        step(rep, record, "submit")
    step(boss, b, "manager_approve")
    assert [(i["title"], i["state_label"], [t["id"] for t in i["transitions"]]) for i in boss.get("approvals").json["items"]] == [
        ("A", "已提交", ["manager_approve", "reject"])]
    assert [(i["entity"], i["id"], [t["id"] for t in i["transitions"]]) for i in cfo.get("approvals").json["items"]] == [
        ("expense", b["id"], ["finance_escalate", "finance_reject"])]
    assert rep.get("approvals").json["items"] == []                   # submitting is not an approval
    assert office["admin"].get("approvals").json["items"] == []       # administrators may act, but it is not their inbox
    assert boss.get("approvals", params={"limit": "0"}, status=400).json["error"]["fields"] == {"limit": "1 to 500"}
    assert boss.get("approvals", params={"entity": "x"}, status=400).json["error"]["code"] == "bad_request"


def test_two_people_taking_the_same_step_at_once_only_one_succeeds(office, database_url):
    """Two finance clerks approve the same expense at the same moment: one succeeds, the other
    gets 409 and the log has the step once. On PostgreSQL both requests are held inside the step
    until both read the record, then a hook locks a row (as the cost-center check does), so the
    second goes on only after the first committed; SQLite runs one writer at a time, the outcome
    must be the same."""
    admin = office["admin"]
    rt = admin.runtime
    with rt.transaction() as records:
        org.add_user(records.session, "cfo2", PASSWORD, now=records.now(), role_names=["staff", "finance"])
    clerks = {"cfo": office["cfo"], "cfo2": admin.login("cfo2")}
    rep, boss = office["rep"], office["boss"]
    record = rep.post("expense", {"title": "同时审批", "amount": 500, "owner_id": _user_id(office, "rep")}, status=201).json
    step(rep, record, "submit")
    step(boss, record, "manager_approve")
    postgres = rt.engine.dialect.name == "postgresql"
    barrier = threading.Barrier(2, timeout=20)

    from crm.hooks import hookimpl

    class Meet:
        @hookimpl(tryfirst=True)
        def crm_before_transition(self, ctx, entity, record, transition, comment):
            if postgres and transition["id"] == "finance_approve":
                barrier.wait()
                ctx.session.execute(sa.select(users.c.id).where(users.c.username == "admin").with_for_update())

    rt.plugins.pm.register(Meet(), name="meet")
    statuses = {}

    def run(name):
        statuses[name] = step(clerks[name], record, "finance_approve", status="*").status_int

    threads = [threading.Thread(target=run, args=(name,)) for name in clerks]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(statuses.values()) == [200, 409]
    log = rep.get(f"expense/{record['id']}/workflow_log").json["items"]
    assert [e["transition"] for e in log] == ["submit", "manager_approve", "finance_approve"]
