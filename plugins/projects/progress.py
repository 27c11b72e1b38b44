"""项目进度汇报: milestone completion per phase, open issues with the next phase's checks, and a
Gantt-like timeline rendered on the server as SVG (printable, no JavaScript)."""
import datetime as dt
from xml.sax.saxutils import escape

import sqlalchemy as sa

from .common import as_date, fetch_all
from .rankings import OPEN_TASK_STATUSES, percent

NO_PHASE = {"zh_CN": "未分阶段", "en": "No phase"}


def next_phase(records, phase_id):
    """The id of the phase after ``phase_id`` in its project (by order, then id), or None."""
    table = records.entity("project_phase").table
    phase = records.session.execute(sa.select(table.c.project_id, table.c.seq, table.c.id).where(table.c.id == phase_id)).first()
    if phase is None:
        return None
    seq = phase.seq or 0
    later = sa.or_(sa.func.coalesce(table.c.seq, 0) > seq, sa.and_(sa.func.coalesce(table.c.seq, 0) == seq, table.c.id > phase.id))
    return records.session.execute(sa.select(table.c.id).where(table.c.project_id == phase.project_id, table.c.deleted_at.is_(None), later)
                                   .order_by(sa.func.coalesce(table.c.seq, 0), table.c.id).limit(1)).scalar()


def _phases(records, project_id):
    return fetch_all(records, "project_phase", [("project_id", "eq", project_id)], sort="seq")


def _text(label, records):
    return label.get(records.locale) or label["zh_CN"]


# --- 里程碑完成率 -------------------------------------------------------------------------------------

def milestone_rates(records, project_id):
    """Milestone completion per phase: ``{"phases": [{"phase_id", "phase", "total", "done", "overdue",
    "rate"}], "total": {"total", "done", "overdue", "rate"}}``; ``rate`` = done / total × 100 (one
    decimal; None without milestones); ``overdue`` = pending with the planned date before today.
    Milestones without a phase form a last group with ``phase_id`` None."""
    records.get("project", project_id)
    today = records.today()
    milestones = fetch_all(records, "project_milestone", [("project_id", "eq", project_id)], sort="planned_date")
    groups = [(p["id"], p["name"]) for p in _phases(records, project_id)]
    if any(m.get("phase_id") not in {g for g, _ in groups} for m in milestones):
        groups.append((None, _text(NO_PHASE, records)))
    known = {g for g, _ in groups}

    def count(items):
        done = sum(1 for m in items if m.get("status") == "done")
        overdue = sum(1 for m in items if m.get("status") != "done" and m.get("planned_date") and m["planned_date"] < today)
        return {"total": len(items), "done": done, "overdue": overdue, "rate": percent(done, len(items))}

    phases = []
    for phase_id, name in groups:
        items = [m for m in milestones if (m.get("phase_id") if m.get("phase_id") in known else None) == phase_id]
        phases.append({"phase_id": phase_id, "phase": name, **count(items)})
    return {"phases": phases, "total": count(milestones)}


# --- 遗留问题汇总 --------------------------------------------------------------------------------------

def issue_summary(records, project_id):
    """Open issues (遗留问题) of a project, summarized, with the checks of the next phase.

    Returns ``{"open": n, "by_severity": {value: n}, "by_phase": [{"phase_id", "phase", "issues"}],
    "checks": [...], "current_phase": {...} | None, "next_phase": {...} | None}``. Each entry of
    ``checks`` is a phase not yet done with its ``check_criteria`` (阶段检查标准) and the open
    issues to re-check there (their 复查阶段), ``blocking`` being the severe ones. The current phase
    is the first one in progress (else the first not started); ``next_phase`` is the check entry of
    the phase after it — what must be verified before moving on."""
    records.get("project", project_id)
    phases = _phases(records, project_id)
    issues = [i for i in fetch_all(records, "project_issue", [("project_id", "eq", project_id)], sort="id") if i.get("status") == "open"]
    by_severity = {}
    for issue in issues:
        by_severity[issue.get("severity")] = by_severity.get(issue.get("severity"), 0) + 1
    ids = {p["id"] for p in phases}
    by_phase = [{"phase_id": p["id"], "phase": p["name"], "issues": [i for i in issues if i.get("phase_id") == p["id"]]} for p in phases]
    loose = [i for i in issues if i.get("phase_id") not in ids]
    if loose:
        by_phase.append({"phase_id": None, "phase": _text(NO_PHASE, records), "issues": loose})
    checks = []
    for phase in phases:
        if phase.get("status") == "done":
            continue
        to_check = [i for i in issues if i.get("check_phase_id") == phase["id"]]
        checks.append({"phase_id": phase["id"], "phase": phase["name"], "status": phase.get("status"),
                       "check_criteria": phase.get("check_criteria"), "issues": to_check,
                       "blocking": [i for i in to_check if i.get("severity") == "high"]})
    current = next((p for p in phases if p.get("status") == "in_progress"), None) \
        or next((p for p in phases if p.get("status") == "not_started"), None)
    following = None
    if current is not None:
        after = phases[phases.index(current) + 1:] if current in phases else []
        following = next((c for c in checks if after and c["phase_id"] == after[0]["id"]), None)
    return {"open": len(issues), "by_severity": by_severity, "by_phase": by_phase, "checks": checks,
            "current_phase": current, "next_phase": following}


# --- 甘特图 (SVG) ------------------------------------------------------------------------------------

LEFT, ROW, TOP, PAD = 250, 24, 64, 16
COLORS = {"not_started": "#9ebbe0", "in_progress": "#3d7cc9", "done": "#4caf50", "overdue": "#e05252", "cancelled": "#c4c4c4"}
LEGEND = [("not_started", "未开始", "Not started"), ("in_progress", "进行中", "In progress"), ("done", "已完成", "Done"),
          ("overdue", "已逾期", "Overdue")]


def _short(text, size=18):
    text = str(text or "")
    return text if len(text) <= size else text[:size - 1] + "…"


def gantt_svg(records, project_id):
    """The project's plan as an SVG document (text): phases, tasks (coloured by status, with their
    progress and predecessor arrows), milestones (diamonds) on a calendar-day axis with month
    labels, week lines and today's line. Dates are inclusive: a task from the 1st to the 3rd covers
    three day columns. Self-contained and printable (fixed size, no scripts, no external fonts)."""
    project = records.get("project", project_id)
    today = records.today()
    zh = records.locale.startswith("zh")
    phases = _phases(records, project_id)
    tasks = fetch_all(records, "project_task", [("project_id", "eq", project_id)], sort="start_date")
    milestones = fetch_all(records, "project_milestone", [("project_id", "eq", project_id)], sort="planned_date")

    rows, known = [], {p["id"] for p in phases}

    def add_group(phase, members, marks):
        if phase is not None:
            rows.append(("phase", phase))
        for task in sorted(members, key=lambda t: (as_date(t.get("start_date")) or dt.date.max, t["id"])):
            rows.append(("task", task))
        for mark in marks:
            rows.append(("milestone", mark))

    for phase in phases:
        add_group(phase, [t for t in tasks if t.get("phase_id") == phase["id"]], [m for m in milestones if m.get("phase_id") == phase["id"]])
    loose_tasks = [t for t in tasks if t.get("phase_id") not in known]
    loose_marks = [m for m in milestones if m.get("phase_id") not in known]
    if loose_tasks or loose_marks:
        rows.append(("group", {"name": NO_PHASE["zh_CN" if zh else "en"]}))
        add_group(None, loose_tasks, loose_marks)

    days = [d for kind, item in rows for d in ((item.get("planned_date"),) if kind == "milestone" else (item.get("start_date"), item.get("end_date"))) if d]
    days += [d for d in (project.get("start_date"), project.get("end_date")) if d]
    title = f"{project['name']}（{project.get('code') or ''}）" + (" 项目甘特图" if zh else " — timeline")
    if project.get("progress") is not None:
        title += f" · {'任务完成率' if zh else 'tasks done'} {project['progress'].normalize():f}%"
    if not days:
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="600" height="80" viewBox="0 0 600 80" font-family="sans-serif">'
                f'<rect width="600" height="80" fill="#fff"/><text x="{PAD}" y="30" font-size="15" font-weight="bold">{escape(title)}</text>'
                f'<text x="{PAD}" y="60" font-size="13" fill="#666">{"计划中还没有日期" if zh else "No dates in the plan yet"}</text></svg>')
    first, last = min(days), max(days)
    first -= dt.timedelta(days=first.weekday())                     # start on a Monday
    span = (last - first).days + 1
    day_width = max(3, min(28, 900 // span))
    width = LEFT + span * day_width + PAD
    height = TOP + len(rows) * ROW + 56

    def x(day):
        return LEFT + (day - first).days * day_width

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<title>{escape(title)}</title>',
           '<defs><marker id="arrow" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="7" markerHeight="7" orient="auto">'
           '<path d="M0,0 L8,4 L0,8 z" fill="#777"/></marker></defs>',
           f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
           f'<text x="{PAD}" y="22" font-size="15" font-weight="bold">{escape(title)}</text>']
    # calendar axis: months, then Monday lines (and day numbers when there is room)
    day = first
    while day <= last:
        if day == first or day.day == 1:
            out.append(f'<text x="{x(day) + 2}" y="42" fill="#333">{day.year}-{day.month:02d}</text>')
            out.append(f'<line x1="{x(day)}" y1="30" x2="{x(day)}" y2="{TOP + len(rows) * ROW}" stroke="#999"/>')
        if day.weekday() == 0:
            out.append(f'<line x1="{x(day)}" y1="{TOP - 12}" x2="{x(day)}" y2="{TOP + len(rows) * ROW}" stroke="#e3e3e3"/>')
        if day_width >= 14:
            out.append(f'<text x="{x(day) + day_width / 2}" y="{TOP - 4}" font-size="9" text-anchor="middle" fill="#777">{day.day}</text>')
        elif day.weekday() == 0:
            out.append(f'<text x="{x(day) + 2}" y="{TOP - 4}" font-size="9" fill="#777">{day.day}</text>')
        day += dt.timedelta(days=1)
    positions = {}
    for i, (kind, item) in enumerate(rows):
        top = TOP + i * ROW
        middle = top + ROW / 2
        if i % 2:
            out.append(f'<rect x="0" y="{top}" width="{width}" height="{ROW}" fill="#f7f7f7"/>')
        name = item.get("title") or item.get("name") or ""
        indent = PAD if kind in ("phase", "group") else PAD + 14
        weight = ' font-weight="bold"' if kind in ("phase", "group") else ""
        prefix = "◆ " if kind == "milestone" else ""
        out.append(f'<text x="{indent}" y="{middle + 4}"{weight}>{escape(prefix + _short(name, 18 if indent == PAD else 17))}</text>')
        if kind == "milestone":
            when = item.get("planned_date")
            if when:
                cx = x(when) + day_width / 2
                color = COLORS["done"] if item.get("status") == "done" else COLORS["overdue"] if when < today else "#f0a020"
                tip = f"{name}: {when}" + (f" → {item['actual_date']}" if item.get("actual_date") else "")
                out.append(f'<g><title>{escape(tip)}</title><path d="M{cx},{middle - 7} L{cx + 7},{middle} L{cx},{middle + 7} '
                           f'L{cx - 7},{middle} z" fill="{color}" stroke="#333" stroke-width="0.8"/></g>')
            continue
        start, end = item.get("start_date") or item.get("end_date"), item.get("end_date") or item.get("start_date")
        if not start or kind == "group":
            continue
        left, right = x(start), x(end) + day_width
        tip = f"{name}: {start} – {end}"
        if kind == "phase":
            out.append(f'<g><title>{escape(tip)}</title><rect x="{left}" y="{middle - 4}" width="{right - left}" height="8" fill="#555"/></g>')
            continue
        status = item.get("status") or "not_started"
        due = item.get("due_date") or end
        color = COLORS["overdue"] if status in OPEN_TASK_STATUSES and due < today else COLORS.get(status, COLORS["not_started"])
        done_part = (right - left) * float(item.get("progress") or (100 if status == "done" else 0)) / 100
        if item.get("assignee_id"):
            tip += f" · #{item['assignee_id']}"
        out.append(f'<g><title>{escape(tip + f" ({status})")}</title>'
                   f'<rect x="{left}" y="{middle - 7}" width="{right - left}" height="14" rx="2" fill="{color}" opacity="0.55"/>'
                   f'<rect x="{left}" y="{middle - 7}" width="{done_part:.1f}" height="14" rx="2" fill="{color}"/></g>')
        positions[item["id"]] = (left, right, middle)
    for kind, item in rows:                       # predecessor arrows: end of the predecessor → start of the task
        if kind != "task" or item["id"] not in positions:
            continue
        for before in item.get("depends_on") or []:
            if before in positions:
                _, end_x, from_y = positions[before]
                start_x, _, to_y = positions[item["id"]]
                bend = max(end_x + 4, start_x - 6)
                out.append(f'<path d="M{end_x},{from_y} L{bend},{from_y} L{bend},{to_y} L{start_x},{to_y}" fill="none" '
                           f'stroke="#777" stroke-width="1" marker-end="url(#arrow)"/>')
    if first <= today <= last:
        out.append(f'<line x1="{x(today)}" y1="30" x2="{x(today)}" y2="{TOP + len(rows) * ROW}" stroke="#d00" stroke-dasharray="4,3"/>')
        out.append(f'<text x="{x(today) + 3}" y="{TOP + len(rows) * ROW + 12}" fill="#d00" font-size="10">{"今天" if zh else "today"} {today}</text>')
    legend_y = height - 18
    lx = PAD
    for key, zh_label, en_label in LEGEND:
        out.append(f'<rect x="{lx}" y="{legend_y - 10}" width="14" height="10" fill="{COLORS[key]}"/>'
                   f'<text x="{lx + 18}" y="{legend_y}">{escape(zh_label if zh else en_label)}</text>')
        lx += 90
    out.append(f'<path d="M{lx + 6},{legend_y - 11} L{lx + 12},{legend_y - 5} L{lx + 6},{legend_y + 1} L{lx},{legend_y - 5} z" fill="#f0a020"/>'
               f'<text x="{lx + 18}" y="{legend_y}">{escape("里程碑" if zh else "Milestone")}</text>')
    out.append("</svg>")
    return "\n".join(out)


def gantt_html(records, project_id):
    """A printable HTML page around :func:`gantt_svg` (A4 landscape)."""
    project = records.get("project", project_id)
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>" + escape(project["name"]) + "</title>"
            "<style>@page{size:A4 landscape;margin:10mm}body{margin:0;font-family:sans-serif}"
            "svg{max-width:100%;height:auto}</style></head><body>" + gantt_svg(records, project_id) + "</body></html>")

