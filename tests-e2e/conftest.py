"""tests-e2e: the whole running system (harness.py), driven as clients do, through the gateway."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from harness import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    PASSWORD,
    System,
    link_in,
    running_system,
    text_of,
)

__all__ = ["ADMIN_EMAIL", "ADMIN_PASSWORD", "PASSWORD", "System", "bearer", "link_in", "new_email", "text_of"]


@pytest.fixture(scope="session")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    with running_system(tmp_path_factory.mktemp("var")) as running:
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
