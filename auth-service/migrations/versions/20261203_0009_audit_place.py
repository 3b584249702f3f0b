"""audit events keep the approximate place of their address (GeoIP, when configured)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("audit_events", sa.Column("place", sa.String(200), nullable=True))


def downgrade() -> None:
    op.drop_column("audit_events", "place")
