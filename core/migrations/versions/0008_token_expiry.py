"""API tokens may expire: crm_api_tokens.expires_at (NULL: never)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("crm_api_tokens", sa.Column("expires_at", sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table("crm_api_tokens") as batch:
        batch.drop_column("expires_at")
