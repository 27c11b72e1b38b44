"""Projects (项目管理): plans, tasks, work logs with ratings, risks, milestones, open issues, reviews.

- 项目计划: a project (customer, type, manager, dates) has phases and tasks (start/end dates,
  department and person responsible, predecessors); the project flow (``metadata/project_flow.json``,
  one workflow routed by project type) moves its status.
- 计划模板: a project is saved as a plan template (phases, tasks, milestones as day offsets from the
  start, task dependencies by key) and new projects start from one (:mod:`.plans`).
- 任务: planned and ad-hoc tasks with important/urgent → quadrant 1–4 (a computed field), due dates
  and the daily reminder job ``projects.reminders`` (:mod:`.reminders`).
- 工作日志与考评: work logs against tasks; only the employee's manager rates them (1–5 and a comment);
  performance ranking per period (:func:`.rankings.performance`).
- 风险: probability × impact = score → level, ranked (:func:`.rankings.risks`).
- 里程碑 / 遗留问题: completion rate per phase, a printable SVG timeline, open issues with the checks
  of the next phase (:mod:`.progress`).
- 评论: two-way reviews between managers and staff; suggestions to management, readable by their
  author and the holders of ``projects.read_suggestions``.

See docs/plugin_projects.md.
"""
from pathlib import Path

import sqlalchemy as sa

from crm.hooks import Job, Veto, hookimpl

from . import plans, progress, rankings, reminders  # noqa: F401  (the plugin's functions)

label = {"zh_CN": "项目管理", "en": "Projects"}
MESSAGES = {
    "dates": "结束日期不能早于开始日期 / the end date is before the start date",
    "phase": "阶段不属于该项目 / the phase belongs to another project",
    "self": "任务不能依赖自己 / a task cannot depend on itself",
    "other_project": "前置任务必须属于同一项目 / predecessors must belong to the same project",
    "cycle": "前置任务形成循环 / the predecessors form a cycle",
    "rate": "只有员工的上级主管可以考评 / only the employee's manager may rate a work log",
    "own_rating": "不能考评自己的工作日志 / you cannot rate your own work log",
    "no_user": "工作日志必须有员工 / a work log needs an employee",
    "review_manager": "只有被评价人的上级主管可以点评 / only the person's manager may review them",
    "review_staff": "只能评价自己的上级主管 / staff review their own manager",
    "review_self": "不能评价自己 / you cannot review yourself",
    "close_issues": "还有 {n} 个严重的遗留问题未解决，不能结项 / {n} severe open issues must be resolved before closing",
}


@hookimpl
def crm_metadata():
    return [Path(__file__).parent / "metadata"]


@hookimpl
def crm_jobs():
    return [Job("projects.reminders", reminders.run, label={"zh_CN": "项目任务提醒", "en": "Project reminders"})]


@hookimpl
def crm_permissions():
    return [{"name": "projects.read_suggestions", "label": {"zh_CN": "查看员工意见建议", "en": "Read staff suggestions"}}]


_PLAN = ("project_phase", "project_task", "project_risk", "project_milestone", "project_issue")
ROLES = [
    {"name": "project_manager", "label": {"zh_CN": "项目经理", "en": "Project manager"},
     "rules": {"entities": {"*": {"read": "all"},
                            "project": {"read": "all", "create": "all", "update": "department_tree", "delete": "own", "export": "all"},
                            **{e: {"read": "all", "create": "all", "update": "department_tree", "delete": "department_tree"} for e in _PLAN},
                            "plan_template": {"read": "all", "create": "all", "update": "all", "delete": "own"},
                            "work_log": {"read": "department_tree", "create": "all", "update": "department_tree", "export": "department_tree"},
                            "project_review": {"read": "all", "create": "all", "update": "own"}},
               "permissions": ["projects.read_suggestions"]}},
    # project staff: log their work, move their tasks on, review and suggest
    {"extends": "sales_rep", "rules": {"entities": {
        "work_log": {"read": "own", "create": "all", "update": "own", "delete": "own"},
        "project_task": {"update": "own"}, "project_review": {"create": "all", "update": "own"}}}},
    {"extends": "sales_manager", "rules": {"entities": {
        "work_log": {"read": "department_tree", "create": "all", "update": "own"},
        "project_task": {"create": "all", "update": "department_tree"}, "project_review": {"create": "all", "update": "own"}}}},
    {"extends": "general_manager", "rules": {"permissions": ["projects.read_suggestions"]}},   # when cost_centers made it
]


@hookimpl
def crm_roles():
    return ROLES


@hookimpl
def crm_menu_entries():
    entities = ["project", "project_task", "work_log", "project_phase", "project_milestone", "project_risk", "project_issue",
                "project_review", "plan_template"]
    return [{"id": "projects", "label": {"zh_CN": "项目管理", "en": "Projects"}, "order": 40},
            *({"id": name, "entity": name, "parent": "projects", "order": 400 + i} for i, name in enumerate(entities)),
            {"id": "projects.quadrants", "label": {"zh_CN": "四象限任务", "en": "Tasks by quadrant"}, "url": "/app/projects/quadrants",
             "entity": "project_task", "parent": "projects", "order": 420},
            {"id": "projects.performance", "label": {"zh_CN": "绩效排名", "en": "Performance ranking"}, "url": "/app/projects/performance",
             "entity": "work_log", "parent": "projects", "order": 421},
            {"id": "projects.from_template", "label": {"zh_CN": "从模板新建项目", "en": "New project from a template"},
             "url": "/app/projects/from_template", "entity": "project", "action": "create", "parent": "projects", "order": 422}]


@hookimpl
def crm_record_actions(ctx, entity, record):
    if entity.name == "project":
        base = f"/app/projects/{record['id']}"
        actions = [{"id": "projects.report", "label": {"zh_CN": "进度汇报", "en": "Progress report"}, "url": base + "/report", "method": "GET"},
                   {"id": "projects.gantt", "label": {"zh_CN": "甘特图（打印）", "en": "Timeline (print)"}, "url": base + "/gantt", "method": "GET"}]
        if ctx.access.allowed("plan_template", "create"):
            actions.append({"id": "projects.save_template", "label": {"zh_CN": "另存为计划模板", "en": "Save as plan template"},
                            "url": base + "/save_template", "method": "POST"})
        return actions
    if entity.name == "plan_template" and ctx.access.allowed("project", "create"):
        return [{"id": "projects.start", "label": {"zh_CN": "用此模板新建项目", "en": "Start a project from it"},
                 "url": f"/app/projects/from_template?template_id={record['id']}", "method": "GET"}]
    return []


@hookimpl
def crm_web_config(config):
    from . import views
    views.includeme(config)


# --- records -----------------------------------------------------------------------------------

@hookimpl
def crm_before_create(ctx, entity, values):
    check = BEFORE.get(entity.name)
    if check:
        check(ctx, {}, values, values)


@hookimpl
def crm_before_update(ctx, entity, old, changes):
    check = BEFORE.get(entity.name)
    if check:
        check(ctx, old, changes, {**old, **changes})


@hookimpl
def crm_after_create(ctx, entity, record):
    if entity.name == "project_task":
        _check_dependencies(ctx, record)
        _refresh_progress(ctx, record.get("project_id"))
        if record.get("assignee_id") and record["assignee_id"] != ctx.user_id:
            _notify_assignee(ctx, record)
    elif entity.name == "project_review":
        _notify_reviewee(ctx, record)
    elif entity.name == "plan_template":
        plans.check_template(ctx, record)


@hookimpl
def crm_after_update(ctx, entity, old, record, changes):
    if entity.name == "project_task":
        if "depends_on" in changes or "project_id" in changes:
            _check_dependencies(ctx, record)
        for project_id in {old.get("project_id"), record.get("project_id")}:
            _refresh_progress(ctx, project_id)
        if "assignee_id" in changes and record.get("assignee_id") and record["assignee_id"] != ctx.user_id:
            _notify_assignee(ctx, record)
    elif entity.name == "plan_template" and {"phases", "tasks", "milestones"} & set(changes):
        plans.check_template(ctx, record)
    elif entity.name == "work_log" and "manager_rating" in changes and record.get("manager_rating"):
        from crm.core.notifications import notify
        notify(ctx, record["user_id"], "work_log_rated", f"工作日志（{record['log_date']}）考评：{record['manager_rating']} 分",
               f"work_log_rated:{record['id']}:{record['version']}", entity="work_log", record_id=record["id"])


@hookimpl
def crm_after_delete(ctx, entity, record):
    if entity.name == "project_task":
        _refresh_progress(ctx, record.get("project_id"))


@hookimpl
def crm_after_restore(ctx, entity, record):
    if entity.name == "project_task":
        _refresh_progress(ctx, record.get("project_id"))


@hookimpl
def crm_before_transition(ctx, entity, record, transition, comment):
    """Closing a project needs its severe open issues resolved (遗留问题 checked before 结项)."""
    if entity.name == "project" and transition["to"] == "closed":
        table = ctx.entity("project_issue").table
        n = ctx.session.execute(sa.select(sa.func.count()).where(
            table.c.project_id == record["id"], table.c.deleted_at.is_(None), table.c.status == "open", table.c.severity == "high")).scalar()
        if n:
            raise Veto(MESSAGES["close_issues"].format(n=n))


@hookimpl
def crm_access_restrictions(ctx, entity, action, user):
    """Reviews are read by their author, the reviewed person and the latter's managers; suggestions
    by their author and the holders of ``projects.read_suggestions``."""
    if entity.name != "project_review" or user is None or user.get("is_admin"):
        return []
    table = entity.table
    me = user["id"]
    people = sorted({me} | ctx.access.reports())
    suggestion = table.c.kind == "suggestion"
    readers = [table.c.reviewer_id == me, sa.and_(~suggestion, table.c.reviewee_id.in_(people))]
    if ctx.access.has("projects.read_suggestions"):
        readers.append(suggestion)
    return [sa.or_(*readers)]


# --- checks per entity ---------------------------------------------------------------------------

def _dates(merged, start="start_date", end="end_date"):
    if merged.get(start) and merged.get(end) and merged[end] < merged[start]:
        raise Veto(MESSAGES["dates"], field=end)


def _project(ctx, old, changes, merged):
    _dates(merged)


def _phase(ctx, old, changes, merged):
    _dates(merged)


def _task(ctx, old, changes, merged):
    _dates(merged)
    if not old and ctx.user_id and not merged.get("assigned_by"):
        changes["assigned_by"] = ctx.user_id
    if merged.get("phase_id") and ("phase_id" in changes or "project_id" in changes):
        phase_project = _value(ctx, "project_phase", merged["phase_id"], "project_id")
        if not merged.get("project_id"):
            changes["project_id"] = phase_project
        elif merged["project_id"] != phase_project:
            raise Veto(MESSAGES["phase"], field="phase_id")
    if not old:
        if not merged.get("due_date") and merged.get("end_date"):
            changes["due_date"] = merged["end_date"]
    elif "end_date" in changes and "due_date" not in changes and old.get("due_date") in (None, old.get("end_date")):
        changes["due_date"] = changes["end_date"]          # a due date taken from the end date follows it
    if "status" in changes:
        if changes["status"] == "done":
            changes["completed_on"] = ctx.today()
            changes["progress"] = 100
        elif old:
            changes["completed_on"] = None


def _work_log(ctx, old, changes, merged):
    if not merged.get("user_id"):
        if not ctx.user_id:
            raise Veto(MESSAGES["no_user"], field="user_id")
        changes["user_id"] = ctx.user_id
    if "task_id" in changes:
        changes["project_id"] = _value(ctx, "project_task", changes["task_id"], "project_id")
    rated = {"manager_rating", "manager_comment"} & set(changes)
    if rated and any(changes[k] != old.get(k) for k in rated):
        if ctx.user_id is not None and merged["user_id"] == ctx.user_id:
            raise Veto(MESSAGES["own_rating"], field="manager_rating")
        if not is_manager_of(ctx, merged["user_id"]):
            raise Veto(MESSAGES["rate"], field="manager_rating")
        changes["rated_by"] = ctx.user_id
        changes["rated_at"] = ctx.now()


def _risk(ctx, old, changes, merged):
    if not old or {"probability", "impact"} & set(changes):
        score = merged["probability"] * merged["impact"] if merged.get("probability") and merged.get("impact") else None
        changes["score"], changes["level"] = score, rankings.risk_level(score)
    if "status" in changes:
        changes["closed_on"] = ctx.today() if changes["status"] in ("resolved", "closed") else None
    if not old and not merged.get("identified_on"):
        changes["identified_on"] = ctx.today()


def _milestone(ctx, old, changes, merged):
    if changes.get("status") == "done" and not merged.get("actual_date"):
        changes["actual_date"] = ctx.today()
    elif changes.get("actual_date") and merged.get("status") != "done":
        changes["status"] = "done"
    elif old and changes.get("status") == "pending" and "actual_date" not in changes:
        changes["actual_date"] = None


def _issue(ctx, old, changes, merged):
    for name in ("phase_id", "check_phase_id"):
        if merged.get(name) and name in changes and _value(ctx, "project_phase", merged[name], "project_id") != merged.get("project_id"):
            raise Veto(MESSAGES["phase"], field=name)
    if merged.get("phase_id") and not merged.get("check_phase_id") and ("phase_id" in changes or not old):
        following = progress.next_phase(ctx, merged["phase_id"])
        if following:
            changes["check_phase_id"] = following
    if "status" in changes:
        changes["resolved_on"] = ctx.today() if changes["status"] in ("resolved", "closed") else None
    if not old and not merged.get("found_on"):
        changes["found_on"] = ctx.today()


def _review(ctx, old, changes, merged):
    if not old:
        changes["reviewer_id"] = ctx.user_id
    reviewer, reviewee = merged.get("reviewer_id"), merged.get("reviewee_id")
    if not {"kind", "reviewee_id"} & set(changes) or ctx.user_id is None:
        return
    kind = merged.get("kind")
    if kind == "suggestion" or reviewee is None:
        return
    if reviewee == reviewer:
        raise Veto(MESSAGES["review_self"], field="reviewee_id")
    if kind == "manager_to_staff" and not is_manager_of(ctx, reviewee):
        raise Veto(MESSAGES["review_manager"], field="reviewee_id")
    if kind == "staff_to_manager" and not _manages(ctx, reviewee, reviewer):
        raise Veto(MESSAGES["review_staff"], field="reviewee_id")


BEFORE = {"project": _project, "project_phase": _phase, "project_task": _task, "work_log": _work_log, "project_risk": _risk,
          "project_milestone": _milestone, "project_issue": _issue, "project_review": _review}


# --- helpers ---------------------------------------------------------------------------------------

def _value(ctx, entity_name, record_id, column):
    table = ctx.entity(entity_name).table
    return ctx.session.execute(sa.select(table.c[column]).where(table.c.id == record_id)).scalar()


def _user(ctx, user_id):
    from crm.core.auth import get_user
    return get_user(ctx.session, user_id=user_id) if user_id else None


def _manages(ctx, manager_id, user_id):
    """Is ``manager_id`` the manager of ``user_id`` (上级主管, or the manager of their department)?"""
    from crm.core.tables import departments
    person = _user(ctx, user_id)
    if person is None or manager_id is None:
        return False
    if person.get("manager_id") == manager_id:
        return True
    department = person.get("department_id")
    while department is not None:
        row = ctx.session.execute(sa.select(departments.c.parent_id, departments.c.manager_id).where(departments.c.id == department)).first()
        if row is None:
            return False
        if row.manager_id == manager_id:
            return True
        department = row.parent_id
    return False


def is_manager_of(ctx, user_id):
    """May the acting user rate or review ``user_id`` as their manager? Administrators and the
    system may; others must be the person's 上级主管 or manage their department (at any level)."""
    if ctx.user is None or ctx.user.get("is_admin"):
        return True
    return user_id != ctx.user_id and _manages(ctx, ctx.user_id, user_id)


def _check_dependencies(ctx, task):
    predecessors = task.get("depends_on") or []
    if not predecessors:
        return
    if task["id"] in predecessors:
        raise Veto(MESSAGES["self"], field="depends_on")
    table = ctx.entity("project_task").table
    projects = set(ctx.session.execute(sa.select(table.c.project_id).where(table.c.id.in_(predecessors))).scalars())
    if projects != {task.get("project_id")}:
        raise Veto(MESSAGES["other_project"], field="depends_on")
    if task["id"] in plans.predecessors_closure(ctx, predecessors):
        raise Veto(MESSAGES["cycle"], field="depends_on")


def _refresh_progress(ctx, project_id):
    """项目任务完成率: done tasks / tasks not cancelled × 100, one decimal (derived, no version bump)."""
    if not project_id:
        return
    table = ctx.entity("project_task").table
    rows = dict(ctx.session.execute(sa.select(table.c.status, sa.func.count()).where(
        table.c.project_id == project_id, table.c.deleted_at.is_(None)).group_by(table.c.status)).all())
    counted = sum(n for status, n in rows.items() if status != "cancelled")
    value = rankings.percent(rows.get("done", 0), counted)
    ctx.set_derived("project", project_id, {"progress": value})


def _notify_assignee(ctx, task):
    from crm.core.notifications import notify
    due = f"，截止 {task['due_date']}" if task.get("due_date") else ""
    notify(ctx, task["assignee_id"], "project_task", f"新任务：{task['title']}{due}",
           f"project_task_assigned:{task['id']}:{task['assignee_id']}", entity="project_task", record_id=task["id"], due_on=task.get("due_date"))


def _notify_reviewee(ctx, review):
    from crm.core.notifications import notify
    if review.get("kind") == "suggestion" or not review.get("reviewee_id"):
        return
    notify(ctx, review["reviewee_id"], "project_review", f"收到评价：{review['subject']}",
           f"project_review:{review['id']}", entity="project_review", record_id=review["id"])
