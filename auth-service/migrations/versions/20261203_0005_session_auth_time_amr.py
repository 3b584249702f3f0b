"""sessions remember when and how the sign-in was proven (the auth_time and amr claims)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 10:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        'sessions',
        sa.Column('auth_time', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    )
    op.add_column(
        'sessions',
        sa.Column(
            'amr', postgresql.ARRAY(sa.String(length=8)), server_default=sa.text("'{}'"), nullable=False
        ),
    )
    # Sessions started before: their sign-in was proven when they started, by their method.
    op.execute(
        "UPDATE sessions SET auth_time = created_at, amr = CASE method"
        " WHEN 'password' THEN ARRAY['pwd'] WHEN 'email_code' THEN ARRAY['otp']"
        " WHEN 'google' THEN ARRAY['fed'] WHEN 'github' THEN ARRAY['fed'] ELSE '{}' END::varchar(8)[]"
    )


def downgrade() -> None:
    op.drop_column('sessions', 'amr')
    op.drop_column('sessions', 'auth_time')
