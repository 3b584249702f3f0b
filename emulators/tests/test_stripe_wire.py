"""Stripe's wire protocol as the official SDK sees it: keys, errors, idempotency, pagination, expand."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
import stripe
from stripe_support import API_KEY, Control, make_price, sdk_client, subscribe

from gatehouse_emulators.stripe.domain.clock import add_interval, next_period_end
from gatehouse_emulators.stripe.wire.errors import StripeError
from gatehouse_emulators.stripe.wire.forms import decode

pytest_plugins = ["stripe_fixtures"]


def test_nested_form_keys_decode_into_hashes_and_arrays() -> None:
    body = (
        "line_items[0][price]=price_a&line_items[0][quantity]=2&line_items[1][price]=price_b"
        "&metadata[user]=u1&subscription_data[metadata][plan]=pro&expand[]=customer&expand[]=subscription"
        "&active=false&metadata[empty]="
    )
    assert decode(body) == {
        "line_items": [{"price": "price_a", "quantity": "2"}, {"price": "price_b"}],
        "metadata": {"user": "u1", "empty": ""},
        "subscription_data": {"metadata": {"plan": "pro"}},
        "expand": ["customer", "subscription"],
        "active": "false",
    }


def test_a_key_used_both_as_scalar_and_hash_is_refused() -> None:
    with pytest.raises(StripeError) as caught:
        decode("metadata[a][b]=1&metadata[a]=2")
    assert caught.value.status == 400


def test_monthly_periods_count_from_the_anchor_and_clamp_to_month_end() -> None:
    jan31 = int(datetime(2026, 1, 31, 12, tzinfo=UTC).timestamp())
    feb = add_interval(jan31, "month", 1)
    assert datetime.fromtimestamp(feb, UTC).date().isoformat() == "2026-02-28"
    march = next_period_end(jan31, "month", 1, after=feb)
    assert datetime.fromtimestamp(march, UTC).date().isoformat() == "2026-03-31"


def test_a_missing_or_foreign_api_key_is_refused_with_401(emulator: Control) -> None:
    bare = httpx.get(f"{emulator.base_url}/v1/customers")
    assert bare.status_code == 401
    assert bare.json()["error"]["type"] == "invalid_request_error"
    assert bare.headers["Request-Id"].startswith("req_")
    with (
        sdk_client(emulator.base_url, "sk_live_nope") as live,
        pytest.raises(stripe.AuthenticationError) as caught,
    ):
        live.v1.customers.list()
    assert caught.value.http_status == 401


def test_basic_auth_as_curl_sends_it_works(emulator: Control) -> None:
    response = httpx.get(f"{emulator.base_url}/v1/customers", auth=(API_KEY, ""))
    assert response.status_code == 200
    assert response.json()["object"] == "list"


def test_errors_surface_as_the_sdk_exception_classes(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.customers.retrieve("cus_doesnotexist")
    assert (missing.value.http_status, missing.value.code, missing.value.param) == (
        404,
        "resource_missing",
        "id",
    )
    with pytest.raises(stripe.InvalidRequestError) as no_currency:
        client.v1.prices.create(params={"unit_amount": 100, "product_data": {"name": "X"}})
    assert (no_currency.value.code, no_currency.value.param) == ("parameter_missing", "currency")
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.customers.create(params={"emial": "typo@example.com"})  # type: ignore[typeddict-unknown-key]
    assert (unknown.value.code, unknown.value.param) == ("parameter_unknown", "emial")
    assert unknown.value.request_id is not None and unknown.value.request_id.startswith("req_")


def test_unrecognized_urls_answer_stripe_shaped_404(emulator: Control) -> None:
    response = httpx.get(f"{emulator.base_url}/v1/nothing_here", auth=(API_KEY, ""))
    assert response.status_code == 404
    assert "Unrecognized request URL (GET: /v1/nothing_here)" in response.json()["error"]["message"]


def test_same_idempotency_key_replays_the_stored_answer(client: stripe.StripeClient) -> None:
    first = client.v1.customers.create(
        params={"email": "idem@example.com"}, options={"idempotency_key": "k-1"}
    )
    again = client.v1.customers.create(
        params={"email": "idem@example.com"}, options={"idempotency_key": "k-1"}
    )
    assert again.id == first.id
    assert again.last_response is not None
    assert again.last_response.headers.get("Idempotent-Replayed") == "true"
    assert len(client.v1.customers.list(params={"email": "idem@example.com"}).data) == 1


def test_same_idempotency_key_with_other_parameters_is_an_idempotency_error(
    client: stripe.StripeClient,
) -> None:
    client.v1.customers.create(params={"email": "one@example.com"}, options={"idempotency_key": "k-2"})
    with pytest.raises(stripe.IdempotencyError) as caught:
        client.v1.customers.create(params={"email": "two@example.com"}, options={"idempotency_key": "k-2"})
    assert caught.value.http_status == 400
    assert caught.value.error is not None and caught.value.error.type == "idempotency_error"


def test_stripe_version_header_is_recorded(client: stripe.StripeClient, emulator: Control) -> None:
    client.v1.customers.list()
    logged = emulator.http.get("/_emulator/requests").json()["data"][0]
    assert logged["stripe_version"] == stripe.api_version
    assert logged["path"] == "/v1/customers"


def test_lists_paginate_with_cursors_and_auto_paging(client: stripe.StripeClient) -> None:
    made = [
        client.v1.customers.create(params={"email": "page@example.com", "name": f"n{i}"}) for i in range(23)
    ]
    client.v1.customers.create(params={"email": "other@example.com"})
    first = client.v1.customers.list(params={"email": "page@example.com", "limit": 10})
    assert first.has_more and first.url == "/v1/customers"
    assert [c.id for c in first.data] == [c.id for c in reversed(made)][:10]  # newest first
    second = client.v1.customers.list(
        params={"email": "page@example.com", "limit": 10, "starting_after": first.data[-1].id}
    )
    assert [c.id for c in second.data] == [c.id for c in reversed(made)][10:20]
    back = client.v1.customers.list(
        params={"email": "page@example.com", "limit": 5, "ending_before": second.data[0].id}
    )
    assert [c.id for c in back.data] == [c.id for c in first.data][5:]
    everyone = [c.id for c in first.auto_paging_iter()]
    assert everyone == [c.id for c in reversed(made)]


def test_expand_fills_in_referenced_objects_and_refuses_unknown_paths(
    client: stripe.StripeClient, emulator: Control
) -> None:
    price = make_price(client)
    sub = subscribe(client, emulator, price.id)
    full = client.v1.subscriptions.retrieve(
        sub.id, params={"expand": ["latest_invoice.payments", "customer", "items.data.price.product"]}
    )
    assert isinstance(full.customer, stripe.Customer) and full.customer.email == "ada@example.com"
    assert isinstance(full.latest_invoice, stripe.Invoice)
    payment = full.latest_invoice.payments.data[0]
    assert payment.status == "paid" and payment.payment.type == "payment_intent"
    assert full["items"].data[0].price.product.name == "Pro"
    listed = client.v1.subscriptions.list(params={"expand": ["data.latest_invoice"]})
    assert listed.data[0].latest_invoice.object == "invoice"
    # The pinned API version has no invoice.payment_intent: Stripe refuses the old path.
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.subscriptions.retrieve(sub.id, params={"expand": ["latest_invoice.payment_intent"]})
    assert "cannot be expanded" in str(caught.value.user_message)
