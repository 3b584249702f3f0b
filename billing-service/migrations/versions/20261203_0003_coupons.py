"""coupons and promotion codes

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 15:04:44.687468
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('coupons',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('percent_off', sa.Numeric(precision=5, scale=2, asdecimal=False), nullable=True),
    sa.Column('amount_off', sa.Integer(), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('duration', sa.Enum('once', 'repeating', 'forever', name='coupon_duration', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('duration_in_months', sa.Integer(), nullable=True),
    sa.Column('max_redemptions', sa.Integer(), nullable=True),
    sa.Column('redeem_by', sa.DateTime(timezone=True), nullable=True),
    sa.Column('plan_codes', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False),
    sa.Column('stripe_coupon_id', sa.String(length=255), nullable=True),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("(duration = 'repeating') = (duration_in_months IS NOT NULL)", name=op.f('ck_coupons_months_if_repeating')),
    sa.CheckConstraint('(amount_off IS NULL) = (currency IS NULL)', name=op.f('ck_coupons_amount_has_currency')),
    sa.CheckConstraint('(percent_off IS NULL) <> (amount_off IS NULL)', name=op.f('ck_coupons_percent_or_amount')),
    sa.CheckConstraint('amount_off > 0', name=op.f('ck_coupons_amount_off_positive')),
    sa.CheckConstraint('percent_off > 0 AND percent_off <= 100', name=op.f('ck_coupons_percent_off_range')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coupons')),
    sa.UniqueConstraint('stripe_coupon_id', name=op.f('uq_coupons_stripe_coupon_id'))
    )
    op.create_table('promotion_codes',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('coupon_id', sa.Uuid(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('max_redemptions', sa.Integer(), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('first_time_only', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('is_active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('stripe_promotion_code_id', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['coupon_id'], ['coupons.id'], name=op.f('fk_promotion_codes_coupon_id_coupons')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_promotion_codes')),
    sa.UniqueConstraint('stripe_promotion_code_id', name=op.f('uq_promotion_codes_stripe_promotion_code_id'))
    )
    op.create_index(op.f('ix_promotion_codes_coupon_id'), 'promotion_codes', ['coupon_id'], unique=False)
    op.create_index('uq_promotion_codes_active_code', 'promotion_codes', [sa.literal_column('lower(code)')], unique=True, postgresql_where=sa.text('is_active'))
    op.add_column('payments', sa.Column('amount_discount', sa.Integer(), server_default=sa.text('0'), nullable=False))
    op.add_column('subscriptions', sa.Column('stripe_discount_id', sa.String(length=255), nullable=True))
    op.add_column('subscriptions', sa.Column('discount_stripe_coupon_id', sa.String(length=255), nullable=True))
    op.add_column('subscriptions', sa.Column('discount_stripe_promotion_code_id', sa.String(length=255), nullable=True))
    op.add_column('subscriptions', sa.Column('discount_start', sa.DateTime(timezone=True), nullable=True))
    op.add_column('subscriptions', sa.Column('discount_end', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column('subscriptions', 'discount_end')
    op.drop_column('subscriptions', 'discount_start')
    op.drop_column('subscriptions', 'discount_stripe_promotion_code_id')
    op.drop_column('subscriptions', 'discount_stripe_coupon_id')
    op.drop_column('subscriptions', 'stripe_discount_id')
    op.drop_column('payments', 'amount_discount')
    op.drop_index('uq_promotion_codes_active_code', table_name='promotion_codes', postgresql_where=sa.text('is_active'))
    op.drop_index(op.f('ix_promotion_codes_coupon_id'), table_name='promotion_codes')
    op.drop_table('promotion_codes')
    op.drop_table('coupons')
