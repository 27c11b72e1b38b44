"""access: roles, user roles, record sharing

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""
from alembic import op
import sqlalchemy as sa

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade():
    op.create_table(
        "crm_roles",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("label", sa.JSON(), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "crm_user_roles",
        sa.Column("user_id", ID, autoincrement=False, nullable=False),
        sa.Column("role_id", ID, autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("user_id", "role_id"),
    )
    op.create_table(
        "crm_shares",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("entity", sa.String(length=64), nullable=False),
        sa.Column("record_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=True),
        sa.Column("department_id", ID, nullable=True),
        sa.Column("access", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", ID, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_crm_shares_record", "crm_shares", ["entity", "record_id"])
    op.create_index("ix_crm_shares_user", "crm_shares", ["entity", "user_id"])
    op.create_index("ix_crm_shares_department", "crm_shares", ["entity", "department_id"])


def downgrade():
    op.drop_table("crm_shares")
    op.drop_table("crm_user_roles")
    op.drop_table("crm_roles")
