"""What a customer reads about their own billing, straight from Stripe (the system of record for
money): the card on file and their invoices with their hosted and PDF links.

Both are read live rather than copied: Stripe changes them without telling us in ways we do not
handle yet (a card updated in a portal, an invoice's PDF link), and a customer looking at their
billing expects what Stripe shows.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from billing_service.customers.repository import CustomerRepository
from billing_service.errors import InvalidCursor, PaymentMethodNotFound
from billing_service.integrations.stripe import (
    CardOnFile,
    InvoiceSummary,
    StripeGateway,
    StripeRequestRejected,
)
from billing_service.pagination import NOT_OURS, decode_single_cursor, encode_cursor
from billing_service.subscriptions.repository import SubscriptionRepository

# Drafts are Stripe's work in progress (a renewal waits about an hour as one): not the customer's yet.
LISTED_STATUSES = ("open", "paid", "void", "uncollectible")


async def payment_method(db: AsyncSession, stripe: StripeGateway, user_id: uuid.UUID) -> CardOnFile:
    customer = await CustomerRepository(db).get(user_id)
    if customer is None or customer.stripe_customer_id is None:
        raise PaymentMethodNotFound("You have no payment method on file.")
    subscription = await SubscriptionRepository(db).latest_at_stripe(user_id)
    card = await stripe.default_card(
        customer.stripe_customer_id,
        subscription_id=subscription.stripe_subscription_id if subscription is not None else None,
    )
    if card is None:
        raise PaymentMethodNotFound("You have no payment method on file.")
    return card


async def invoices_page(
    db: AsyncSession, stripe: StripeGateway, user_id: uuid.UUID, *, limit: int, cursor: str | None
) -> tuple[list[InvoiceSummary], str | None]:
    """One page of the user's invoices, newest first; the cursor names the last invoice shown."""
    after = decode_single_cursor(cursor) if cursor is not None else None
    if after is not None and not after.startswith("in_"):
        raise InvalidCursor(NOT_OURS)
    customer = await CustomerRepository(db).get(user_id)
    if customer is None or customer.stripe_customer_id is None:
        return [], None
    try:
        invoices, has_more = await stripe.list_invoices(
            customer.stripe_customer_id, limit=limit, starting_after=after
        )
    except StripeRequestRejected as exc:  # an invoice id that is not (or no longer) the customer's
        raise InvalidCursor(NOT_OURS) from exc
    next_cursor = encode_cursor(invoices[-1].id) if has_more and invoices else None
    return [i for i in invoices if i.status in LISTED_STATUSES], next_cursor
