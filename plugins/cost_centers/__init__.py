"""Cost centers and expenses (费用管理 / 成本中心): the first user of the workflow engine.

- 成本中心 ``cost_center``: a ceiling (成本上限) and a warning line (预警线, a percentage of the
  ceiling); approved spending is summed into ``spent`` (and by subject in the reports); reaching the
  warning line sets ``warned`` and tells the owner; an approval that would exceed the ceiling is
  vetoed unless someone with ``cost_centers.raise_ceiling`` raised it first. Sales, projects and
  campaigns get a cost center when they are created (setting ``crm.cost_centers.auto_for``).
- 企业收支 ``company_transaction``: 员工报销, 供应商费用支付 and 收入登记, approved through the workflow
  ``company_transaction_approval`` (manager, then finance; above 10,000 also the general manager).
- 个人预支 ``expense_advance``: 预支申请 → 审核 → 发放 (workflow ``expense_advance_approval``).
- 个人对账 (:mod:`.statements`): paid advances offset against approved reimbursements, 多退少补, and
  the settlement ``personal_settlement`` that closes a statement.
- Reports (:mod:`.reports`): spending by subject and month, summary, over-warning list, SVG chart.
- Pages (:mod:`.views`): the report, the over-warning list, the personal statement with settlement.

See docs/plugin_cost_centers.md.
"""
from pathlib import Path

from crm.hooks import Veto, hookimpl

from . import ledger, reports, statements  # noqa: F401  (the service API of the plugin)

label = {"zh_CN": "费用管理与成本中心", "en": "Cost centers and expenses"}

PERMISSIONS = [
    {"name": ledger.RAISE_CEILING, "label": {"zh_CN": "调整成本上限", "en": "Set or raise cost center ceilings"}},
    {"name": statements.SETTLE, "label": {"zh_CN": "个人费用结算", "en": "Settle personal statements"}},
]
LOCKED_STATES = {"company_transaction": ledger.APPROVED, "expense_advance": "paid"}
_DOCUMENTS = ("company_transaction", "expense_advance")
_READ_ALL = {"read": "all", "export": "all"}
# the roles the approval workflows name, and what the core's sales roles may do with expenses
ROLES = [
    {"name": "finance", "label": {"zh_CN": "财务", "en": "Finance"},
     "rules": {"entities": {"*": {"read": "all"}, "cost_center": {"read": "all", "create": "all", "update": "all", "export": "all"},
                            **{e: {**_READ_ALL, "create": "all", "update": "own", "delete": "own"} for e in _DOCUMENTS},
                            "personal_settlement": {**_READ_ALL, "create": "all"}},
               "permissions": [statements.SETTLE]}},
    {"name": "general_manager", "label": {"zh_CN": "总经理", "en": "General manager"},
     "rules": {"entities": {"*": {"read": "all", "export": "all"}, "cost_center": {**_READ_ALL, "update": "all"},
                            **{e: {**_READ_ALL, "create": "all", "update": "own", "delete": "own"} for e in _DOCUMENTS}},
               "permissions": [ledger.RAISE_CEILING]}},
    {"extends": "sales_rep", "rules": {"entities": {
        **{e: {"read": "own", "create": "all", "update": "own", "delete": "own"} for e in _DOCUMENTS},
        "personal_settlement": {"read": "own"}}}},
    {"extends": "sales_manager", "rules": {"entities": {
        **{e: {"read": "department_tree", "create": "all", "update": "own", "delete": "own", "export": "department_tree"}
           for e in _DOCUMENTS},
        "personal_settlement": {"read": "department_tree"}}}},
]


@hookimpl
def crm_metadata():
    return [Path(__file__).parent / "metadata"]


@hookimpl
def crm_permissions():
    return PERMISSIONS


@hookimpl
def crm_roles():
    return ROLES


@hookimpl
def crm_menu_entries():
    from .views import MENU
    return MENU


@hookimpl
def crm_web_config(config):
    config.include("crm.plugins.cost_centers.views")


@hookimpl
def crm_record_actions(ctx, entity, record):
    if entity.name == "cost_center":
        return [{"id": "cost_centers.report", "label": {"zh_CN": "费用报表", "en": "Spending report"},
                 "url": f"/app/cost_centers/report?cost_center={record['id']}", "method": "GET"}]
    return []


@hookimpl
def crm_related_tabs(ctx, entity, record):
    if entity.name in ledger.auto_for(ctx.runtime):
        return [{"id": "cost_centers.cost_center", "label": {"zh_CN": "成本中心", "en": "Cost center"}, "entity": "cost_center",
                 "filters": [["source_entity", "eq", entity.name], ["source_id", "eq", str(record["id"])]]}]
    return []


# --- cost centers --------------------------------------------------------------------------------

@hookimpl
def crm_before_create(ctx, entity, values):
    if entity.name == "cost_center":
        ledger.check_ceiling_change(ctx, 0, values.get("ceiling"))
    elif entity.name in ("company_transaction", "expense_advance") and not values.get("owner_id") and ctx.user_id:
        values["owner_id"] = ctx.user_id          # the requester (申请人) is whoever files it, unless named


@hookimpl
def crm_after_create(ctx, entity, record):
    if entity.name in ledger.auto_for(ctx.runtime):
        ledger.create_for(ctx, entity, record)
    elif entity.name == "company_transaction" and record.get("status") == ledger.APPROVED:
        ledger.refresh(ctx, record.get("cost_center_id"))     # imported history


@hookimpl
def crm_before_update(ctx, entity, old, changes):
    if entity.name == "cost_center" and "ceiling" in changes:
        ledger.check_ceiling_change(ctx, old.get("ceiling"), changes["ceiling"])
    elif entity.name == "company_transaction" and {"amount", "kind", "cost_center_id"} & set(changes):
        ledger.check_edit(ctx, old, changes)


@hookimpl
def crm_after_update(ctx, entity, old, record, changes):
    if entity.name == "cost_center" and {"ceiling", "warning_percent", "owner_id"} & set(changes):
        ledger.refresh(ctx, record["id"])
    elif entity.name == "company_transaction" and {"status", "amount", "kind", "cost_center_id"} & set(changes) \
            and ledger.APPROVED in (old.get("status"), record.get("status")):
        for cost_center_id in {old.get("cost_center_id"), record.get("cost_center_id")}:
            ledger.refresh(ctx, cost_center_id)


@hookimpl
def crm_before_delete(ctx, entity, record):
    zh = ledger.zh(ctx)
    if LOCKED_STATES.get(entity.name) and record.get("status") == LOCKED_STATES[entity.name]:
        raise Veto("已批准或已发放的单据不能删除" if zh else "approved or paid documents cannot be deleted")
    if entity.name == "personal_settlement":
        raise Veto("结算单不能删除" if zh else "settlements cannot be deleted")
    if entity.name == "cost_center" and ledger.in_use(ctx, record["id"]):
        raise Veto("成本中心下还有收支或预支单据，不能删除" if zh else "the cost center has transactions or advances")


# --- approvals -------------------------------------------------------------------------------------

@hookimpl
def crm_before_transition(ctx, entity, record, transition, comment):
    """The ceiling: an approval that would take the cost center over it is refused. The cost
    center row is locked before its spending is read, so concurrent approvals queue up here."""
    if entity.name == "company_transaction" and transition["to"] == ledger.APPROVED and record.get("kind") != ledger.INCOME:
        ledger.check_ceiling(ctx, record["cost_center_id"], record["amount"], record.get("code"))
