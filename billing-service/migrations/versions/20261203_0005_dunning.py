"""dunning and scheduled plan changes: a past-due subscription's first failure, next retry,
exhausted retries and restriction; a plan change waiting for the period end (Stripe schedule)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("past_due_since", "next_payment_attempt", "retries_exhausted_at", "restricted_at")


def upgrade() -> None:
    for name in COLUMNS:
        op.add_column("subscriptions", sa.Column(name, sa.DateTime(timezone=True), nullable=True))
    op.add_column("subscriptions", sa.Column("stripe_schedule_id", sa.String(length=255), nullable=True))
    op.add_column("subscriptions", sa.Column("scheduled_price_id", sa.String(length=255), nullable=True))
    op.add_column("subscriptions", sa.Column("scheduled_plan_id", sa.Uuid(), nullable=True))
    op.add_column(
        "subscriptions", sa.Column("scheduled_change_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_foreign_key(
        op.f("fk_subscriptions_scheduled_plan_id_plans"),
        "subscriptions",
        "plans",
        ["scheduled_plan_id"],
        ["id"],
    )


def downgrade() -> None:
    op.drop_constraint(
        op.f("fk_subscriptions_scheduled_plan_id_plans"), "subscriptions", type_="foreignkey"
    )
    for name in ("scheduled_change_at", "scheduled_plan_id", "scheduled_price_id", "stripe_schedule_id"):
        op.drop_column("subscriptions", name)
    for name in reversed(COLUMNS):
        op.drop_column("subscriptions", name)
