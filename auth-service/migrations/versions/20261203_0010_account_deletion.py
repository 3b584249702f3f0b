"""account deletion: when it was asked for, when the account is erased, when it was

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 17:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("users", sa.Column("deletion_requested_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("users", sa.Column("deletion_requested_by", sa.String(length=8), nullable=True))
    op.add_column("users", sa.Column("erase_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("users", sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_users_erase_at", "users", ["erase_at"], postgresql_where=sa.text("erased_at IS NULL")
    )


def downgrade() -> None:
    op.drop_index("ix_users_erase_at", table_name="users", postgresql_where=sa.text("erased_at IS NULL"))
    op.drop_column("users", "erased_at")
    op.drop_column("users", "erase_at")
    op.drop_column("users", "deletion_requested_by")
    op.drop_column("users", "deletion_requested_at")
