"""alembic environment for the core's versioned migrations (and plugins' migration branches).

Run through :mod:`crm.core.schema` (``crm db upgrade``), which passes the connection in
``config.attributes["connection"]``.
"""
from alembic import context

from crm.core.tables import core_metadata

VERSION_TABLE = "crm_alembic_version"

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=core_metadata, version_table=VERSION_TABLE,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
