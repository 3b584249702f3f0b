"""Stripe, for billing: the only package that imports the `stripe` SDK, and none of its types leave it.

| module        | what                                                                  |
|---------------|-----------------------------------------------------------------------|
| `client.py`   | `StripeGateway`: every call billing makes, idempotent by its key      |
| `types.py`    | our dataclasses for Stripe's objects (what callers get back)          |
| `parsing.py`  | Stripe's JSON (answers, webhook payloads, stored events) into them    |
| `webhooks.py` | `verify_webhook`: the `Stripe-Signature` check                        |
| `errors.py`   | the SDK's errors translated into ours (`StripeRequestRejected`, …)    |

Import from here (`from billing_service.integrations.stripe import StripeGateway`), not from the
modules: they are this package's own layout.
"""

from billing_service.integrations.stripe.client import StripeGateway, stripe_gateway
from billing_service.integrations.stripe.errors import StripeRequestRejected
from billing_service.integrations.stripe.parsing import (
    invoice_subscription_id,
    parse_charge,
    parse_checkout_session,
    parse_dispute,
    parse_event,
    parse_invoice,
    parse_refund,
)
from billing_service.integrations.stripe.types import (
    CardOnFile,
    ChargeSnapshot,
    CheckoutSession,
    DiscountSnapshot,
    DisputeSnapshot,
    InvoicePreview,
    InvoiceSnapshot,
    InvoiceSummary,
    PortalConfiguration,
    PreviewLine,
    PromotionCodeState,
    RefundSnapshot,
    ScheduledPriceChange,
    StripeCustomer,
    StripePrice,
    StripeProduct,
    SubscriptionSnapshot,
    WebhookEvent,
)
from billing_service.integrations.stripe.webhooks import verify_webhook

__all__ = [
    "CardOnFile",
    "ChargeSnapshot",
    "CheckoutSession",
    "DiscountSnapshot",
    "DisputeSnapshot",
    "InvoicePreview",
    "InvoiceSnapshot",
    "InvoiceSummary",
    "PortalConfiguration",
    "PreviewLine",
    "PromotionCodeState",
    "RefundSnapshot",
    "ScheduledPriceChange",
    "StripeCustomer",
    "StripeGateway",
    "StripePrice",
    "StripeProduct",
    "StripeRequestRejected",
    "SubscriptionSnapshot",
    "WebhookEvent",
    "invoice_subscription_id",
    "parse_charge",
    "parse_checkout_session",
    "parse_dispute",
    "parse_event",
    "parse_invoice",
    "parse_refund",
    "stripe_gateway",
    "verify_webhook",
]
