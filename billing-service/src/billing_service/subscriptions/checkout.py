"""Subscribe: a Stripe Checkout session for the plan's current price.

At most one subscription per user holds (or is about to hold) access. The customer row is locked for
the whole request, so a user's subscribes run one after another; the partial unique index
`uq_subscriptions_user_holding` makes it a database guarantee whatever the code does.

A pending Checkout (`checkout_pending`) also holds the slot, so it must not block forever:
- same plan, younger than `checkout_replace_after_seconds`: 409 `checkout-in-progress`, with the open
  session's `checkout_url` in the problem body (a double click or a second tab resumes it, and five
  concurrent requests make one session);
- another plan, or older: the old session is expired at Stripe and its row marked
  `checkout_expired`, then a new one is made. If Stripe says the old session was completed
  meanwhile, the answer is 409 `subscription-exists` (the webhooks are on their way).

A promotion code given here is checked first (coupons/service.py: unknown, expired, used up, not
for this plan, first purchase only each answer their own 422) and goes on the Checkout session as
its discount; without one, the customer may type a code on Stripe's Checkout page.

An organization subscribes the same way (`subscribe_org`): its owner or admin, acting in it, buys
for it; the Checkout is for the org's own Stripe customer, with the quantity its seats call for
(orgs/service.py: the members, at least the plan's min_seats); one live subscription per org
(`uq_subscriptions_org_holding`), its trial once per org.

One trial per customer: a plan's trial is offered only to a user none of whose subscriptions ever
had one (Stripe gave it a `trial_end`), so cancelling and subscribing again starts a paid period.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from billing_service.coupons.service import redeemable_promotion_code
from billing_service.customers.service import active_customer, ensure_stripe_customer
from billing_service.errors import (
    CheckoutInProgress,
    EmailNotVerified,
    SeatLimitExceeded,
    SubscriptionAlreadyActive,
)
from billing_service.integrations.stripe import StripeGateway, StripeRequestRejected
from billing_service.models import Plan, Subscription, SubscriptionStatus
from billing_service.orgs.service import ensure_org_stripe_customer, lock_org, require_org_admin, seats_billed
from billing_service.plans.service import available_plan
from billing_service.settings import Settings
from billing_service.subscriptions.repository import SubscriptionRepository
from gatehouse_contracts.tokens import AccessTokenClaims
from gatehouse_platform.db import utcnow


async def subscribe(
    db: AsyncSession,
    stripe: StripeGateway,
    settings: Settings,
    claims: AccessTokenClaims,
    plan_code: str,
    promotion_code: str | None = None,
) -> Subscription:
    if not claims.email_verified:
        raise EmailNotVerified("Verify your email address before subscribing.")
    plan = await available_plan(db, plan_code)
    customer = await active_customer(db, claims.sub, email=claims.email)
    existing = await SubscriptionRepository(db).holding(customer.user_id, for_update=True)
    if existing is not None:
        await _replace_pending_or_refuse(db, stripe, settings, existing, plan)
    promo = (
        await redeemable_promotion_code(db, stripe, customer.user_id, plan, promotion_code)
        if promotion_code
        else None
    )
    stripe_customer_id = await ensure_stripe_customer(stripe, customer)
    assert plan.stripe_price_id is not None
    trial_days = await trial_days_for(db, customer.user_id, plan)
    row = Subscription(
        id=uuid.uuid4(),
        user_id=customer.user_id,
        plan_id=plan.id,
        status=SubscriptionStatus.CHECKOUT_PENDING,
        stripe_price_id=plan.stripe_price_id,
    )
    try:
        async with db.begin_nested():
            db.add(row)
            await db.flush()
    except IntegrityError as exc:  # the index's guarantee, if the lock above were ever bypassed
        raise SubscriptionAlreadyActive("You already have a subscription.") from exc
    session = await stripe.create_checkout_session(
        customer_id=stripe_customer_id,
        price_id=plan.stripe_price_id,
        metadata={
            "user_id": str(customer.user_id),
            "subscription_id": str(row.id),
            "plan_id": str(plan.id),
            "plan_code": plan.code,
        },
        trial_days=trial_days,
        success_url=settings.checkout_success_url,
        cancel_url=settings.checkout_cancel_url,
        key=f"checkout-{row.id}",
        promotion_code_id=promo.stripe_promotion_code_id if promo else None,
    )
    row.stripe_checkout_session_id = session.id
    row.checkout_url = session.url
    await db.flush()
    return row


async def subscribe_org(
    db: AsyncSession,
    stripe: StripeGateway,
    settings: Settings,
    claims: AccessTokenClaims,
    plan_code: str,
    org_id: uuid.UUID,
    promotion_code: str | None = None,
) -> Subscription:
    require_org_admin(claims, org_id)
    if not claims.email_verified:
        raise EmailNotVerified("Verify your email address before subscribing.")
    plan = await available_plan(db, plan_code)
    customer = await active_customer(db, claims.sub, email=claims.email)
    existing = await SubscriptionRepository(db).holding_of_org(org_id, for_update=True)
    org = await lock_org(db, org_id)
    if plan.per_seat and plan.max_seats is not None and org.member_count > plan.max_seats:
        raise SeatLimitExceeded(
            f"The organization has {org.member_count} members; the plan {plan.code!r} allows "
            f"{plan.max_seats}.",
            member_count=org.member_count,
            max_seats=plan.max_seats,
        )
    if existing is not None:
        await _replace_pending_or_refuse(db, stripe, settings, existing, plan)
    promo = (
        await redeemable_promotion_code(db, stripe, customer.user_id, plan, promotion_code)
        if promotion_code
        else None
    )
    stripe_customer_id = await ensure_org_stripe_customer(stripe, org, email=customer.email)
    assert plan.stripe_price_id is not None
    had_trial = plan.trial_days and await SubscriptionRepository(db).org_had_trial(org_id)
    quantity = seats_billed(plan, org.member_count)
    row = Subscription(
        id=uuid.uuid4(),
        user_id=customer.user_id,
        org_id=org_id,
        plan_id=plan.id,
        status=SubscriptionStatus.CHECKOUT_PENDING,
        stripe_price_id=plan.stripe_price_id,
        quantity=quantity,
    )
    try:
        async with db.begin_nested():
            db.add(row)
            await db.flush()
    except IntegrityError as exc:
        raise SubscriptionAlreadyActive("The organization already has a subscription.") from exc
    session = await stripe.create_checkout_session(
        customer_id=stripe_customer_id,
        price_id=plan.stripe_price_id,
        metadata={
            "user_id": str(customer.user_id),
            "org_id": str(org_id),
            "subscription_id": str(row.id),
            "plan_id": str(plan.id),
            "plan_code": plan.code,
        },
        trial_days=0 if had_trial else plan.trial_days,
        success_url=settings.checkout_success_url,
        cancel_url=settings.checkout_cancel_url,
        key=f"checkout-{row.id}",
        promotion_code_id=promo.stripe_promotion_code_id if promo else None,
        quantity=quantity,
    )
    row.stripe_checkout_session_id = session.id
    row.checkout_url = session.url
    await db.flush()
    return row


async def trial_days_for(db: AsyncSession, user_id: uuid.UUID, plan: Plan) -> int:
    """The plan's trial, unless the user already had one (on any plan)."""
    if plan.trial_days and await SubscriptionRepository(db).had_trial(user_id):
        return 0
    return plan.trial_days


async def _replace_pending_or_refuse(
    db: AsyncSession, stripe: StripeGateway, settings: Settings, existing: Subscription, plan: Plan
) -> None:
    if existing.status != SubscriptionStatus.CHECKOUT_PENDING:
        raise SubscriptionAlreadyActive(
            f"You already have a subscription ({existing.status.value}); change its plan instead."
        )
    fresh = utcnow() - existing.created_at < timedelta(seconds=settings.checkout_replace_after_seconds)
    if existing.plan_id == plan.id and fresh and existing.checkout_url:
        raise CheckoutInProgress(
            "Your checkout for this plan is open: continue it at `checkout_url`.",
            checkout_url=existing.checkout_url,
            session_id=existing.stripe_checkout_session_id,
            subscription_id=str(existing.id),
        )
    await abandon_checkout(stripe, existing)
    await db.flush()  # frees the one-live-subscription slot before the new row takes it


async def abandon_checkout(stripe: StripeGateway, pending: Subscription) -> None:
    """Expire a pending Checkout at Stripe and mark its (locked) row `checkout_expired`."""
    session_id = pending.stripe_checkout_session_id
    if session_id is not None:
        try:
            await stripe.expire_checkout_session(session_id, key=f"expire-{session_id}")
        except StripeRequestRejected:
            session = await stripe.retrieve_checkout_session(session_id)
            if session.status == "complete":
                raise SubscriptionAlreadyActive(
                    "Your previous checkout was just completed; the subscription is being activated."
                ) from None
    expire_locally(pending)


def expire_locally(pending: Subscription) -> None:
    """Mark a (locked) `checkout_pending` row `checkout_expired`: nothing was bought, and it stops
    holding the user's one subscription slot."""
    pending.status = SubscriptionStatus.CHECKOUT_EXPIRED
    pending.ended_at = utcnow()
    pending.checkout_url = None
