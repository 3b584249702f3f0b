"""What each Stripe event type does, one function per type; `HANDLERS` lists them.

Before the handlers of a batch run, the processor re-reads from Stripe, once each, the subscriptions
the batch's events name (`subscriptions_named`) and converges the local rows on them (that is where
subscription events have their effect). Handlers then apply what only the event carries: an
invoice's payment outcome, a trial-ending notice, a Checkout that expired, a refund or a dispute of
a paid invoice's charge (payments/money.py). Each returns whether the event concerned us
("processed") or not ("ignored").
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from billing_service import publishing
from billing_service.integrations.stripe import (
    RefundSnapshot,
    StripeGateway,
    WebhookEvent,
    invoice_subscription_id,
    parse_charge,
    parse_checkout_session,
    parse_dispute,
    parse_invoice,
    parse_refund,
)
from billing_service.models import Payment, Subscription, SubscriptionStatus
from billing_service.payments.money import locate_payment, record_dispute, record_refund, record_refunds
from billing_service.payments.service import (
    Addressee,
    InvoiceChange,
    addressee_of,
    apply_invoice,
    subscription_of,
)
from billing_service.settings import Settings
from billing_service.subscriptions.checkout import expire_locally
from billing_service.subscriptions.repository import SubscriptionRepository
from billing_service.subscriptions.sync import facts_for
from billing_service.webhooks.repository import StripeEventRepository

Outcome = Literal["processed", "ignored"]


@dataclass
class BatchContext:
    db: AsyncSession
    stripe: StripeGateway
    settings: Settings
    # Stripe subscription id → the local row converged on Stripe's current state (None: not ours).
    subscriptions: dict[str, Subscription | None] = field(default_factory=dict)
    emitted: list[str] = field(default_factory=list)
    # The batch's payment rows by invoice id, read in one query (the fast path; None when careful).
    payments: dict[str, Payment] | None = None
    _addressees: dict[tuple[uuid.UUID, uuid.UUID], Addressee] = field(default_factory=dict)
    _charge_refunds: dict[str, list[RefundSnapshot]] = field(default_factory=dict)

    async def addressee(self, subscription: Subscription) -> Addressee:
        """Looked up once per batch (a batch of invoices mostly names a few customers)."""
        key = (subscription.user_id, subscription.plan_id)
        if key not in self._addressees:
            self._addressees[key] = await addressee_of(self.db, subscription)
        return self._addressees[key]

    async def charge_refunds(self, charge_id: str) -> list[RefundSnapshot]:
        """A charge's refunds, listed from Stripe once per batch: Stripe sends several events about
        one refund (`refund.created`, `charge.refunded`, …) and a burst brings them together. A
        refund made after the read has events of its own, which a later batch applies."""
        if charge_id not in self._charge_refunds:
            self._charge_refunds[charge_id] = await self.stripe.charge_refunds(charge_id)
        return self._charge_refunds[charge_id]


Handler = Callable[[BatchContext, WebhookEvent], Awaitable[Outcome]]


def invoice_named(event: WebhookEvent) -> str | None:
    return str(event.object["id"]) if event.type.startswith("invoice.") else None


def subscriptions_named(event: WebhookEvent) -> list[str]:
    """The Stripe subscriptions an event may have changed: re-read before its handler runs."""
    obj = event.object
    if event.type.startswith("customer.subscription."):
        return [str(obj["id"])]
    if event.type.startswith("invoice."):
        subscription = invoice_subscription_id(obj)
        return [subscription] if subscription else []
    if event.type.startswith("subscription_schedule."):  # a released schedule names it apart
        subscription = obj.get("subscription") or obj.get("released_subscription")
        return [str(subscription)] if isinstance(subscription, str) and subscription else []
    if event.type == "checkout.session.completed" or event.type.startswith("customer.discount."):
        subscription = obj.get("subscription")
        return [str(subscription)] if isinstance(subscription, str) and subscription else []
    return []


async def on_subscription_changed(ctx: BatchContext, event: WebhookEvent) -> Outcome:
    """created / updated / deleted: the re-read before this handler already applied Stripe's state."""
    return "processed" if ctx.subscriptions.get(str(event.object["id"])) is not None else "ignored"


async def on_discount_changed(ctx: BatchContext, event: WebhookEvent) -> Outcome:
    """created / updated / deleted: the re-read of its subscription already applied the discount
    Stripe has now, whatever order these arrive in."""
    subscription = event.object.get("subscription")
    if isinstance(subscription, str) and ctx.subscriptions.get(subscription) is not None:
        return "processed"
    return "ignored"


async def on_schedule_changed(ctx: BatchContext, event: WebhookEvent) -> Outcome:
    """created / updated / released / canceled / completed: the re-read of its subscription (with
    the schedule expanded) already applied the plan change it holds, or its end, in any order."""
    named = subscriptions_named(event)
    return "processed" if named and ctx.subscriptions.get(named[0]) is not None else "ignored"


async def on_checkout_completed(ctx: BatchContext, event: WebhookEvent) -> Outcome:
    session = parse_checkout_session(event.object)
    if session.subscription_id and ctx.subscriptions.get(session.subscription_id) is not None:
        return "processed"
    return "ignored"


async def on_checkout_expired(ctx: BatchContext, event: WebhookEvent) -> Outcome:
    """The customer never paid: the pending row stops holding the user's one subscription slot."""
    session = parse_checkout_session(event.object)
    row = await SubscriptionRepository(ctx.db).by_checkout_session(session.id, for_update=True)
    if row is None:
        return "ignored"
    if row.status == SubscriptionStatus.CHECKOUT_PENDING:
        expire_locally(row)
    return "processed"


async def on_trial_will_end(ctx: BatchContext, event: WebhookEvent) -> Outcome:
    row = ctx.subscriptions.get(str(event.object["id"]))
    if row is None:
        return "ignored"
    # Once per trial end (a changed trial end deserves its own notice).
    if row.status == SubscriptionStatus.TRIALING and row.trial_end and row.trial_notice_for != row.trial_end:
        row.trial_notice_for = row.trial_end
        await publishing.trial_will_end(ctx.db, await facts_for(ctx.db, row))
        ctx.emitted.append("subscription.trial_will_end")
    return "processed"


def _invoice_handler(change: InvoiceChange) -> Handler:
    async def handle(ctx: BatchContext, event: WebhookEvent) -> Outcome:
        invoice = parse_invoice(event.object)
        row = ctx.subscriptions.get(invoice.subscription_id) if invoice.subscription_id else None
        if row is None:
            row = await subscription_of(ctx.db, invoice)
        if row is None:
            return "ignored"
        addressee = await ctx.addressee(row)
        ctx.emitted += await apply_invoice(ctx.db, invoice, change, row, addressee, batch=ctx.payments)
        return "processed"

    handle.__name__ = f"on_invoice_{change.value}"
    return handle


async def on_refund(ctx: BatchContext, event: WebhookEvent) -> Outcome:
    """refund.created / refund.updated: this refund, as it is now."""
    refund = parse_refund(event.object)
    payment = await locate_payment(
        ctx.db, ctx.stripe, payment_intent_id=refund.payment_intent_id, charge_id=refund.charge_id
    )
    if payment is None:
        return "ignored"
    _, emitted = await record_refund(ctx.db, payment, refund)
    ctx.emitted += emitted
    return "processed"


async def on_charge_refunded(ctx: BatchContext, event: WebhookEvent) -> Outcome:
    """The charge's refunds, read from Stripe (the charge no longer lists them in this API version):
    a refund whose own `refund.*` event is late or was never sent is recorded all the same."""
    charge = parse_charge(event.object)
    payment = await locate_payment(
        ctx.db, ctx.stripe, payment_intent_id=charge.payment_intent_id, charge_id=charge.id
    )
    if payment is None:
        return "ignored"
    oldest_first = list(reversed(await ctx.charge_refunds(charge.id)))
    ctx.emitted += await record_refunds(ctx.db, payment, oldest_first)
    return "processed"


async def on_dispute(ctx: BatchContext, event: WebhookEvent) -> Outcome:
    """charge.dispute.created / .closed: the dispute's status, applied forward only."""
    dispute = parse_dispute(event.object)
    payment = await locate_payment(
        ctx.db, ctx.stripe, payment_intent_id=dispute.payment_intent_id, charge_id=dispute.charge_id
    )
    if payment is None:
        return "ignored"
    ctx.emitted += await record_dispute(ctx.db, ctx.stripe, ctx.settings, payment, dispute)
    return "processed"


async def on_customer_deleted(ctx: BatchContext, event: WebhookEvent) -> Outcome:
    """A Stripe customer is deleted when its user's account is erased: the events naming it carry
    the person's email and name, so they go too (this one included)."""
    await StripeEventRepository(ctx.db).forget_customer(str(event.object["id"]), including=event.id)
    return "processed"


HANDLERS: dict[str, Handler] = {
    "customer.deleted": on_customer_deleted,
    "checkout.session.completed": on_checkout_completed,
    "checkout.session.expired": on_checkout_expired,
    "customer.subscription.created": on_subscription_changed,
    "customer.subscription.updated": on_subscription_changed,
    "customer.subscription.deleted": on_subscription_changed,
    "customer.subscription.trial_will_end": on_trial_will_end,
    "subscription_schedule.created": on_schedule_changed,
    "subscription_schedule.updated": on_schedule_changed,
    "subscription_schedule.released": on_schedule_changed,
    "subscription_schedule.canceled": on_schedule_changed,
    "subscription_schedule.completed": on_schedule_changed,
    "subscription_schedule.aborted": on_schedule_changed,
    "customer.discount.created": on_discount_changed,
    "customer.discount.updated": on_discount_changed,
    "customer.discount.deleted": on_discount_changed,
    "invoice.paid": _invoice_handler(InvoiceChange.PAID),
    "invoice.payment_succeeded": _invoice_handler(InvoiceChange.PAID),  # Stripe sends both; same effect
    "invoice.payment_failed": _invoice_handler(InvoiceChange.FAILED),
    "invoice.payment_action_required": _invoice_handler(InvoiceChange.ACTION_REQUIRED),
    "invoice.voided": _invoice_handler(InvoiceChange.VOIDED),
    "invoice.marked_uncollectible": _invoice_handler(InvoiceChange.UNCOLLECTIBLE),
    "refund.created": on_refund,
    "refund.updated": on_refund,
    "charge.refunded": on_charge_refunded,
    "charge.dispute.created": on_dispute,
    "charge.dispute.closed": on_dispute,
}
