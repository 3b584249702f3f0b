"""Small helpers every router uses: the state, the advertised base URL, faults, bearer tokens."""

from __future__ import annotations

import asyncio
from http import HTTPStatus

from fastapi import Request
from fastapi.responses import PlainTextResponse, Response

from .config import Provider
from .state import EmulatorState

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def get_state(request: Request) -> EmulatorState:
    state: EmulatorState = request.app.state.oauth_emulator
    return state


def base_url(request: Request) -> str:
    """The configured base URL, else the one the client used (tests serve on a random port)."""
    configured = get_state(request).config.base_url
    return (configured or str(request.base_url)).rstrip("/")


def browser_base(request: Request) -> str:
    """Where a browser reaches the emulator (the consent page): browser_url, else base_url."""
    return get_state(request).config.browser_url or base_url(request)


async def fault_response(state: EmulatorState, provider: Provider, endpoint: str) -> Response | None:
    """Apply a pending fault: wait its delay, then answer its status (None: answer normally)."""
    fault = state.take_fault(provider, endpoint)
    if fault is None:
        return None
    if fault.delay_seconds:
        await asyncio.sleep(fault.delay_seconds)
    if fault.status is None:
        return None
    try:
        phrase = HTTPStatus(fault.status).phrase
    except ValueError:
        phrase = "Emulated fault"
    return PlainTextResponse(phrase, status_code=fault.status)


def bearer_token(request: Request, *, schemes: tuple[str, ...] = ("bearer",)) -> str | None:
    """The credentials of `Authorization: <scheme> <token>` for one of `schemes` (case-insensitive)."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    value = value.strip()
    return value if scheme.lower() in schemes and value else None
