"""Organizations as customers: who may act for one, its projection from org.* events, its own Stripe
customer, the seats it is billed for, and its seat limit announced.

Seats: membership events only update the projection (`member_count` at the highest
`membership_version`; older or repeated versions change nothing) and mark the org `seats_pending`.
The seat worker (seats.py, which also ends a deleted org's subscription) then sets the Stripe
subscription item's quantity from the latest count, prorated, with an idempotency key made of the
org's subscription, the membership version and the quantity: a burst of joins costs one update, in
whatever order its events arrived.

Lock order, everywhere: the org's subscription row, then the org row.
"""

from __future__ import annotations

import logging
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from billing_service import publishing
from billing_service.errors import OrgBillingForbidden, OrgNotFound
from billing_service.integrations.stripe import StripeGateway
from billing_service.models import BillingOrg, Plan, Subscription
from billing_service.orgs.repository import BillingOrgRepository
from gatehouse_contracts.tokens import AccessTokenClaims

log = logging.getLogger(__name__)

BILLING_ROLES = ("owner", "admin")


def require_org_admin(claims: AccessTokenClaims, org_id: uuid.UUID) -> None:
    """The token acts in this org (its `org_id`) as an owner or admin (its `org_role`)."""
    if claims.org_id is None:
        raise OrgBillingForbidden(
            "This is a personal token: sign in to the organization (a token carrying its org_id) "
            "to manage its billing."
        )
    if claims.org_id != org_id:
        raise OrgBillingForbidden("Your token acts in another organization.")
    if claims.org_role not in BILLING_ROLES:
        raise OrgBillingForbidden(
            f"Only an owner or admin manages the organization's billing (you are {claims.org_role})."
        )


def require_member(claims: AccessTokenClaims, org_id: uuid.UUID) -> None:
    """The token acts in this org; anyone else is told it does not exist."""
    if claims.org_id != org_id:
        raise OrgNotFound(f"No organization {org_id} you act in.")


def seats_billed(plan: Plan, member_count: int) -> int:
    """The quantity on the Stripe subscription: the members (at least min_seats) on a per-seat
    plan, else 1."""
    if not plan.per_seat:
        return 1
    return max(member_count, plan.min_seats or 1, 1)


async def lock_org(db: AsyncSession, org_id: uuid.UUID) -> BillingOrg:
    """The org row, locked; created if no org event has arrived yet. A deleted org is not found."""
    orgs = BillingOrgRepository(db)
    org = await orgs.get(org_id, for_update=True)
    if org is None:
        await orgs.insert_if_missing(org_id)
        org = await orgs.get(org_id, for_update=True)
    assert org is not None
    if org.deleted_at is not None:
        raise OrgNotFound(f"The organization {org_id} was deleted.")
    return org


async def ensure_org_stripe_customer(stripe: StripeGateway, org: BillingOrg, *, email: str) -> str:
    """The org's own Stripe customer (call with the row locked); its email is the buyer's, for
    Stripe's receipts, until someone changes it in the portal."""
    if org.stripe_customer_id is None:
        created = await stripe.create_org_customer(org_id=org.org_id, name=org.name, email=email)
        org.stripe_customer_id = created.id
    return org.stripe_customer_id


async def record_membership(
    db: AsyncSession, org_id: uuid.UUID, *, member_count: int, version: int, name: str | None = None
) -> None:
    applied = await BillingOrgRepository(db).record_membership(
        org_id, member_count=member_count, version=version, name=name
    )
    if not applied:
        log.info("ignored a stale membership version", extra={"org_id": str(org_id), "version": version})


async def announce_seat_limit(db: AsyncSession, subscription: Subscription, plan: Plan | None) -> None:
    """org.seat_limit_changed for the org of a (locked) subscription that started, changed plan
    (`plan`) or ended (None)."""
    assert subscription.org_id is not None
    org = await BillingOrgRepository(db).get(subscription.org_id, for_update=True)
    if org is None:
        return
    org.limit_version += 1
    if plan is not None:
        org.seats_pending = True  # bill the members there are now, whatever Checkout was given
    await publishing.seat_limit_changed(db, org.org_id, plan, limit_version=org.limit_version)
