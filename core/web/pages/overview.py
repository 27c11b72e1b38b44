"""The 360 view ``/app/{entity}/{id}/overview`` (客户全景图): one page with a record's key figures
at the top and every related list below it — for a customer its contacts, follow-ups, sub-
companies and whatever links to it (opportunities, contracts, orders, payments, service records,
points ... from any plugin or custom entity), plus the tabs plugins add through
``crm_related_tabs`` (pool log, cost centers ...). Nothing is named here: the sections are the
detail page's related tabs (:func:`crm.core.web.pages.detail.related_tabs`), so a new plugin's
entity appears by linking to the customer.

The figures are the entity's ``summary_fields`` (metadata); the page is offered on the detail
page of every entity that declares them. Everything is read through the record service: a
section of an entity the user may not read is left out, records out of the user's scope are not
listed or counted, hidden fields are not shown.
"""
from pyramid.view import view_config

from crm.core.web import security
from crm.core.web.pages.detail import load_tab, related_tabs
from crm.core.web.pages.helpers import CORE_MENU_ORDER, Display, _, entity_label, page_entity, render, shown_fields
from crm.core.web.pages.lists import list_columns


def includeme(config):
    from crm.core.web.pages import ID, PREFIX
    from crm.core.web.security import EntityContext
    config.add_route("page.overview", PREFIX + "/{entity}/" + ID + "/overview", factory=EntityContext)
    config.scan(__name__)


def offered(entity):
    """Entities with ``summary_fields`` get a 360 view."""
    return bool(entity.spec.get("summary_fields"))


def action(request, entity, record):
    """The detail page's button to the 360 view, where there is one."""
    if not offered(entity):
        return []
    return [{"id": "overview", "label": view_name(request, entity), "method": "GET",
             "url": request.route_path("page.overview", entity=entity.name, id=record["id"])}]


def view_name(request, entity):
    return _(request, "${what} 360° view", what=entity.label_in(request.locale_name))


def _order(entity, tab):
    """Other core entities first in menu order (contacts, follow-ups ...), then the rest as found."""
    name = tab["entity"]
    return CORE_MENU_ORDER.index(name) if name in CORE_MENU_ORDER and name != entity.name else len(CORE_MENU_ORDER)


@view_config(route_name="page.overview", request_method="GET", permission=security.READ)
def overview(request):
    entity = page_entity(request)
    records = request.records
    record = records.get(entity.name, request.matchdict["id"])
    display = Display(request)
    display.preload(entity, [record])
    visible = {f.name: f for f in shown_fields(records, entity)}
    wanted = entity.spec.get("summary_fields") or []
    figures = [{"name": n, "label": visible[n].label_in(request.locale_name), "parts": display.parts(visible[n], record.get(n))}
               for n in wanted if n in visible]
    facts = [{"name": f.name, "label": f.label_in(request.locale_name), "parts": display.parts(f, record.get(f.name))}
             for f in list_columns(records, entity) if f.name not in wanted and f.name != entity.title_field]
    tabs = sorted(related_tabs(request, entity, record), key=lambda tab: _order(entity, tab))
    loaded = [t for t in (load_tab(request, display, tab) for tab in tabs) if t]
    # lists with records get a section; the empty ones (apart from contacts and follow-ups) one line
    sections = [t for t in loaded if t["rows"] or _order(entity, t) < len(CORE_MENU_ORDER)]
    empty = [t for t in loaded if t not in sections]
    return render(request, "overview.pt", {
        "entity": entity, "entity_label": entity_label(entity, request.locale_name, plural=True), "record": record,
        "title": records.title(entity, record), "figures": figures, "facts": [f for f in facts if f["parts"]],
        "sections": sections, "empty": empty, "view_name": view_name(request, entity), "detail_url": request.route_path("page.detail", entity=entity.name, id=record["id"]),
    })
