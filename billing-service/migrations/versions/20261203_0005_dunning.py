"""dunning: a past-due subscription's first failure, next retry, exhausted retries and restriction

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


def downgrade() -> None:
    for name in reversed(COLUMNS):
        op.drop_column("subscriptions", name)
