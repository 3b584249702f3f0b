"""`StripeGateway`: the Stripe calls billing makes.

It wraps the official SDK's `StripeClient` (pinned API version: the SDK's own `stripe.api_version`;
async HTTP through httpx), sends a deterministic `Idempotency-Key` on every POST, returns our own
dataclasses (types.py, read by parsing.py) and raises our own errors (errors.py).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import stripe

from billing_service.integrations.stripe.errors import StripeRequestRejected, translate
from billing_service.integrations.stripe.parsing import (
    parse_card,
    parse_checkout_session,
    parse_customer,
    parse_event,
    parse_invoice,
    parse_invoice_preview,
    parse_invoice_summary,
    parse_portal_configuration,
    parse_price,
    parse_product,
    parse_promotion_code,
    parse_refund,
    parse_subscription,
)
from billing_service.integrations.stripe.types import (
    CardOnFile,
    CheckoutSession,
    InvoicePreview,
    InvoiceSnapshot,
    InvoiceSummary,
    Json,
    PortalConfiguration,
    PromotionCodeState,
    RefundSnapshot,
    StripeCustomer,
    StripePrice,
    StripeProduct,
    SubscriptionSnapshot,
    WebhookEvent,
)
from billing_service.settings import Settings

API_VERSION: str = stripe.api_version  # the version stripe-python 16 pins, and the shapes read here
# A subscription is read with its price, latest invoice, discounts and schedule, which
# `parse_subscription` needs.
SUBSCRIPTION_EXPAND = ("items.data.price", "latest_invoice", "discounts", "schedule")


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
        return parse_customer(customer)

    async def create_org_customer(self, *, org_id: uuid.UUID, name: str, email: str) -> StripeCustomer:
        """An organization's own Stripe customer (its invoices are the org's, not a person's)."""
        params = {"name": name or str(org_id), "email": email, "metadata": {"org_id": str(org_id)}}
        customer = await self._obj(
            self._client.v1.customers.create_async(
                params=_any(params), options={"idempotency_key": f"org-customer-{org_id}"}
            )
        )
        return parse_customer(customer)

    async def update_customer_email(self, customer_id: str, email: str, *, key: str) -> None:
        await self._obj(
            self._client.v1.customers.update_async(
                customer_id, params=_any({"email": email}), options={"idempotency_key": key}
            )
        )

    async def delete_customer(self, customer_id: str) -> None:
        """Stripe cancels the customer's subscriptions and keeps their invoices."""
        await self._delete(self._client.v1.customers.delete_async(customer_id))

    async def retrieve_customer(self, customer_id: str) -> StripeCustomer:
        return parse_customer(await self._obj(self._client.v1.customers.retrieve_async(customer_id)))

    async def default_card(self, customer_id: str, *, subscription_id: str | None) -> CardOnFile | None:
        """The card the customer's next payment is taken from: the customer's default payment
        method, else the subscription's own (Checkout sets the subscription's, not the customer's).
        With a subscription, one call reads both (the subscription with its customer expanded)."""
        if subscription_id is None:
            customer = await self._obj(
                self._client.v1.customers.retrieve_async(
                    customer_id, params=_any({"expand": ["invoice_settings.default_payment_method"]})
                )
            )
            return parse_card((customer.get("invoice_settings") or {}).get("default_payment_method"))
        expand = ["default_payment_method", "customer.invoice_settings.default_payment_method"]
        subscription = await self._obj(
            self._client.v1.subscriptions.retrieve_async(subscription_id, params=_any({"expand": expand}))
        )
        owner = subscription.get("customer")
        settings = (owner.get("invoice_settings") or {}) if isinstance(owner, dict) else {}
        return parse_card(settings.get("default_payment_method")) or parse_card(
            subscription.get("default_payment_method")
        )

    # invoices

    async def list_invoices(
        self, customer_id: str, *, limit: int, starting_after: str | None
    ) -> tuple[list[InvoiceSummary], bool]:
        """One page of the customer's invoices, newest first, and whether there are more."""
        params: Json = {"customer": customer_id, "limit": limit}
        if starting_after is not None:
            params["starting_after"] = starting_after
        page = await self._call(self._client.v1.invoices.list_async(params=_any(params)))
        listed = page.to_dict(for_json=True)
        return [parse_invoice_summary(i) for i in listed["data"]], bool(listed["has_more"])

    async def retrieve_invoice(self, invoice_id: str) -> InvoiceSnapshot:
        return parse_invoice(await self._obj(self._client.v1.invoices.retrieve_async(invoice_id)))

    # money after payment: refunds, and which invoice a charge paid

    async def invoice_payment_intent(self, invoice_id: str) -> str | None:
        """The PaymentIntent that paid the invoice (the pinned version has no `invoice.payment_intent`:
        its InvoicePayments name it)."""
        page = await self._call(
            self._client.v1.invoice_payments.list_async(params=_any({"invoice": invoice_id}))
        )
        for payment in page.to_dict(for_json=True)["data"]:
            if payment.get("status") == "paid" and (payment.get("payment") or {}).get("payment_intent"):
                return str(payment["payment"]["payment_intent"])
        return None

    async def invoice_of_payment_intent(self, payment_intent_id: str) -> str | None:
        """The invoice a PaymentIntent was collecting, if any (a charge outside invoices has none)."""
        params = {"payment": {"type": "payment_intent", "payment_intent": payment_intent_id}}
        page = await self._call(self._client.v1.invoice_payments.list_async(params=_any(params)))
        for payment in page.to_dict(for_json=True)["data"]:
            invoice = payment.get("invoice")
            if invoice:
                return str(invoice["id"] if isinstance(invoice, dict) else invoice)
        return None

    async def create_refund(
        self,
        *,
        payment_intent_id: str,
        amount: int | None,
        reason: str | None,
        metadata: Mapping[str, str],
        key: str,
    ) -> RefundSnapshot:
        params: Json = {"payment_intent": payment_intent_id, "metadata": dict(metadata)}
        if amount is not None:
            params["amount"] = amount
        if reason is not None:
            params["reason"] = reason
        refund = await self._obj(
            self._client.v1.refunds.create_async(params=_any(params), options={"idempotency_key": key})
        )
        return parse_refund(refund)

    async def charge_refunds(self, charge_id: str) -> list[RefundSnapshot]:
        """Every refund of a charge (newest first)."""
        params = {"charge": charge_id, "limit": 100}
        page = await self._call(self._client.v1.refunds.list_async(params=_any(params)))
        refunds: list[RefundSnapshot] = []
        iterator = page.auto_paging_iter()
        while True:
            try:
                refund = await self._call(iterator.__anext__())
            except StopAsyncIteration:
                return refunds
            refunds.append(parse_refund(refund.to_dict(for_json=True)))

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
        return parse_product(product)

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
            # licensed: billed for the subscription item's quantity (1, or an org's seats)
            "recurring": {"interval": interval, "interval_count": interval_count, "usage_type": "licensed"},
            "metadata": dict(metadata),
        }
        price = await self._obj(
            self._client.v1.prices.create_async(params=_any(params), options={"idempotency_key": key})
        )
        return parse_price(price)

    async def set_price_active(self, price_id: str, active: bool, *, key: str) -> None:
        await self._obj(
            self._client.v1.prices.update_async(
                price_id, params=_any({"active": active}), options={"idempotency_key": key}
            )
        )

    # coupons and promotion codes

    async def create_coupon(
        self,
        *,
        name: str,
        percent_off: float | None,
        amount_off: int | None,
        currency: str | None,
        duration: str,
        duration_in_months: int | None,
        max_redemptions: int | None,
        redeem_by: datetime | None,
        product_ids: Sequence[str],
        metadata: Mapping[str, str],
        key: str,
    ) -> str:
        """A new coupon; returns its id."""
        params: Json = {"name": name, "duration": duration, "metadata": dict(metadata)}
        optional = {
            "percent_off": percent_off,
            "amount_off": amount_off,
            "currency": currency,
            "duration_in_months": duration_in_months,
            "max_redemptions": max_redemptions,
            "redeem_by": int(redeem_by.timestamp()) if redeem_by else None,
        }
        params.update({k: v for k, v in optional.items() if v is not None})
        if product_ids:
            params["applies_to"] = {"products": list(product_ids)}
        coupon = await self._obj(
            self._client.v1.coupons.create_async(params=_any(params), options={"idempotency_key": key})
        )
        return str(coupon["id"])

    async def delete_coupon(self, coupon_id: str) -> None:
        await self._delete(self._client.v1.coupons.delete_async(coupon_id))

    async def create_promotion_code(
        self,
        *,
        coupon_id: str,
        code: str,
        max_redemptions: int | None,
        expires_at: datetime | None,
        first_time_only: bool,
        metadata: Mapping[str, str],
        key: str,
    ) -> str:
        """A new promotion code; returns its id."""
        params: Json = {
            "promotion": {"type": "coupon", "coupon": coupon_id},
            "code": code,
            "metadata": dict(metadata),
        }
        if max_redemptions is not None:
            params["max_redemptions"] = max_redemptions
        if expires_at is not None:
            params["expires_at"] = int(expires_at.timestamp())
        if first_time_only:
            params["restrictions"] = {"first_time_transaction": True}
        promo = await self._obj(
            self._client.v1.promotion_codes.create_async(
                params=_any(params), options={"idempotency_key": key}
            )
        )
        return str(promo["id"])

    async def set_promotion_code_active(self, promotion_code_id: str, active: bool, *, key: str) -> None:
        await self._obj(
            self._client.v1.promotion_codes.update_async(
                promotion_code_id, params=_any({"active": active}), options={"idempotency_key": key}
            )
        )

    async def retrieve_promotion_code(self, promotion_code_id: str) -> PromotionCodeState:
        promo = await self._obj(
            self._client.v1.promotion_codes.retrieve_async(
                promotion_code_id, params=_any({"expand": ["promotion.coupon"]})
            )
        )
        return parse_promotion_code(promo)

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
        promotion_code_id: str | None = None,
        quantity: int = 1,
    ) -> CheckoutSession:
        """With `promotion_code_id` the session carries that discount; without, the customer may
        type a promotion code on the page."""
        subscription_data: Json = {"metadata": dict(metadata)}
        if trial_days > 0:
            subscription_data["trial_period_days"] = trial_days
        params: Json = {
            "mode": "subscription",
            "customer": customer_id,
            "line_items": [{"price": price_id, "quantity": quantity}],
            "metadata": dict(metadata),
            "client_reference_id": metadata.get("user_id"),
            "subscription_data": subscription_data,
            "success_url": success_url,
            "cancel_url": cancel_url,
        }
        if promotion_code_id is not None:
            params["discounts"] = [{"promotion_code": promotion_code_id}]
        else:
            params["allow_promotion_codes"] = True
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

    # Customer Portal

    async def portal_configurations(self, *, managed_by: str) -> list[PortalConfiguration]:
        """The active portal configurations whose metadata says `managed_by`, newest first."""
        params = {"active": True, "limit": 100}
        page = await self._call(self._client.v1.billing_portal.configurations.list_async(params=_any(params)))
        found = [parse_portal_configuration(c) for c in page.to_dict(for_json=True)["data"]]
        return [c for c in found if c.metadata.get("managed_by") == managed_by]

    async def save_portal_configuration(
        self,
        config_id: str | None,
        *,
        products: Sequence[tuple[str, Sequence[str]]],
        default_return_url: str,
        managed_by: str,
        key: str,
    ) -> PortalConfiguration:
        """Create (`config_id` None) or update the configuration billing manages: update the card,
        see invoices, cancel at period end, switch between `products` (each with its prices)."""
        switchable = [{"product": product, "prices": list(prices)} for product, prices in products]
        features: Json = {
            "invoice_history": {"enabled": True},
            "payment_method_update": {"enabled": True},
            "subscription_cancel": {"enabled": True, "mode": "at_period_end", "proration_behavior": "none"},
            "subscription_update": {
                "enabled": bool(switchable),
                "default_allowed_updates": ["price"] if switchable else [],
                "products": switchable,
                "proration_behavior": "create_prorations",
            },
        }
        params: Json = {"features": features, "default_return_url": default_return_url}
        options: Any = {"idempotency_key": key}
        if config_id is None:
            params["metadata"] = {"managed_by": managed_by}
            created = self._client.v1.billing_portal.configurations.create_async(_any(params), options)
            return parse_portal_configuration(await self._obj(created))
        updated = self._client.v1.billing_portal.configurations.update_async(config_id, _any(params), options)
        return parse_portal_configuration(await self._obj(updated))

    async def create_portal_session(
        self, *, customer_id: str, configuration_id: str, return_url: str, key: str
    ) -> str:
        """A portal session for the customer; returns its URL (short-lived: send the person there now)."""
        params = {"customer": customer_id, "configuration": configuration_id, "return_url": return_url}
        session = await self._obj(
            self._client.v1.billing_portal.sessions.create_async(
                params=_any(params), options={"idempotency_key": key}
            )
        )
        return str(session["url"])

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

    async def set_quantity(
        self, subscription_id: str, *, item_id: str, quantity: int, key: str
    ) -> SubscriptionSnapshot:
        """Bill `quantity` seats from now on: the change is prorated (a credit for seats removed, a
        charge for seats added, both on the next invoice)."""
        params: Json = {
            "items": [{"id": item_id, "quantity": quantity}],
            "proration_behavior": "create_prorations",
        }
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

    async def schedule_price_change(
        self,
        snapshot: SubscriptionSnapshot,
        *,
        price_id: str,
        key: str,
    ) -> SubscriptionSnapshot:
        """Move the subscription to `price_id` when its current period ends: a subscription schedule
        (made from it, or the one it has) whose first phase is the current period at today's price
        and whose second phase is the new price, released after one period."""
        schedule_id = snapshot.schedule_id
        if schedule_id is None:
            schedule = await self._obj(
                self._client.v1.subscription_schedules.create_async(
                    params=_any({"from_subscription": snapshot.id}),
                    options={"idempotency_key": f"{key}-create"},
                )
            )
            schedule_id = str(schedule["id"])
        phases = [
            {
                "items": [{"price": snapshot.price_id, "quantity": snapshot.quantity}],
                "start_date": int(snapshot.current_period_start.timestamp()),
                "end_date": int(snapshot.current_period_end.timestamp()),
            },
            {"items": [{"price": price_id, "quantity": snapshot.quantity}], "iterations": 1},
        ]
        await self._obj(
            self._client.v1.subscription_schedules.update_async(
                schedule_id,
                params=_any({"end_behavior": "release", "phases": phases}),
                options={"idempotency_key": f"{key}-phases"},
            )
        )
        return await self.retrieve_subscription(snapshot.id)

    async def release_schedule(
        self, subscription_id: str, schedule_id: str, *, key: str
    ) -> SubscriptionSnapshot:
        """Detach the subscription from its schedule: nothing scheduled changes it any more."""
        await self._obj(
            self._client.v1.subscription_schedules.release_async(
                schedule_id, options={"idempotency_key": key}
            )
        )
        return await self.retrieve_subscription(subscription_id)

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
        return parse_invoice_preview(invoice)

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

    async def _delete(self, awaitable: Any) -> None:
        """A DELETE (it carries no idempotency key): an object already gone is fine."""
        try:
            await self._obj(awaitable)
        except StripeRequestRejected as exc:
            if exc.code != "resource_missing":
                raise

    async def _call(self, awaitable: Any) -> Any:
        try:
            return await awaitable
        except stripe.StripeError as exc:
            raise translate(exc) from exc


def _any(params: Json) -> Any:
    """The SDK types params as TypedDicts; ours are built as plain dicts."""
    return params


def stripe_gateway(settings: Settings) -> StripeGateway:
    """The gateway as billing's settings configure it (API process, jobs and CLI alike)."""
    return StripeGateway(
        settings.stripe_api_key,
        api_base=settings.stripe_api_base,
        max_network_retries=settings.stripe_max_network_retries,
        timeout_seconds=settings.stripe_timeout_seconds,
    )
