"""web/tests: the pages in this process (fast: security headers, CSRF, return_to, cookies,
translations) and in Debian's Chromium against the whole running system (the test_browser*.py
modules, with tests-e2e's harness). Run with `-n 2 --dist loadfile`: a module runs whole on one
worker, and every browser module on a worker shares that worker's one system (`whole_system`)."""

from __future__ import annotations

import re
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from gatehouse_web.api import Api
from gatehouse_web.main import create_app
from gatehouse_web.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests-e2e"))  # harness.py: the whole system, shared with tests-e2e
from harness import System, running_system  # noqa: E402 - found through the path above

SCREENSHOTS = ROOT / "var" / "web-tests"

APP_ORIGIN = "https://app.example.test"
PAGES = [
    "/register",
    "/login",
    "/login/code",
    "/forgot-password",
    "/reset-password?token=t0k3n-abcdef",
    "/verify-email?token=t0k3n-abcdef",
]


# What the in-process page tests' fakes of the API answer alike.
PROBLEMS = "https://gatehouse.dev/problems/"
USER = {
    "id": "0b7f1c7e-6a1f-4f7e-9a55-3f4f0c7b2a10",
    "email": "ada@example.com",
    "username": "ada",
    "email_verified": True,
    "created_at": "2026-01-02T03:04:05+00:00",
    "profile": {},
}
SIGNED_IN = {"access_token": "acc-1", "refresh_token": "ref-1", "expires_in": 900}  # /auth/login's answer


def problem(status: int, slug: str, retry_after: int | None = None, **extra: object) -> httpx.Response:
    """A problem+json answer of the API (with Retry-After when given)."""
    body = {"type": PROBLEMS + slug, "title": slug, "status": status, **extra}
    headers = {"Retry-After": str(retry_after)} if retry_after else {}
    return httpx.Response(status, json=body, headers=headers)


def web_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "environment": "test",
        "log_json": False,
        "api_url": "http://api.invalid:9",
        "return_to_origins": [APP_ORIGIN],
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
async def make_web() -> AsyncIterator[Callable[..., object]]:
    managers: list[LifespanManager] = []

    async def make(api: httpx.AsyncBaseTransport | None = None, **overrides: object) -> httpx.AsyncClient:
        """The web app in this process; `api` answers its API calls instead of a gateway."""
        settings = web_settings(**overrides)
        app = create_app(settings)
        if api is not None:
            app.state.web.api = Api(settings, transport=api)
        manager = LifespanManager(app)
        await manager.__aenter__()
        managers.append(manager)
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://web.test")

    yield make  # type: ignore[misc]
    for manager in managers:
        await manager.__aexit__(None, None, None)


@pytest.fixture
async def web(make_web: Callable[..., object]) -> httpx.AsyncClient:
    client = await make_web()  # type: ignore[misc]
    assert isinstance(client, httpx.AsyncClient)
    return client


@pytest.fixture(scope="session")
def whole_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """The whole system, started once per worker, when its first browser module asks for it (a
    start costs tens of seconds; the journeys make their own accounts and never share one)."""
    with running_system(tmp_path_factory.mktemp("var"), run_prefix="gh_web") as running:
        yield running


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert match, "no CSRF token in the form"
    return match.group(1)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    """A failed browser test leaves a screenshot of its page in var/web-tests/<test>.png."""
    report = yield
    page = getattr(item, "page_for_screenshot", None)
    if page is not None and report.failed and call.when in ("call", "teardown"):  # type: ignore[attr-defined]
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        target = SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', item.name)}.png"
        try:
            page.screenshot(path=str(target), full_page=True)
            report.sections.append(("screenshot", str(target)))  # type: ignore[attr-defined]
        except Exception as exc:  # the page may be gone; the failure itself matters more
            report.sections.append(("screenshot", f"none: {exc}"))  # type: ignore[attr-defined]
    return report
