"""The events billing consumes: one function per type, `HANDLERS` maps each type to its function.

Each runs in the consumer's transaction, with the event id recorded in `processed_events` in that
same transaction (gatehouse_platform.consumer), so a redelivered event changes nothing twice. Stripe
calls made here carry idempotency keys derived from the event id, so a retry after a rolled-back
attempt replays Stripe's first answer instead of acting again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from billing_service.customers import service as customers
from billing_service.integrations.stripe import StripeGateway
from billing_service.orgs import service as orgs
from billing_service.orgs.seats import end_for_deleted_org
from billing_service.subscriptions.lifecycle import end_for_deactivated_account
from gatehouse_contracts.envelope import CloudEvent, EventData
from gatehouse_contracts.events import (
    OrgCreated,
    OrgDeleted,
    OrgMemberAdded,
    OrgMemberRemoved,
    UserDeactivated,
    UserDeleted,
    UserEmailChanged,
    UserErased,
    UserReactivated,
    UserRegistered,
)
from gatehouse_platform.consumer import Handler

BillingHandler = Callable[[AsyncSession, CloudEvent, Any, StripeGateway], Awaitable[None]]


async def on_user_registered(
    db: AsyncSession, event: CloudEvent, data: UserRegistered, stripe: StripeGateway
) -> None:
    """Start the customer projection (the Stripe customer is made on the first subscribe)."""
    await customers.record_registration(db, data.user_id, data.email)


async def on_email_changed(
    db: AsyncSession, event: CloudEvent, data: UserEmailChanged, stripe: StripeGateway
) -> None:
    """Keep the address events and Stripe's receipts go to current."""
    await customers.record_email_change(
        db, stripe, data.user_id, data.new_email, changed_at=data.changed_at, key=f"customer-email-{event.id}"
    )


async def on_user_deactivated(
    db: AsyncSession, event: CloudEvent, data: UserDeactivated, stripe: StripeGateway
) -> None:
    """Cancel the subscription at Stripe at once (subscription.ended, reason account_deactivated)
    and refuse new ones."""
    await end_for_deactivated_account(db, stripe, data.user_id, email=data.email)


async def on_user_reactivated(
    db: AsyncSession, event: CloudEvent, data: UserReactivated, stripe: StripeGateway
) -> None:
    """The account may subscribe again (its old subscription stays ended)."""
    await customers.set_active(db, data.user_id, email=data.email, active=True)


async def on_user_deleted(
    db: AsyncSession, event: CloudEvent, data: UserDeleted, stripe: StripeGateway
) -> None:
    """As a deactivation (whichever of the two events comes first does it): the subscription is
    canceled at Stripe now and no new one can start."""
    await end_for_deactivated_account(db, stripe, data.user_id, email=data.email)


async def on_user_erased(
    db: AsyncSession, event: CloudEvent, data: UserErased, stripe: StripeGateway
) -> None:
    """Delete the Stripe customer and forget the person's email; the books stay."""
    await customers.erase(db, stripe, data.user_id, at=data.erased_at)


async def on_org_created(
    db: AsyncSession, event: CloudEvent, data: OrgCreated, stripe: StripeGateway
) -> None:
    """Start the org projection (its Stripe customer is made on its first subscribe)."""
    await orgs.record_membership(
        db, data.org_id, member_count=data.member_count, version=data.membership_version, name=data.name
    )


async def on_org_member_added(
    db: AsyncSession, event: CloudEvent, data: OrgMemberAdded, stripe: StripeGateway
) -> None:
    """The new member count, if it is the newest; the seat worker bills it (orgs/seats.py)."""
    await orgs.record_membership(
        db, data.org_id, member_count=data.member_count, version=data.membership_version, name=data.org_name
    )


async def on_org_member_removed(
    db: AsyncSession, event: CloudEvent, data: OrgMemberRemoved, stripe: StripeGateway
) -> None:
    await orgs.record_membership(
        db, data.org_id, member_count=data.member_count, version=data.membership_version, name=data.org_name
    )


async def on_org_deleted(
    db: AsyncSession, event: CloudEvent, data: OrgDeleted, stripe: StripeGateway
) -> None:
    """End the org's subscription at Stripe at once; it can start no new one."""
    await end_for_deleted_org(db, stripe, data.org_id, at=data.deleted_at)


HANDLERS: Mapping[str, BillingHandler] = {
    UserRegistered.event_type: on_user_registered,
    UserEmailChanged.event_type: on_email_changed,
    UserDeactivated.event_type: on_user_deactivated,
    UserReactivated.event_type: on_user_reactivated,
    UserDeleted.event_type: on_user_deleted,
    UserErased.event_type: on_user_erased,
    OrgCreated.event_type: on_org_created,
    OrgMemberAdded.event_type: on_org_member_added,
    OrgMemberRemoved.event_type: on_org_member_removed,
    OrgDeleted.event_type: on_org_deleted,
}


def bind(stripe: StripeGateway) -> dict[str, Handler]:
    """The handlers as the platform consumer calls them, with the Stripe gateway bound."""

    def bound(handler: BillingHandler) -> Handler:
        async def run(db: AsyncSession, event: CloudEvent, data: EventData) -> None:
            await handler(db, event, data, stripe)

        return run

    return {event_type: bound(handler) for event_type, handler in HANDLERS.items()}
