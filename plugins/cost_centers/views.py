"""Web pages of the plugin (server-rendered inside the core layout). Requests, approvals and
advances use the generated entity pages: the detail page shows the workflow steps as buttons.

    GET  /app/cost_centers/report       成本中心报表: summary table (warned rows coloured), spending by
                                        subject and month, an SVG bar chart; ``?cost_center=ID``,
                                        ``?date_from=`` / ``?date_to=`` (YYYY-MM-DD)
    GET  /app/cost_centers/warnings     超预警成本中心
    GET  /app/cost_centers/statement    个人对账: ``?employee=ID&project=...`` (default: myself)
    POST /app/cost_centers/settle       settle the statement shown (permission cost_centers.settle)
                                        → the new personal_settlement

Every page reads through the request's record service, so access scopes apply.
"""
import datetime as dt

import sqlalchemy as sa
from pyramid.httpexceptions import HTTPFound
from pyramid.renderers import render_to_response

from crm.core.errors import BadRequest, CrmError
from crm.core.tables import users
from crm.core.web import security

from . import reports, statements

T = "crm.plugins.cost_centers:templates/"
MENU = [
    {"id": "cost_centers", "label": {"zh_CN": "费用管理", "en": "Expenses"}, "url": None, "order": 60},
    {"id": "cost_center", "entity": "cost_center", "parent": "cost_centers", "order": 61},
    {"id": "company_transaction", "entity": "company_transaction", "parent": "cost_centers", "order": 62},
    {"id": "expense_advance", "entity": "expense_advance", "parent": "cost_centers", "order": 63},
    {"id": "personal_settlement", "entity": "personal_settlement", "parent": "cost_centers", "order": 64},
    {"id": "cost_centers.report", "label": {"zh_CN": "成本中心报表", "en": "Cost center report"},
     "url": "/app/cost_centers/report", "entity": "cost_center", "parent": "cost_centers", "order": 65},
    {"id": "cost_centers.warnings", "label": {"zh_CN": "超预警成本中心", "en": "Over the warning line"},
     "url": "/app/cost_centers/warnings", "entity": "cost_center", "parent": "cost_centers", "order": 66},
    {"id": "cost_centers.statement", "label": {"zh_CN": "个人对账", "en": "Personal statement"},
     "url": "/app/cost_centers/statement", "entity": "personal_settlement", "parent": "cost_centers", "order": 67},
]
TEXTS = {
    "zh_CN": {"report": "成本中心报表", "warnings": "超预警成本中心", "statement": "个人对账", "cost_center": "成本中心",
              "all": "全部", "from": "开始日期", "to": "结束日期", "show": "查看", "code": "编号", "name": "名称",
              "ceiling": "成本上限", "warning": "预警线", "spent": "已支出", "income": "收入", "remaining": "剩余额度",
              "usage": "使用率", "warned": "已达预警线", "over": "已超上限", "by_subject": "按科目汇总", "month": "月份",
              "subject": "科目", "total": "合计", "none": "没有数据", "employee": "员工", "project": "项目（可选）", "project_col": "项目",
              "date": "日期", "document": "单据", "title": "摘要", "advance": "预支", "reimbursement": "报销",
              "balance": "余额", "result": "结算结果", "settle": "确认结算", "settled": "已生成结算单",
              "kinds": {"advance": "个人预支", "reimbursement": "员工报销"},
              "balance_help": "余额 = 报销 − 预支；正数公司补付员工，负数员工退还公司"},
    "en": {"report": "Cost center report", "warnings": "Over the warning line", "statement": "Personal statement",
           "cost_center": "Cost center", "all": "All", "from": "From", "to": "To", "show": "Show", "code": "Number",
           "name": "Name", "ceiling": "Ceiling", "warning": "Warning line", "spent": "Spent", "income": "Income",
           "remaining": "Remaining", "usage": "Used", "warned": "Warning reached", "over": "Over the ceiling",
           "by_subject": "By subject", "month": "Month", "subject": "Subject", "total": "Total", "none": "Nothing yet",
           "employee": "Employee", "project": "Project (optional)", "project_col": "Project", "date": "Date", "document": "Document",
           "title": "Summary", "advance": "Advance", "reimbursement": "Reimbursement", "balance": "Balance",
           "result": "Result", "settle": "Settle", "settled": "Settlement created",
           "kinds": {"advance": "Advance", "reimbursement": "Reimbursement"},
           "balance_help": "Balance = reimbursements − advances; positive: the company pays, negative: the employee returns"},
}


def includeme(config):
    for name, pattern, view, method in (
            ("cost_centers.report", "/app/cost_centers/report", report, "GET"),
            ("cost_centers.warnings", "/app/cost_centers/warnings", warnings, "GET"),
            ("cost_centers.statement", "/app/cost_centers/statement", statement, "GET"),
            ("cost_centers.settle", "/app/cost_centers/settle", settle, "POST")):
        config.add_route(name, pattern)
        config.add_view(view, route_name=name, request_method=method,
                        permission=security.READ if method == "GET" else security.CREATE)


def texts(request):
    return TEXTS["zh_CN" if request.locale_name.startswith("zh") else "en"]


def page(request, template, values, status=200):
    response = render_to_response(T + template, {"texts": texts(request), "fmt": fmt, **values}, request=request)
    response.status_int = status
    return response


def fmt(amount):
    return "—" if amount is None else f"{amount:,.2f}"


def _date_param(request, name):
    value = (request.GET.get(name) or "").strip()
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{name} must be a date (YYYY-MM-DD)", {name: "not a date"})


def _int_param(request, name, params=None):
    value = ((params or request.GET).get(name) or "").strip()
    if not value:
        return None
    if not value.isdigit():
        raise BadRequest(f"{name} must be a number", {name: "not a number"})
    return int(value)


def _people(request):
    rows = request.records.session.execute(sa.select(users.c.id, users.c.username, users.c.display_name)
                                           .where(users.c.active).order_by(users.c.display_name, users.c.id))
    return {r.id: r.display_name or r.username for r in rows}


def report(request):
    records = request.records
    cost_center_id = _int_param(request, "cost_center")
    date_from, date_to = _date_param(request, "date_from"), _date_param(request, "date_to")
    rows = reports.summary(records)
    by_subject = reports.by_subject(records, cost_center_id, date_from, date_to)
    chart = reports.bar_chart_svg([(label, by_subject.by_subject[value]) for value, label in by_subject.subjects],
                                  title=texts(request)["by_subject"])
    return page(request, "report.pt", {"rows": rows, "report": by_subject, "chart": chart, "cost_center_id": cost_center_id,
                                       "date_from": date_from or "", "date_to": date_to or "", "people": _people(request)})


def warnings(request):
    return page(request, "warnings.pt", {"rows": reports.over_warning(request.records), "people": _people(request)})


def statement(request):
    records = request.records
    employee_id = _int_param(request, "employee") or request.identity["id"]
    project = (request.GET.get("project") or "").strip()
    result = statements.statement(records, employee_id, project or None)
    return page(request, "statement.pt", {
        "result": result, "employee_id": employee_id, "project": project, "people": _people(request),
        "summary": result.describe(request.locale_name), "may_settle": records.access.has(statements.SETTLE) and bool(result.lines)})


def settle(request):
    employee_id = _int_param(request, "employee", request.POST)
    project = (request.POST.get("project") or "").strip() or None
    try:
        settlement = statements.settle(request.records, employee_id, project, remark=request.POST.get("remark") or None)
    except CrmError as e:
        request.session.flash({"text": e.message, "kind": "error"})
        return HTTPFound(request.route_path("cost_centers.statement", _query={"employee": employee_id or "", "project": project or ""}))
    request.session.flash({"text": texts(request)["settled"], "kind": "success"})
    return HTTPFound(request.route_path("page.detail", entity="personal_settlement", id=settlement["id"]))
