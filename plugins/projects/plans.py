"""计划模板: save a project's plan as a template, start a new project from one.

A template keeps the project's phases, planned tasks and milestones with their dates as **day
offsets** from the template's day 0 (the project's start date, or its earliest date when something
starts before it) and **durations** (end − start in days, so a one-day task has duration 0); tasks
refer to their phase and to their predecessors by keys (``P1``…, ``T1``…). Responsible departments
and the important/urgent flags are kept; people, progress and actual dates are not.

Starting a project from a template shifts every date to the given start date (calendar days) and
re-points the dependencies to the new tasks: tasks are created in dependency order, each with its
predecessors already in place.
"""
import sqlalchemy as sa

from crm.core.errors import ValidationFailed
from crm.core.tables import links
from crm.hooks import Veto

from .common import as_date, fetch_all, shift


def save_as_template(records, project_id, name=None, description=None, project_type=None):
    """A new plan template from the project's phases, planned tasks (not cancelled, not ad-hoc) and
    milestones; returns the template record."""
    with records.session.begin_nested():       # all or nothing
        return _save_as_template(records, project_id, name, description, project_type)


def _save_as_template(records, project_id, name, description, project_type):
    project = records.get("project", project_id)
    pid = ("project_id", "eq", project["id"])
    phases = fetch_all(records, "project_phase", [pid], sort="seq")
    tasks = [t for t in fetch_all(records, "project_task", [pid], sort="id")
             if t.get("kind") != "ad_hoc" and t.get("status") != "cancelled"]
    milestones = fetch_all(records, "project_milestone", [pid], sort="planned_date")

    dates = [d for item in phases + tasks for d in (item.get("start_date"), item.get("end_date")) if d]
    dates += [m["planned_date"] for m in milestones if m.get("planned_date")]
    starts = [d for d in dates + [project.get("start_date")] if d]
    day0 = min(starts) if starts else records.today()

    phase_keys = {p["id"]: f"P{i}" for i, p in enumerate(phases, 1)}
    phase_order = {p["id"]: i for i, p in enumerate(phases)}
    tasks.sort(key=lambda t: (phase_order.get(t.get("phase_id"), len(phases)), t.get("start_date") or t.get("end_date") or day0, t["id"]))
    task_keys = {t["id"]: f"T{i}" for i, t in enumerate(tasks, 1)}

    def span(item):
        start, end = item.get("start_date") or item.get("end_date"), item.get("end_date") or item.get("start_date")
        if start is None:
            return None, None
        return (start - day0).days, (end - start).days

    phase_rows = []
    for phase in phases:
        offset, duration = span(phase)
        phase_rows.append({"key": phase_keys[phase["id"]], "name": phase["name"], "offset_days": offset, "duration_days": duration,
                           "check_criteria": phase.get("check_criteria"), "deliverables": phase.get("deliverables")})
    task_rows = []
    for task in tasks:
        offset, duration = span(task)
        before = [task_keys[t] for t in task.get("depends_on") or [] if t in task_keys]
        task_rows.append({"key": task_keys[task["id"]], "phase_key": phase_keys.get(task.get("phase_id")), "title": task["title"],
                          "offset_days": offset, "duration_days": duration, "depends_on": ",".join(before) or None,
                          "department_id": task.get("department_id"), "important": bool(task.get("important")),
                          "urgent": bool(task.get("urgent")), "description": task.get("description")})
    milestone_rows = [{"phase_key": phase_keys.get(m.get("phase_id")), "name": m["name"],
                       "offset_days": (m["planned_date"] - day0).days, "deliverables": m.get("deliverables")} for m in milestones]

    ends = [r["offset_days"] + (r.get("duration_days") or 0) for r in phase_rows + task_rows if r["offset_days"] is not None]
    ends += [r["offset_days"] for r in milestone_rows]
    template = records.create("plan_template", {
        "name": name or f"{project['name']} 模板", "project_type": project_type or project.get("type"),
        "description": description or project.get("description"),
        "phases": phase_rows, "tasks": task_rows, "milestones": milestone_rows})
    records.set_derived("plan_template", template["id"], {"source_project_id": project["id"], "duration_days": max(ends) + 1 if ends else 0})
    return records.get("plan_template", template["id"])


def start_from_template(records, template_id, start_date, values, assignees=None):
    """A new project from a template. ``values``: the project's fields (``name`` at least; ``type``
    defaults to the template's); ``start_date``: day 0; ``assignees``: {task key: user id}.
    Returns the project record."""
    with records.session.begin_nested():       # all or nothing
        return _start_from_template(records, template_id, start_date, values, assignees)


def _start_from_template(records, template_id, start_date, values, assignees):
    template = records.get("plan_template", template_id)
    start = as_date(start_date)
    if start is None:
        raise ValidationFailed("a start date is required", {"start_date": records.message("required")})
    problems = template_problems(template)
    if problems:
        raise ValidationFailed("the template is inconsistent", problems)
    assignees = assignees or {}
    rows = template.get("phases", []) + template.get("tasks", [])
    ends = [r["offset_days"] + (r.get("duration_days") or 0) for r in rows if r.get("offset_days") is not None]
    ends += [m["offset_days"] for m in template.get("milestones", []) if m.get("offset_days") is not None]
    project_values = {"type": template.get("project_type"), **values, "start_date": start.isoformat()}
    if ends and "end_date" not in values:
        project_values["end_date"] = shift(start, max(ends)).isoformat()
    project = records.create("project", project_values)
    records.set_derived("project", project["id"], {"template_id": template["id"]})

    def dates(row):
        if row.get("offset_days") is None:
            return None, None
        first = shift(start, row["offset_days"])
        return first.isoformat(), shift(first, row.get("duration_days") or 0).isoformat()

    phase_ids = {}
    for seq, row in enumerate(template.get("phases", []), 1):
        first, last = dates(row)
        phase_ids[row["key"]] = records.create("project_phase", {
            "project_id": project["id"], "seq": seq, "name": row["name"], "start_date": first, "end_date": last,
            "check_criteria": row.get("check_criteria"), "deliverables": row.get("deliverables")})["id"]
    task_ids = {}
    for row in dependency_order(template.get("tasks", [])):
        first, last = dates(row)
        task_ids[row["key"]] = records.create("project_task", {
            "project_id": project["id"], "phase_id": phase_ids.get(row.get("phase_key")), "title": row["title"], "kind": "plan",
            "start_date": first, "end_date": last, "department_id": row.get("department_id"),
            "assignee_id": assignees.get(row["key"]), "important": bool(row.get("important")), "urgent": bool(row.get("urgent")),
            "description": row.get("description"), "depends_on": [task_ids[k] for k in keys(row.get("depends_on"))]})["id"]
    for row in template.get("milestones", []):
        planned = shift(start, row.get("offset_days") or 0)
        records.create("project_milestone", {"project_id": project["id"], "phase_id": phase_ids.get(row.get("phase_key")),
                                             "name": row["name"], "planned_date": planned.isoformat(), "deliverables": row.get("deliverables")})
    return records.get("project", project["id"])


# --- template consistency ----------------------------------------------------------------------

def keys(text):
    return [k.strip() for k in (text or "").replace("，", ",").split(",") if k.strip()]


def template_problems(template):
    """{field path: message} for duplicate keys, unknown phase or predecessor keys and cycles."""
    problems = {}
    phase_keys = [r["key"] for r in template.get("phases", [])]
    task_keys = [r["key"] for r in template.get("tasks", [])]
    for table, found in (("phases", phase_keys), ("tasks", task_keys)):
        seen = set()
        for i, key in enumerate(found):
            if key in seen:
                problems[f"{table}.{i}.key"] = f"key {key!r} appears twice"
            seen.add(key)
    for table in ("tasks", "milestones"):
        for i, row in enumerate(template.get(table, [])):
            if row.get("phase_key") and row["phase_key"] not in phase_keys:
                problems[f"{table}.{i}.phase_key"] = f"no phase {row['phase_key']!r}"
    for i, row in enumerate(template.get("tasks", [])):
        unknown = [k for k in keys(row.get("depends_on")) if k not in task_keys or k == row["key"]]
        if unknown:
            problems[f"tasks.{i}.depends_on"] = "unknown predecessors: " + ", ".join(unknown)
    if not problems:
        try:
            dependency_order(template.get("tasks", []))
        except ValueError as e:
            problems["tasks"] = str(e)
    return problems


def dependency_order(rows):
    """Template task rows, each after its predecessors, otherwise in their own order (Kahn)."""
    pending = list(rows)
    done, ordered = set(), []
    while pending:
        ready = [r for r in pending if all(k in done for k in keys(r.get("depends_on")))]
        if not ready:
            raise ValueError("the predecessors form a cycle: " + ", ".join(r["key"] for r in pending))
        first = ready[0]
        ordered.append(first)
        done.add(first["key"])
        pending.remove(first)
    return ordered


def check_template(records, template):
    """Refuse a template whose keys do not fit together (called after it was saved)."""
    problems = template_problems(template)
    if problems:
        field, message = next(iter(problems.items()))
        raise Veto(f"计划模板有误 / inconsistent template: {field}: {message}", field=field.split(".")[0])


# --- task dependencies ---------------------------------------------------------------------------

def predecessors_closure(records, task_ids):
    """Every task reached from ``task_ids`` through 前置任务 links (the ids themselves included)."""
    found, todo = set(), set(task_ids)
    while todo:
        found |= todo
        rows = records.session.execute(sa.select(links.c.target_id).where(
            links.c.entity == "project_task", links.c.field == "depends_on", links.c.source_id.in_(sorted(todo))))
        todo = set(rows.scalars()) - found
    return found
