"""Fixtures for the Stripe emulator tests; a test module loads them with
`pytest_plugins = ["stripe_fixtures"]`.

One emulator and one webhook receiver are served over real HTTP for the session; every test starts
from `POST /_emulator/reset`. The clock is frozen, so time moves only when a test advances it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import stripe
from stripe_support import WEBHOOK_SECRET, Control, Receiver, sdk_client

from gatehouse_emulators.stripe import StripeEmulatorConfig, create_app
from gatehouse_platform.testing import serve_in_thread


@pytest.fixture(scope="session")
def webhook_receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    with serve_in_thread(receiver.app()) as url:
        receiver.url = url
        yield receiver


@pytest.fixture(scope="session")
def stripe_emulator_url(webhook_receiver: Receiver) -> Iterator[str]:
    config = StripeEmulatorConfig(
        webhook_url=webhook_receiver.url + "/webhook",
        webhook_secret=WEBHOOK_SECRET,
        webhook_retry_delay=0.02,
        webhook_max_attempts=4,
        clock="frozen",
        check_schemas=True,
    )
    with serve_in_thread(create_app(config)) as url:
        yield url


@pytest.fixture
def emulator(stripe_emulator_url: str, webhook_receiver: Receiver) -> Iterator[Control]:
    control = Control(stripe_emulator_url)
    control.reset()
    webhook_receiver.clear()
    yield control
    control.http.close()


@pytest.fixture
def client(emulator: Control) -> Iterator[stripe.StripeClient]:
    with sdk_client(emulator.base_url) as sdk:
        yield sdk
