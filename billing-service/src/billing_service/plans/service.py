"""Plan rules: the catalogue, and keeping each plan's Stripe product and price in step with it.

Stripe prices are immutable: a new amount, currency or interval makes a new price, the old one is
archived (subscribers on it keep paying it) and stays in `plan_prices`, so webhooks naming it
still map to the plan. Retiring a plan archives its product and price at Stripe: nobody can
start it, existing subscriptions run on. Every Stripe call carries an idempotency key built from the
plan id, its revision and the intent, so a retried request never makes a second product or price.
"""

from __future__ import annotations

import uuid

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from billing_service.errors import PlanCodeTaken, PlanNotAvailable, PlanNotFound, SeatLimitsInvalid
from billing_service.integrations.stripe import StripeGateway
from billing_service.models import Plan, PlanPrice
from billing_service.pagination import decode_plan_cursor, page_of
from billing_service.plans.repository import PlanPriceRepository, PlanRepository
from billing_service.plans.schemas import PlanCreate, PlanUpdate, check_seats
from gatehouse_platform.db import utcnow

PRICE_FIELDS = ("amount", "currency", "interval", "interval_count", "per_seat")


async def get_plan(db: AsyncSession, plan_id: uuid.UUID, *, for_update: bool = False) -> Plan:
    plans = PlanRepository(db)
    plan = await plans.get(plan_id, for_update=for_update)
    if plan is None:
        raise PlanNotFound(f"No plan {plan_id}.")
    return plan


async def available_plan(db: AsyncSession, code: str) -> Plan:
    """The plan a customer may start or move to now."""
    plan = await PlanRepository(db).by_code(code)
    if plan is None:
        raise PlanNotFound(f"No plan with code {code!r}.")
    if not plan.is_active:
        raise PlanNotAvailable(f"The plan {code!r} is no longer offered.")
    return plan


async def list_plans(
    db: AsyncSession, *, include_retired: bool, limit: int, cursor: str | None
) -> tuple[list[Plan], str | None]:
    after = decode_plan_cursor(cursor) if cursor else None
    plans = await PlanRepository(db).page(include_retired=include_retired, limit=limit + 1, after=after)
    return page_of(plans, limit, lambda plan: (plan.amount, plan.code))


def _metadata(plan: Plan) -> dict[str, str]:
    return {"plan_id": str(plan.id), "plan_code": plan.code, "per_seat": "true" if plan.per_seat else "false"}


def _price_key(plan: Plan) -> str:
    return (
        f"plan-{plan.id}-r{plan.revision}-price-{plan.amount}-{plan.currency}-"
        f"{plan.interval.value}{plan.interval_count}{'-per-seat' if plan.per_seat else ''}"
    )


async def _new_price(db: AsyncSession, stripe: StripeGateway, plan: Plan) -> None:
    """Create the Stripe price for the plan's current amount/currency/interval and make it current."""
    assert plan.stripe_product_id is not None
    price = await stripe.create_price(
        product_id=plan.stripe_product_id,
        amount=plan.amount,
        currency=plan.currency,
        interval=plan.interval.value,
        interval_count=plan.interval_count,
        metadata=_metadata(plan),
        key=_price_key(plan),
    )
    await stripe.update_product(
        plan.stripe_product_id, default_price=price.id, key=f"plan-{plan.id}-r{plan.revision}-default-price"
    )
    plan.stripe_price_id = price.id
    db.add(
        PlanPrice(
            stripe_price_id=price.id,
            plan_id=plan.id,
            amount=plan.amount,
            currency=plan.currency,
            interval=plan.interval,
            interval_count=plan.interval_count,
        )
    )


async def create_plan(db: AsyncSession, stripe: StripeGateway, body: PlanCreate) -> Plan:
    plan = Plan(id=uuid.uuid4(), revision=0, is_active=True, **body.model_dump())
    try:
        async with db.begin_nested():
            db.add(plan)
            await db.flush()
    except IntegrityError as exc:
        raise PlanCodeTaken(f"A plan with code {body.code!r} exists.") from exc
    product = await stripe.create_product(
        name=plan.name, description=plan.description, metadata=_metadata(plan), key=f"plan-{plan.id}-product"
    )
    plan.stripe_product_id = product.id
    await _new_price(db, stripe, plan)
    await db.flush()
    return plan


async def update_plan(db: AsyncSession, stripe: StripeGateway, plan_id: uuid.UUID, body: PlanUpdate) -> Plan:
    plan = await get_plan(db, plan_id, for_update=True)
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if k != "active"}
    changed = {k: v for k, v in changes.items() if getattr(plan, k) != v}
    try:
        check_seats(
            changes.get("per_seat", plan.per_seat),
            changes.get("min_seats", plan.min_seats),
            changes.get("max_seats", plan.max_seats),
        )
    except ValueError as exc:
        raise SeatLimitsInvalid(str(exc)) from None
    reactivate = body.active is True and not plan.is_active
    retire = body.active is False and plan.is_active
    if not changed and not reactivate and not retire:
        return plan
    plan.revision += 1
    for key, value in changed.items():
        setattr(plan, key, value)
    if ("name" in changed or "description" in changed or reactivate) and plan.stripe_product_id:
        await stripe.update_product(
            plan.stripe_product_id,
            key=f"plan-{plan.id}-r{plan.revision}-product",
            name=plan.name if "name" in changed else None,
            description=plan.description if "description" in changed else None,
            active=True if reactivate else None,
        )
    if any(field in changed for field in PRICE_FIELDS):
        previous = plan.stripe_price_id
        await _new_price(db, stripe, plan)
        if previous:
            await _archive_price(db, stripe, plan, previous)
    elif reactivate and plan.stripe_price_id:
        await stripe.set_price_active(
            plan.stripe_price_id, True, key=f"plan-{plan.id}-r{plan.revision}-reactivate-price"
        )
        current = await PlanPriceRepository(db).get(plan.stripe_price_id)
        if current is not None:
            current.archived_at = None
    if reactivate:
        plan.is_active = True
        plan.deleted_at = None
    if retire:
        await _retire(db, stripe, plan)
    await db.flush()
    return plan


async def _archive_price(db: AsyncSession, stripe: StripeGateway, plan: Plan, price_id: str) -> None:
    await stripe.set_price_active(price_id, False, key=f"plan-{plan.id}-r{plan.revision}-archive-{price_id}")
    price = await PlanPriceRepository(db).get(price_id)
    if price is not None and price.archived_at is None:
        price.archived_at = utcnow()


async def _retire(db: AsyncSession, stripe: StripeGateway, plan: Plan) -> None:
    if plan.stripe_price_id:
        await _archive_price(db, stripe, plan, plan.stripe_price_id)
    if plan.stripe_product_id:
        await stripe.update_product(
            plan.stripe_product_id, active=False, key=f"plan-{plan.id}-r{plan.revision}-retire-product"
        )
    plan.is_active = False
    plan.deleted_at = utcnow()


async def retire_plan(db: AsyncSession, stripe: StripeGateway, plan_id: uuid.UUID) -> Plan:
    """Soft delete: archived at Stripe, offered no more; existing subscriptions run on. Idempotent."""
    plan = await get_plan(db, plan_id, for_update=True)
    if plan.is_active:
        plan.revision += 1
        await _retire(db, stripe, plan)
        await db.flush()
    return plan
