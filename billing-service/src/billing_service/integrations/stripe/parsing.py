"""Stripe's JSON (API answers, webhook payloads, stored events) read into our dataclasses, so no other
module knows Stripe's shapes. Pure functions: no SDK, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from billing_service.errors import WebhookPayloadInvalid
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


def _is_proration(line: Mapping[str, Any]) -> bool:
    parent = line.get("parent") or {}
    for key in ("subscription_item_details", "invoice_item_details"):
        details = parent.get(key) or {}
        if details.get("proration"):
            return True
    return False


def invoice_subscription_id(invoice: Mapping[str, Any]) -> str | None:
    return _id(_subscription_details(invoice).get("subscription"))


def _service_period(invoice: Mapping[str, Any]) -> tuple[datetime, datetime]:
    """The service period an invoice bills: its non-proration lines' (Stripe's `period_start/end`
    is the period that ended, for a renewal)."""
    lines = ((invoice.get("lines") or {}).get("data")) or []
    service = [line for line in lines if not _is_proration(line)] or lines
    if service:
        start = min(int(line["period"]["start"]) for line in service)
        end = max(int(line["period"]["end"]) for line in service)
    else:
        start, end = int(invoice["period_start"]), int(invoice["period_end"])
    return _required_time(start), _required_time(end)


def parse_invoice(data: Mapping[str, Any]) -> InvoiceSnapshot:
    details = _subscription_details(data)
    start, end = _service_period(data)
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
        period_start=start,
        period_end=end,
        hosted_invoice_url=data.get("hosted_invoice_url"),
        paid_at=_time(transitions.get("paid_at")),
        created=_required_time(data.get("created")),
        amount_discount=sum(int(d.get("amount") or 0) for d in data.get("total_discount_amounts") or []),
    )


def parse_invoice_summary(data: Mapping[str, Any]) -> InvoiceSummary:
    start, end = _service_period(data)
    return InvoiceSummary(
        id=str(data["id"]),
        number=data.get("number"),
        status=str(data.get("status") or "draft"),
        currency=str(data.get("currency") or "usd"),
        subtotal=int(data.get("subtotal") or 0),
        discount=sum(int(d.get("amount") or 0) for d in data.get("total_discount_amounts") or []),
        tax=sum(int(t.get("amount") or 0) for t in data.get("total_taxes") or []),
        total=int(data.get("total") or 0),
        amount_paid=int(data.get("amount_paid") or 0),
        amount_remaining=int(data.get("amount_remaining") or 0),
        billing_reason=data.get("billing_reason"),
        hosted_invoice_url=data.get("hosted_invoice_url"),
        invoice_pdf=data.get("invoice_pdf"),
        period_start=start,
        period_end=end,
        created=_required_time(data.get("created")),
    )


def parse_card(payment_method: Any) -> CardOnFile | None:
    """An expanded PaymentMethod's card; None for an id, another kind of method, or nothing."""
    if not isinstance(payment_method, Mapping) or payment_method.get("type") != "card":
        return None
    card = payment_method.get("card") or {}
    return CardOnFile(
        id=str(payment_method["id"]),
        brand=str(card.get("display_brand") or card.get("brand") or "unknown"),
        last4=str(card.get("last4") or ""),
        exp_month=int(card.get("exp_month") or 0),
        exp_year=int(card.get("exp_year") or 0),
    )


def parse_portal_configuration(config: Mapping[str, Any]) -> PortalConfiguration:
    update = (config.get("features") or {}).get("subscription_update") or {}
    products = (update.get("products") or []) if update.get("enabled") else []
    return PortalConfiguration(
        id=str(config["id"]),
        products=tuple((str(p["product"]), tuple(str(x) for x in p.get("prices") or ())) for p in products),
        default_return_url=config.get("default_return_url"),
        metadata={str(k): str(v) for k, v in (config.get("metadata") or {}).items()},
    )


def parse_invoice_preview(invoice: Mapping[str, Any]) -> InvoicePreview:
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
        discount=_first_discount(data.get("discounts")),
        schedule_id=_id(data.get("schedule")),
        scheduled_change=_scheduled_change(data.get("schedule"), str(_id(item.get("price")))),
        quantity=int(item.get("quantity") or 0) if item.get("quantity") is not None else 1,
    )


def _scheduled_change(schedule: Any, current_price: str) -> ScheduledPriceChange | None:
    """The first phase after the current one whose price differs from today's (a live schedule)."""
    if not isinstance(schedule, dict) or schedule.get("status") not in ("active", "not_started"):
        return None
    current = schedule.get("current_phase") or {}
    begun = current.get("start_date")
    for phase in schedule.get("phases") or []:
        items = phase.get("items") or []
        if not items or (begun is not None and phase["start_date"] <= begun):
            continue
        price = _id(items[0].get("price"))
        if price and price != current_price:
            return ScheduledPriceChange(price_id=str(price), effective_at=_required_time(phase["start_date"]))
    return None


def _first_discount(discounts: Any) -> DiscountSnapshot | None:
    """The subscription's discount (we apply one at most); ids alone (not expanded) tell nothing."""
    for discount in discounts or []:
        if isinstance(discount, dict):
            return parse_discount(discount)
    return None


def parse_discount(data: Mapping[str, Any]) -> DiscountSnapshot:
    source = data.get("source") or {}
    return DiscountSnapshot(
        id=str(data["id"]),
        coupon_id=str(_id(source.get("coupon"))),
        promotion_code_id=_id(data.get("promotion_code")),
        start=_required_time(data.get("start")),
        end=_time(data.get("end")),
    )


def parse_promotion_code(data: Mapping[str, Any]) -> PromotionCodeState:
    """A promotion code read with `promotion.coupon` expanded."""
    coupon = (data.get("promotion") or {}).get("coupon")
    coupon = coupon if isinstance(coupon, dict) else {}
    return PromotionCodeState(
        id=str(data["id"]),
        active=bool(data.get("active")),
        times_redeemed=int(data.get("times_redeemed") or 0),
        max_redemptions=data.get("max_redemptions"),
        expires_at=_time(data.get("expires_at")),
        coupon_valid=bool(coupon.get("valid", True)),
        coupon_times_redeemed=int(coupon.get("times_redeemed") or 0),
        coupon_max_redemptions=coupon.get("max_redemptions"),
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


def parse_customer(data: Mapping[str, Any]) -> StripeCustomer:
    return StripeCustomer(id=str(data["id"]), email=data.get("email"))


def parse_product(data: Mapping[str, Any]) -> StripeProduct:
    return StripeProduct(id=str(data["id"]), name=str(data["name"]), active=bool(data["active"]))


def parse_price(data: Mapping[str, Any]) -> StripePrice:
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


def parse_refund(data: Mapping[str, Any]) -> RefundSnapshot:
    return RefundSnapshot(
        id=str(data["id"]),
        amount=int(data["amount"]),
        currency=str(data["currency"]),
        status=str(data.get("status") or "pending"),
        reason=data.get("reason"),
        charge_id=_id(data.get("charge")),
        payment_intent_id=_id(data.get("payment_intent")),
        created=_required_time(data.get("created")),
    )


def parse_charge(data: Mapping[str, Any]) -> ChargeSnapshot:
    return ChargeSnapshot(
        id=str(data["id"]),
        payment_intent_id=_id(data.get("payment_intent")),
        amount_captured=int(data.get("amount_captured") or 0),
        amount_refunded=int(data.get("amount_refunded") or 0),
    )


def parse_dispute(data: Mapping[str, Any]) -> DisputeSnapshot:
    charge = _id(data.get("charge"))
    if charge is None:
        raise ValueError("dispute without a charge")
    return DisputeSnapshot(
        id=str(data["id"]),
        amount=int(data["amount"]),
        currency=str(data["currency"]),
        status=str(data["status"]),
        reason=str(data.get("reason") or "general"),
        charge_id=charge,
        payment_intent_id=_id(data.get("payment_intent")),
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
