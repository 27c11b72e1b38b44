"""Web views of the plugin.

    GET /app/sn_tracking/scan?sn=...        the look-up page: a scanner-friendly search box and the history
    GET /api/v1/sn_tracking/lookup/{sn}    the item's history as JSON (Bearer token, like the whole API)

The answer is :func:`.history.lookup` with every record in its API form; an SN the caller may not
see (or that does not exist) answers 404 with the API's error body.
"""

from crm.core.records import record_to_json
from crm.core.web import security
from crm.core.web.api import RENDERER, MethodNotAllowed

from . import history

API_LOOKUP = "/api/v1/sn_tracking/lookup/{sn:.+}"


def includeme(config):
    config.add_route("sn_tracking.scan", "/app/sn_tracking/scan")
    config.add_view(scan_page, route_name="sn_tracking.scan", request_method="GET", permission=security.READ)
    config.add_route("sn_tracking.api.lookup", API_LOOKUP)
    config.add_view(api_lookup, route_name="sn_tracking.api.lookup", request_method="GET", permission=security.READ, renderer=RENDERER)
    config.add_view(method_not_allowed, route_name="sn_tracking.api.lookup", renderer=RENDERER)


def method_not_allowed(request):
    raise MethodNotAllowed(f"{request.method} is not allowed here; use GET", ("GET",))


def lookup_json(records, sn):
    """:func:`.history.lookup` with the SN record in its API form and dates as ISO strings."""
    found = history.lookup(records, sn)
    model = records.model
    found["serial_number"] = record_to_json(model, model.entities["serial_number"], found["serial_number"])
    return found


def api_lookup(request):
    return lookup_json(request.records, request.matchdict["sn"])


# --- the look-up page ----------------------------------------------------------------------------

TEXTS = {
    "zh_CN": {"title": "SN查询", "prompt": "扫描或输入SN号", "search": "查询", "product": "产品", "customer": "客户",
              "warranty_end": "质保截止", "warranty": "保修状态", "history": "产品履历", "empty": "还没有记录",
              "date": "日期", "event": "事项", "record": "单据", "details": "内容", "new_service": "新建客服记录",
              "not_found": "没有找到SN {sn}"},
    "en": {"title": "SN look-up", "prompt": "Scan or type a serial number", "search": "Look up", "product": "Product",
           "customer": "Customer", "warranty_end": "Warranty end", "warranty": "Warranty", "history": "History",
           "empty": "Nothing recorded yet", "date": "Date", "event": "Event", "record": "Record", "details": "Details",
           "new_service": "New service record", "not_found": "No serial number {sn}"},
}
SUMMARY_KEYS = ("customer", "order_ref", "contract_ref", "supplier", "batch", "subject", "fault_category_label", "measures",
                "repair_content", "result", "reason", "replacement", "replaces", "warranty_status_label", "new_warranty_end")


def summary(details):
    """One line of the event's details for the page."""
    return " · ".join(str(details[k]) for k in SUMMARY_KEYS if details.get(k) not in (None, ""))


def scan_page(request):
    from pyramid.renderers import render_to_response
    from crm.core.errors import BadRequest, NotFound
    texts = TEXTS["zh_CN" if request.locale_name.startswith("zh") else "en"]
    sn = (request.GET.get("sn") or "").strip()
    found, error = None, None
    if sn:
        try:
            found = history.lookup(request.records, sn)
        except (NotFound, BadRequest):
            error = texts["not_found"].format(sn=sn)
    if found:
        for event in found["events"]:
            event["summary"] = summary(event["details"])
    new_service = request.route_path("page.new", entity="service_record")
    if found:
        new_service += f"?serial_number_id={found['serial_number']['id']}"
    response = render_to_response("crm.plugins.sn_tracking:templates/scan.pt",
                                  {"texts": texts, "sn": sn, "found": found, "error": error, "new_service": new_service}, request=request)
    if error:
        response.status_int = 404
    return response
