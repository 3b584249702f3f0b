"""Organizations subscribe per seat: plans gain per_seat / min_seats / max_seats, subscriptions an
org_id and their Stripe quantity, and billing keeps a projection of each org (billing_orgs)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HOLDING = "status IN ('checkout_pending', 'incomplete', 'trialing', 'active', 'past_due', 'unpaid')"


def upgrade() -> None:
    op.add_column("plans", sa.Column("per_seat", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column("plans", sa.Column("min_seats", sa.Integer(), nullable=True))
    op.add_column("plans", sa.Column("max_seats", sa.Integer(), nullable=True))
    op.create_check_constraint(op.f("ck_plans_seats_positive"), "plans", "min_seats >= 1 AND max_seats >= 1")
    op.create_check_constraint(op.f("ck_plans_min_seats_within_max"), "plans", "min_seats <= max_seats")
    op.create_check_constraint(
        op.f("ck_plans_seats_if_per_seat"), "plans", "per_seat OR (min_seats IS NULL AND max_seats IS NULL)"
    )
    op.create_table(
        "billing_orgs",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(200), server_default="", nullable=False),
        sa.Column("member_count", sa.Integer(), server_default=sa.literal(1), nullable=False),
        sa.Column("membership_version", sa.Integer(), server_default=sa.literal(0), nullable=False),
        sa.Column("stripe_customer_id", sa.String(255), nullable=True),
        sa.Column("seats_pending", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("seats_applied_version", sa.Integer(), server_default=sa.literal(0), nullable=False),
        sa.Column("limit_version", sa.Integer(), server_default=sa.literal(0), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("member_count >= 0", name=op.f("ck_billing_orgs_member_count_non_negative")),
        sa.PrimaryKeyConstraint("org_id", name=op.f("pk_billing_orgs")),
        sa.UniqueConstraint("stripe_customer_id", name=op.f("uq_billing_orgs_stripe_customer_id")),
    )
    op.create_index(
        "ix_billing_orgs_seats_pending", "billing_orgs", ["org_id"], postgresql_where=sa.text("seats_pending")
    )
    op.add_column("subscriptions", sa.Column("org_id", sa.Uuid(), nullable=True))
    op.add_column("subscriptions", sa.Column("quantity", sa.Integer(), server_default=sa.literal(1), nullable=False))
    op.create_foreign_key(
        op.f("fk_subscriptions_org_id_billing_orgs"), "subscriptions", "billing_orgs", ["org_id"], ["org_id"]
    )
    op.create_check_constraint(op.f("ck_subscriptions_quantity_non_negative"), "subscriptions", "quantity >= 0")
    op.create_index(op.f("ix_subscriptions_org_id"), "subscriptions", ["org_id"])
    op.drop_index("uq_subscriptions_user_holding", table_name="subscriptions")
    op.create_index(
        "uq_subscriptions_user_holding",
        "subscriptions",
        ["user_id"],
        unique=True,
        postgresql_where=sa.text(f"{HOLDING} AND org_id IS NULL"),
    )
    op.create_index(
        "uq_subscriptions_org_holding",
        "subscriptions",
        ["org_id"],
        unique=True,
        postgresql_where=sa.text(f"{HOLDING} AND org_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_subscriptions_org_holding", table_name="subscriptions")
    op.drop_index("uq_subscriptions_user_holding", table_name="subscriptions")
    op.execute("DELETE FROM subscriptions WHERE org_id IS NOT NULL")
    op.create_index(
        "uq_subscriptions_user_holding", "subscriptions", ["user_id"], unique=True, postgresql_where=sa.text(HOLDING)
    )
    op.drop_index(op.f("ix_subscriptions_org_id"), table_name="subscriptions")
    op.drop_constraint(op.f("ck_subscriptions_quantity_non_negative"), "subscriptions", type_="check")
    op.drop_constraint(op.f("fk_subscriptions_org_id_billing_orgs"), "subscriptions", type_="foreignkey")
    op.drop_column("subscriptions", "quantity")
    op.drop_column("subscriptions", "org_id")
    op.drop_index("ix_billing_orgs_seats_pending", table_name="billing_orgs")
    op.drop_table("billing_orgs")
    op.drop_constraint(op.f("ck_plans_seats_if_per_seat"), "plans", type_="check")
    op.drop_constraint(op.f("ck_plans_min_seats_within_max"), "plans", type_="check")
    op.drop_constraint(op.f("ck_plans_seats_positive"), "plans", type_="check")
    op.drop_column("plans", "max_seats")
    op.drop_column("plans", "min_seats")
    op.drop_column("plans", "per_seat")
