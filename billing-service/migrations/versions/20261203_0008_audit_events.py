"""billing's audit trail: admins' plan, coupon, promotion code and refund actions; the Stripe event
log read newest first

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "billing_audit_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("subject_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("details", postgresql.JSONB(), server_default=sa.text("'{}'"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_audit_events")),
    )
    op.create_index("ix_billing_audit_events_occurred_at", "billing_audit_events", ["occurred_at"])
    op.create_index("ix_billing_audit_events_actor_id_occurred_at", "billing_audit_events", ["actor_id", "occurred_at"])
    op.create_index("ix_billing_audit_events_user_id_occurred_at", "billing_audit_events", ["user_id", "occurred_at"])
    op.create_index("ix_billing_audit_events_subject_id", "billing_audit_events", ["subject_id"])
    op.create_index("ix_stripe_events_received_at_id", "stripe_events", ["received_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_stripe_events_received_at_id", table_name="stripe_events")
    op.drop_table("billing_audit_events")
