"""A person's billing data for their data export (GDPR articles 15 and 20): what we keep
(customer, subscriptions, payments, refunds) and what Stripe keeps for us (invoices, the card on
file, as brand, last four digits and expiry only)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from billing_service.customers.repository import CustomerRepository
from billing_service.errors import PaymentMethodNotFound
from billing_service.integrations.stripe import StripeGateway
from billing_service.payments.repository import RefundRepository
from billing_service.payments.schemas import PaymentOut, RefundOut
from billing_service.payments.service import payments_page
from billing_service.self_service import service
from billing_service.self_service.schemas import BillingExport, ExportedCustomer, InvoiceOut, PaymentMethodOut
from billing_service.settings import Settings
from billing_service.subscriptions.access import subscriptions_page
from gatehouse_platform.db import utcnow

T = TypeVar("T")
PAGE = 100


async def every_page(fetch: Callable[[str | None], Awaitable[tuple[list[T], str | None]]]) -> list[T]:
    """All the items of a paginated listing, page after page."""
    items, cursor = await fetch(None)
    while cursor is not None:
        more, cursor = await fetch(cursor)
        items.extend(more)
    return items


async def export(
    db: AsyncSession, stripe: StripeGateway, settings: Settings, user_id: uuid.UUID
) -> BillingExport:
    customer = await CustomerRepository(db).get(user_id)
    subscriptions = await every_page(
        lambda cursor: subscriptions_page(db, settings, user_id, limit=PAGE, cursor=cursor)
    )
    payments = await every_page(lambda cursor: payments_page(db, user_id, limit=PAGE, cursor=cursor))
    invoices = await every_page(
        lambda cursor: service.invoices_page(db, stripe, user_id, limit=PAGE, cursor=cursor)
    )
    try:
        card: PaymentMethodOut | None = PaymentMethodOut.model_validate(
            await service.payment_method(db, stripe, user_id)
        )
    except PaymentMethodNotFound:
        card = None
    return BillingExport(
        exported_at=utcnow(),
        user_id=user_id,
        customer=ExportedCustomer.model_validate(customer) if customer is not None else None,
        subscriptions=subscriptions,
        payments=[PaymentOut.model_validate(p) for p in payments],
        refunds=[RefundOut.model_validate(r) for r in await RefundRepository(db).of_user(user_id)],
        invoices=[InvoiceOut.model_validate(i) for i in invoices],
        payment_method=card,
    )
