"""refunds and disputes: payments keep what was refunded and their dispute; one row per refund

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PAYMENT_STATUSES = ("open", "requires_action", "failed", "paid", "void", "uncollectible")
NEW_PAYMENT_STATUSES = ("partially_refunded", "refunded", "disputed")
END_REASONS = ("canceled", "payment_failed", "account_deactivated", "replaced")


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.drop_constraint(op.f("ck_payments_payment_status"), "payments", type_="check")
    op.create_check_constraint(
        op.f("ck_payments_payment_status"),
        "payments",
        _in("status", (*PAYMENT_STATUSES, *NEW_PAYMENT_STATUSES)),
    )
    op.drop_constraint(op.f("ck_subscriptions_end_reason"), "subscriptions", type_="check")
    op.create_check_constraint(
        op.f("ck_subscriptions_end_reason"),
        "subscriptions",
        _in("end_reason", (*END_REASONS, "dispute_lost")),
    )
    op.add_column(
        "payments", sa.Column("amount_refunded", sa.Integer(), server_default=sa.text("0"), nullable=False)
    )
    op.add_column("payments", sa.Column("stripe_payment_intent_id", sa.String(length=255), nullable=True))
    op.add_column("payments", sa.Column("stripe_charge_id", sa.String(length=255), nullable=True))
    op.add_column("payments", sa.Column("stripe_dispute_id", sa.String(length=255), nullable=True))
    op.add_column(
        "payments",
        sa.Column(
            "dispute_status",
            sa.Enum(
                "open",
                "won",
                "lost",
                name="dispute_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=True,
        ),
    )
    op.add_column("payments", sa.Column("dispute_reason", sa.String(length=64), nullable=True))
    op.add_column("payments", sa.Column("disputed_amount", sa.Integer(), nullable=True))
    op.create_index(
        op.f("ix_payments_stripe_payment_intent_id"), "payments", ["stripe_payment_intent_id"], unique=False
    )
    op.create_index(op.f("ix_payments_stripe_charge_id"), "payments", ["stripe_charge_id"], unique=False)
    op.create_table(
        "refunds",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("payment_id", sa.Uuid(), nullable=False),
        sa.Column("stripe_refund_id", sa.String(length=255), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "requires_action",
                "succeeded",
                "failed",
                "canceled",
                name="refund_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("requested_by", sa.Uuid(), nullable=True),
        sa.Column("stripe_created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("announced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_refunds_amount_positive")),
        sa.ForeignKeyConstraint(["payment_id"], ["payments.id"], name=op.f("fk_refunds_payment_id_payments")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refunds")),
        sa.UniqueConstraint("stripe_refund_id", name=op.f("uq_refunds_stripe_refund_id")),
    )
    op.create_index(op.f("ix_refunds_payment_id"), "refunds", ["payment_id"], unique=False)
    op.create_index(
        "uq_refunds_payment_id_idempotency_key", "refunds", ["payment_id", "idempotency_key"], unique=True
    )


def downgrade() -> None:
    op.drop_index("uq_refunds_payment_id_idempotency_key", table_name="refunds")
    op.drop_index(op.f("ix_refunds_payment_id"), table_name="refunds")
    op.drop_table("refunds")
    op.drop_index(op.f("ix_payments_stripe_charge_id"), table_name="payments")
    op.drop_index(op.f("ix_payments_stripe_payment_intent_id"), table_name="payments")
    for column in (
        "disputed_amount",
        "dispute_reason",
        "dispute_status",
        "stripe_dispute_id",
        "stripe_charge_id",
        "stripe_payment_intent_id",
        "amount_refunded",
    ):
        op.drop_column("payments", column)
    op.execute("UPDATE subscriptions SET end_reason = 'canceled' WHERE end_reason = 'dispute_lost'")
    op.drop_constraint(op.f("ck_subscriptions_end_reason"), "subscriptions", type_="check")
    op.create_check_constraint(
        op.f("ck_subscriptions_end_reason"), "subscriptions", _in("end_reason", END_REASONS)
    )
    op.execute(
        "UPDATE payments SET status = 'paid' WHERE status IN ('partially_refunded', 'refunded', 'disputed')"
    )
    op.drop_constraint(op.f("ck_payments_payment_status"), "payments", type_="check")
    op.create_check_constraint(
        op.f("ck_payments_payment_status"), "payments", _in("status", PAYMENT_STATUSES)
    )
