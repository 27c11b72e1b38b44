"""The daily job ``projects.reminders``: notifications keyed so that a second run adds nothing.

- 任务到期提醒: an open task (not started / in progress) whose due date is at most its
  ``remind_days`` (提前提醒天数) away → its person responsible, once per due date;
- 任务逾期: the due date has passed → the person responsible and the one who assigned it, once per due date;
- 里程碑提醒: a pending milestone planned within 3 days (or overdue) → the project manager, once per planned date.
Then e-mails the new notifications when a mail server is configured.
"""
import datetime as dt

import sqlalchemy as sa

from crm.core.mailer import Mailer
from crm.core.notifications import email_pending, notify

MILESTONE_DAYS = 3


def run(ctx):
    today = ctx.today()
    counts = {"tasks_due": 0, "tasks_overdue": 0, "milestones": 0}
    task = ctx.entity("project_task").table
    rows = ctx.session.execute(sa.select(task.c.id, task.c.title, task.c.due_date, task.c.remind_days, task.c.assignee_id, task.c.assigned_by)
                               .where(task.c.deleted_at.is_(None), task.c.status.in_(("not_started", "in_progress")),
                                      task.c.due_date.is_not(None), task.c.due_date <= today + dt.timedelta(days=366)))
    for row in rows:
        if row.due_date < today:
            title = f"任务已逾期：{row.title}（截止 {row.due_date}）"
            for user_id in {row.assignee_id, row.assigned_by} - {None}:
                counts["tasks_overdue"] += notify(ctx, user_id, "project_task_overdue", title, f"project_task_overdue:{row.id}:{row.due_date}:{user_id}",
                                                  entity="project_task", record_id=row.id, due_on=row.due_date)
        elif (row.due_date - today).days <= (row.remind_days if row.remind_days is not None else 1):
            counts["tasks_due"] += notify(ctx, row.assignee_id, "project_task_due", f"任务即将到期：{row.title}（截止 {row.due_date}）",
                                          f"project_task_due:{row.id}:{row.due_date}", entity="project_task", record_id=row.id, due_on=row.due_date)
    milestone, project = ctx.entity("project_milestone").table, ctx.entity("project").table
    rows = ctx.session.execute(sa.select(milestone.c.id, milestone.c.name, milestone.c.planned_date, project.c.name.label("project"),
                                         sa.func.coalesce(milestone.c.owner_id, project.c.manager_id).label("user_id"))
                               .join(project, project.c.id == milestone.c.project_id)
                               .where(milestone.c.deleted_at.is_(None), project.c.deleted_at.is_(None), sa.or_(milestone.c.status.is_(None), milestone.c.status != "done"),
                                      milestone.c.planned_date <= today + dt.timedelta(days=MILESTONE_DAYS)))
    for row in rows:
        late = "已逾期" if row.planned_date < today else "即将到期"
        counts["milestones"] += notify(ctx, row.user_id, "project_milestone", f"里程碑{late}：{row.project} · {row.name}（{row.planned_date}）",
                                       f"project_milestone:{row.id}:{row.planned_date}", entity="project_milestone", record_id=row.id,
                                       due_on=row.planned_date)
    counts["emails"] = email_pending(ctx, Mailer.from_settings(ctx.runtime.settings))
    return counts
