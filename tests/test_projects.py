"""The projects plugin: plan templates, quadrants, risk ranking, performance ranking, ratings,
reviews, the project flow, milestones, open issues, the Gantt SVG and the daily reminders."""
import datetime as dt
import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest

from crm.core import access, auth, directory as org, notifications, workflow
from crm.core.errors import BadRequest, Forbidden, ValidationFailed, Vetoed
from crm.core.jobs import run_due
from crm.plugins.projects import plans, progress, rankings

PROJECT_ENTITIES = ("project", "project_phase", "project_task", "work_log", "project_risk", "project_milestone",
                    "project_issue", "project_review", "plan_template")
D = dt.date


@pytest.fixture
def team(runtime):
    """boss leads the 实施部 department and manages ann and bob; carl is outside; dora manages the department only."""
    with runtime.transaction() as records:
        s, now = records.session, records.now()
        rules = {"entities": {**{e: {"read": "all", "create": "all", "update": "own"} for e in PROJECT_ENTITIES},
                              "*": {"read": "all"}}, "permissions": []}
        access.save_role(s, "project_member", {"zh_CN": "项目成员"}, rules)
        access.save_role(s, "suggestion_reader", {"zh_CN": "意见处理"}, {**rules, "permissions": ["projects.read_suggestions"]})
        boss = org.add_user(s, "boss", "password-boss", now=now, role_names=["project_member"])
        dept = org.create_department(s, "实施部")
        dora = org.add_user(s, "dora", "password-dora", now=now, role_names=["project_member"])
        s.execute(auth.users.update().where(auth.users.c.id == dora).values(department_id=dept))
        from crm.core.tables import departments
        s.execute(departments.update().where(departments.c.id == dept).values(manager_id=dora))
        ann = org.add_user(s, "ann", "password-ann", now=now, role_names=["project_member"], manager_id=boss, department_id=dept)
        bob = org.add_user(s, "bob", "password-bob", now=now, role_names=["project_member"], manager_id=boss)
        carl = org.add_user(s, "carl", "password-carl", now=now, role_names=["project_member", "suggestion_reader"])
        return {n: auth.get_user(s, user_id=i) for n, i in
                (("boss", boss), ("ann", ann), ("bob", bob), ("carl", carl), ("dora", dora))} | {"dept": dept}


def make_plan(records, start="2026-11-02"):
    """A project with three phases, dependent tasks, an ad-hoc and a cancelled task, milestones."""
    customer = records.create("customer", {"name": "华信科技", "address": "北京市海淀区中关村大街1号"})
    project = records.create("project", {"name": "ERP实施", "type": "implementation", "customer_id": customer["id"],
                                         "start_date": start, "end_date": "2026-12-31"})
    pid = project["id"]
    p1 = records.create("project_phase", {"project_id": pid, "seq": 1, "name": "需求调研", "start_date": "2026-11-02",
                                          "end_date": "2026-11-13", "check_criteria": "需求说明书已签字"})
    p2 = records.create("project_phase", {"project_id": pid, "seq": 2, "name": "系统实施", "start_date": "2026-11-16",
                                          "end_date": "2026-12-11", "check_criteria": "无严重遗留问题"})
    p3 = records.create("project_phase", {"project_id": pid, "seq": 3, "name": "上线验收", "start_date": "2026-12-14", "end_date": "2026-12-31"})
    t1 = records.create("project_task", {"title": "现场调研", "phase_id": p1["id"], "start_date": "2026-11-02", "end_date": "2026-11-06",
                                         "important": True, "department_id": None})
    t2 = records.create("project_task", {"title": "需求说明书", "phase_id": p1["id"], "start_date": "2026-11-09", "end_date": "2026-11-13",
                                         "depends_on": [t1["id"]]})
    t3 = records.create("project_task", {"title": "系统配置", "phase_id": p2["id"], "start_date": "2026-11-16", "end_date": "2026-11-27",
                                         "depends_on": [t2["id"]], "urgent": True})
    t4 = records.create("project_task", {"title": "数据导入", "phase_id": p2["id"], "start_date": "2026-11-23", "end_date": "2026-12-04",
                                         "depends_on": [t2["id"]]})
    t5 = records.create("project_task", {"title": "上线切换", "phase_id": p3["id"], "start_date": "2026-12-14", "end_date": "2026-12-14",
                                         "depends_on": [t3["id"], t4["id"]], "important": True, "urgent": True})
    adhoc = records.create("project_task", {"title": "临时：客户来访接待", "project_id": pid, "kind": "ad_hoc", "start_date": "2026-11-10"})
    dropped = records.create("project_task", {"title": "已取消的任务", "project_id": pid, "status": "cancelled"})
    m1 = records.create("project_milestone", {"project_id": pid, "phase_id": p1["id"], "name": "需求确认", "planned_date": "2026-11-13"})
    m2 = records.create("project_milestone", {"project_id": pid, "phase_id": p3["id"], "name": "正式上线", "planned_date": "2026-12-14"})
    return {"project": project, "phases": [p1, p2, p3], "tasks": [t1, t2, t3, t4, t5], "adhoc": adhoc, "dropped": dropped,
            "milestones": [m1, m2]}


# --- plan templates -----------------------------------------------------------------------------------

def test_a_project_is_saved_as_a_template_and_a_new_project_starts_from_it(runtime, team):
    with runtime.transaction() as records:
        plan = make_plan(records)
        template = plans.save_as_template(records, plan["project"]["id"], name="ERP实施标准计划")
    assert template["source_project_id"] == plan["project"]["id"] and template["project_type"] == "implementation"
    assert [(p["key"], p["name"], p["offset_days"], p["duration_days"]) for p in template["phases"]] == [
        ("P1", "需求调研", 0, 11), ("P2", "系统实施", 14, 25), ("P3", "上线验收", 42, 17)]
    assert [(t["key"], t["phase_key"], t["title"], t["offset_days"], t["duration_days"], t["depends_on"]) for t in template["tasks"]] == [
        ("T1", "P1", "现场调研", 0, 4, None), ("T2", "P1", "需求说明书", 7, 4, "T1"), ("T3", "P2", "系统配置", 14, 11, "T2"),
        ("T4", "P2", "数据导入", 21, 11, "T2"), ("T5", "P3", "上线切换", 42, 0, "T3,T4")]   # no ad-hoc, no cancelled task
    assert [(m["phase_key"], m["name"], m["offset_days"]) for m in template["milestones"]] == [("P1", "需求确认", 11), ("P3", "正式上线", 42)]
    assert template["duration_days"] == 60                         # day 0 .. day 59 (the phase P3 ends on day 59)
    assert template["tasks"][0]["important"] is True and template["tasks"][2]["urgent"] is True

    with runtime.transaction(user=team["boss"]) as records:
        project = plans.start_from_template(records, template["id"], "2027-03-01",
                                            {"name": "二期实施", "manager_id": team["boss"]["id"]}, assignees={"T3": team["ann"]["id"]})
        pid = project["id"]
        assert project["template_id"] == template["id"] and project["type"] == "implementation"
        assert (project["start_date"], project["end_date"]) == (D(2027, 3, 1), D(2027, 4, 29))
        phases = records.list("project_phase", filters=[("project_id", "eq", pid)], sort="seq").items
        assert [(p["name"], p["start_date"], p["end_date"], p["seq"]) for p in phases] == [
            ("需求调研", D(2027, 3, 1), D(2027, 3, 12), 1), ("系统实施", D(2027, 3, 15), D(2027, 4, 9), 2),
            ("上线验收", D(2027, 4, 12), D(2027, 4, 29), 3)]
        assert phases[0]["check_criteria"] == "需求说明书已签字"
        tasks = {t["title"]: t for t in records.list("project_task", filters=[("project_id", "eq", pid)]).items}
        assert set(tasks) == {"现场调研", "需求说明书", "系统配置", "数据导入", "上线切换"}
        assert (tasks["系统配置"]["start_date"], tasks["系统配置"]["end_date"], tasks["系统配置"]["due_date"]) == (D(2027, 3, 15), D(2027, 3, 26), D(2027, 3, 26))
        assert tasks["上线切换"]["start_date"] == tasks["上线切换"]["end_date"] == D(2027, 4, 12)
        # dependencies re-pointed to the new tasks, not the old ones
        assert tasks["需求说明书"]["depends_on"] == [tasks["现场调研"]["id"]]
        assert tasks["上线切换"]["depends_on"] == sorted([tasks["系统配置"]["id"], tasks["数据导入"]["id"]])
        old_ids = {t["id"] for t in plan["tasks"]}
        assert not old_ids & {i for t in tasks.values() for i in t["depends_on"]}
        assert tasks["系统配置"]["phase_id"] == phases[1]["id"] and tasks["系统配置"]["assignee_id"] == team["ann"]["id"]
        assert tasks["系统配置"]["assigned_by"] == team["boss"]["id"] and tasks["系统配置"]["version"] == 1
        assert all(t["status"] == "not_started" and t["kind"] == "plan" for t in tasks.values())
        milestones = records.list("project_milestone", filters=[("project_id", "eq", pid)], sort="planned_date").items
        assert [(m["name"], m["planned_date"], m["phase_id"]) for m in milestones] == [
            ("需求确认", D(2027, 3, 12), phases[0]["id"]), ("正式上线", D(2027, 4, 12), phases[2]["id"])]
    with runtime.transaction() as records:                          # the source project is untouched
        assert records.get("project_task", plan["tasks"][1]["id"])["depends_on"] == [plan["tasks"][0]["id"]]
        assert notifications.for_user(records, team["ann"]["id"])[0]["title"].startswith("新任务：系统配置")


def test_inconsistent_templates_are_refused(runtime):
    with runtime.transaction() as records:
        with pytest.raises(Vetoed, match="unknown predecessors: T9"):
            records.create("plan_template", {"name": "坏模板", "tasks": [{"key": "T1", "title": "甲", "depends_on": "T9"}]})
        with pytest.raises(Vetoed, match="cycle"):
            records.create("plan_template", {"name": "循环", "tasks": [{"key": "T1", "title": "甲", "depends_on": "T2"},
                                                                       {"key": "T2", "title": "乙", "depends_on": "T1"}]})
        with pytest.raises(Vetoed, match="no phase 'P7'"):
            records.create("plan_template", {"name": "无阶段", "tasks": [{"key": "T1", "title": "甲", "phase_key": "P7"}]})
        good = records.create("plan_template", {"name": "手工模板", "project_type": "internal",
                                                "phases": [{"key": "A", "name": "准备", "offset_days": 0, "duration_days": 2}],
                                                "tasks": [{"key": "B", "title": "乙", "phase_key": "A", "offset_days": 3, "depends_on": "C"},
                                                          {"key": "C", "title": "丙", "phase_key": "A", "offset_days": 0, "duration_days": 1}]})
        with pytest.raises(ValidationFailed):
            plans.start_from_template(records, good["id"], None, {"name": "x"})
        project = plans.start_from_template(records, good["id"], "2026-12-31", {"name": "内部改进"})
        tasks = {t["title"]: t for t in records.list("project_task", filters=[("project_id", "eq", project["id"])]).items}
        assert tasks["乙"]["depends_on"] == [tasks["丙"]["id"]] and tasks["乙"]["start_date"] == D(2027, 1, 3)
        assert project["type"] == "internal" and project["end_date"] == D(2027, 1, 3)


# --- tasks ---------------------------------------------------------------------------------------------

def test_tasks_sort_by_quadrant_then_due_date(runtime, team):
    rows = [("a 不急不重要", False, False, "2026-11-25"), ("b 重要紧急 晚", True, True, "2026-12-01"), ("c 紧急", False, True, "2026-11-24"),
            ("d 重要", True, False, None), ("e 重要紧急 早", True, True, "2026-11-26"), ("f 重要 早", True, False, "2026-11-30"),
            ("g 重要紧急 无期限", True, True, None), ("h 已完成", True, True, "2026-11-20")]
    with runtime.transaction() as records:
        for title, important, urgent, due in rows:
            records.create("project_task", {"title": title, "kind": "ad_hoc", "important": important, "urgent": urgent, "due_date": due,
                                            "assignee_id": team["ann"]["id"], "status": "done" if title.startswith("h") else "not_started"})
    with runtime.transaction(user=team["ann"]) as records:
        grouped = rankings.quadrants(records, assignee_id=team["ann"]["id"])
        assert {q: [t["title"][0] for t in tasks] for q, tasks in grouped.items()} == {1: ["e", "b", "g"], 2: ["f", "d"], 3: ["c"], 4: ["a"]}
        everything = rankings.quadrant_sorted(records.list("project_task", limit=50).items)
        assert [t["title"][0] for t in everything] == ["h", "e", "b", "g", "f", "d", "c", "a"]
        assert [t["quadrant"] for t in everything] == [1, 1, 1, 1, 2, 2, 3, 4]
        changed = records.update("project_task", everything[-1]["id"], {"important": True, "urgent": True})
        assert changed["quadrant"] == 1


def test_task_dependencies_must_stay_in_the_project_and_acyclic(runtime):
    with runtime.transaction() as records:
        plan = make_plan(records)
        other = records.create("project", {"name": "别的项目", "type": "internal"})
        foreign = records.create("project_task", {"title": "别处的任务", "project_id": other["id"]})
        t1, t2, _, _, t5 = plan["tasks"]
        with pytest.raises(Vetoed, match="cycle"):
            records.update("project_task", t1["id"], {"depends_on": [t5["id"]]})
        with pytest.raises(Vetoed, match="same project"):
            records.update("project_task", t2["id"], {"depends_on": [foreign["id"]]})
        with pytest.raises(Vetoed, match="itself"):
            records.update("project_task", t2["id"], {"depends_on": [t2["id"]]})
        with pytest.raises(Vetoed, match="another project"):
            records.create("project_task", {"title": "错配", "project_id": other["id"], "phase_id": plan["phases"][0]["id"]})
        with pytest.raises(Vetoed, match="end date"):
            records.create("project_task", {"title": "倒序", "start_date": "2026-11-05", "end_date": "2026-11-01"})
        assert records.get("project_task", t1["id"])["depends_on"] == []


def test_project_progress_follows_its_tasks(runtime, clock):
    with runtime.transaction() as records:
        plan = make_plan(records)
        pid = plan["project"]["id"]
        assert records.get("project", pid)["progress"] == Decimal("0")          # 0 of 6 (the cancelled one is not counted)
        done = records.update("project_task", plan["tasks"][0]["id"], {"status": "done"})
        assert done["completed_on"] == clock().date() and done["progress"] == 100
        records.update("project_task", plan["tasks"][1]["id"], {"status": "done"})
        assert records.get("project", pid)["progress"] == Decimal("33.3")       # 2 / 6
        records.delete("project_task", plan["adhoc"]["id"])
        assert records.get("project", pid)["progress"] == Decimal("40")         # 2 / 5
        reopened = records.update("project_task", plan["tasks"][1]["id"], {"status": "in_progress"})
        assert reopened["completed_on"] is None and records.get("project", pid)["progress"] == Decimal("20")


def test_daily_task_and_milestone_reminders(runtime, team, clock):
    with runtime.transaction() as records:
        project = records.create("project", {"name": "提醒项目", "type": "internal", "manager_id": team["boss"]["id"]})
        records.create("project_task", {"title": "写报告", "project_id": project["id"], "assignee_id": team["ann"]["id"],
                                        "due_date": "2026-11-26", "remind_days": 2})
        records.as_system().create("project_task", {"title": "交材料", "assignee_id": team["bob"]["id"], "due_date": "2026-11-24"})
        records.create("project_milestone", {"project_id": project["id"], "name": "阶段评审", "planned_date": "2026-11-25"})

    def titles(user):
        with runtime.transaction() as records:
            return sorted(n["title"] for n in notifications.for_user(records, team[user]["id"], limit=100) if n["kind"] != "project_task")

    outcome = dict(run_due(runtime, only=["projects.reminders"]))["projects.reminders"]
    assert "'tasks_due': 1" in outcome and "'milestones': 1" in outcome        # bob's task: due in 1 day (default)
    assert titles("ann") == []                                                   # due in 3 days, reminded 2 days ahead
    assert titles("bob") == ["任务即将到期：交材料（截止 2026-11-24）"]
    assert titles("boss") == ["里程碑即将到期：提醒项目 · 阶段评审（2026-11-25）"]
    assert dict(run_due(runtime, only=["projects.reminders"]))["projects.reminders"] == "already ran today"
    clock.advance(days=1)
    run_due(runtime, only=["projects.reminders"]).__next__()
    assert titles("ann") == ["任务即将到期：写报告（截止 2026-11-26）"]
    clock.advance(days=1)
    list(run_due(runtime, only=["projects.reminders"]))
    assert "任务已逾期：交材料（截止 2026-11-24）" in titles("bob")
    clock.advance(days=1)
    list(run_due(runtime, only=["projects.reminders"]))
    assert titles("bob").count("任务已逾期：交材料（截止 2026-11-24）") == 1    # once per due date
    assert len(titles("ann")) == 1                                               # due today: not overdue yet
    clock.advance(days=1)
    list(run_due(runtime, only=["projects.reminders"]))
    assert titles("ann")[-1] == "任务已逾期：写报告（截止 2026-11-26）"
    assert titles("boss") == ["里程碑即将到期：提醒项目 · 阶段评审（2026-11-25）"]   # once per planned date


# --- risks ---------------------------------------------------------------------------------------------

def test_risks_are_ranked_by_score_then_impact_then_probability(runtime):
    with runtime.transaction() as records:
        project = records.create("project", {"name": "风险项目", "type": "development"})
        other = records.create("project", {"name": "别的项目", "type": "internal"})
        spec = [("A 供应商延期", 3, 5, None), ("B 需求变更", 5, 3, None), ("C 核心人员离职", 5, 5, None), ("D 服务器故障", 4, 2, None),
                ("E 数据丢失", 2, 4, "2026-12-01"), ("F 接口不兼容", 2, 4, "2026-11-30"), ("G 小问题", 1, 1, None),
                ("H 已解决", 5, 5, None)]
        made = {}
        for title, p, i, due in spec:
            made[title[0]] = records.create("project_risk", {"project_id": project["id"], "title": title, "probability": p,
                                                             "impact": i, "due_date": due})
        records.create("project_risk", {"project_id": other["id"], "title": "X 别处", "probability": 5, "impact": 5})
        closed = records.update("project_risk", made["H"]["id"], {"status": "resolved"})
        assert closed["closed_on"] == records.today()
        ranked = rankings.risks(records, project["id"])
        assert [(r["title"][0], r["rank"], r["score"], r["level"]) for r in ranked] == [
            ("C", 1, 25, "high"), ("A", 2, 15, "high"), ("B", 3, 15, "high"), ("F", 4, 8, "medium"), ("E", 4, 8, "medium"),
            ("D", 6, 8, "medium"), ("G", 7, 1, "low")]
        assert [r["title"][0] for r in rankings.risks(records, project["id"], include_closed=True)][:2] == ["C", "H"]
        assert len(rankings.risks(records)) == 8                                   # every project
        lowered = records.update("project_risk", made["C"]["id"], {"probability": 1})
        assert (lowered["score"], lowered["level"]) == (5, "low")


# --- work logs, ratings, performance ---------------------------------------------------------------------

def test_only_the_employees_manager_rates_a_work_log(runtime, team, clock):
    with runtime.transaction(user=team["ann"]) as records:
        task = records.create("project_task", {"title": "编写文档", "kind": "ad_hoc", "assignee_id": team["ann"]["id"]})
        log = records.create("work_log", {"task_id": task["id"], "log_date": "2026-11-23", "hours": "6.5", "content": "完成安装手册"})
        assert log["user_id"] == team["ann"]["id"] and log["project_id"] is None
        with pytest.raises(Vetoed, match="own"):
            records.update("work_log", log["id"], {"manager_rating": 5})
    with runtime.transaction(user=team["carl"]) as records, pytest.raises((Vetoed, Forbidden)):
        records.update("work_log", log["id"], {"manager_rating": 1})
    clock.advance(hours=2)
    with runtime.transaction(user=team["boss"]) as records:
        rated = records.update("work_log", log["id"], {"manager_rating": 4, "manager_comment": "文档清楚"})
        assert (rated["rated_by"], rated["rated_at"]) == (team["boss"]["id"], clock())
    with runtime.transaction(user=team["dora"]) as records:                       # she manages ann's department
        assert records.update("work_log", log["id"], {"manager_rating": 5})["rated_by"] == team["dora"]["id"]
    with runtime.transaction(user=team["ann"]) as records:
        with pytest.raises(ValidationFailed) as failed:
            records.update("work_log", log["id"], {"hours": 9})                  # a rated log's hours stay as rated
        assert set(failed.value.fields) == {"hours"}
        assert records.update("work_log", log["id"], {"content": "完成安装手册（补充截图）"})["manager_rating"] == 5
        assert any(n["title"] == "工作日志（2026-11-23）考评：4 分" for n in notifications.for_user(records, team["ann"]["id"]))


def test_performance_ranking_weights_ratings_by_hours(runtime, team):
    people = {}
    with runtime.transaction() as records:
        s, now = records.session, records.now()
        for name in ("u1", "u2", "u3", "u4", "u5", "u6", "u7"):
            people[name] = org.add_user(s, name, "password-" + name, now=now, manager_id=team["boss"]["id"])
        task = records.create("project_task", {"title": "日常工作", "kind": "ad_hoc"})
        logs = {
            "u1": [("2026-11-02", 8, 5), ("2026-11-03", 2, 3), ("2026-11-04", 4, None)],   # (40 + 6) / 10 = 4.60
            "u2": [("2026-11-05", 5, 4), ("2026-11-06", 5, 5)],                         # 45 / 10 = 4.50, 10 rated hours
            "u3": [("2026-11-05", 6, 5), ("2026-11-06", 6, 4)],                         # 54 / 12 = 4.50, 12 rated hours
            "u4": [("2026-11-10", 5, 5), ("2026-11-30", 5, 4), ("2026-12-01", 8, 1), ("2026-10-31", 8, 1)],  # as u2 in November
            "u5": [("2026-11-11", 7, 4), ("2026-11-12", 1, 5)],                         # 33 / 8 = 4.125 → 4.13 (half up)
            "u6": [("2026-11-13", 0, 4), ("2026-11-14", 0, 3)],                         # no hours: plain mean 3.50
            "u7": [("2026-11-15", 3, None), ("2026-11-16", 2, None)],                   # nothing rated
        }
        for name, rows in logs.items():
            for day, hours, rating in rows:
                records.create("work_log", {"task_id": task["id"], "user_id": people[name], "log_date": day, "hours": hours,
                                            "content": "工作", "manager_rating": rating})
        ranking = rankings.performance(records, "2026-11")
    got = [({v: k for k, v in people.items()}[r["user_id"]], r["rank"], r["score"], r["rated_hours"], r["hours"]) for r in ranking]
    assert got == [
        ("u1", 1, Decimal("4.60"), 10, 14), ("u3", 2, Decimal("4.50"), 12, 12), ("u2", 3, Decimal("4.50"), 10, 10),
        ("u4", 3, Decimal("4.50"), 10, 10), ("u5", 5, Decimal("4.13"), 8, 8), ("u6", 6, Decimal("3.50"), 0, 0),
        ("u7", None, None, 0, 5)]
    first = ranking[0]
    assert (first["logs"], first["rated_logs"], first["average"]) == (3, 2, Decimal("4.00"))
    with runtime.transaction() as records:
        assert rankings.period_range("2026-Q4") == (D(2026, 10, 1), D(2026, 12, 31))
        assert rankings.period_range("2024-02") == (D(2024, 2, 1), D(2024, 2, 29))
        december = rankings.performance(records, ("2026-12-01", "2026-12-31"))
        assert [(r["user_id"], r["score"]) for r in december] == [(people["u4"], Decimal("1.00"))]
        assert rankings.performance(records, "2026")[0]["user_id"] == people["u1"]
        with pytest.raises(BadRequest):
            rankings.performance(records, "2026-13")


# --- reviews -------------------------------------------------------------------------------------------

def test_two_way_reviews_and_suggestions_to_management(runtime, team):
    with runtime.transaction(user=team["boss"]) as records:
        down = records.create("project_review", {"kind": "manager_to_staff", "reviewee_id": team["ann"]["id"], "subject": "本月表现",
                                                 "content": "按时完成任务", "rating": 5})
        assert down["reviewer_id"] == team["boss"]["id"]
        with pytest.raises(Vetoed, match="manager"):
            records.create("project_review", {"kind": "manager_to_staff", "reviewee_id": team["carl"]["id"], "subject": "越级",
                                              "content": "..."})
    with runtime.transaction(user=team["ann"]) as records:
        up = records.create("project_review", {"kind": "staff_to_manager", "reviewee_id": team["boss"]["id"], "subject": "对领导的评价",
                                               "content": "沟通及时，但会议太多", "rating": 4})
        with pytest.raises(Vetoed, match="own manager"):
            records.create("project_review", {"kind": "staff_to_manager", "reviewee_id": team["carl"]["id"], "subject": "x", "content": "y"})
        with pytest.raises(ValidationFailed):
            records.create("project_review", {"kind": "staff_to_manager", "subject": "x", "content": "y"})
        idea = records.create("project_review", {"kind": "suggestion", "subject": "建议", "content": "希望增加培训"})
        assert {r["id"] for r in records.list("project_review").items} == {down["id"], up["id"], idea["id"]}
    with runtime.transaction(user=team["boss"]) as records:
        assert {r["id"] for r in records.list("project_review").items} == {down["id"], up["id"]}
        assert notifications.for_user(records, team["boss"]["id"])[0]["title"] == "收到评价：对领导的评价"
    with runtime.transaction(user=team["bob"]) as records:
        assert records.list("project_review").items == []
    with runtime.transaction(user=team["carl"]) as records:                          # holds projects.read_suggestions
        assert [r["id"] for r in records.list("project_review").items] == [idea["id"]]


# --- the project flow ----------------------------------------------------------------------------------

def test_the_project_flow_depends_on_the_project_type(runtime, team, clock):
    with runtime.transaction(user=team["ann"]) as records:
        internal = records.create("project", {"name": "内部培训", "type": "internal", "manager_id": team["ann"]["id"]})
        delivery = records.create("project", {"name": "客户实施", "type": "implementation", "manager_id": team["ann"]["id"]})

    def step(user, project, transition, **kw):
        with runtime.transaction(user=team[user]) as records:
            return workflow.transition(records, "project", project["id"], transition, **kw)

    def steps(user, project):
        with runtime.transaction(user=team[user]) as records:
            return [t["id"] for t in workflow.available(records, "project", project["id"])]

    assert "start_internal" in steps("ann", internal) and "start_internal" not in steps("ann", delivery)
    started = step("ann", internal, "start_internal")
    assert started["status"] == "in_progress" and started["actual_start_date"] == clock().date()
    assert steps("ann", internal) == ["close", "suspend"]
    clock.advance(days=10)
    assert step("ann", internal, "close")["actual_end_date"] == clock().date()

    step("ann", delivery, "plan")
    with pytest.raises(Forbidden):
        step("ann", delivery, "start")                      # the project manager's manager approves the plan
    step("boss", delivery, "start")
    assert "close" not in steps("ann", delivery)            # implementation projects go through acceptance
    step("ann", delivery, "submit_acceptance")
    with runtime.transaction() as records:
        issue = records.create("project_issue", {"project_id": delivery["id"], "title": "报表导出慢", "severity": "high"})
    with pytest.raises(Vetoed, match="severe open issues"):
        step("boss", delivery, "accept")
    with runtime.transaction() as records:
        records.update("project_issue", issue["id"], {"status": "resolved", "resolution": "加索引"})
    assert step("boss", delivery, "accept")["status"] == "closed"


# --- milestones, open issues, Gantt --------------------------------------------------------------------

def test_milestone_rates_open_issues_and_next_phase_checks(runtime, clock):
    with runtime.transaction() as records:
        plan = make_plan(records)
        pid = plan["project"]["id"]
        p1, p2, p3 = plan["phases"]
        records.create("project_milestone", {"project_id": pid, "phase_id": p1["id"], "name": "调研报告", "planned_date": "2026-11-06",
                                             "status": "done"})
        records.create("project_milestone", {"project_id": pid, "name": "合同签订", "planned_date": "2026-11-01", "actual_date": "2026-11-01"})
        late = records.create("project_milestone", {"project_id": pid, "phase_id": p1["id"], "name": "蓝图评审", "planned_date": "2026-11-20"})
        rates = progress.milestone_rates(records, pid)
        assert [(g["phase"], g["total"], g["done"], g["rate"]) for g in rates["phases"]] == [
            ("需求调研", 3, 1, Decimal("33.3")), ("系统实施", 0, 0, None), ("上线验收", 1, 0, Decimal("0.0")), ("未分阶段", 1, 1, Decimal("100.0"))]
        assert rates["total"] == {"total": 5, "done": 2, "overdue": 2, "rate": Decimal("40.0")}   # 需求确认, 蓝图评审
        assert records.get("project_milestone", late["id"])["actual_date"] is None
        assert records.update("project_milestone", late["id"], {"status": "done"})["actual_date"] == clock().date()

        records.update("project_phase", p1["id"], {"status": "in_progress"})
        a = records.create("project_issue", {"project_id": pid, "phase_id": p1["id"], "title": "权限需求未确认", "severity": "high"})
        b = records.create("project_issue", {"project_id": pid, "phase_id": p1["id"], "title": "报表格式待定", "severity": "low",
                                             "check_phase_id": p3["id"]})
        c = records.create("project_issue", {"project_id": pid, "title": "客户IT人员不足"})
        records.create("project_issue", {"project_id": pid, "phase_id": p1["id"], "title": "已解决的问题", "status": "resolved"})
        assert a["check_phase_id"] == p2["id"] and a["found_on"] == clock().date()   # checked in the next phase by default
        summary = progress.issue_summary(records, pid)
        assert summary["open"] == 3 and summary["by_severity"] == {"high": 1, "low": 1, "medium": 1}
        assert [(g["phase"], [i["id"] for i in g["issues"]]) for g in summary["by_phase"]] == [
            ("需求调研", [a["id"], b["id"]]), ("系统实施", []), ("上线验收", []), ("未分阶段", [c["id"]])]
        assert summary["current_phase"]["id"] == p1["id"]
        following = summary["next_phase"]
        assert following["phase_id"] == p2["id"] and following["check_criteria"] == "无严重遗留问题"
        assert [i["id"] for i in following["issues"]] == [a["id"]] and [i["id"] for i in following["blocking"]] == [a["id"]]
        assert [(c["phase"], len(c["issues"])) for c in summary["checks"]] == [("需求调研", 0), ("系统实施", 1), ("上线验收", 1)]
        with pytest.raises(Vetoed, match="another project"):
            records.create("project_issue", {"project_id": pid, "title": "x", "check_phase_id":
                                             records.create("project_phase", {"project_id": records.create("project", {"name": "z", "type": "internal"})["id"],
                                                                              "name": "别的阶段"})["id"]})


def test_gantt_is_a_well_formed_printable_svg(runtime, clock):
    with runtime.transaction() as records:
        plan = make_plan(records)
        pid = plan["project"]["id"]
        records.update("project_task", plan["tasks"][0]["id"], {"status": "done"})
        records.update("project_task", plan["tasks"][1]["id"], {"title": "需求<说明书> & 签字", "progress": 50})
        svg = progress.gantt_svg(records, pid)
        html = progress.gantt_html(records, pid)
        empty = progress.gantt_svg(records, records.create("project", {"name": "空项目", "type": "internal"})["id"])
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    texts = [t.text for t in root.iter(ns + "text")]
    assert "ERP实施（XM202611-001） 项目甘特图 · 任务完成率 16.7%" in texts         # 1 of 6 (the cancelled one left out)
    assert {"需求调研", "系统实施", "上线验收", "现场调研", "需求<说明书> & 签字", "◆ 正式上线"} <= set(texts)
    assert "&amp; 签字" in svg and "<说明书>" not in svg
    assert "2026-11" in texts and "2026-12" in texts and "今天 2026-11-23" in texts
    arrows = [p for p in root.iter(ns + "path") if p.get("marker-end")]
    assert len(arrows) == 5                                   # T1→T2, T2→T3, T2→T4, T3→T5, T4→T5
    bars = {g.find(ns + "title").text: g for g in root.iter(ns + "g") if g.find(ns + "title") is not None}
    done_bar = next(g for t, g in bars.items() if t.startswith("现场调研"))
    assert done_bar.findall(ns + "rect")[0].get("fill") == "#4caf50"
    assert "(done)" in next(t for t in bars if t.startswith("现场调研"))
    assert html.startswith("<!DOCTYPE html>") and "@page{size:A4 landscape" in html and "<svg" in html
    assert ET.fromstring(empty).find(ns + "text") is not None and "还没有日期" in empty


# --- pages -------------------------------------------------------------------------------------------

def test_project_pages(make_runtime):
    from tests.api_fixtures import create_user
    from tests.test_pages import Site
    runtime = make_runtime()
    admin = create_user(runtime, "admin", display_name="管理员")
    with runtime.transaction() as records:
        plan = make_plan(records)
        pid = plan["project"]["id"]
        records.create("project_risk", {"project_id": pid, "title": "核心人员离职", "probability": 4, "impact": 5, "owner_id": admin})
        records.create("project_issue", {"project_id": pid, "phase_id": plan["phases"][0]["id"], "title": "权限需求未确认", "severity": "high"})
        records.update("project_phase", plan["phases"][0]["id"], {"status": "in_progress"})
        records.update("project_task", plan["tasks"][0]["id"], {"assignee_id": admin})
        task = records.create("work_log", {"task_id": plan["tasks"][0]["id"], "user_id": admin, "log_date": "2026-11-20", "hours": 8,
                                           "content": "调研", "manager_rating": 4})
        assert task["project_id"] == pid
    site = Site(runtime)
    site.login()
    detail = site.get(f"/app/project/{pid}")
    assert f"/app/projects/{pid}/report" in detail.text and f"/app/projects/{pid}/save_template" in detail.text
    report = site.get(f"/app/projects/{pid}/report")
    assert "项目进度汇报" in report.text and "<svg" in report.text and "核心人员离职" in report.text
    assert "下一阶段检查: 系统实施" in report.text and "权限需求未确认" in report.text and "无严重遗留问题" in report.text
    assert site.get(f"/app/projects/{pid}/gantt.svg").content_type == "image/svg+xml"
    assert "@page" in site.get(f"/app/projects/{pid}/gantt").text
    site.get("/app/projects/999/report", status=404)
    quadrants = site.get("/app/projects/quadrants")
    assert 'data-quadrant="2"' in quadrants.text and "现场调研" in quadrants.text and "需求说明书" not in quadrants.text
    assert "需求说明书" in site.get("/app/projects/quadrants?all=1").text
    ranking = site.get("/app/projects/performance?period=2026-11")
    assert "管理员" in ranking.text and "4.00" in ranking.text
    site.get("/app/projects/performance?period=nonsense", status=400)

    saved = site.post(f"/app/projects/{pid}/save_template", {})
    template_id = int(saved.location.rstrip("/").rsplit("/", 1)[1])
    form = site.get(f"/app/projects/from_template?template_id={template_id}")
    assert "ERP实施 模板" in form.text
    site.post("/app/projects/from_template", {"template_id": template_id, "name": "", "start_date": "2027-01-04"}, status=422)
    created = site.post("/app/projects/from_template", {"template_id": template_id, "name": "三期实施", "start_date": "2027-01-04"})
    new_id = int(created.location.rstrip("/").rsplit("/", 1)[1])
    with runtime.transaction() as records:
        project = records.get("project", new_id)
        assert (project["name"], project["start_date"], project["manager_id"]) == ("三期实施", D(2027, 1, 4), admin)
        assert len(records.list("project_task", filters=[("project_id", "eq", new_id)]).items) == 5
        assert len(records.list("project", filters=[("name", "eq", "")]).items) == 0        # the refused form left nothing


# --- in a real browser ---------------------------------------------------------------------------------

@pytest.fixture
def live(make_runtime):
    """The app over the test runtime, served by waitress; a Chromium page logged in as 王经理."""
    from crm.core.app import make_app
    from tests import browser as b
    from tests.api_fixtures import PASSWORD, create_user
    playwright = b.playwright_api()
    runtime = make_runtime(**{"crm.secret": "projects-browser-test-secret-0123456789"})
    admin = create_user(runtime, "admin", display_name="王经理")
    errors = []
    with b.served(make_app(runtime)) as base, b.chromium(playwright) as browser:
        page = b.new_page(browser, errors)
        b.login(page, base, "admin", PASSWORD)
        yield runtime, base, page, admin, playwright.expect
    assert not errors, f"JavaScript errors: {errors}"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_browser_create_a_project_from_a_template_and_log_work(live, database_url):
    import re
    runtime, base, page, admin, expect = live
    with runtime.transaction() as records:
        template = plans.save_as_template(records, make_plan(records)["project"]["id"], name="ERP实施标准计划")
    page.click(".sidebar a[href='/app/projects/from_template']")
    page.select_option("#template_id", str(template["id"]))
    page.fill("#name", "三期实施")
    page.fill("#start_date", "2027-01-04")
    page.select_option("#customer_id", label="华信科技")
    page.click("#from-template-form button[type=submit]")
    page.wait_for_url(re.compile(r"/app/project/\d+$"))
    expect(page.locator("h1")).to_contain_text("三期实施")
    project_id = int(page.url.rsplit("/", 1)[1])
    page.click("a:has-text('进度汇报')")
    page.wait_for_url(f"{base}/app/projects/{project_id}/report")
    expect(page.locator("[data-testid=gantt] svg")).to_be_visible()
    expect(page.locator("[data-testid=gantt]")).to_contain_text("现场调研")
    with runtime.transaction() as records:
        task = records.list("project_task", filters=[("project_id", "eq", project_id), ("title", "eq", "现场调研")]).items[0]
    assert task["start_date"] == D(2027, 1, 4)
    page.goto(base + "/app/work_log/new")
    page.fill("#f-task_id", task["code"])
    expect(page.locator("#f-task_id-list [role=option]").first).to_contain_text("现场调研")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(page.locator("input[name=task_id]")).to_have_value(str(task["id"]))
    page.fill("#f-log_date", "2027-01-04")
    page.fill("#f-hours", "7.5")
    page.fill("#f-content", "现场调研：访谈财务部")
    page.click("button:has-text('保存') >> nth=0")
    page.wait_for_url(re.compile(r"/app/work_log/\d+$"))
    with runtime.transaction() as records:
        log = records.get("work_log", int(page.url.rsplit("/", 1)[1]))
    assert (log["task_id"], log["project_id"], log["user_id"], log["hours"]) == (task["id"], project_id, admin, Decimal("7.5"))
