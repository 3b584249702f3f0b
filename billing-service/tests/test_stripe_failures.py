"""When Stripe fails: our errors, not Stripe's (503 unreachable, 502 refused), and nothing half done."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_service.errors import PaymentProviderError, PaymentProviderUnavailable
from billing_service.integrations.stripe import StripeRequestRejected, stripe_gateway
from billing_service.main import create_app
from billing_service.models import Plan
from billing_service.settings import Settings
from conftest import new_code
from gatehouse_platform.testing import free_port, serve_in_thread


@pytest.fixture(scope="module")
def stripe_down_url(settings: Settings) -> Iterator[str]:
    """billing-service whose Stripe address answers nothing (a closed port)."""
    broken = settings.model_copy(
        update={"stripe_api_base": f"http://127.0.0.1:{free_port()}", "webhook_processor_enabled": False}
    )
    with serve_in_thread(create_app(broken, run_relay=False, run_consumers=False)) as base:
        yield base


async def test_stripe_unreachable_is_a_503_and_changes_nothing(
    stripe_down_url: str, admin: dict[str, str], db: async_sessionmaker[AsyncSession]
) -> None:
    code = new_code()
    async with httpx.AsyncClient(base_url=stripe_down_url) as http:
        response = await http.post(
            "/billing/plans", json={"code": code, "name": "X", "tier": "pro", "amount": 100}, headers=admin
        )
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"].endswith("/payment-provider-unavailable")
    assert response.headers["retry-after"]
    async with db() as session:
        assert (await session.execute(select(Plan).where(Plan.code == code))).first() is None


def stripe_errors(kind: str) -> float:
    return REGISTRY.get_sample_value("billing_stripe_api_errors_total", {"kind": kind}) or 0.0


async def test_the_gateway_turns_stripe_failures_into_our_errors(settings: Settings) -> None:
    before = {kind: stripe_errors(kind) for kind in ("unreachable", "rejected", "error")}
    down = stripe_gateway(settings.model_copy(update={"stripe_api_base": f"http://127.0.0.1:{free_port()}"}))
    with pytest.raises(PaymentProviderUnavailable):
        await down.retrieve_subscription("sub_anything")
    await down.aclose()

    gateway = stripe_gateway(settings)
    with pytest.raises(StripeRequestRejected) as missing:
        await gateway.retrieve_subscription("sub_does_not_exist")
    assert missing.value.code == "resource_missing" and missing.value.status == 502
    await gateway.aclose()

    unauthorized = stripe_gateway(settings.model_copy(update={"stripe_api_key": "rk_wrong"}))
    with pytest.raises(PaymentProviderError):
        await unauthorized.create_customer(user_id=uuid.uuid4(), email="a@example.com")
    await unauthorized.aclose()
    # Each counted once by kind, for the alert on Stripe's errors.
    assert {kind: stripe_errors(kind) - count for kind, count in before.items()} == {
        "unreachable": 1,
        "rejected": 1,
        "error": 1,
    }
