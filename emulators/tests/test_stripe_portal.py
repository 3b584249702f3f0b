"""The Customer Portal: configurations and sessions through the official SDK, and the portal page a
session's `url` serves, each action firing the webhooks Stripe's portal fires."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
import stripe
from stripe_support import Control, Receiver, make_price, subscribe

pytest_plugins = ["stripe_fixtures"]

RETURN_URL = "https://app.example.com/account/billing"


def _configuration(client: stripe.StripeClient, *prices: stripe.Price) -> stripe.billing_portal.Configuration:
    products = [{"product": str(p.product), "prices": [p.id]} for p in prices]
    return client.v1.billing_portal.configurations.create(
        params={
            "business_profile": {"headline": "Gatehouse"},
            "default_return_url": RETURN_URL,
            "features": {
                "invoice_history": {"enabled": True},
                "payment_method_update": {"enabled": True},
                "subscription_cancel": {"enabled": True, "mode": "at_period_end"},
                "subscription_update": {
                    "enabled": bool(products),
                    "default_allowed_updates": ["price"] if products else [],
                    "products": products,  # type: ignore[typeddict-item]
                    "proration_behavior": "create_prorations",
                },
            },
            "metadata": {"owner": "gatehouse"},
        }
    )


def _session(
    client: stripe.StripeClient, customer: str, config: str, return_url: str | None = RETURN_URL
) -> stripe.billing_portal.Session:
    params: dict[str, str] = {"customer": customer, "configuration": config}
    if return_url:
        params["return_url"] = return_url
    return client.v1.billing_portal.sessions.create(params=params)  # type: ignore[arg-type]


def _act(url: str, **form: str) -> httpx.Response:
    return httpx.post(url, data=form, follow_redirects=True)


def test_configurations_are_created_retrieved_updated_and_listed(client: stripe.StripeClient) -> None:
    pro, business = make_price(client, 3000, name="Pro"), make_price(client, 9000, name="Business")
    config = _configuration(client, pro)
    assert config.id.startswith("bpc_") and config.active and not config.is_default
    assert config.features.subscription_update.products is not None
    assert [p.prices for p in config.features.subscription_update.products] == [[pro.id]]
    assert config.default_return_url == RETURN_URL and config.metadata is not None
    assert config.metadata.to_dict() == {"owner": "gatehouse"}

    products: Any = [{"product": str(p.product), "prices": [p.id]} for p in (pro, business)]
    updated = client.v1.billing_portal.configurations.update(
        config.id, params={"features": {"subscription_update": {"products": products}}}
    )
    offered = updated.features.subscription_update.products
    assert offered is not None and [p.product for p in offered] == [pro.product, business.product]
    assert updated.features.invoice_history.enabled  # untouched features stay

    assert client.v1.billing_portal.configurations.retrieve(config.id).id == config.id
    listed = client.v1.billing_portal.configurations.list(params={"active": True})
    assert [c.id for c in listed.data] == [config.id]
    client.v1.billing_portal.configurations.update(config.id, params={"active": False})
    assert client.v1.billing_portal.configurations.list(params={"active": True}).data == []


def test_bad_configurations_are_refused(client: stripe.StripeClient) -> None:
    pro, other = make_price(client, 3000), make_price(client, 100)
    with pytest.raises(stripe.InvalidRequestError, match="features"):
        client.v1.billing_portal.configurations.create(params={"metadata": {"a": "b"}})  # type: ignore[typeddict-item]
    with pytest.raises(stripe.InvalidRequestError, match="does not belong"):
        client.v1.billing_portal.configurations.create(
            params={
                "features": {
                    "subscription_update": {
                        "enabled": True,
                        "default_allowed_updates": ["price"],
                        "products": [{"product": str(pro.product), "prices": [other.id]}],
                    }
                }
            }
        )
    with pytest.raises(stripe.InvalidRequestError, match="No such configuration"):
        client.v1.billing_portal.configurations.retrieve("bpc_missing")


def test_a_session_needs_a_customer_and_a_return_url(client: stripe.StripeClient, emulator: Control) -> None:
    sub = subscribe(client, emulator, make_price(client).id)
    with pytest.raises(stripe.InvalidRequestError, match="No such customer"):
        client.v1.billing_portal.sessions.create(params={"customer": "cus_missing", "return_url": RETURN_URL})
    with pytest.raises(stripe.InvalidRequestError, match="return_url"):
        client.v1.billing_portal.sessions.create(params={"customer": str(sub.customer)})
    # without a configuration: the default one (made on first use, as the dashboard's)
    session = client.v1.billing_portal.sessions.create(
        params={"customer": str(sub.customer), "return_url": RETURN_URL}
    )
    default = client.v1.billing_portal.configurations.retrieve(str(session.configuration))
    assert default.is_default and not default.features.subscription_update.enabled


def test_the_page_updates_the_card_and_fires_the_webhooks(
    client: stripe.StripeClient, emulator: Control, webhook_receiver: Receiver
) -> None:
    price = make_price(client, 3000, name="Pro")
    sub = subscribe(client, emulator, price.id)
    customer = str(sub.customer)
    session = _session(client, customer, _configuration(client, price).id)
    assert session.url == f"{emulator.base_url}/billing_portal/{session.id}"
    assert session.return_url == RETURN_URL and session.customer == customer

    page = httpx.get(session.url)
    assert page.status_code == 200
    assert "Pro" in page.text and "$30.00 per day" in page.text and "Visa •••• 4242" in page.text
    assert f'href="{RETURN_URL}"' in page.text
    invoice = client.v1.invoices.retrieve(str(sub.latest_invoice))
    assert f'href="{invoice.hosted_invoice_url}"' in page.text

    emulator.flush()
    webhook_receiver.clear()
    done = _act(session.url, action="card", card_number="5555 5555 5555 4444", exp_month="4", exp_year="2031")
    assert done.status_code == 200 and "Your payment method was updated." in done.text
    assert "Mastercard •••• 4444 · expires 04/2031" in done.text
    emulator.flush()
    assert webhook_receiver.types() == [
        "payment_method.attached",
        "customer.updated",
        "customer.subscription.updated",
    ]
    updated = webhook_receiver.events()[1]
    assert updated.data.previous_attributes is not None
    pm_id = updated.data.object["invoice_settings"]["default_payment_method"]
    pm = client.v1.payment_methods.retrieve(pm_id)
    assert (pm.card and (pm.card.last4, pm.card.exp_month, pm.card.exp_year)) == ("4444", 4, 2031)
    assert client.v1.subscriptions.retrieve(sub.id).default_payment_method == pm_id


@pytest.mark.parametrize(
    ("number", "month", "year", "message", "status"),
    [
        ("4000000000000002", "1", "2032", "Your card was declined.", 402),
        ("1234123412341234", "1", "2032", "not one of Stripe&#39;s test cards", 400),
        ("4242424242424242", "13", "2032", "expiration month is invalid", 400),
        ("4242424242424242", "1", "2001", "expiration year is in the past", 400),
        ("4242424242424242", "", "", "expiration date is incomplete", 400),
    ],
)
def test_a_refused_card_changes_nothing(
    client: stripe.StripeClient,
    emulator: Control,
    webhook_receiver: Receiver,
    number: str,
    month: str,
    year: str,
    message: str,
    status: int,
) -> None:
    sub = subscribe(client, emulator, make_price(client).id)
    session = _session(client, str(sub.customer), _configuration(client).id)
    emulator.flush()
    webhook_receiver.clear()
    answer = _act(session.url, action="card", card_number=number, exp_month=month, exp_year=year)
    assert answer.status_code == status and message in answer.text
    emulator.flush()
    assert webhook_receiver.types() == []
    settings = client.v1.customers.retrieve(str(sub.customer)).invoice_settings
    assert settings is not None and settings.default_payment_method is None


def test_a_card_whose_charges_fail_makes_the_next_renewal_fail(
    client: stripe.StripeClient, emulator: Control, webhook_receiver: Receiver
) -> None:
    sub = subscribe(client, emulator, make_price(client).id)
    session = _session(client, str(sub.customer), _configuration(client).id)
    _act(session.url, action="card", card_number="4000000000000341", exp_month="1", exp_year="2033")
    emulator.advance(30 * 86400 + 3700)
    emulator.flush()
    assert "invoice.payment_failed" in webhook_receiver.types()


def test_cancel_at_period_end_and_renew(
    client: stripe.StripeClient, emulator: Control, webhook_receiver: Receiver
) -> None:
    sub = subscribe(client, emulator, make_price(client).id)
    session = _session(client, str(sub.customer), _configuration(client).id)
    emulator.flush()
    webhook_receiver.clear()
    canceled = _act(session.url, action="cancel", subscription=sub.id)
    assert "Your plan was canceled." in canceled.text and "will be canceled on" in canceled.text
    after = client.v1.subscriptions.retrieve(sub.id)
    assert after.cancel_at_period_end and after.status == "active"
    renewed = _act(session.url, action="renew", subscription=sub.id)
    assert "Your plan was renewed." in renewed.text
    assert not client.v1.subscriptions.retrieve(sub.id).cancel_at_period_end
    emulator.flush()
    events = webhook_receiver.events()
    assert [e.type for e in events] == ["customer.subscription.updated"] * 2
    assert [e.data.object["cancel_at_period_end"] for e in events] == [True, False]


def test_switch_plan_among_the_configurations_prices(
    client: stripe.StripeClient, emulator: Control, webhook_receiver: Receiver
) -> None:
    pro, business = make_price(client, 3000, name="Pro"), make_price(client, 9000, name="Business")
    elsewhere = make_price(client, 500, name="Hidden")
    sub = subscribe(client, emulator, pro.id)
    session = _session(client, str(sub.customer), _configuration(client, pro, business).id)
    page = httpx.get(session.url).text
    assert "Switch to Business" in page and "Switch to Pro" not in page and "Hidden" not in page

    refused = _act(session.url, action="switch", subscription=sub.id, price=elsewhere.id)
    assert refused.status_code == 400 and "not offered in this portal" in refused.text
    emulator.flush()
    webhook_receiver.clear()
    switched = _act(session.url, action="switch", subscription=sub.id, price=business.id)
    assert "Your plan was changed." in switched.text and "$90.00 per day" in switched.text
    after = client.v1.subscriptions.retrieve(sub.id)
    assert after["items"].data[0].price.id == business.id
    emulator.flush()
    assert "customer.subscription.updated" in webhook_receiver.types()


def test_someone_elses_subscription_and_unknown_sessions_are_refused(
    client: stripe.StripeClient, emulator: Control
) -> None:
    price = make_price(client)
    mine = subscribe(client, emulator, price.id, email="ada@example.com")
    theirs = subscribe(client, emulator, price.id, email="bob@example.com")
    session = _session(client, str(mine.customer), _configuration(client).id)
    answer = _act(session.url, action="cancel", subscription=theirs.id)
    assert answer.status_code == 400 and "not yours" in answer.text
    assert not client.v1.subscriptions.retrieve(theirs.id).cancel_at_period_end
    assert httpx.get(f"{emulator.base_url}/billing_portal/bps_missing").status_code == 404
    assert re.search(r"Unknown action", _act(session.url, action="explode").text)
