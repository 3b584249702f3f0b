"""The one module that talks to Stripe (and the only one that imports `stripe`).

`StripeGateway` wraps the official SDK's `StripeClient` (pinned API version: the SDK's own
`stripe.api_version`; async HTTP through httpx), sends a deterministic `Idempotency-Key` on every
POST, returns our own dataclasses and raises our own errors:

| Stripe says                                   | we raise                          | status |
|-----------------------------------------------|-----------------------------------|--------|
| card declined / authentication required       | `PaymentDeclined`                 | 402    |
| unreachable, timeout, rate limited            | `PaymentProviderUnavailable`      | 503    |
| 5xx, authentication, anything unexpected      | `PaymentProviderError`            | 502    |
| 4xx invalid request (bad state, missing)      | `StripeRequestRejected` (a 502)   | 502    |

Callers that expect a particular refusal (expiring a Checkout session that completed meanwhile)
catch `StripeRequestRejected` and decide. The functions `parse_*` read Stripe's JSON (webhook
payloads, stored events) into the same dataclasses, so no other module knows Stripe's shapes.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import stripe

from billing_service.errors import (
    PaymentDeclined,
    PaymentProviderError,
    PaymentProviderUnavailable,
    WebhookPayloadInvalid,
    WebhookSignatureInvalid,
)

log = logging.getLogger(__name__)

API_VERSION: str = stripe.api_version  # the version stripe-python 16 pins, and the shapes read here
# A subscription is read with its price and latest invoice, which `parse_subscription` needs.
SUBSCRIPTION_EXPAND = ("items.data.price", "latest_invoice")
Json = dict[str, Any]


class StripeRequestRejected(PaymentProviderError):
    """Stripe refused the request (HTTP 4xx other than a card error). `code` is Stripe's error code
    (`resource_missing`, …) and `http_status` its status."""

    slug = "payment-provider-rejected"
    title = "Payment provider refused the request"

    def __init__(self, detail: str, *, code: str | None, http_status: int | None) -> None:
        super().__init__(detail)
        self.code = code
        self.http_status = http_status


# -- our view of Stripe's objects ------------------------------------------------------------------


@dataclass(frozen=True)
class StripeCustomer:
    id: str
    email: str | None


@dataclass(frozen=True)
class StripeProduct:
    id: str
    name: str
    active: bool


@dataclass(frozen=True)
class StripePrice:
    id: str
    product_id: str
    amount: int
    currency: str
    interval: str
    interval_count: int
    active: bool


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: str | None
    status: str  # open | complete | expired
    customer_id: str | None
    subscription_id: str | None
    metadata: dict[str, str]
    expires_at: datetime | None


@dataclass(frozen=True)
class InvoiceSnapshot:
    id: str
    customer_id: str | None
    subscription_id: str | None
    subscription_metadata: dict[str, str]
    status: str  # draft | open | paid | void | uncollectible
    amount_due: int
    amount_paid: int
    currency: str
    billing_reason: str | None
    attempt_count: int
    next_payment_attempt: datetime | None
    period_start: datetime  # the service period its subscription lines cover
    period_end: datetime
    hosted_invoice_url: str | None
    paid_at: datetime | None
    created: datetime


@dataclass(frozen=True)
class SubscriptionSnapshot:
    """A Stripe subscription as it is now (re-read, never taken from a webhook payload)."""

    id: str
    customer_id: str
    status: str
    metadata: dict[str, str]
    item_id: str
    price_id: str
    current_period_start: datetime
    current_period_end: datetime
    cancel_at_period_end: bool
    cancel_at: datetime | None
    canceled_at: datetime | None
    ended_at: datetime | None
    trial_end: datetime | None
    cancellation_reason: str | None
    cancellation_comment: str | None
    latest_invoice: InvoiceSnapshot | None


@dataclass(frozen=True)
class PreviewLine:
    description: str | None
    amount: int
    proration: bool
    period_start: datetime
    period_end: datetime


@dataclass(frozen=True)
class InvoicePreview:
    amount_due: int
    total: int
    currency: str
    proration_date: datetime | None
    lines: list[PreviewLine] = field(default_factory=list)


@dataclass(frozen=True)
class WebhookEvent:
    id: str
    type: str
    created: datetime
    api_version: str | None
    object_id: str | None
    object: Json
    payload: Json


# -- parsing Stripe's JSON -------------------------------------------------------------------------


def _time(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if value is not None else None


def _required_time(value: Any) -> datetime:
    moment = _time(value)
    if moment is None:
        raise ValueError("timestamp missing")
    return moment


def _id(value: Any) -> str | None:
    """An id field that may be expanded into its object."""
    if isinstance(value, dict):
        return str(value["id"])
    return str(value) if value else None


def _metadata(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in (value or {}).items()}


def _subscription_details(invoice: Mapping[str, Any]) -> Mapping[str, Any]:
    """What an invoice (or a preview) says about the subscription it bills."""
    return (invoice.get("parent") or {}).get("subscription_details") or {}


def invoice_subscription_id(invoice: Mapping[str, Any]) -> str | None:
    return _id(_subscription_details(invoice).get("subscription"))


def parse_invoice(data: Mapping[str, Any]) -> InvoiceSnapshot:
    details = _subscription_details(data)
    lines = ((data.get("lines") or {}).get("data")) or []
    service = [line for line in lines if not _is_proration(line)] or lines
    if service:
        start = min(int(line["period"]["start"]) for line in service)
        end = max(int(line["period"]["end"]) for line in service)
    else:
        start, end = int(data["period_start"]), int(data["period_end"])
    transitions = data.get("status_transitions") or {}
    return InvoiceSnapshot(
        id=str(data["id"]),
        customer_id=_id(data.get("customer")),
        subscription_id=_id(details.get("subscription")),
        subscription_metadata=_metadata(details.get("metadata")),
        status=str(data.get("status") or "draft"),
        amount_due=int(data.get("amount_due") or 0),
        amount_paid=int(data.get("amount_paid") or 0),
        currency=str(data.get("currency") or "usd"),
        billing_reason=data.get("billing_reason"),
        attempt_count=int(data.get("attempt_count") or 0),
        next_payment_attempt=_time(data.get("next_payment_attempt")),
        period_start=_required_time(start),
        period_end=_required_time(end),
        hosted_invoice_url=data.get("hosted_invoice_url"),
        paid_at=_time(transitions.get("paid_at")),
        created=_required_time(data.get("created")),
    )


def _is_proration(line: Mapping[str, Any]) -> bool:
    parent = line.get("parent") or {}
    for key in ("subscription_item_details", "invoice_item_details"):
        details = parent.get(key) or {}
        if details.get("proration"):
            return True
    return False


def parse_subscription(data: Mapping[str, Any]) -> SubscriptionSnapshot:
    items = (data.get("items") or {}).get("data") or []
    if not items:
        raise ValueError(f"subscription {data.get('id')} has no items")
    item = items[0]
    latest = data.get("latest_invoice")
    details = data.get("cancellation_details") or {}
    return SubscriptionSnapshot(
        id=str(data["id"]),
        customer_id=str(_id(data.get("customer"))),
        status=str(data["status"]),
        metadata=_metadata(data.get("metadata")),
        item_id=str(item["id"]),
        price_id=str(_id(item.get("price"))),
        current_period_start=_required_time(item["current_period_start"]),
        current_period_end=_required_time(item["current_period_end"]),
        cancel_at_period_end=bool(data.get("cancel_at_period_end")),
        cancel_at=_time(data.get("cancel_at")),
        canceled_at=_time(data.get("canceled_at")),
        ended_at=_time(data.get("ended_at")),
        trial_end=_time(data.get("trial_end")),
        cancellation_reason=details.get("reason"),
        cancellation_comment=details.get("comment"),
        latest_invoice=parse_invoice(latest) if isinstance(latest, dict) else None,
    )


def parse_checkout_session(data: Mapping[str, Any]) -> CheckoutSession:
    return CheckoutSession(
        id=str(data["id"]),
        url=data.get("url"),
        status=str(data.get("status") or "open"),
        customer_id=_id(data.get("customer")),
        subscription_id=_id(data.get("subscription")),
        metadata=_metadata(data.get("metadata")),
        expires_at=_time(data.get("expires_at")),
    )


def _parse_customer(data: Mapping[str, Any]) -> StripeCustomer:
    return StripeCustomer(id=str(data["id"]), email=data.get("email"))


def _parse_product(data: Mapping[str, Any]) -> StripeProduct:
    return StripeProduct(id=str(data["id"]), name=str(data["name"]), active=bool(data["active"]))


def _parse_price(data: Mapping[str, Any]) -> StripePrice:
    recurring = data.get("recurring") or {}
    return StripePrice(
        id=str(data["id"]),
        product_id=str(_id(data.get("product"))),
        amount=int(data.get("unit_amount") or 0),
        currency=str(data["currency"]),
        interval=str(recurring.get("interval") or "month"),
        interval_count=int(recurring.get("interval_count") or 1),
        active=bool(data.get("active")),
    )


def parse_event(payload: Mapping[str, Any]) -> WebhookEvent:
    """A stored or listed event (already authenticated) in our shape."""
    try:
        obj = payload["data"]["object"]
        return WebhookEvent(
            id=str(payload["id"]),
            type=str(payload["type"]),
            created=_required_time(payload["created"]),
            api_version=payload.get("api_version"),
            object_id=str(obj["id"]) if isinstance(obj, dict) and obj.get("id") else None,
            object=dict(obj),
            payload=dict(payload),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise WebhookPayloadInvalid("The event is not a Stripe event object.") from exc


def verify_webhook(
    payload: bytes, signature: str | None, secrets: Sequence[str], tolerance: int
) -> WebhookEvent:
    """Check the `Stripe-Signature` of the raw body against each secret (current first, then the one
    being rotated out) and its timestamp against `tolerance`, and return the event.

    The check is the SDK's own: `stripe.WebhookSignature.verify_header`, which is what
    `stripe.Webhook.construct_event` runs before it builds SDK objects from the JSON. We skip that
    second half (we read and store Stripe's JSON itself): measured, it is 30 times the cost of the
    check and was the largest share of the endpoint's time."""
    if not signature:
        raise WebhookSignatureInvalid("The Stripe-Signature header is missing.")
    last_error = NO_MATCH
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(payload, signature, secret, tolerance)
        except stripe.SignatureVerificationError as exc:
            problem = _signature_problem(str(exc.user_message or exc))
            if problem != NO_MATCH:  # a secret matched, but the signature is stale or unreadable
                last_error = problem
            continue
        except UnicodeDecodeError as exc:
            raise WebhookPayloadInvalid("The body is not UTF-8.") from exc
        try:
            return parse_event(json.loads(payload))
        except ValueError as exc:
            raise WebhookPayloadInvalid("The body is not JSON.") from exc
    raise WebhookSignatureInvalid(last_error)


NO_MATCH = "No signature matches."


def _signature_problem(message: str) -> str:
    # Short, stable messages for clients (the SDK's own may change between versions).
    if "tolerance" in message:
        return "The signature timestamp is too old."
    if "Unable to extract" in message:
        return "The Stripe-Signature header is malformed."
    return NO_MATCH


# -- the gateway -----------------------------------------------------------------------------------


class StripeGateway:
    """Stripe calls billing makes. Every method is async and idempotent by its key."""

    def __init__(
        self, api_key: str, *, api_base: str, max_network_retries: int = 2, timeout_seconds: float = 20.0
    ) -> None:
        self._http = stripe.HTTPXClient(timeout=timeout_seconds)
        self._client = stripe.StripeClient(
            api_key,
            stripe_version=API_VERSION,
            base_addresses={"api": api_base.rstrip("/")},
            max_network_retries=max_network_retries,
            http_client=self._http,
        )

    async def aclose(self) -> None:
        await self._http.close_async()

    # customers

    async def create_customer(self, *, user_id: uuid.UUID, email: str) -> StripeCustomer:
        params = {"email": email, "metadata": {"user_id": str(user_id)}}
        customer = await self._obj(
            self._client.v1.customers.create_async(
                params=_any(params), options={"idempotency_key": f"customer-{user_id}"}
            )
        )
        return _parse_customer(customer)

    async def update_customer_email(self, customer_id: str, email: str, *, key: str) -> None:
        await self._obj(
            self._client.v1.customers.update_async(
                customer_id, params=_any({"email": email}), options={"idempotency_key": key}
            )
        )

    async def retrieve_customer(self, customer_id: str) -> StripeCustomer:
        return _parse_customer(await self._obj(self._client.v1.customers.retrieve_async(customer_id)))

    # catalog

    async def create_product(
        self, *, name: str, description: str, metadata: Mapping[str, str], key: str
    ) -> StripeProduct:
        params: Json = {"name": name, "metadata": dict(metadata)}
        if description:
            params["description"] = description
        product = await self._obj(
            self._client.v1.products.create_async(params=_any(params), options={"idempotency_key": key})
        )
        return _parse_product(product)

    async def update_product(
        self,
        product_id: str,
        *,
        key: str,
        name: str | None = None,
        description: str | None = None,
        active: bool | None = None,
        default_price: str | None = None,
    ) -> None:
        params: Json = {}
        if name is not None:
            params["name"] = name
        if description is not None:
            params["description"] = description  # "" clears it
        if active is not None:
            params["active"] = active
        if default_price is not None:
            params["default_price"] = default_price
        await self._obj(
            self._client.v1.products.update_async(
                product_id, params=_any(params), options={"idempotency_key": key}
            )
        )

    async def create_price(
        self,
        *,
        product_id: str,
        amount: int,
        currency: str,
        interval: str,
        interval_count: int,
        metadata: Mapping[str, str],
        key: str,
    ) -> StripePrice:
        params = {
            "product": product_id,
            "unit_amount": amount,
            "currency": currency,
            "recurring": {"interval": interval, "interval_count": interval_count},
            "metadata": dict(metadata),
        }
        price = await self._obj(
            self._client.v1.prices.create_async(params=_any(params), options={"idempotency_key": key})
        )
        return _parse_price(price)

    async def set_price_active(self, price_id: str, active: bool, *, key: str) -> None:
        await self._obj(
            self._client.v1.prices.update_async(
                price_id, params=_any({"active": active}), options={"idempotency_key": key}
            )
        )

    # checkout

    async def create_checkout_session(
        self,
        *,
        customer_id: str,
        price_id: str,
        metadata: Mapping[str, str],
        trial_days: int,
        success_url: str,
        cancel_url: str,
        key: str,
    ) -> CheckoutSession:
        subscription_data: Json = {"metadata": dict(metadata)}
        if trial_days > 0:
            subscription_data["trial_period_days"] = trial_days
        params = {
            "mode": "subscription",
            "customer": customer_id,
            "line_items": [{"price": price_id, "quantity": 1}],
            "metadata": dict(metadata),
            "client_reference_id": metadata.get("user_id"),
            "subscription_data": subscription_data,
            "success_url": success_url,
            "cancel_url": cancel_url,
        }
        session = await self._obj(
            self._client.v1.checkout.sessions.create_async(
                params=_any(params), options={"idempotency_key": key}
            )
        )
        return parse_checkout_session(session)

    async def retrieve_checkout_session(self, session_id: str) -> CheckoutSession:
        return parse_checkout_session(
            await self._obj(self._client.v1.checkout.sessions.retrieve_async(session_id))
        )

    async def expire_checkout_session(self, session_id: str, *, key: str) -> CheckoutSession:
        session = await self._obj(
            self._client.v1.checkout.sessions.expire_async(session_id, options={"idempotency_key": key})
        )
        return parse_checkout_session(session)

    # subscriptions (always read with what parse_subscription needs expanded)

    async def retrieve_subscription(self, subscription_id: str) -> SubscriptionSnapshot:
        return await self._subscription(
            self._client.v1.subscriptions.retrieve_async(
                subscription_id, params=_any({"expand": SUBSCRIPTION_EXPAND})
            )
        )

    async def change_price(
        self,
        subscription_id: str,
        *,
        item_id: str,
        price_id: str,
        proration_behavior: str,
        payment_behavior: str,
        proration_date: int | None,
        key: str,
    ) -> SubscriptionSnapshot:
        params: Json = {
            "items": [{"id": item_id, "price": price_id}],
            "proration_behavior": proration_behavior,
            "payment_behavior": payment_behavior,
        }
        if proration_date is not None:
            params["proration_date"] = proration_date
        return await self._update_subscription(subscription_id, params, key=key)

    async def set_cancel_at_period_end(
        self, subscription_id: str, value: bool, *, key: str
    ) -> SubscriptionSnapshot:
        return await self._update_subscription(subscription_id, {"cancel_at_period_end": value}, key=key)

    async def cancel_subscription(
        self, subscription_id: str, *, comment: str, key: str
    ) -> SubscriptionSnapshot:
        """Cancel at once (no proration, no final invoice); `comment` says why, for whoever reads it."""
        params = {"cancellation_details": {"comment": comment}, "expand": SUBSCRIPTION_EXPAND}
        return await self._subscription(
            self._client.v1.subscriptions.cancel_async(
                subscription_id, params=_any(params), options={"idempotency_key": key}
            )
        )

    async def _update_subscription(
        self, subscription_id: str, params: Json, *, key: str
    ) -> SubscriptionSnapshot:
        return await self._subscription(
            self._client.v1.subscriptions.update_async(
                subscription_id,
                params=_any({**params, "expand": SUBSCRIPTION_EXPAND}),
                options={"idempotency_key": key},
            )
        )

    async def _subscription(self, awaitable: Any) -> SubscriptionSnapshot:
        return parse_subscription(await self._obj(awaitable))

    async def preview_price_change(
        self,
        *,
        customer_id: str,
        subscription_id: str,
        item_id: str,
        price_id: str,
        proration_behavior: str,
        key: str,
    ) -> InvoicePreview:
        params = {
            "customer": customer_id,
            "subscription": subscription_id,
            "subscription_details": {
                "items": [{"id": item_id, "price": price_id}],
                "proration_behavior": proration_behavior,
            },
        }
        invoice = await self._obj(
            self._client.v1.invoices.create_preview_async(
                params=_any(params), options={"idempotency_key": key}
            )
        )
        lines = [
            PreviewLine(
                description=line.get("description"),
                amount=int(line.get("amount") or 0),
                proration=_is_proration(line),
                period_start=_required_time(line["period"]["start"]),
                period_end=_required_time(line["period"]["end"]),
            )
            for line in (invoice.get("lines") or {}).get("data", [])
        ]
        return InvoicePreview(
            amount_due=int(invoice.get("amount_due") or 0),
            total=int(invoice.get("total") or 0),
            currency=str(invoice.get("currency")),
            proration_date=_time(_subscription_details(invoice).get("subscription_proration_date")),
            lines=lines,
        )

    # events (reconciliation)

    async def events_since(self, created_gte: datetime, types: Sequence[str]) -> AsyncIterator[WebhookEvent]:
        """Events created at or after `created_gte`, newest first (the Events API keeps 30 days)."""
        params = {"created": {"gte": int(created_gte.timestamp())}, "types": list(types), "limit": 100}
        page = await self._call(self._client.v1.events.list_async(params=_any(params)))
        iterator = page.auto_paging_iter()
        while True:
            try:
                event = await self._call(iterator.__anext__())
            except StopAsyncIteration:
                return
            yield parse_event(event.to_dict(for_json=True))

    # plumbing

    async def _obj(self, awaitable: Any) -> Json:
        """Await a call that returns one object, as plain JSON-like dicts."""
        result = await self._call(awaitable)
        return dict(result.to_dict(for_json=True))

    async def _call(self, awaitable: Any) -> Any:
        try:
            return await awaitable
        except stripe.CardError as exc:
            raise PaymentDeclined(exc.user_message or "The card was declined.") from exc
        except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
            log.warning("stripe unreachable: %s", type(exc).__name__)
            raise PaymentProviderUnavailable(
                "Stripe could not be reached; try again shortly.", headers={"Retry-After": "5"}
            ) from exc
        except stripe.InvalidRequestError as exc:
            log.warning("stripe refused a request: %s (%s)", exc.code, exc.http_status)
            raise StripeRequestRejected(
                exc.user_message or "Stripe refused the request.", code=exc.code, http_status=exc.http_status
            ) from exc
        except stripe.StripeError as exc:
            log.error("stripe error %s (%s)", type(exc).__name__, exc.http_status)
            raise PaymentProviderError("Stripe answered with an error.") from exc


def _any(params: Json) -> Any:
    """The SDK types params as TypedDicts; ours are built as plain dicts."""
    return params
