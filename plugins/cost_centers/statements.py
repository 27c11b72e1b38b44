"""个人对账: an employee's paid advances offset against their approved reimbursements (费用冲抵,
多退少补), with a line-by-line statement, and the settlement (结算单) that closes them.

The rules:

- an advance (个人预支) counts once it is paid (state ``paid``), on its payment date;
- a reimbursement (员工报销, a company_transaction of kind ``employee_reimbursement``) counts once it
  is approved (state ``approved``), on its approval date; it is owed to its requester (owner);
- supplier payments and income never enter a personal statement;
- documents already in a settlement are left out (they were settled);
- with a project, only documents with exactly that project name count;
- the lines are in date order (advances before reimbursements on the same day, then by number);
  the running balance is reimbursements minus advances so far;
- the result: balance > 0 the company pays the employee that much (少补), balance < 0 the employee
  returns that much (多退), 0 even (两清). All money math is exact (Decimal, 2 places).
"""
import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from crm.core.errors import Conflict, Forbidden, ValidationFailed

from .ledger import CENT, money, zh

SETTLE = "cost_centers.settle"
PAY_EMPLOYEE, EMPLOYEE_RETURNS, EVEN = "pay_employee", "employee_returns", "even"
REIMBURSEMENT = "employee_reimbursement"


@dataclass
class Line:
    date: dt.date
    kind: str            # "advance" or "reimbursement"
    entity: str
    record_id: int
    code: str
    title: str
    project_name: str | None
    advance: Decimal = Decimal(0)
    reimbursement: Decimal = Decimal(0)
    balance: Decimal = Decimal(0)

    def as_json(self):
        return {"date": self.date.isoformat() if self.date else None, "kind": self.kind, "entity": self.entity,
                "record_id": self.record_id, "code": self.code, "title": self.title, "project_name": self.project_name,
                "advance": str(self.advance), "reimbursement": str(self.reimbursement), "balance": str(self.balance)}


@dataclass
class Statement:
    employee_id: int
    project_name: str | None
    lines: list = field(default_factory=list)
    advances_total: Decimal = Decimal("0.00")
    reimbursements_total: Decimal = Decimal("0.00")
    balance: Decimal = Decimal("0.00")

    @property
    def direction(self):
        return PAY_EMPLOYEE if self.balance > 0 else EMPLOYEE_RETURNS if self.balance < 0 else EVEN

    @property
    def amount(self):
        """What changes hands: to the employee (pay_employee) or back to the company (employee_returns)."""
        return abs(self.balance)

    def describe(self, locale="zh_CN"):
        if locale.startswith("zh"):
            return {PAY_EMPLOYEE: f"公司应补付员工 ¥{self.amount:,.2f}", EMPLOYEE_RETURNS: f"员工应退还公司 ¥{self.amount:,.2f}",
                    EVEN: "预支与报销相抵，两清"}[self.direction]
        return {PAY_EMPLOYEE: f"the company pays the employee ¥{self.amount:,.2f}",
                EMPLOYEE_RETURNS: f"the employee returns ¥{self.amount:,.2f}", EVEN: "advances and reimbursements are even"}[self.direction]


def offset(employee_id, lines, project_name=None):
    """The statement of ``lines`` (their advance / reimbursement amounts set): sorted, with the
    running balance and totals. Pure: no database."""
    order = {"advance": 0, "reimbursement": 1}
    lines = sorted(lines, key=lambda l: (l.date or dt.date.min, order[l.kind], l.code or "", l.record_id))
    statement = Statement(employee_id, project_name)
    balance = Decimal("0.00")
    for line in lines:
        line.advance, line.reimbursement = money(line.advance), money(line.reimbursement)
        balance = (balance + line.reimbursement - line.advance).quantize(CENT)
        line.balance = balance
        statement.advances_total += line.advance
        statement.reimbursements_total += line.reimbursement
    statement.lines, statement.balance = lines, balance
    return statement


def _date(value, fallback):
    value = value or fallback
    return value.date() if isinstance(value, dt.datetime) else value


def _documents(records, employee_id, project_name=None):
    filters = [("owner_id", "eq", str(employee_id)), ("settlement_id", "isnull", "true")]
    if project_name:
        filters.append(("project_name", "eq", project_name))
    lines = []
    for name, extra, kind in (("expense_advance", [("status", "eq", "paid")], "advance"),
                              ("company_transaction", [("status", "eq", "approved"), ("kind", "eq", REIMBURSEMENT)], "reimbursement")):
        cursor = None
        while True:
            page = records.list(name, filters=filters + extra, sort="id", limit=500, cursor=cursor)
            for r in page.items:
                when = _date(r.get("paid_on") if kind == "advance" else r.get("approved_on"), r.get("updated_at"))
                lines.append(Line(when, kind, name, r["id"], r.get("code") or "", r.get("title") or "", r.get("project_name"),
                                  advance=r["amount"] if kind == "advance" else Decimal(0),
                                  reimbursement=r["amount"] if kind == "reimbursement" else Decimal(0)))
            cursor = page.next_cursor
            if not cursor:
                break
    return lines


def statement(records, employee_id, project_name=None):
    """The open (not yet settled) statement of an employee, optionally for one project, over the
    documents the acting user may read (an employee sees their own; a manager their reports')."""
    project_name = (project_name or "").strip() or None
    return offset(int(employee_id), _documents(records, int(employee_id), project_name), project_name)


def settle(records, employee_id, project_name=None, remark=None):
    """Close the open statement: a personal_settlement with the totals, direction, amount and the
    lines, and every document in it marked as settled. Needs the ``cost_centers.settle`` permission;
    refuses an empty statement."""
    if not records.access.has(SETTLE):
        raise Forbidden("没有个人结算权限" if zh(records) else "you may not settle personal statements (permission cost_centers.settle)")
    system = records.as_system()
    result = statement(system, employee_id, project_name)
    if not result.lines:
        raise ValidationFailed("没有需要结算的预支或报销" if zh(records) else "nothing to settle",
                               {"employee_id": "nothing to settle"})
    settlement = system.create("personal_settlement", {
        "employee_id": result.employee_id, "project_name": result.project_name, "settled_on": records.today().isoformat(),
        "advances_total": str(result.advances_total), "reimbursements_total": str(result.reimbursements_total),
        "direction": result.direction, "amount": str(result.amount),
        "lines": [line.as_json() for line in result.lines], "remark": remark,
    })
    for line in result.lines:   # only if still open: a concurrent settlement of the same lines fails here
        table = records.entity(line.entity).table
        done = records.session.execute(table.update().where(table.c.id == line.record_id, table.c.settlement_id.is_(None))
                                       .values(settlement_id=settlement["id"])).rowcount
        if done != 1:
            raise Conflict("这些单据刚刚被结算过，请刷新" if zh(records) else "these documents were settled meanwhile; reload",
                           {"employee_id": "settled meanwhile"})
    return settlement
