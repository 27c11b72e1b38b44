"""Envelope printing (信封打印): print-ready HTML pages, one envelope per page, with ``@page`` CSS
in the envelope's size, for one record or a batch.

    GET  /app/{entity}/{id}/envelope     one (the detail page's "print envelope" action)
    GET  /app/{entity}/envelopes?...     every record of the list's filter (same query string)
    POST /app/{entity}/envelopes         the rows selected on the list page (``ids``)

Offered for entities with an ``address`` field (customers; a custom supplier entity too). The
template is part of the system settings (系统参数 → 信封打印), editable by whoever may edit them:
the envelope size (a dictionary whose values are ``<width>x<height>`` in millimetres, so more
sizes can be added), the recipient block and the sender block. Placeholders ``{field}`` take the
record's values as people read them (dictionary labels, region paths); ``{contact}``,
``{contact_title}``, ``{contact_phone}`` the recipient: the record's primary contact (a record of
an entity linking to it whose ``is_primary`` is set), else its first contact. The sender block
takes the system settings' fields. The line holding ``{name}`` is printed larger. Values are escaped like every page's; an unknown placeholder
stays as written, so that a typo shows on the preview.
"""
import re

from pyramid.view import view_config

from crm.core.errors import BadRequest
from crm.core.web import security
from crm.core.web.pages.helpers import Display, _, entity_label, page_entity, render
from crm.core.web.pages.lists import ListState, qs_suffix

SETTINGS = "system_settings"
DEFAULT_SIZE = "220x110"
DEFAULT_RECIPIENT = "{address}\n{name}\n{contact} {contact_title} 收"
DEFAULT_SENDER = "{company_name}"
SIZE = re.compile(r"^(\d{2,3})x(\d{2,3})$")
PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]*)\}")
MAX_BATCH = 500
CONTACT_FIELDS = {"contact": "name", "contact_title": "title"}


def includeme(config):
    from crm.core.web.pages import ID, PREFIX
    from crm.core.web.security import EntityContext
    config.add_route("page.envelopes", PREFIX + "/{entity}/envelopes", factory=EntityContext)
    config.add_route("page.envelope", PREFIX + "/{entity}/" + ID + "/envelope", factory=EntityContext)
    config.scan(__name__)


def offered(entity):
    return "address" in entity.fields and not entity.singleton and not entity.is_child


def action(request, entity, record):
    """The detail page's "print envelope" button."""
    if not offered(entity):
        return []
    return [{"id": "envelope", "label": _(request, "Print envelope"), "method": "GET",
             "url": request.route_path("page.envelope", entity=entity.name, id=record["id"])}]


def batch_url(request, entity, query_string):
    """The list page's link: envelopes for every record of its current filter."""
    if not offered(entity):
        return None
    return request.route_path("page.envelopes", entity=entity.name) + qs_suffix(query_string)


def fill(template, values):
    """``template`` with each ``{name}`` replaced by ``values[name]`` (unknown names stay)."""
    return PLACEHOLDER.sub(lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), template or "")


def size_of(value):
    """(width, height) in millimetres from a size value like ``220x110``."""
    found = SIZE.match(value)
    return int(found.group(1)), int(found.group(2))


class Filler:
    """The placeholder values of records, read once per page."""

    def __init__(self, request, entity):
        self.request, self.entity = request, entity
        self.records, self.display = request.records, Display(request)
        self.contacts = self._contact_source()
        self.recipients = {}

    def _contact_source(self):
        """(entity, link field) of the records that are this entity's contacts: an entity linking
        here with an ``is_primary`` field (contact.customer_id for customers)."""
        for other, field in self.records.model.references_to(self.entity.name):
            if field.type == "link" and "is_primary" in other.fields and not other.is_child \
                    and self.records.access.allowed(other.name, "read"):
                return other, field
        return None

    def load_recipients(self, records):
        """The recipient of each record (its primary contact, else its first), read for all of
        them at once: {record id: contact}."""
        self.recipients = {}
        if self.contacts is None or not records:
            return
        other, field = self.contacts
        ids, cursor = ",".join(str(r["id"]) for r in records), None
        while True:
            try:
                page = self.records.list(other.name, filters=[(field.name, "in", ids)], sort="-is_primary,id", limit=500, cursor=cursor)
            except BadRequest:   # the link field is hidden from the user: no recipients
                return
            for contact in page.items:
                self.recipients.setdefault(contact.get(field.name), contact)
            cursor = page.next_cursor
            if not cursor:
                break

    def recipient(self, record):
        return self.recipients.get(record["id"])

    def values(self, record):
        values = {}
        hidden = self.records.access.hidden_fields(self.entity.name)
        for name, field in self.entity.fields.items():
            if name not in hidden and not field.hidden and field.type not in ("table", "json", "file", "image"):
                values[name] = self.display.text(field, record.get(name))
        contact = self.recipient(record)
        other = self.contacts[0] if self.contacts else None
        for key, name in CONTACT_FIELDS.items():
            values[key] = self.display.text(other.fields[name], contact.get(name)) if contact and name in other.fields else ""
        phones = [contact.get(n) for n in ("mobile", "office_phone") if contact and contact.get(n)]
        values["contact_phone"] = phones[0] if phones else ""
        return values


def settings_values(request):
    """The system settings as placeholder values (for the sender block) and the template."""
    records = request.records
    if SETTINGS not in records.model.entities:
        return {}, {}
    # as the system (the template is everyone's, like records.setting), and without creating the
    # record as records.singleton() would: no settings yet → the defaults
    found = records.as_system().list(SETTINGS, limit=1).items
    settings = found[0] if found else {}
    entity = records.entity(SETTINGS)
    display = Display(request)
    values = {n: display.text(f, settings.get(n)) for n, f in entity.fields.items() if f.type not in ("table", "json", "file", "image")}
    return values, settings


def envelopes_page(request, entity, items, more=False):
    sender_values, settings = settings_values(request)
    size = next((s for s in (request.params.get("size"), settings.get("envelope_size")) if SIZE.match(s or "")), DEFAULT_SIZE)
    width, height = size_of(size)
    filler = Filler(request, entity)
    recipient_template = settings.get("envelope_recipient") or DEFAULT_RECIPIENT
    sender = fill(settings.get("envelope_sender") or DEFAULT_SENDER, sender_values).strip().splitlines()
    boxes = settings.get("envelope_postcode_boxes")
    envelopes = []
    filler.load_recipients(items)
    for record in items:
        values = filler.values(record)
        lines = [(fill(line, values).strip(), "{name}" in line) for line in recipient_template.splitlines()]
        postcode = re.sub(r"\D", "", values.get("postcode") or "")[:6]
        envelopes.append({"id": record["id"], "lines": [(text, big) for text, big in lines if text], "sender": sender,
                          "postcode": list(postcode.ljust(6)) if boxes is not False and postcode else None})
    display = Display(request)
    sizes = [(v, label, v == size) for v, label, _d in display.choices("envelope_size")]
    if not any(s[2] for s in sizes):
        sizes.append((size, f"{width} × {height} mm", True))
    return render(request, "envelopes.pt", {
        "entity": entity, "entity_label": entity_label(entity, request.locale_name, plural=True), "envelopes": envelopes,
        "width": width, "height": height, "sizes": sizes, "more": more, "max_batch": MAX_BATCH,
        "back": request.route_path("page.list", entity=entity.name),
        "ids": [e["id"] for e in envelopes] if request.method == "POST" else None,
        "keep": [(k, v) for k, v in request.GET.items() if k != "size"],   # the list's filter, when changing the size
    })


@view_config(route_name="page.envelope", request_method="GET", permission=security.READ)
def one(request):
    entity = page_entity(request)
    if not offered(entity):
        raise BadRequest(f"{entity.name} records have no address to print")
    return envelopes_page(request, entity, [request.records.get(entity.name, request.matchdict["id"])])


@view_config(route_name="page.envelopes", permission=security.READ)
def batch(request):
    """GET: the list's filter (its query string); POST: the selected rows (``ids``)."""
    entity = page_entity(request)
    if not offered(entity):
        raise BadRequest(f"{entity.name} records have no address to print")
    records = request.records
    if request.method == "POST":
        ids = [int(v) for v in dict.fromkeys(request.POST.getall("ids")) if v.isdigit()][:MAX_BATCH]
        page = records.list(entity.name, filters=[("id", "in", ",".join(map(str, ids)))], limit=MAX_BATCH) if ids else None
        return envelopes_page(request, entity, page.items if page else [])
    state = ListState(request, entity, Display(request), ignore=("size",))
    page = records.list(entity.name, filters=state.filters, q=state.q or None, sort=state.sort, limit=MAX_BATCH)
    return envelopes_page(request, entity, page.items, more=page.next_cursor is not None)
