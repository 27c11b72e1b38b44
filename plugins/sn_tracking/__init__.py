"""SN tracking (售后SN管理) and service records (客服记录).

- 产品SN: every sold item has a unique serial number (a unique index; on PostgreSQL concurrent
  writers of the same SN also wait for each other, so a concurrent import reports the SN as
  existing instead of failing). SNs are typed in, imported (:func:`.serials.import_file`) or
  generated from a pattern such as ``SN{YYYY}{MM}-{#####}`` (:func:`.serials.generate`).
- 客服记录: request type (上门维护 / 返厂处理 / 意见咨询), fault category, measures, dispatch to a
  service employee with the customer's address, repair content on completion, a follow-up visit
  (回访) due a number of days after completion per type (system settings), and the warranty status
  at the service date, checked and recorded automatically. The service flow
  (``metadata/service_flow.json``) moves the status.
- 退换货 and 延长质保 are records of their own that keep the SN's status and warranty end up to date.
- 知识库: FAQ entries, made from a service record (:func:`.service.faq_from_service`), found with
  the list's quick search ``q``.
- Look-up by SN (:func:`.history.lookup`): the item's whole history in date order, also
  ``GET /api/v1/sn_tracking/lookup/{sn}``.

See docs/plugin_sn_tracking.md.
"""
from pathlib import Path

from crm.hooks import Job, hookimpl

from . import history, serials, service  # noqa: F401  (the plugin's functions)

label = {"zh_CN": "售后SN管理", "en": "SN tracking"}


@hookimpl
def crm_metadata():
    return [Path(__file__).parent / "metadata"]


@hookimpl
def crm_jobs():
    return [Job("sn_tracking.reminders", service.reminders, label={"zh_CN": "售后回访提醒", "en": "Service follow-up reminders"})]


_WRITE_ALL = {"read": "all", "create": "all", "update": "all", "export": "all"}
ROLES = [
    {"name": "service_agent", "label": {"zh_CN": "客服专员", "en": "Service agent"},
     "rules": {"entities": {"*": {"read": "all"}, "serial_number": {**_WRITE_ALL, "import": "all"},
                            "service_record": _WRITE_ALL, "sn_return": _WRITE_ALL, "warranty_extension": _WRITE_ALL,
                            "faq_entry": {**_WRITE_ALL, "delete": "own"}}}},
]


@hookimpl
def crm_roles():
    """客服专员: SNs, service records, returns, warranty extensions and the FAQ; the dispatched
    engineer is the record's owner (``assignee_id``) and moves it on through the service flow."""
    return ROLES


@hookimpl
def crm_menu_entries():
    entities = ["serial_number", "service_record", "sn_return", "warranty_extension", "faq_entry"]
    return [{"id": "sn_tracking", "label": {"zh_CN": "售后服务", "en": "After-sales"}, "order": 50},
            {"id": "sn_tracking.scan", "label": {"zh_CN": "SN查询", "en": "SN look-up"}, "url": "/app/sn_tracking/scan",
             "entity": "serial_number", "parent": "sn_tracking", "order": 500},
            *({"id": name, "entity": name, "parent": "sn_tracking", "order": 501 + i} for i, name in enumerate(entities))]


@hookimpl
def crm_record_actions(ctx, entity, record):
    from urllib.parse import quote
    sn = None
    if entity.name == "serial_number":
        sn = record.get("sn")
    elif entity.name in ("service_record", "sn_return", "warranty_extension") and record.get("serial_number_id"):
        table = ctx.entity("serial_number").table
        import sqlalchemy as sa
        sn = ctx.session.execute(sa.select(table.c.sn).where(table.c.id == record["serial_number_id"])).scalar()
    if not sn:
        return []
    return [{"id": "sn_tracking.history", "label": {"zh_CN": "产品履历", "en": "Item history"},
             "url": "/app/sn_tracking/scan?sn=" + quote(sn, safe=""), "method": "GET"}]


@hookimpl
def crm_web_config(config):
    from . import views
    views.includeme(config)


@hookimpl
def crm_before_create(ctx, entity, values):
    check = service.BEFORE.get(entity.name)
    if check:
        check(ctx, {}, values, values)


@hookimpl
def crm_before_update(ctx, entity, old, changes):
    check = service.BEFORE.get(entity.name)
    if check:
        check(ctx, old, changes, {**old, **changes})


@hookimpl
def crm_after_create(ctx, entity, record):
    after = service.AFTER_CREATE.get(entity.name)
    if after:
        after(ctx, record)


@hookimpl
def crm_after_delete(ctx, entity, record):
    after = service.AFTER_DELETE.get(entity.name)
    if after:
        after(ctx, record)


@hookimpl
def crm_after_transition(ctx, entity, record, transition, comment):
    if entity.name == "service_record" and transition["to"] == "dispatched":
        service.notify_dispatch(ctx, record)
