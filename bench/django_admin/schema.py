"""Django models generated from the CRM's SQLAlchemy tables (``managed = False``).

Column types map one to one; ``select`` and ``region`` fields get the dictionary's items as
``choices`` (so the admin's filters and labels read them as the CRM's pages do, without a
DISTINCT query); ``user`` and ``department`` fields become foreign keys to the CRM's user and
department tables (the admin shows their names, as the CRM's list does); ``link`` fields stay
plain integers (a foreign key's select widget would list a million customers).
"""
import sqlalchemy as sa

from crm.core.tables import departments, dictionary_items, users

RUNTIME = None  # set by bench.django_admin.start before django.setup()
ENTITIES = ("customer", "follow_up")


class CrmRouter:
    """The generated models read the CRM's database; Django's own apps stay in ``default``."""

    def db_for_read(self, model, **hints):
        return "crm" if model._meta.app_label == "crm" else None

    db_for_write = db_for_read

    def allow_migrate(self, db, app_label, **hints):
        return app_label != "crm" and db == "default"


def database_settings(url):
    if url.get_backend_name() == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": url.database}
    return {"ENGINE": "django.db.backends.postgresql", "NAME": url.database, "USER": url.username or "",
            "PASSWORD": url.password or "", "HOST": url.host or "", "PORT": str(url.port or "")}


def dictionary_choices(runtime):
    with runtime.engine.connect() as connection:
        rows = connection.execute(sa.select(dictionary_items.c.dictionary, dictionary_items.c.value, dictionary_items.c.label)
                                  .order_by(dictionary_items.c.dictionary, dictionary_items.c.position, dictionary_items.c.id))
        choices = {}
        for dictionary, value, label in rows:
            choices.setdefault(dictionary, []).append((value, label.get("zh_CN") or value))
    return choices


def build_models():
    """{class name: model class} for the CRM's users, departments, customers and follow-ups."""
    from django.db import models

    def model(name, table, fields, **meta):
        attrs = {"__module__": "bench.django_admin.models",
                 "Meta": type("Meta", (), {"managed": False, "db_table": table, "app_label": "crm", **meta}), **fields}
        return type(name, (models.Model,), attrs)

    def column_field(column, **kw):
        t = column.type
        kw = {"null": True, "blank": True, **kw}
        if column.primary_key:
            return models.AutoField(primary_key=True)
        if isinstance(t, sa.Boolean):
            return models.BooleanField(**kw)
        if isinstance(t, sa.SmallInteger):
            return models.SmallIntegerField(**kw)
        if isinstance(t, sa.BigInteger):
            return models.BigIntegerField(**kw)
        if isinstance(t, sa.Integer):
            return models.IntegerField(**kw)
        if isinstance(t, sa.Numeric):
            return models.DecimalField(max_digits=t.precision or 20, decimal_places=t.scale or 4, **kw)
        if isinstance(t, sa.DateTime):
            return models.DateTimeField(**kw)
        if isinstance(t, sa.Date):
            return models.DateField(**kw)
        if isinstance(t, sa.Time):
            return models.TimeField(**kw)
        if isinstance(t, sa.JSON):
            return models.JSONField(**kw)
        if isinstance(t, sa.Text):
            return models.TextField(**kw)
        if isinstance(t, sa.String):
            return models.CharField(max_length=t.length or 255, **kw)
        raise TypeError(f"no Django field for {column.table.name}.{column.name} ({t})")

    out = {}
    out["CrmUser"] = user_model = model("CrmUser", users.name, {
        "id": models.AutoField(primary_key=True), "username": models.CharField(max_length=150),
        "display_name": models.CharField(max_length=200, null=True), "__str__": lambda self: self.display_name or self.username},
        verbose_name="用户")
    out["CrmDepartment"] = department_model = model("CrmDepartment", departments.name, {
        "id": models.AutoField(primary_key=True), "name": models.CharField(max_length=200),
        "__str__": lambda self: self.name}, verbose_name="部门")
    choices = dictionary_choices(RUNTIME)
    for entity_name in ENTITIES:
        entity = RUNTIME.metadata[entity_name]
        fields = {}
        for column in entity.table.columns:
            field = entity.fields.get(column.name)
            kind = field.type if field is not None else None
            label = field.label_in("zh_CN") if field is not None else column.name
            if kind in ("user", "department") and column.name.endswith("_id"):
                target = user_model if kind == "user" else department_model
                fields[column.name[:-3]] = models.ForeignKey(target, db_column=column.name, null=True, blank=True, verbose_name=label,
                                                             on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
                continue
            extra = {"verbose_name": label}
            if kind in ("select", "region") and field.dictionary in choices:
                extra["choices"] = choices[field.dictionary]
            fields[column.name] = column_field(column, **extra)
        fields["__str__"] = (lambda self: self.name) if "name" in fields else (lambda self: f"#{self.pk}")
        class_name = "".join(part.title() for part in entity_name.split("_"))
        out[class_name] = model(class_name, entity.table.name, fields, verbose_name=entity.label_in("zh_CN"))
    return out
