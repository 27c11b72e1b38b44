"""Export the records of a list (its filters, search and sort) to .xlsx or .csv, through the
record service: only what the user may reach and see, and only with the export permission.
Values are written as people read them (dictionary labels, user names, linked titles), so an
exported file imports back; cells that look like formulas are neutralized."""
import sqlalchemy as sa

from crm.core import tabular
from crm.core.errors import Forbidden
from crm.core.registry import text_in
from crm.core.tables import dictionary_items, users

SKIPPED_TYPES = {"table", "json", "file", "image"}


def export_fields(records, entity):
    hidden = records.access.hidden_fields(entity.name)
    return [f for f in entity.fields.values() if f.type not in SKIPPED_TYPES and not f.hidden and f.name not in hidden]


class Labels:
    """Display values for dictionary, user and link fields, looked up once per export."""

    def __init__(self, records):
        self.records = records
        self._dicts, self._users, self._titles = {}, None, {}

    def __call__(self, field, value):
        if value is None:
            return None
        if field.type in ("select", "region"):
            return self.choice(field.dictionary, value)
        if field.type == "multiselect":
            return "，".join(self.choice(field.dictionary, v) for v in value)
        if field.type in ("user",):
            return self.user(value)
        if field.type == "link":
            return self.title(field.entity, value)
        if field.type == "links":
            return "，".join(str(self.title(field.entity, v)) for v in value)
        return field.ftype.to_json(value)

    def choice(self, dictionary, value):
        if dictionary not in self._dicts:
            rows = self.records.session.execute(sa.select(dictionary_items.c.value, dictionary_items.c.label)
                                                .where(dictionary_items.c.dictionary == dictionary))
            self._dicts[dictionary] = {v: text_in(l, self.records.locale) for v, l in rows}
        return self._dicts[dictionary].get(value, value)

    def user(self, user_id):
        if self._users is None:
            self._users = {r.id: r.display_name or r.username
                           for r in self.records.session.execute(sa.select(users.c.id, users.c.username, users.c.display_name))}
        return self._users.get(user_id, user_id)

    def title(self, entity_name, record_id):
        key = (entity_name, record_id)
        if key not in self._titles:
            entity = self.records.entity(entity_name)
            found = self.records.list(entity_name, filters=[("id", "eq", record_id)], limit=1).items
            self._titles[key] = self.records.title(entity, found[0]) if found else record_id
        return self._titles[key]


def export(records, entity_name, path, filters=(), q=None, sort=None, ids=None, progress=None, page_size=500):
    """Write the matching records to ``path`` (.xlsx or .csv by suffix); returns how many."""
    entity = records.entity(entity_name)
    if not records.access.allowed(entity_name, "export"):
        raise Forbidden(f"you may not export {entity.label_in(records.locale)}")
    fields = export_fields(records, entity)
    writer = tabular.Writer(path, [f.label_in(records.locale) for f in fields])
    labels = Labels(records)
    filters = list(filters) + ([("id", "in", ",".join(str(i) for i in ids))] if ids else [])
    count, cursor = 0, None
    try:
        while True:
            page = records.list(entity_name, filters=filters, q=q, sort=sort, limit=page_size, cursor=cursor, action="export")
            for record in page.items:
                writer.row([labels(f, record.get(f.name)) for f in fields])
            count += len(page.items)
            if progress:
                progress(len(page.items))
            cursor = page.next_cursor
            if not cursor:
                break
    finally:
        writer.close()
    return count
