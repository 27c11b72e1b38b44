"""imports: import runs with before-images for revert, remembered column mappings

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""
from alembic import op
import sqlalchemy as sa

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade():
    op.create_table(
        "crm_imports",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("entity", sa.String(length=64), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("mode", sa.String(length=10), nullable=False),
        sa.Column("match", sa.JSON(), nullable=False),
        sa.Column("mapping", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", ID, nullable=True),
        sa.Column("reverted_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "crm_import_rows",
        sa.Column("import_id", ID, autoincrement=False, nullable=False),
        sa.Column("row_number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.Column("record_id", ID, nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("import_id", "row_number"),
    )
    op.create_table(
        "crm_import_mappings",
        sa.Column("entity", sa.String(length=64), nullable=False),
        sa.Column("headers_key", sa.String(length=64), nullable=False),
        sa.Column("mapping", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("entity", "headers_key"),
    )


def downgrade():
    op.drop_table("crm_import_mappings")
    op.drop_table("crm_import_rows")
    op.drop_table("crm_imports")
