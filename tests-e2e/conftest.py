"""tests-e2e: the whole running system (harness.py), driven as clients do, through the gateway."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from otlp import Received, otlp_receiver

from harness import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    PASSWORD,
    System,
    link_in,
    running_system,
    text_of,
)

__all__ = [
    "ADMIN_EMAIL",
    "ADMIN_PASSWORD",
    "PASSWORD",
    "System",
    "bearer",
    "link_in",
    "new_email",
    "text_of",
    "verified_user",
]


@pytest.fixture(scope="session")
def traces() -> Iterator[Received]:
    """Every span the system exports: it runs with tracing on, into this receiver."""
    with otlp_receiver() as received:
        yield received


@pytest.fixture(scope="session")
def system(tmp_path_factory: pytest.TempPathFactory, traces: Received) -> Iterator[System]:
    tracing = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": traces.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "200",  # export within a fraction of a second
    }
    with running_system(tmp_path_factory.mktemp("var"), settings=tracing) as running:
        yield running
        # The Stripe emulator runs in its own process here: its schema check is read at the end.
        report = httpx.get(f"{running.urls['stripe']}/_emulator/conformance", timeout=30).json()
        assert report["violations"] == [], (
            "The Stripe emulator sent bodies that break Stripe's schemas:\n"
            + "\n".join(
                f"  {v['object_type']} at {v['path']}: {v['message']}  [{v['source']}]"
                for v in report["violations"]
            )
        )


@pytest.fixture(scope="session")
async def client(system: System) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the gateway, as a frontend or API consumer would be."""
    async with httpx.AsyncClient(base_url=system.gateway, timeout=30) as http:
        yield http


def new_email() -> str:
    return f"e2e-{uuid.uuid4().hex[:12]}@example.com"


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def verified_user(system: System, client: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    """A new user who confirmed their address by the emailed link, signed in: (email, auth headers)."""
    email = new_email()
    body = {"email": email, "username": f"b{uuid.uuid4().hex[:10]}", "password": PASSWORD}
    assert (await client.post("/auth/register", json=body)).status_code == 202
    link = link_in(await system.wait_for_mail(email, "confirm your email"), r"https?://\S+token=[\w-]+")
    token = parse_qs(urlsplit(link).query)["token"][0]  # the link opens the web page; an API client verifies
    verified = await client.get("/auth/verify", params={"token": token})
    assert verified.status_code == 200 and verified.json()["status"] == "verified"
    tokens = (await client.post("/auth/login", json={"email": email, "password": PASSWORD})).json()
    return email, bearer(tokens)
