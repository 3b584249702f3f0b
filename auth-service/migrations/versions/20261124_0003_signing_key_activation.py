"""signing keys: activates_at (a rotated-in key is published before it signs)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 21:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        'signing_keys',
        sa.Column('activates_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    )
    op.execute('UPDATE signing_keys SET activates_at = created_at')


def downgrade() -> None:
    op.drop_column('signing_keys', 'activates_at')
