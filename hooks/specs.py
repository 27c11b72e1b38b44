"""Hook specifications: every point where a plugin can add to or change the CRM.

Conventions (as in datasette and pytest):
- every hook name starts with ``crm_``;
- registration hooks (``crm_metadata``, ``crm_jobs``, ``crm_menu_entries`` ...) return a list and
  are called once per plugin at start-up, in plugin dependency order;
- record hooks (``crm_before_*``, ``crm_after_*``) run inside the operation's database transaction:
  raising :class:`crm.hooks.Veto` rolls the whole operation back.

``ctx`` in record hooks is the :class:`crm.core.records.RecordService` doing the operation: use
``ctx.create/update/get/list`` to read or write other records in the same transaction, ``ctx.user``
for who is acting and ``ctx.now()`` for the (controllable) clock.
``entity`` is the effective :class:`crm.core.registry.Entity` (``entity.name``, ``entity.fields``).
"""
from crm.hooks import hookspec


# --- registration ------------------------------------------------------------------------------

@hookspec
def crm_metadata():
    """Return the metadata this plugin contributes, as a list of folders, JSON files or dicts.

    Each document is one of: an entity definition (has ``name``), an extension of another
    entity (has ``extends``: adds fields, list columns, layout sections ...), or a dictionary
    (has ``dictionary``). A folder is read recursively for ``*.json``. Fields a plugin adds to
    an entity it does not own must be named ``<plugin>_...``. Documents are validated against
    ``metadata/schema/entity.schema.json``; an error stops start-up naming the file and pointer.

    Example: ``return [pathlib.Path(__file__).parent / "metadata"]``
    """


@hookspec
def crm_migrations():
    """Return the alembic version location (``"package:folder"``) of this plugin's own migration
    branch, for tables that are not entities (entity tables come from schema sync). The branch's
    first revision must have ``branch_labels = ("<plugin>",)`` and ``down_revision = None``.
    """


@hookspec
def crm_jobs():
    """Return a list of :class:`crm.hooks.Job` run by ``crm jobs run`` (daily reminders,
    reclaim strategies ...). Jobs must be idempotent per day."""


@hookspec
def crm_menu_entries():
    """Return menu entries as dicts: ``{"id", "label", "entity" | "url", "parent", "order"}``,
    optionally with what the entry needs: ``"permission"`` (a special permission name, or a list:
    any of them) and ``"action"`` (with ``entity``: the entity action, default ``"read"``). An
    entry the user lacks them for is left out. ``label`` is translatable
    (``{"zh_CN": ..., "en": ...}``)."""


@hookspec
def crm_web_config(config):
    """Add routes and views to the Pyramid ``config`` (called once while the web app is built).
    Route names should start with the plugin's name."""


@hookspec
def crm_related_tabs(ctx, entity, record):
    """Return extra tabs for the detail page of ``record`` (an ``entity`` record the user may see),
    as dicts ``{"id", "label", "entity", "filters"}``: ``label`` translatable, ``entity`` the
    entity whose records the tab lists, ``filters`` a list of ``[field, op, value]`` (the list
    filter language of :mod:`crm.core.query`), e.g. a customer's opportunities::

        [{"id": "sales.opportunities", "label": {"zh_CN": "商机", "en": "Opportunities"},
          "entity": "opportunity", "filters": [["customer_id", "eq", record["id"]]]}]

    Called on every detail page, after the core's own tabs (one per link field pointing at the
    entity); the records are read through ``ctx`` (the request's record service), so access
    scopes apply. Tabs for entities the user may not read are left out."""


@hookspec
def crm_record_actions(ctx, entity, record):
    """Return actions shown on the detail page of ``record``, as dicts ``{"id", "label", "url",
    "method"}``: ``label`` translatable, ``method`` ``"GET"`` (a link) or ``"POST"`` (a button in a
    form that carries the CSRF token; the plugin's view does the work and redirects back).
    Return only the actions the user (``ctx.user``, ``ctx.access``) may take."""


@hookspec
def crm_cli_commands(cli):
    """Add click commands or groups to the ``crm`` command-line group ``cli``."""


# --- records -----------------------------------------------------------------------------------

@hookspec
def crm_before_create(ctx, entity, values):
    """Called before a record is inserted, after validation. ``values`` (a dict of field values)
    may be changed in place; raise ``Veto`` to refuse. Imports call it per record of a batch
    (``RecordService.create_many``), before the batch is inserted; a hook that sends SQL then
    makes the import create its records one by one (see docs/plugins.md, "Batches")."""


@hookspec
def crm_after_create(ctx, entity, record):
    """Called after a record is inserted (``record`` has ``id`` and ``version``), in the same
    transaction."""


@hookspec
def crm_before_update(ctx, entity, old, changes):
    """Called before an update. ``old`` is the stored record, ``changes`` the validated new
    values (may be changed in place); raise ``Veto`` to refuse."""


@hookspec
def crm_after_update(ctx, entity, old, record, changes):
    """Called after an update with the record before and after and the fields that changed."""


@hookspec
def crm_before_delete(ctx, entity, record):
    """Called before a record moves to the recycle bin; raise ``Veto`` to refuse."""


@hookspec
def crm_after_delete(ctx, entity, record):
    """Called after a record moved to the recycle bin."""


@hookspec
def crm_before_restore(ctx, entity, record):
    """Called before a record comes back from the recycle bin; raise ``Veto`` to refuse (e.g. a
    duplicate was created meanwhile)."""


@hookspec
def crm_after_restore(ctx, entity, record):
    """Called after a record came back from the recycle bin."""


@hookspec
def crm_before_merge(ctx, entity, survivor, duplicate, values):
    """Called before ``duplicate`` is merged into ``survivor``; ``values`` are the surviving
    field values chosen by the user (may be changed in place); raise ``Veto`` to refuse."""


@hookspec
def crm_after_merge(ctx, entity, survivor, duplicate):
    """Called after the merge: links were re-pointed to ``survivor`` and ``duplicate`` is in the
    recycle bin. Plugins with their own tables re-point their references here."""


# --- access ------------------------------------------------------------------------------------

@hookspec
def crm_permissions():
    """Return the special permissions (特殊权限) this plugin declares, as dicts
    ``{"name": "<plugin>.<what>", "label": {"zh_CN": ..., "en": ...}}``. Roles grant them by name;
    code asks ``ctx.access.has(name)``."""


@hookspec
def crm_roles():
    """Return the default roles this plugin ships, seeded by ``crm db upgrade``, as dicts:

    - ``{"name", "label", "rules"}``: a new role (e.g. ``finance``), created when no role of that
      name exists; a role that exists (edited or not) is left as it is;
    - ``{"extends": "<role>", "rules"}``: additions to another role (the core's ``sales_rep``,
      ``sales_manager``, ``viewer`` or another plugin's): every entity action, field rule and
      permission in ``rules`` is applied once (a scope only ever widens an explicit one), and
      recorded, so what an administrator later takes away stays away.

    ``rules`` has the shape of a role's rules (``entities``, ``fields``, ``permissions``; see
    docs/permissions.md) and is checked against the known entities and permissions."""


@hookspec
def crm_access_grants(ctx, entity, action, user):
    """Return a list of SQLAlchemy clauses over ``entity.table`` that *add* records to what
    ``user`` may reach for ``action`` (OR-ed with the role scope), e.g. the customer pool for
    users holding a pool permission. Not called for administrators and the system."""


@hookspec
def crm_access_restrictions(ctx, entity, action, user):
    """Return a list of SQLAlchemy clauses over ``entity.table`` that every record reached for
    ``action`` must also meet (AND-ed, for everyone including administrators), e.g. protected
    customers hidden from other reps' claims."""


# --- workflows ---------------------------------------------------------------------------------

@hookspec
def crm_before_transition(ctx, entity, record, transition, comment):
    """Called before a workflow transition (``transition`` is its metadata dict: ``id``, ``from``,
    ``to`` ...) is applied to ``record``, in the same transaction; raise ``Veto`` to refuse (e.g. a
    cost center whose ceiling the approval would exceed)."""


@hookspec
def crm_after_transition(ctx, entity, record, transition, comment):
    """Called after a transition: ``record`` is in its new state and the step is logged."""
