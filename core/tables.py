"""The core's own tables (not entities): users, audit trail, recycle bin, dictionaries, stored
customizations, autonumber sequences, many-links, attachments, job runs.

They change only through the versioned migrations in ``crm/core/migrations``; these definitions
are what the code queries and must match the latest migration (a test compares them).
"""
import sqlalchemy as sa

from crm.core.fieldtypes import ID_TYPE

core_metadata = sa.MetaData()


def _id():
    return sa.Column("id", ID_TYPE, primary_key=True, autoincrement=True)


departments = sa.Table(
    "crm_departments", core_metadata, _id(),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("parent_id", ID_TYPE, index=True),
    sa.Column("manager_id", ID_TYPE),
    sa.Column("sort_order", sa.Integer, nullable=False, server_default="0"),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
)

users = sa.Table(
    "crm_users", core_metadata, _id(),
    sa.Column("username", sa.String(150), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(255)),
    sa.Column("display_name", sa.String(200)),
    sa.Column("email", sa.String(254)),
    sa.Column("phone", sa.String(40)),
    sa.Column("department_id", ID_TYPE, index=True),
    sa.Column("manager_id", ID_TYPE),
    sa.Column("is_admin", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("locale", sa.String(10), nullable=False, server_default="zh_CN"),
    sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
    sa.Column("locked_until", sa.DateTime),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

audit = sa.Table(
    "crm_audit", core_metadata, _id(),
    sa.Column("entity", sa.String(64), nullable=False),
    sa.Column("record_id", ID_TYPE, nullable=False),
    sa.Column("action", sa.String(20), nullable=False),
    sa.Column("field", sa.String(64)),
    sa.Column("old_value", sa.JSON),
    sa.Column("new_value", sa.JSON),
    sa.Column("user_id", ID_TYPE),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("note", sa.String(500)),
    sa.Index("ix_crm_audit_record", "entity", "record_id", "id"),
)

trash = sa.Table(
    "crm_trash", core_metadata, _id(),
    sa.Column("entity", sa.String(64), nullable=False),
    sa.Column("record_id", ID_TYPE, nullable=False),
    sa.Column("title", sa.String(500)),
    sa.Column("deleted_at", sa.DateTime, nullable=False),
    sa.Column("deleted_by", ID_TYPE),
    sa.Column("reason", sa.String(100)),
    sa.UniqueConstraint("entity", "record_id", name="uq_crm_trash_record"),
)

dictionary_items = sa.Table(
    "crm_dictionary_items", core_metadata, _id(),
    sa.Column("dictionary", sa.String(64), nullable=False),
    sa.Column("value", sa.String(64), nullable=False),
    sa.Column("label", sa.JSON, nullable=False),
    sa.Column("parent_value", sa.String(64)),
    sa.Column("position", sa.Integer, nullable=False, server_default="0"),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("owner", sa.String(64), nullable=False),
    sa.UniqueConstraint("dictionary", "value", name="uq_crm_dictionary_items_value"),
)

customizations = sa.Table(
    "crm_customizations", core_metadata, _id(),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("document", sa.JSON, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Column("updated_by", ID_TYPE),
)

sequences = sa.Table(
    "crm_sequences", core_metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)

links = sa.Table(
    "crm_links", core_metadata,
    sa.Column("entity", sa.String(64), primary_key=True),
    sa.Column("field", sa.String(64), primary_key=True),
    sa.Column("source_id", ID_TYPE, primary_key=True, autoincrement=False),
    sa.Column("target_id", ID_TYPE, primary_key=True, autoincrement=False),
    sa.Index("ix_crm_links_target", "entity", "field", "target_id"),
)

attachments = sa.Table(
    "crm_attachments", core_metadata, _id(),
    sa.Column("entity", sa.String(64)),
    sa.Column("record_id", ID_TYPE),
    sa.Column("field", sa.String(64)),
    sa.Column("filename", sa.String(255), nullable=False),
    sa.Column("content_type", sa.String(127)),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("path", sa.String(500), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("created_by", ID_TYPE),
    sa.Index("ix_crm_attachments_record", "entity", "record_id"),
)

job_runs = sa.Table(
    "crm_job_runs", core_metadata,
    sa.Column("job", sa.String(128), primary_key=True),
    sa.Column("run_date", sa.Date, primary_key=True),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("finished_at", sa.DateTime),
    sa.Column("result", sa.JSON),
)

api_tokens = sa.Table(
    "crm_api_tokens", core_metadata, _id(),
    sa.Column("user_id", ID_TYPE, nullable=False, index=True),
    sa.Column("name", sa.String(100)),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("last_used_at", sa.DateTime),
    sa.Column("revoked_at", sa.DateTime),
    sa.Column("expires_at", sa.DateTime),   # migration 0008; NULL: never expires
)

# --- access (migration 0003) -------------------------------------------------------------------

roles = sa.Table(
    "crm_roles", core_metadata, _id(),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("label", sa.JSON, nullable=False),
    sa.Column("rules", sa.JSON, nullable=False),
)

# plugin additions to roles (``crm_roles`` with ``extends``) applied once each: an administrator who
# takes one away again keeps it away (core/access.py, seed_roles)
role_seeds = sa.Table(
    "crm_role_seeds", core_metadata,
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("applied_at", sa.DateTime, nullable=False),
)

user_roles = sa.Table(
    "crm_user_roles", core_metadata,
    sa.Column("user_id", ID_TYPE, primary_key=True, autoincrement=False),
    sa.Column("role_id", ID_TYPE, primary_key=True, autoincrement=False),
)

shares = sa.Table(
    "crm_shares", core_metadata, _id(),
    sa.Column("entity", sa.String(64), nullable=False),
    sa.Column("record_id", ID_TYPE, nullable=False),
    sa.Column("user_id", ID_TYPE),
    sa.Column("department_id", ID_TYPE),
    sa.Column("access", sa.String(10), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("created_by", ID_TYPE),
    sa.Index("ix_crm_shares_record", "entity", "record_id"),
    sa.Index("ix_crm_shares_user", "entity", "user_id"),
    sa.Index("ix_crm_shares_department", "entity", "department_id"),
)

# --- imports (migration 0004) ------------------------------------------------------------------

imports = sa.Table(
    "crm_imports", core_metadata, _id(),
    sa.Column("entity", sa.String(64), nullable=False),
    sa.Column("filename", sa.String(255), nullable=False),
    sa.Column("mode", sa.String(10), nullable=False),
    sa.Column("match", sa.JSON, nullable=False),
    sa.Column("mapping", sa.JSON, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("counts", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("created_by", ID_TYPE),
    sa.Column("reverted_at", sa.DateTime),
)

import_rows = sa.Table(
    "crm_import_rows", core_metadata,
    sa.Column("import_id", ID_TYPE, primary_key=True, autoincrement=False),
    sa.Column("row_number", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("action", sa.String(10), nullable=False),
    sa.Column("record_id", ID_TYPE, nullable=False),
    sa.Column("before", sa.JSON),
)

import_mappings = sa.Table(
    "crm_import_mappings", core_metadata,
    sa.Column("entity", sa.String(64), primary_key=True),
    sa.Column("headers_key", sa.String(64), primary_key=True),
    sa.Column("mapping", sa.JSON, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)

# --- saved list views (migration 0005) ---------------------------------------------------------

saved_views = sa.Table(
    "crm_saved_views", core_metadata, _id(),
    sa.Column("entity", sa.String(64), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("owner_id", ID_TYPE, nullable=False),
    sa.Column("shared", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Index("ix_crm_saved_views_entity_owner", "entity", "owner_id"),
)

# --- notifications (migration 0006) ------------------------------------------------------------

notifications = sa.Table(
    "crm_notifications", core_metadata, _id(),
    sa.Column("user_id", ID_TYPE, nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("title", sa.String(500), nullable=False),
    sa.Column("body", sa.Text),
    sa.Column("entity", sa.String(64)),
    sa.Column("record_id", ID_TYPE),
    sa.Column("due_on", sa.Date),
    sa.Column("key", sa.String(200), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("read_at", sa.DateTime),
    sa.Column("emailed_at", sa.DateTime),
    sa.Index("ix_crm_notifications_user", "user_id", "read_at", "id"),
)

# --- workflows (migration 0007) ----------------------------------------------------------------

workflow_log = sa.Table(
    "crm_workflow_log", core_metadata, _id(),
    sa.Column("entity", sa.String(64), nullable=False),
    sa.Column("record_id", ID_TYPE, nullable=False),
    sa.Column("workflow", sa.String(64), nullable=False),
    sa.Column("transition", sa.String(64), nullable=False),
    sa.Column("from_state", sa.String(64)),
    sa.Column("to_state", sa.String(64), nullable=False),
    sa.Column("user_id", ID_TYPE),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("comment", sa.Text),
    sa.Index("ix_crm_workflow_log_record", "entity", "record_id", "id"),
)
