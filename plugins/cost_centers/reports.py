"""Cost center reports (成本中心报表): spending by subject (科目) and month, the cost center summary,
the over-warning list, and a bar chart drawn on the server as inline SVG.

Every report covers the cost centers the acting user may read (the record service's access
scopes); the sums of a cost center are facts about it, so they include all its approved spending.
"""
import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from html import escape

import sqlalchemy as sa

from crm.core import dictionaries
from crm.core.registry import text_in

from .ledger import APPROVED, INCOME, money, warning_amount


def _readable_cost_centers(records):
    entity = records.entity("cost_center")
    stmt = sa.select(entity.table.c.id).where(entity.table.c.deleted_at.is_(None))
    clause = records.access.clause(entity, "read")
    return stmt.where(clause) if clause is not None else stmt


def subject_labels(records):
    return {i["value"]: text_in(i["label"], records.locale)
            for i in dictionaries.items(records.session, "cost_subject", include_inactive=True)}


@dataclass
class SubjectReport:
    """Approved spending by month and subject: ``cells[(month, subject)]``, with totals."""
    months: list = field(default_factory=list)      # "2026-11", oldest first
    subjects: list = field(default_factory=list)    # [(value, label)] in dictionary order
    cells: dict = field(default_factory=dict)
    by_subject: dict = field(default_factory=dict)
    by_month: dict = field(default_factory=dict)
    total: Decimal = Decimal("0.00")

    @property
    def rows(self):
        """[{"month", "subject", "subject_label", "amount"}], months then subjects in order."""
        labels = dict(self.subjects)
        return [{"month": m, "subject": s, "subject_label": labels.get(s, s), "amount": self.cells[(m, s)]}
                for m in self.months for s, _ in self.subjects if (m, s) in self.cells]


def by_subject(records, cost_center_id=None, date_from=None, date_to=None):
    """Approved spending (not income) of the readable cost centers, or one of them, by month of
    approval and subject, optionally within [date_from, date_to]."""
    table = records.entity("company_transaction").table
    where = [table.c.status == APPROVED, table.c.kind != INCOME, table.c.deleted_at.is_(None),
             table.c.cost_center_id.in_(_readable_cost_centers(records))]
    if cost_center_id is not None:
        where.append(table.c.cost_center_id == int(cost_center_id))
    if date_from:
        where.append(table.c.approved_on >= _as_date(date_from))
    if date_to:
        where.append(table.c.approved_on <= _as_date(date_to))
    stmt = (sa.select(table.c.approved_on, table.c.subject, sa.func.sum(table.c.amount))
            .where(*where).group_by(table.c.approved_on, table.c.subject))
    report = SubjectReport()
    for day, subject, amount in records.session.execute(stmt):
        month = day.strftime("%Y-%m") if day else "-"
        subject = subject or "other"
        amount = Decimal(amount or 0)
        report.cells[(month, subject)] = report.cells.get((month, subject), Decimal(0)) + amount
        report.by_subject[subject] = report.by_subject.get(subject, Decimal(0)) + amount
        report.by_month[month] = report.by_month.get(month, Decimal(0)) + amount
        report.total += amount
    for table_ in (report.cells, report.by_subject, report.by_month):
        for key in table_:
            table_[key] = money(table_[key])
    report.total = money(report.total)
    report.months = sorted(report.by_month)
    labels = subject_labels(records)
    report.subjects = [(v, l) for v, l in labels.items() if v in report.by_subject]
    report.subjects += [(v, v) for v in sorted(report.by_subject) if v not in labels]
    return report


def _as_date(value):
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


def summary(records, warned_only=False, limit=500):
    """One row per readable cost center: ceiling, warning amount, spent, income, remaining,
    usage (spent / ceiling, %) and the warning flag; the most used first."""
    filters = [("warned", "eq", "true")] if warned_only else []
    rows = []
    for cc in records.list("cost_center", filters=filters, sort="-spent", limit=limit).items:
        ceiling, spent = money(cc.get("ceiling")), money(cc.get("spent"))
        rows.append({
            "id": cc["id"], "code": cc.get("code"), "name": cc.get("name"), "owner_id": cc.get("owner_id"),
            "ceiling": ceiling, "warning_amount": warning_amount(cc), "spent": spent, "income": money(cc.get("income")),
            "remaining": ceiling - spent,
            "usage": (spent * 100 / ceiling).quantize(Decimal("0.1")) if ceiling else None,
            "warned": bool(cc.get("warned")), "over": spent > ceiling,
            "source_entity": cc.get("source_entity"), "source_id": cc.get("source_id"),
        })
    return rows


def over_warning(records, limit=500):
    """超预警成本中心: the cost centers whose approved spending reached their warning line."""
    return summary(records, warned_only=True, limit=limit)


def bar_chart_svg(bars, width=640, bar_height=22, label_width=120, title=None):
    """A horizontal bar chart as an inline ``<svg>`` string: ``bars`` = [(label, amount)].
    Plain SVG with a <title> per bar, readable without JavaScript and printable."""
    bars = [(str(label), money(amount)) for label, amount in bars]
    top = max([a for _, a in bars] + [Decimal(0)])
    value_width, gap = 110, 6
    span = width - label_width - value_width
    height = max(1, len(bars)) * (bar_height + gap) + gap
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}"><title>{escape(title or "")}</title>']
    for i, (label, amount) in enumerate(bars):
        y = gap + i * (bar_height + gap)
        length = int(span * amount / top) if top > 0 else 0
        text = f"¥{amount:,.2f}"
        parts.append(
            f'<g><title>{escape(label)}: {text}</title>'
            f'<text x="{label_width - 8}" y="{y + bar_height * 0.7:.1f}" text-anchor="end" font-size="13">{escape(label)}</text>'
            f'<rect x="{label_width}" y="{y}" width="{max(length, 1 if amount > 0 else 0)}" height="{bar_height}" fill="#3b6fd4"/>'
            f'<text x="{label_width + length + 6}" y="{y + bar_height * 0.7:.1f}" font-size="12">{escape(text)}</text></g>')
    parts.append("</svg>")
    return "".join(parts)

