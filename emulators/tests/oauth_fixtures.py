"""Fixtures for the OAuth emulator tests; a test module loads them with
`pytest_plugins = ["oauth_fixtures"]`.

`base` serves one emulator per test module over real HTTP; `http` is a client of it that does not
follow redirects, and every test starts from `POST /_emulator/reset`."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from gatehouse_emulators.oauth import create_app
from gatehouse_platform.testing import serve_in_thread


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with serve_in_thread(create_app()) as url:
        yield url


@pytest.fixture
def http(base: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, follow_redirects=False, timeout=10) as client:
        client.post("/_emulator/reset").raise_for_status()
        yield client
