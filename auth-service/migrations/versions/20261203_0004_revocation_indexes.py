"""indexes for the revocation list verifiers rebuild their denylist from

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        'ix_sessions_revoked_at', 'sessions', ['revoked_at'], postgresql_where=sa.text('revoked_at IS NOT NULL')
    )
    op.create_index(
        'ix_users_deactivated_at', 'users', ['deactivated_at'], postgresql_where=sa.text('NOT is_active')
    )


def downgrade() -> None:
    op.drop_index('ix_users_deactivated_at', table_name='users')
    op.drop_index('ix_sessions_revoked_at', table_name='sessions')
