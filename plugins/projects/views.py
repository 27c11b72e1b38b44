"""Web pages of the plugin (server-rendered, inside the core layout; the generated entity pages
cover lists, forms and details).

    GET  /app/projects/{id}/report          项目进度汇报: timeline, milestone rates, open issues and
                                            next-phase checks, risk ranking
    GET  /app/projects/{id}/gantt           the printable timeline alone (A4 landscape)
    GET  /app/projects/{id}/gantt.svg       the SVG (image/svg+xml)
    POST /app/projects/{id}/save_template   save the project as a plan template → the template
    GET  /app/projects/from_template        form: a new project from a template
    POST /app/projects/from_template        create it → the new project
    GET  /app/projects/quadrants            my open tasks in the four quadrants (``?all=1``: every task I may see)
    GET  /app/projects/performance          绩效排名 (``?period=2026-11``)

Every view works through the request's record service, so access scopes apply (a project out of
reach answers 404); POSTs carry the page's CSRF token like every form.
"""
from pyramid.httpexceptions import HTTPFound, HTTPNotFound
from pyramid.renderers import render_to_response
from pyramid.response import Response

from crm.core import dictionaries
from crm.core.errors import CrmError, NotFound
from crm.core.web import security

from . import plans, progress, rankings

T = "crm.plugins.projects:templates/"
TEXTS = {
    "zh_CN": {"report": "项目进度汇报", "gantt": "甘特图", "print": "打印版", "milestones": "里程碑完成率", "phase": "阶段",
              "total": "合计", "done": "已完成", "overdue": "已逾期", "rate": "完成率", "issues": "遗留问题", "open": "未解决",
              "checks": "下一阶段检查", "criteria": "检查标准", "blocking": "严重问题", "none": "无", "risks": "风险排名",
              "rank": "排名", "risk": "风险", "score": "风险值", "level": "等级", "owner": "责任人", "status": "状态",
              "quadrants": "四象限任务", "q1": "重要且紧急", "q2": "重要不紧急", "q3": "紧急不重要", "q4": "不重要不紧急",
              "due": "截止", "project": "项目", "performance": "绩效排名", "period": "期间", "employee": "员工",
              "hours": "工时", "rated_hours": "考评工时", "average": "平均分", "weighted": "加权得分", "show": "查看",
              "from_template": "从计划模板新建项目", "template": "计划模板", "name": "项目名称", "start": "开始日期",
              "customer": "客户", "type": "项目类型", "create": "创建项目", "save_template": "另存为计划模板",
              "saved": "已保存为计划模板", "created": "已从模板创建项目", "all_tasks": "全部可见任务", "my_tasks": "我的任务",
              "current": "当前阶段"},
    "en": {"report": "Progress report", "gantt": "Timeline", "print": "Printable", "milestones": "Milestone completion", "phase": "Phase",
           "total": "Total", "done": "Done", "overdue": "Overdue", "rate": "Rate", "issues": "Open issues", "open": "Open",
           "checks": "Next-phase checks", "criteria": "Checks", "blocking": "Severe", "none": "None", "risks": "Risk ranking",
           "rank": "Rank", "risk": "Risk", "score": "Score", "level": "Level", "owner": "Owner", "status": "Status",
           "quadrants": "Tasks by quadrant", "q1": "Important and urgent", "q2": "Important", "q3": "Urgent", "q4": "Neither",
           "due": "Due", "project": "Project", "performance": "Performance ranking", "period": "Period", "employee": "Employee",
           "hours": "Hours", "rated_hours": "Rated hours", "average": "Average", "weighted": "Weighted score", "show": "Show",
           "from_template": "New project from a template", "template": "Plan template", "name": "Project name", "start": "Start date",
           "customer": "Customer", "type": "Project type", "create": "Create project", "save_template": "Save as plan template",
           "saved": "Saved as a plan template", "created": "Project created from the template", "all_tasks": "All tasks I can see",
           "my_tasks": "My tasks", "current": "Current phase"},
}


def includeme(config):
    for name, pattern, view, method in (
            ("projects.report", r"/app/projects/{id:\d+}/report", report, "GET"),
            ("projects.gantt", r"/app/projects/{id:\d+}/gantt", gantt_page, "GET"),
            ("projects.gantt_svg", r"/app/projects/{id:\d+}/gantt.svg", gantt_svg, "GET"),
            ("projects.save_template", r"/app/projects/{id:\d+}/save_template", save_template, "POST"),
            ("projects.from_template", "/app/projects/from_template", from_template, ("GET", "POST")),
            ("projects.quadrants", "/app/projects/quadrants", quadrants, "GET"),
            ("projects.performance", "/app/projects/performance", performance, "GET")):
        config.add_route(name, pattern)
        config.add_view(view, route_name=name, request_method=method, permission=security.READ if method == "GET" else security.CREATE)


def texts(request):
    return TEXTS["zh_CN" if request.locale_name.startswith("zh") else "en"]


def page(request, template, values, status=200):
    response = render_to_response(T + template, {"texts": texts(request), **values}, request=request)
    response.status_int = status
    return response


def flash(request, text):
    request.session.flash({"text": text, "kind": "success"})


def _project_id(request):
    return int(request.matchdict["id"])


def _labels(request, dictionary):
    locale = request.locale_name
    return {i["value"]: (i["label"].get(locale) or i["label"].get("zh_CN")) if isinstance(i["label"], dict) else i["label"]
            for i in dictionaries.items(request.records.session, dictionary, include_inactive=True)}


def _user_names(request, ids):
    import sqlalchemy as sa
    from crm.core.tables import users
    ids = sorted(i for i in ids if i)
    if not ids:
        return {}
    rows = request.records.session.execute(sa.select(users.c.id, users.c.username, users.c.display_name).where(users.c.id.in_(ids)))
    return {r.id: r.display_name or r.username for r in rows}


def report(request):
    records = request.records
    try:
        project = records.get("project", _project_id(request))
    except NotFound:
        raise HTTPNotFound()
    risks = rankings.risks(records, project["id"])
    return page(request, "report.pt", {
        "project": project, "svg": progress.gantt_svg(records, project["id"]),
        "rates": progress.milestone_rates(records, project["id"]), "issues": progress.issue_summary(records, project["id"]),
        "risks": risks, "levels": _labels(request, "project_risk_level"), "statuses": _labels(request, "project_risk_status"),
        "severities": _labels(request, "project_issue_severity"), "people": _user_names(request, {r.get("owner_id") for r in risks})})


def gantt_page(request):
    try:
        html = progress.gantt_html(request.records, _project_id(request))
    except NotFound:
        raise HTTPNotFound()
    return Response(html, content_type="text/html", charset="utf-8")


def gantt_svg(request):
    try:
        svg = progress.gantt_svg(request.records, _project_id(request))
    except NotFound:
        raise HTTPNotFound()
    return Response(svg, content_type="image/svg+xml", charset="utf-8")


def save_template(request):
    try:
        template = plans.save_as_template(request.records, _project_id(request))
    except NotFound:
        raise HTTPNotFound()
    flash(request, texts(request)["saved"])
    return HTTPFound(request.route_path("page.detail", entity="plan_template", id=template["id"]))


def from_template(request):
    records = request.records
    form = {k: (request.POST.get(k) or request.GET.get(k) or "").strip() for k in ("template_id", "name", "start_date", "customer_id")}
    error = None
    if request.method == "POST":
        try:
            values = {"name": form["name"]}
            if form["customer_id"]:
                values["customer_id"] = int(form["customer_id"])
            if request.identity:
                values["manager_id"] = request.identity["id"]
            project = plans.start_from_template(records, int(form["template_id"] or 0), form["start_date"] or None, values)
        except (CrmError, ValueError) as e:
            error = getattr(e, "message", str(e))
            fields = getattr(e, "fields", {}) or {}
            if fields:
                error += "：" + "；".join(f"{k} {v}" for k, v in fields.items())
        else:
            flash(request, texts(request)["created"])
            return HTTPFound(request.route_path("page.detail", entity="project", id=project["id"]))
    templates = records.list("plan_template", filters=[("active", "eq", True)], sort="name", limit=500).items
    customers = records.list("customer", sort="name", limit=500).items
    return page(request, "from_template.pt", {"form": form, "templates": templates, "customers": customers, "error": error},
                status=422 if error else 200)


def quadrants(request):
    records = request.records
    everyone = request.GET.get("all") == "1"
    grouped = rankings.quadrants(records, assignee_id=None if everyone else request.identity["id"])
    project_ids = {t.get("project_id") for tasks in grouped.values() for t in tasks if t.get("project_id")}
    names = {p["id"]: p["name"] for p in records.list("project", filters=[("id", "in", ",".join(map(str, project_ids)))], limit=500).items} \
        if project_ids else {}
    return page(request, "quadrants.pt", {"grouped": grouped, "projects": names, "everyone": everyone,
                                          "statuses": _labels(request, "project_task_status")})


def performance(request):
    records = request.records
    period = (request.GET.get("period") or records.today().strftime("%Y-%m")).strip()
    error, rows = None, []
    try:
        rows = rankings.performance(records, period)
    except CrmError as e:
        error = e.message
    return page(request, "performance.pt", {"period": period, "rows": rows, "error": error,
                                            "people": _user_names(request, {r["user_id"] for r in rows})},
                status=400 if error else 200)
