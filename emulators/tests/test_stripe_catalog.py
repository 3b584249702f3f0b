"""Customers, products and prices through the official SDK."""

from __future__ import annotations

import pytest
import stripe
from stripe_support import Control

pytest_plugins = ["stripe_fixtures"]


def test_customer_create_retrieve_update_and_delete(client: stripe.StripeClient) -> None:
    created = client.v1.customers.create(
        params={"email": "ada@example.com", "name": "Ada", "metadata": {"user_id": "u-1", "tier": "free"}}
    )
    assert created.id.startswith("cus_") and created.object == "customer"
    assert created.livemode is False and created.balance == 0
    fetched = client.v1.customers.retrieve(created.id)
    assert (fetched.email, fetched.name, fetched.metadata["user_id"]) == ("ada@example.com", "Ada", "u-1")

    updated = client.v1.customers.update(
        created.id, params={"email": "ada@lovelace.dev", "metadata": {"tier": "", "plan": "pro"}}
    )
    assert updated.email == "ada@lovelace.dev"
    assert updated.metadata.to_dict() == {"user_id": "u-1", "plan": "pro"}  # "" unsets a key

    deleted = client.v1.customers.delete(created.id)
    assert deleted.deleted is True
    assert client.v1.customers.retrieve(created.id).deleted is True  # Stripe keeps a stub
    assert client.v1.customers.list(params={"email": "ada@lovelace.dev"}).data == []
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.update(created.id, params={"name": "Gone"})


def test_customers_list_filters_by_exact_email_and_search_finds_metadata(client: stripe.StripeClient) -> None:
    ada = client.v1.customers.create(params={"email": "ada@example.com", "metadata": {"user_id": "u-1"}})
    client.v1.customers.create(params={"email": "grace@example.com", "metadata": {"user_id": "u-2"}})
    assert [c.id for c in client.v1.customers.list(params={"email": "ada@example.com"}).data] == [ada.id]
    assert len(client.v1.customers.list().data) == 2
    found = client.v1.customers.search(params={"query": "metadata['user_id']:'u-1'"})
    assert found.object == "search_result" and [c.id for c in found.data] == [ada.id]
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.search(params={"query": "created>0"})


def test_product_create_update_list_and_archive(client: stripe.StripeClient) -> None:
    product = client.v1.products.create(params={"name": "Pro", "description": "For teams"})
    assert product.id.startswith("prod_") and product.active is True
    renamed = client.v1.products.update(product.id, params={"name": "Pro Plus", "active": False})
    assert (renamed.name, renamed.active) == ("Pro Plus", False)
    client.v1.products.create(params={"name": "Basic"})
    assert [p.name for p in client.v1.products.list(params={"active": True}).data] == ["Basic"]
    assert [p.name for p in client.v1.products.list(params={"active": False}).data] == ["Pro Plus"]


def test_price_amounts_are_immutable_and_archiving_is_active_false(client: stripe.StripeClient) -> None:
    product = client.v1.products.create(params={"name": "Pro"})
    price = client.v1.prices.create(
        params={
            "product": product.id,
            "unit_amount": 1500,
            "currency": "usd",
            "recurring": {"interval": "month"},
            "lookup_key": "pro_monthly",
            "metadata": {"plan_code": "pro"},
        }
    )
    assert price.id.startswith("price_")
    assert (price.unit_amount, price.currency, price.type) == (1500, "usd", "recurring")
    assert (price.recurring.interval, price.recurring.interval_count) == ("month", 1)

    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.prices.update(price.id, params={"unit_amount": 2000})  # type: ignore[typeddict-unknown-key]
    assert (caught.value.param, caught.value.code) == ("unit_amount", "parameter_unknown")

    changed = client.v1.prices.update(
        price.id, params={"nickname": "Pro monthly", "metadata": {"plan_code": "pro2"}}
    )
    assert (changed.nickname, changed.metadata["plan_code"], changed.unit_amount) == (
        "Pro monthly",
        "pro2",
        1500,
    )
    archived = client.v1.prices.update(price.id, params={"active": False})
    assert archived.active is False
    assert client.v1.prices.list(params={"product": product.id, "active": True}).data == []
    assert [p.id for p in client.v1.prices.list(params={"product": product.id}).data] == [price.id]
    assert [p.id for p in client.v1.prices.list(params={"lookup_keys": ["pro_monthly"]}).data] == [price.id]


def test_price_with_product_data_creates_the_product_and_lookup_keys_stay_unique(
    client: stripe.StripeClient,
) -> None:
    first = client.v1.prices.create(
        params={
            "currency": "eur",
            "unit_amount": 900,
            "product_data": {"name": "Starter"},
            "lookup_key": "starter",
        }
    )
    product = client.v1.products.retrieve(str(first.product))
    assert product.name == "Starter"
    with pytest.raises(stripe.InvalidRequestError) as taken:
        client.v1.prices.create(
            params={"currency": "eur", "unit_amount": 1000, "product": product.id, "lookup_key": "starter"}
        )
    assert taken.value.param == "lookup_key"
    moved = client.v1.prices.create(
        params={
            "currency": "eur",
            "unit_amount": 1000,
            "product": product.id,
            "lookup_key": "starter",
            "transfer_lookup_key": True,
        }
    )
    assert moved.lookup_key == "starter"
    assert client.v1.prices.retrieve(first.id).lookup_key is None


def test_catalog_changes_raise_events(client: stripe.StripeClient, emulator: Control) -> None:
    product = client.v1.products.create(params={"name": "Pro"})
    price = client.v1.prices.create(params={"product": product.id, "unit_amount": 100, "currency": "usd"})
    client.v1.prices.update(price.id, params={"active": False})
    client.v1.products.update(product.id, params={"name": "Pro 2"})
    events = client.v1.events.list(params={"limit": 10}).data
    assert [e.type for e in reversed(events)] == [
        "product.created",
        "price.created",
        "price.updated",
        "product.updated",
    ]
    assert events[0].data.previous_attributes["name"] == "Pro"
    assert events[1].data.previous_attributes["active"] is True
    only_prices = client.v1.events.list(params={"type": "price.*"}).data
    assert {e.type for e in only_prices} == {"price.created", "price.updated"}


def test_a_product_can_be_created_with_its_default_price(client: stripe.StripeClient) -> None:
    product = client.v1.products.create(
        params={
            "name": "Team",
            "default_price_data": {
                "currency": "usd",
                "unit_amount": 4900,
                "recurring": {"interval": "month"},
            },
        }
    )
    price = client.v1.prices.retrieve(str(product.default_price), params={"expand": ["product"]})
    assert (price.unit_amount, price.product.id) == (4900, product.id)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.products.delete(product.id)  # it has a price
