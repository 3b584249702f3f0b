"""card expiry notices: each card and expiry date a "card expires soon" email was sent for, once

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "card_expiry_notices",
        sa.Column("payment_method_id", sa.String(length=255), nullable=False),
        sa.Column("exp_year", sa.Integer(), nullable=False),
        sa.Column("exp_month", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("notified_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint(
            "payment_method_id", "exp_year", "exp_month", name=op.f("pk_card_expiry_notices")
        ),
    )
    op.create_index(op.f("ix_card_expiry_notices_user_id"), "card_expiry_notices", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_card_expiry_notices_user_id"), table_name="card_expiry_notices")
    op.drop_table("card_expiry_notices")
