"""Operator commands: seeding the demo plans is idempotent and creates their Stripe products."""

from __future__ import annotations

import stripe
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_service.maintenance import DEMO_PLANS, run_with_services, seed_plans
from billing_service.models import Plan
from billing_service.settings import Settings


async def test_seed_plans_creates_the_demo_plans_once(
    settings: Settings, sdk: stripe.StripeClient, db: async_sessionmaker[AsyncSession]
) -> None:
    first = await run_with_services(seed_plans, settings)
    again = await run_with_services(seed_plans, settings)
    codes = {plan.code for plan in DEMO_PLANS}
    assert set(first) <= codes and again == []
    async with db() as session:
        plans = {
            p.code: p for p in (await session.execute(select(Plan).where(Plan.code.in_(codes)))).scalars()
        }
    assert set(plans) == codes == {"starter", "pro", "business", "pro-yearly"}
    yearly = sdk.v1.prices.retrieve(plans["pro-yearly"].stripe_price_id or "")
    assert yearly.recurring.interval == "year" and yearly.unit_amount == 29000
    assert plans["pro"].trial_days == 14
