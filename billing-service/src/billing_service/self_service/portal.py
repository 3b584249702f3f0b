"""The Customer Portal: a Stripe portal session for the signed-in person, on a configuration billing
keeps in step with the active plans.

The configuration (update the card, see invoices, cancel at period end, switch between the active
plans' current prices) is found at Stripe by its metadata and brought up to date before each session,
so a plan added, repriced or retired shows in the next portal opened. Its idempotency key names what
it holds, so two first visits at once make one configuration.

What the person does there comes back as webhooks (`customer.subscription.updated` for a cancel or
a plan switch, `payment_method.attached` and `customer.updated` for a card) and is applied like any
other change: the re-read subscription, the card read live by `GET /billing/payment-method/me`.
"""

from __future__ import annotations

import hashlib
import time
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from billing_service.customers.repository import CustomerRepository
from billing_service.errors import BillingAccountNotFound, ReturnUrlNotAllowed
from billing_service.integrations.stripe import PortalConfiguration, StripeGateway
from billing_service.orgs.repository import BillingOrgRepository
from billing_service.plans.repository import PlanRepository
from billing_service.settings import Settings

MANAGED_BY = "gatehouse-billing"
# A double click within this many seconds gets the same session (one idempotency key).
SESSION_KEY_WINDOW_SECONDS = 60


async def open_portal(
    db: AsyncSession, stripe: StripeGateway, settings: Settings, user_id: uuid.UUID, return_url: str | None
) -> str:
    """The URL of a new portal session for the user; `return_url` (default: the setting) must be on
    an allowed origin."""
    target = _allowed_target(settings, return_url)
    customer = await CustomerRepository(db).get(user_id)
    if customer is None or customer.stripe_customer_id is None:
        raise BillingAccountNotFound("You have no billing account yet: subscribe to a plan first.")
    return await _session(db, stripe, settings, customer.stripe_customer_id, str(user_id), target)


async def open_org_portal(
    db: AsyncSession, stripe: StripeGateway, settings: Settings, org_id: uuid.UUID, return_url: str | None
) -> str:
    """A portal session for the organization's own Stripe customer (its owner or admin asks)."""
    target = _allowed_target(settings, return_url)
    org = await BillingOrgRepository(db).get(org_id)
    if org is None or org.stripe_customer_id is None:
        raise BillingAccountNotFound(
            "The organization has no billing account yet: subscribe to a plan first."
        )
    return await _session(db, stripe, settings, org.stripe_customer_id, f"org-{org_id}", target)


async def _session(
    db: AsyncSession,
    stripe: StripeGateway,
    settings: Settings,
    customer_id: str,
    owner: str,
    target: str,
) -> str:
    config = await portal_configuration(db, stripe, settings)
    window = int(time.time()) // SESSION_KEY_WINDOW_SECONDS
    return await stripe.create_portal_session(
        customer_id=customer_id,
        configuration_id=config.id,
        return_url=target,
        key=f"portal-session-{owner}-{_digest(target)}-{window}",
    )


def _allowed_target(settings: Settings, return_url: str | None) -> str:
    target = return_url or settings.portal_return_url
    if not settings.allows_return_to(target):
        raise ReturnUrlNotAllowed(
            "return_url must be an absolute http(s) URL on one of the allowed origins: "
            + ", ".join(sorted(settings.allowed_return_origins))
        )
    return target


async def portal_configuration(
    db: AsyncSession, stripe: StripeGateway, settings: Settings
) -> PortalConfiguration:
    """Billing's portal configuration at Stripe, created or updated to match the active plans."""
    products = await switchable_products(db)
    existing = await stripe.portal_configurations(managed_by=MANAGED_BY)
    current = existing[0] if existing else None
    wanted = (tuple((product, tuple(prices)) for product, prices in products), settings.portal_return_url)
    if current is not None and (current.products, current.default_return_url) == wanted:
        return current
    digest = _digest(repr(wanted))
    return await stripe.save_portal_configuration(
        current.id if current else None,
        products=products,
        default_return_url=settings.portal_return_url,
        managed_by=MANAGED_BY,
        key=f"portal-config-{current.id if current else 'new'}-{digest}",
    )


async def switchable_products(db: AsyncSession) -> list[tuple[str, list[str]]]:
    """Each active plan's Stripe product with its current price, cheapest plan first."""
    plans = await PlanRepository(db).page(include_retired=False, limit=100, after=None)
    products: dict[str, list[str]] = {}
    for plan in plans:
        if plan.stripe_product_id and plan.stripe_price_id:
            products.setdefault(plan.stripe_product_id, []).append(plan.stripe_price_id)
    return list(products.items())


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]
