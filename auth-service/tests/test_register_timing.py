"""Registering an address that has an account takes as long as registering a new one, within the
noise of the endpoint itself: the answer's timing tells no one which addresses have accounts.

Runs on an app of its own with the production Argon2 cost (the shared test app lowers it), since
hashing is the work both ways must do. No absolute durations: the gap between the two kinds'
medians is compared with the spread within each kind, measured in the same run, requests of the
two kinds interleaved so a busy machine slows both alike.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager

from auth_service.main import create_app
from auth_service.settings import Settings
from conftest import PASSWORD, make_settings, new_email, new_username, register

ROUNDS = 30


@pytest.fixture
async def production_cost_client(database_url: str, amqp_url: str) -> AsyncIterator[httpx.AsyncClient]:
    defaults = Settings.model_fields
    settings = make_settings(
        database_url,
        amqp_url,
        argon2_time_cost=defaults["argon2_time_cost"].default,
        argon2_memory_kib=defaults["argon2_memory_kib"].default,
    )
    app = create_app(settings, run_relay=False)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://auth.test") as client,
    ):
        yield client


def spread(samples: list[float]) -> float:
    """The interquartile range: how much the samples vary, outliers aside."""
    quartiles = statistics.quantiles(samples, n=4)
    return quartiles[2] - quartiles[0]


async def test_an_existing_email_is_not_told_apart_by_timing(
    production_cost_client: httpx.AsyncClient,
) -> None:
    """Each round registers a new address, the existing one, and another new address, back to
    back in a rotating order. The kinds' difference is new minus existing within a round; the
    endpoint's own noise is new minus new within the same round. Pairing within a round cancels
    what the machine's load does over time (it slows the three alike), so the check keeps its
    power on a busy machine: without the hash on the existing path, the gap is the hash's time,
    many times the noise."""
    client = production_cost_client
    existing = (await register(client))["email"]

    async def timed(email: str) -> float:
        body = {"email": email, "username": new_username(), "password": PASSWORD}
        started = time.perf_counter()
        response = await client.post("/auth/register", json=body)
        elapsed = time.perf_counter() - started
        assert response.status_code == 202, response.text
        return elapsed

    for _ in range(3):  # warm-up: connections, caches
        await timed(new_email())
        await timed(existing)
    between_kinds: list[float] = []
    within_kind: list[float] = []
    for round_ in range(ROUNDS):
        order = ["new", "existing", "other new"]
        order = order[round_ % 3 :] + order[: round_ % 3]
        took = {kind: await timed(existing if kind == "existing" else new_email()) for kind in order}
        between_kinds.append(took["new"] - took["existing"])
        within_kind.append(took["new"] - took["other new"])

    gap = abs(statistics.median(between_kinds))
    noise = spread(within_kind)
    report = (
        f"new - existing: median {statistics.median(between_kinds) * 1000:.1f} ms; "
        f"new - new: median {statistics.median(within_kind) * 1000:.1f} ms, "
        f"spread {noise * 1000:.1f} ms"
    )
    print(report)
    assert gap <= noise, report
