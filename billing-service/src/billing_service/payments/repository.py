"""Queries on payments."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.dialects.postgresql import insert

from billing_service.models import COUNTED_REFUND_STATUSES, Payment, Refund, Subscription
from gatehouse_platform.db import Repository

# Built once: compiling a fresh INSERT per webhook was a measurable share of processing time.
_INSERT_IF_MISSING = (
    insert(Payment).on_conflict_do_nothing(index_elements=[Payment.stripe_invoice_id]).returning(Payment.id)
)


class PaymentRepository(Repository[Payment]):
    model = Payment

    async def insert_if_missing(self, values: dict[str, Any]) -> bool:
        """Insert the invoice's row unless one exists; True if this call inserted it."""
        return await self.session.scalar(_INSERT_IF_MISSING, values) is not None

    async def by_invoice(self, invoice_id: str, *, for_update: bool = False) -> Payment | None:
        if for_update:
            return await self.lock(Payment.stripe_invoice_id == invoice_id)
        stmt = select(Payment).where(Payment.stripe_invoice_id == invoice_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def by_stripe_payment(
        self, *, payment_intent_id: str | None, charge_id: str | None, for_update: bool = False
    ) -> Payment | None:
        """The payment a PaymentIntent or charge paid, once we have recorded either on it."""
        criteria = [
            column == value
            for column, value in (
                (Payment.stripe_payment_intent_id, payment_intent_id),
                (Payment.stripe_charge_id, charge_id),
            )
            if value
        ]
        for criterion in criteria:
            if for_update:
                found = await self.lock(criterion)
            else:
                found = (await self.session.execute(select(Payment).where(criterion))).scalars().first()
            if found is not None:
                return found
        return None

    async def lock_invoices(self, invoice_ids: set[str]) -> dict[str, Payment]:
        """The existing rows of these invoices, locked (in one order, so workers cannot deadlock)."""
        if not invoice_ids:
            return {}
        await self.session.flush()
        stmt = (
            select(Payment)
            .where(Payment.stripe_invoice_id.in_(sorted(invoice_ids)))
            .order_by(Payment.stripe_invoice_id)
            .with_for_update(key_share=True)
            .execution_options(populate_existing=True)
        )
        return {p.stripe_invoice_id: p for p in (await self.session.execute(stmt)).scalars()}

    async def has_paid(self, user_id: uuid.UUID) -> bool:
        """Whether the user ever paid us anything (a $0 trial invoice does not count)."""
        stmt = select(select(Payment.id).where(Payment.user_id == user_id, Payment.amount_paid > 0).exists())
        return bool(await self.session.scalar(stmt))

    async def page_for_user(
        self, user_id: uuid.UUID, *, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> list[Payment]:
        """Newest invoice first, keyset-paginated on (invoice_created_at, id)."""
        stmt = select(Payment).where(Payment.user_id == user_id)
        if after is not None:
            stmt = stmt.where(tuple_(Payment.invoice_created_at, Payment.id) < tuple_(*after))
        stmt = stmt.order_by(Payment.invoice_created_at.desc(), Payment.id.desc()).limit(limit)
        return list((await self.session.execute(stmt)).scalars())

    async def page_for_org(
        self, org_id: uuid.UUID, *, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> list[Payment]:
        """The invoices of the organization's subscriptions, newest first, as `page_for_user`."""
        stmt = select(Payment).join(Subscription, Subscription.id == Payment.subscription_id)
        stmt = stmt.where(Subscription.org_id == org_id)
        if after is not None:
            stmt = stmt.where(tuple_(Payment.invoice_created_at, Payment.id) < tuple_(*after))
        stmt = stmt.order_by(Payment.invoice_created_at.desc(), Payment.id.desc()).limit(limit)
        return list((await self.session.execute(stmt)).scalars())


class RefundRepository(Repository[Refund]):
    model = Refund

    async def of_user(self, user_id: uuid.UUID) -> list[Refund]:
        """Every refund of the user's payments, newest first."""
        stmt = (
            select(Refund)
            .join(Payment, Payment.id == Refund.payment_id)
            .where(Payment.user_id == user_id)
            .order_by(Refund.stripe_created_at.desc(), Refund.id.desc())
        )
        return list((await self.session.execute(stmt)).scalars())

    async def by_stripe_id(self, refund_id: str) -> Refund | None:
        stmt = select(Refund).where(Refund.stripe_refund_id == refund_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def by_stripe_ids(self, refund_ids: Sequence[str]) -> dict[str, Refund]:
        stmt = select(Refund).where(Refund.stripe_refund_id.in_(refund_ids))
        return {row.stripe_refund_id: row for row in (await self.session.execute(stmt)).scalars()}

    async def by_key(self, payment_id: uuid.UUID, key: str) -> Refund | None:
        stmt = select(Refund).where(Refund.payment_id == payment_id, Refund.idempotency_key == key)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def counted_total(self, payment_id: uuid.UUID) -> int:
        """What the payment's refunds take back (pending ones too, as Stripe counts them)."""
        await self.session.flush()
        stmt = select(func.coalesce(func.sum(Refund.amount), 0)).where(
            Refund.payment_id == payment_id, Refund.status.in_(COUNTED_REFUND_STATUSES)
        )
        return int(await self.session.scalar(stmt) or 0)
