"""Queries on subscriptions."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import and_, func, or_, select, tuple_
from sqlalchemy.dialects.postgresql import insert

from billing_service.models import HOLDING_STATUSES, Customer, Subscription, SubscriptionStatus
from gatehouse_platform.db import Repository

# Subscriptions whose next renewal takes the card on file.
RENEWING_STATUSES = (SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE)


class SubscriptionRepository(Repository[Subscription]):
    model = Subscription

    async def holding(self, user_id: uuid.UUID, *, for_update: bool = False) -> Subscription | None:
        """The user's subscription that holds (or is about to hold) access; at most one exists."""
        criteria = (
            Subscription.user_id == user_id,
            Subscription.org_id.is_(None),
            Subscription.status.in_(HOLDING_STATUSES),
        )
        if for_update:
            return await self.lock(*criteria)
        stmt = select(Subscription).where(*criteria)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def latest(self, user_id: uuid.UUID) -> Subscription | None:
        """The user's own newest subscription (not one bought for an organization)."""
        stmt = (
            select(Subscription)
            .where(Subscription.user_id == user_id, Subscription.org_id.is_(None))
            .order_by(Subscription.created_at.desc(), Subscription.id.desc())
            .limit(1)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def latest_at_stripe(self, user_id: uuid.UUID) -> Subscription | None:
        """The user's newest subscription that exists at Stripe (past Checkout)."""
        stmt = (
            select(Subscription)
            .where(
                Subscription.user_id == user_id,
                Subscription.org_id.is_(None),
                Subscription.stripe_subscription_id.is_not(None),
            )
            .order_by(Subscription.created_at.desc(), Subscription.id.desc())
            .limit(1)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def paying_at_stripe(
        self, *, after: uuid.UUID | None, limit: int
    ) -> list[tuple[uuid.UUID, str, str]]:
        """(user id, Stripe customer id, Stripe subscription id) of the subscriptions that renew
        with a card (trialing, active, past due, not cancelling), by user id after `after`."""
        stmt = (
            select(Subscription.user_id, Customer.stripe_customer_id, Subscription.stripe_subscription_id)
            .join(Customer, Customer.user_id == Subscription.user_id)
            .where(
                Subscription.status.in_(RENEWING_STATUSES),
                Subscription.cancel_at_period_end.is_(False),
                Subscription.stripe_subscription_id.is_not(None),
                Customer.stripe_customer_id.is_not(None),
                Customer.is_active.is_(True),
            )
            .order_by(Subscription.user_id)
            .limit(limit)
        )
        if after is not None:
            stmt = stmt.where(Subscription.user_id > after)
        rows = await self.session.execute(stmt)
        return [(user_id, str(customer), str(sub)) for user_id, customer, sub in rows.all()]

    async def holding_of_org(self, org_id: uuid.UUID, *, for_update: bool = False) -> Subscription | None:
        """The organization's subscription that holds (or is about to hold) access; at most one."""
        criteria = (Subscription.org_id == org_id, Subscription.status.in_(HOLDING_STATUSES))
        if for_update:
            return await self.lock(*criteria)
        stmt = select(Subscription).where(*criteria)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def latest_of_org(self, org_id: uuid.UUID) -> Subscription | None:
        stmt = (
            select(Subscription)
            .where(Subscription.org_id == org_id)
            .order_by(Subscription.created_at.desc(), Subscription.id.desc())
            .limit(1)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def org_had_trial(self, org_id: uuid.UUID) -> bool:
        stmt = select(
            select(Subscription.id)
            .where(Subscription.org_id == org_id, Subscription.trial_end.is_not(None))
            .exists()
        )
        return bool(await self.session.scalar(stmt))

    async def had_trial(self, user_id: uuid.UUID) -> bool:
        """Whether any subscription of the user ever had a trial (Stripe gave it a `trial_end`)."""
        stmt = select(
            select(Subscription.id)
            .where(Subscription.user_id == user_id, Subscription.trial_end.is_not(None))
            .exists()
        )
        return bool(await self.session.scalar(stmt))

    async def by_stripe_id(self, stripe_id: str, *, for_update: bool = False) -> Subscription | None:
        if for_update:
            return await self.lock(Subscription.stripe_subscription_id == stripe_id)
        stmt = select(Subscription).where(Subscription.stripe_subscription_id == stripe_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def by_checkout_session(self, session_id: str, *, for_update: bool = False) -> Subscription | None:
        if for_update:
            return await self.lock(Subscription.stripe_checkout_session_id == session_id)
        stmt = select(Subscription).where(Subscription.stripe_checkout_session_id == session_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def insert_pending_if_missing(
        self,
        id_: uuid.UUID,
        *,
        user_id: uuid.UUID,
        plan_id: uuid.UUID,
        stripe_price_id: str,
        org_id: uuid.UUID | None = None,
    ) -> None:
        """Insert a `checkout_pending` row with this id unless it (or another live subscription of
        the user, by the unique index) exists. Waits for a concurrent transaction inserting the same
        row, like any unique insert."""
        await self.session.execute(
            insert(Subscription)
            .values(
                id=id_,
                user_id=user_id,
                org_id=org_id,
                plan_id=plan_id,
                status=SubscriptionStatus.CHECKOUT_PENDING,
                stripe_price_id=stripe_price_id,
            )
            .on_conflict_do_nothing()
        )

    async def page_for_user(
        self, user_id: uuid.UUID, *, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> list[Subscription]:
        """Newest first, keyset-paginated on (created_at, id)."""
        stmt = select(Subscription).where(Subscription.user_id == user_id)
        if after is not None:
            stmt = stmt.where(tuple_(Subscription.created_at, Subscription.id) < tuple_(*after))
        stmt = stmt.order_by(Subscription.created_at.desc(), Subscription.id.desc()).limit(limit)
        return list((await self.session.execute(stmt)).scalars())

    async def due_for_expiry(
        self, *, period_ended_before: datetime, limit: int, unpaid: bool = True
    ) -> list[uuid.UUID]:
        """Subscriptions whose access is over: canceling at period end, or (when `unpaid`) past due /
        unpaid, with the period (plus grace, folded into `period_ended_before`) behind us."""
        canceling = and_(
            Subscription.status.in_((SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING)),
            or_(Subscription.cancel_at_period_end.is_(True), Subscription.cancel_at.is_not(None)),
            func.coalesce(Subscription.cancel_at, Subscription.current_period_end) < period_ended_before,
        )
        overdue = and_(
            Subscription.status.in_((SubscriptionStatus.PAST_DUE, SubscriptionStatus.UNPAID)),
            Subscription.current_period_end < period_ended_before,
        )
        stmt = (
            select(Subscription.id)
            .where(or_(canceling, overdue) if unpaid else canceling)
            .order_by(Subscription.current_period_end)
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def due_for_restriction(self, *, failed_before: datetime, limit: int) -> list[uuid.UUID]:
        """Past-due or unpaid subscriptions not restricted yet whose first failed attempt lies before
        `failed_before` (now minus the dunning grace)."""
        stmt = (
            select(Subscription.id)
            .where(
                Subscription.status.in_((SubscriptionStatus.PAST_DUE, SubscriptionStatus.UNPAID)),
                Subscription.restricted_at.is_(None),
                Subscription.past_due_since < failed_before,
            )
            .order_by(Subscription.past_due_since)
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).scalars())
