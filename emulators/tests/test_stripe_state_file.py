"""`make run` restarts the emulator with the rest of the system: with a state file, what billing
created at "Stripe" (products, prices, customers, subscriptions) and the clock survive a restart."""

from __future__ import annotations

from pathlib import Path

import httpx
from stripe_support import sdk_client

from gatehouse_emulators.stripe import StripeEmulatorConfig, create_app
from gatehouse_platform.testing import serve_in_thread


def test_objects_and_clock_survive_a_restart(tmp_path: Path) -> None:
    config = StripeEmulatorConfig(
        webhook_url=None, clock="frozen", state_file=str(tmp_path / "stripe.json"), check_schemas=True
    )
    with serve_in_thread(create_app(config)) as url, sdk_client(url) as sdk:
        customer = sdk.v1.customers.create(params={"email": "ada@example.com"})
        price = sdk.v1.prices.create(
            params={
                "unit_amount": 900,
                "currency": "usd",
                "recurring": {"interval": "month"},
                "product_data": {"name": "Starter"},
            }
        )
        moved = httpx.post(f"{url}/_emulator/clock/advance", json={"seconds": 3600}).json()

    with serve_in_thread(create_app(config)) as url, sdk_client(url) as sdk:
        assert sdk.v1.customers.retrieve(customer.id).email == "ada@example.com"
        assert sdk.v1.prices.retrieve(price.id).unit_amount == 900
        assert httpx.get(f"{url}/_emulator/clock").json()["now"] == moved["now"]
        # new ids do not collide with the restored ones
        assert sdk.v1.customers.create(params={"email": "grace@example.com"}).id != customer.id


def test_without_a_state_file_nothing_is_kept(tmp_path: Path) -> None:
    config = StripeEmulatorConfig(webhook_url=None, clock="frozen", check_schemas=True)
    with serve_in_thread(create_app(config)) as url, sdk_client(url) as sdk:
        customer = sdk.v1.customers.create(params={"email": "ada@example.com"})
    with serve_in_thread(create_app(config)) as url, sdk_client(url) as sdk:
        assert sdk.v1.customers.list(params={"email": "ada@example.com"}).data == []
        assert customer.id
