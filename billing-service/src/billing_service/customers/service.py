"""The customer projection: one row per user, kept from user events (or created from the first
access token billing sees), and the one Stripe customer each user gets.

The Stripe customer is created once, on the first subscribe, with the idempotency key
`customer-{user_id}`, while the customer row is locked, so concurrent requests cannot make two.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from billing_service.customers.repository import CustomerRepository
from billing_service.errors import AccountInactive
from billing_service.integrations.stripe import StripeGateway
from billing_service.models import Customer
from gatehouse_platform.db import utcnow
from gatehouse_platform.retention import forget_user_events

log = logging.getLogger(__name__)


async def lock_customer(db: AsyncSession, user_id: uuid.UUID, *, email: str) -> Customer:
    """The user's customer row, locked for this transaction: every change to a user's billing is
    serialized here. Created from the token's email if no user event has arrived yet."""
    customers = CustomerRepository(db)
    customer = await customers.get(user_id, for_update=True)
    if customer is None:
        await customers.insert_if_missing(user_id, email)
        customer = await customers.get(user_id, for_update=True)
    assert customer is not None
    return customer


async def active_customer(db: AsyncSession, user_id: uuid.UUID, *, email: str) -> Customer:
    customer = await lock_customer(db, user_id, email=email)
    if not customer.is_active:
        raise AccountInactive("This account is deactivated.")
    return customer


async def ensure_stripe_customer(stripe: StripeGateway, customer: Customer) -> str:
    """The Stripe customer id, created on first use (call with the row locked)."""
    if customer.stripe_customer_id is None:
        created = await stripe.create_customer(user_id=customer.user_id, email=customer.email)
        customer.stripe_customer_id = created.id
    return customer.stripe_customer_id


async def record_registration(db: AsyncSession, user_id: uuid.UUID, email: str) -> None:
    await CustomerRepository(db).insert_if_missing(user_id, email)


async def record_email_change(
    db: AsyncSession, stripe: StripeGateway, user_id: uuid.UUID, email: str, *, changed_at: datetime, key: str
) -> None:
    """Forward only: an older change arriving after a newer one is ignored. The Stripe customer's
    email follows (so Stripe's receipts go to the right address)."""
    customer = await lock_customer(db, user_id, email=email)
    if customer.email_changed_at is not None and customer.email_changed_at >= changed_at:
        log.info("ignored an out-of-date email change", extra={"user_id": str(user_id)})
        return
    customer.email = email
    customer.email_changed_at = changed_at
    if customer.stripe_customer_id is not None:
        await stripe.update_customer_email(customer.stripe_customer_id, email, key=key)


async def set_active(db: AsyncSession, user_id: uuid.UUID, *, email: str, active: bool) -> Customer:
    customer = await lock_customer(db, user_id, email=email)
    if customer.is_active != active:
        customer.is_active = active
        customer.deactivated_at = None if active else utcnow()
    return customer


ERASED_EMAIL_DOMAIN = "erased.invalid"  # RFC 2606: can never be anyone's address


async def erase(db: AsyncSession, stripe: StripeGateway, user_id: uuid.UUID, *, at: datetime) -> None:
    """The user's account was erased: the Stripe customer is deleted (Stripe keeps its invoices;
    its `customer.deleted` webhook then takes the Stripe events naming it), the email becomes a
    placeholder and the published events about the user go. Subscriptions and payments stay, with
    no name or email of the person, as the books must."""
    customer = await CustomerRepository(db).get(user_id, for_update=True)
    if customer is None or customer.erased_at is not None:
        return
    if customer.stripe_customer_id is not None:
        await stripe.delete_customer(customer.stripe_customer_id)
    customer.email = f"erased-{user_id.hex}@{ERASED_EMAIL_DOMAIN}"
    customer.email_changed_at = at
    customer.is_active = False
    customer.deactivated_at = customer.deactivated_at or at
    customer.erased_at = at
    await forget_user_events(db, user_id)
