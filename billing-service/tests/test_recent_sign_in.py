"""BILLING_RECENT_AUTH_SECONDS: when set, changing plan and cancelling need a recent sign-in, judged
from the token's auth_time alone (401 reauthentication-required, the problem auth-service answers,
and nothing changes at Stripe or here); unset (the default), any valid token will do."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import stripe
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_service.main import create_app
from billing_service.settings import Settings
from conftest import NewPlan, PaidSubscription, User, subscription_row
from gatehouse_platform.testing import TestIssuer, serve_in_thread

RECENT = 300
HOUR = 3600


@pytest.fixture(scope="module")
def strict_url(settings: Settings) -> Iterator[str]:
    """billing-service asking for a sign-in at most RECENT seconds old (same database and Stripe)."""
    strict = settings.model_copy(update={"recent_auth_seconds": RECENT, "webhook_processor_enabled": False})
    with serve_in_thread(create_app(strict, run_relay=False, run_consumers=False)) as base:
        yield base


@pytest.fixture
async def strict(strict_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=strict_url, timeout=30) as client:
        yield client


def signed_in(issuer: TestIssuer, user: User, seconds_ago: int | None) -> dict[str, str]:
    """The user's bearer token, its sign-in `seconds_ago` (None: a token without auth_time)."""
    claims = {} if seconds_ago is None else {"auth_time": int(time.time()) - seconds_ago}
    return issuer.bearer(user.id, email=user.email, amr=["pwd"], **claims)


def is_reauthentication_required(response: httpx.Response) -> bool:
    return (
        response.status_code == 401
        and response.headers["content-type"].startswith("application/problem+json")
        and response.json()["type"] == "https://gatehouse.dev/problems/reauthentication-required"
    )


async def test_by_default_an_old_sign_in_may_still_cancel(
    client: httpx.AsyncClient, paid_subscription: PaidSubscription, issuer: TestIssuer
) -> None:
    current = await paid_subscription(amount=1000)
    old = signed_in(issuer, current.user, seconds_ago=30 * 24 * HOUR)
    canceled = await client.post("/billing/subscriptions/cancel", headers=old)
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["cancel_at_period_end"] is True


async def test_when_asked_an_old_sign_in_cannot_cancel_or_change_plan_and_nothing_changes(
    strict: httpx.AsyncClient,
    paid_subscription: PaidSubscription,
    new_plan: NewPlan,
    issuer: TestIssuer,
    sdk: stripe.StripeClient,
    db: async_sessionmaker[AsyncSession],
) -> None:
    current = await paid_subscription(amount=1000)
    target = await new_plan(amount=3000)
    for headers in (signed_in(issuer, current.user, RECENT + 60), signed_in(issuer, current.user, None)):
        cancel = await strict.post("/billing/subscriptions/cancel", headers=headers)
        assert is_reauthentication_required(cancel), cancel.text
        assert "/auth/reauthenticate" in cancel.json()["detail"]
        upgrade = await strict.post(
            "/billing/subscriptions/upgrade", json={"plan_code": target["code"]}, headers=headers
        )
        assert is_reauthentication_required(upgrade), upgrade.text
    row = await subscription_row(db, current.subscription_id)
    assert row.cancel_at_period_end is False and str(row.plan_id) == current.plan["id"]
    at_stripe = sdk.v1.subscriptions.retrieve(current.stripe_subscription_id)
    assert at_stripe.cancel_at_period_end is False
    assert at_stripe["items"].data[0].price.id == current.plan["stripe_price_id"]

    # reading is never held back
    old = signed_in(issuer, current.user, RECENT + 60)
    assert (await strict.get("/billing/subscriptions/me", headers=old)).status_code == 200


async def test_when_asked_a_recent_sign_in_changes_plan_and_cancels(
    strict: httpx.AsyncClient, paid_subscription: PaidSubscription, new_plan: NewPlan, issuer: TestIssuer
) -> None:
    current = await paid_subscription(amount=1000)
    target = await new_plan(amount=3000)
    fresh = signed_in(issuer, current.user, seconds_ago=10)
    upgrade = await strict.post(
        "/billing/subscriptions/upgrade", json={"plan_code": target["code"]}, headers=fresh
    )
    assert upgrade.status_code == 200, upgrade.text
    assert upgrade.json()["plan"]["code"] == target["code"]
    canceled = await strict.post("/billing/subscriptions/cancel", headers=fresh)
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["cancel_at_period_end"] is True
    resumed = await strict.post(
        "/billing/subscriptions/resume", headers=signed_in(issuer, current.user, RECENT + 60)
    )
    assert resumed.status_code == 200 and resumed.json()["cancel_at_period_end"] is False


def test_the_setting_is_off_unless_set() -> None:
    assert Settings().recent_auth_seconds is None
    assert Settings(recent_auth_seconds=600).recent_auth_seconds == 600
