"""Work outside a request (CLI commands, Celery tasks): `run_with_services` runs one job (the expiry
sweep, the reconciliation with Stripe, seeding the demo plans) on a short-lived engine and Stripe
client of its own."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_service.integrations.stripe import StripeGateway, stripe_gateway
from billing_service.models import PlanInterval, PlanTier
from billing_service.plans.repository import PlanRepository
from billing_service.plans.schemas import PlanCreate
from billing_service.plans.service import create_plan
from billing_service.settings import Settings, get_settings
from gatehouse_platform.db import session_scope
from gatehouse_platform.tasks import run_job

T = TypeVar("T")
Sessions = async_sessionmaker[AsyncSession]

# The seed monolith's demo plans, as `billing-service seed-plans` creates them (by code, once).
DEMO_PLANS = (
    PlanCreate(
        code="starter",
        name="Starter",
        description="For individuals getting started.",
        tier=PlanTier.STARTER,
        amount=900,
        currency="usd",
        interval=PlanInterval.MONTH,
        features=["projects:3", "support:email"],
    ),
    PlanCreate(
        code="pro",
        name="Pro",
        description="For professionals and small teams.",
        tier=PlanTier.PRO,
        amount=2900,
        currency="usd",
        interval=PlanInterval.MONTH,
        features=["projects:unlimited", "support:priority", "api"],
        trial_days=14,
    ),
    PlanCreate(
        code="business",
        name="Business",
        description="For organisations that need control.",
        tier=PlanTier.BUSINESS,
        amount=9900,
        currency="usd",
        interval=PlanInterval.MONTH,
        features=["projects:unlimited", "support:priority", "api", "sso", "audit-log"],
    ),
    PlanCreate(
        code="pro-yearly",
        name="Pro (yearly)",
        description="Pro, billed yearly: two months free.",
        tier=PlanTier.PRO,
        amount=29000,
        currency="usd",
        interval=PlanInterval.YEAR,
        features=["projects:unlimited", "support:priority", "api"],
    ),
)


async def run_with_services(
    work: Callable[[Sessions, StripeGateway, Settings], Awaitable[T]], settings: Settings | None = None
) -> T:
    settings = settings or get_settings()
    stripe = stripe_gateway(settings)
    try:
        return await run_job(settings.database_url, lambda sessions: work(sessions, stripe, settings))
    finally:
        await stripe.aclose()


async def seed_plans(sessions: Sessions, stripe: StripeGateway, settings: Settings) -> list[str]:
    """Create the demo plans that do not exist yet; returns the codes created."""
    created = []
    for plan in DEMO_PLANS:
        async with session_scope(sessions) as db:
            if await PlanRepository(db).by_code(plan.code) is not None:
                continue
            await create_plan(db, stripe, plan)
            created.append(plan.code)
    return created
