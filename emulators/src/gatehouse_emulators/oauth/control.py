"""Test control under `/_emulator`: users, faults, the clock, reset; plus `/healthz` and avatars."""

from __future__ import annotations

import hashlib
from typing import Any
from xml.sax.saxutils import escape

from fastapi import APIRouter, Depends, HTTPException, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .common import get_state
from .config import PROVIDERS, GitHubUser, GoogleUser, Provider
from .state import EmulatorState, FaultSpec

router = APIRouter(tags=["emulator control"])


class UserUpsert(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: Provider
    user: dict[str, Any] = Field(description="a Google or GitHub user, as in the --users file")


class ClockAdvance(BaseModel):
    seconds: float = Field(gt=0, le=10 * 365 * 86400)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/_emulator/users")
async def list_users(state: EmulatorState = Depends(get_state)) -> dict[str, list[dict[str, Any]]]:
    return {provider: [user.model_dump() for user in state.users(provider)] for provider in PROVIDERS}


@router.post("/_emulator/users", status_code=201)
async def put_user(body: UserUpsert, state: EmulatorState = Depends(get_state)) -> dict[str, Any]:
    """Add a user, or replace the one with the same key; answers the stored user (with defaults)."""
    model = GoogleUser if body.provider == "google" else GitHubUser
    try:
        user = model.model_validate(body.user)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", "user", *error["loc"])} for error in exc.errors(include_context=False)]
        ) from exc
    state.put_user(user)
    return user.model_dump()


@router.delete("/_emulator/users/{provider}/{key}", status_code=204)
async def delete_user(provider: Provider, key: str, state: EmulatorState = Depends(get_state)) -> Response:
    if not state.delete_user(provider, key):
        raise HTTPException(404, f"no {provider} user {key!r}")
    return Response(status_code=204)


@router.post("/_emulator/faults", status_code=201)
async def add_fault(fault: FaultSpec, state: EmulatorState = Depends(get_state)) -> dict[str, Any]:
    state.add_fault(fault)
    return fault.model_dump()


@router.get("/_emulator/faults")
async def list_faults(state: EmulatorState = Depends(get_state)) -> list[dict[str, object]]:
    return state.faults()


@router.delete("/_emulator/faults", status_code=204)
async def clear_faults(state: EmulatorState = Depends(get_state)) -> Response:
    state.clear_faults()
    return Response(status_code=204)


@router.post("/_emulator/clock/advance")
async def advance_clock(body: ClockAdvance, state: EmulatorState = Depends(get_state)) -> dict[str, float]:
    """Move the emulator's clock: codes, consents and access tokens expire as if time had passed."""
    return {"now": state.advance_clock(body.seconds)}


@router.post("/_emulator/reset", status_code=204)
async def reset(state: EmulatorState = Depends(get_state)) -> Response:
    """Back to the configured users, no codes, tokens or faults, clock at real time."""
    state.reset()
    return Response(status_code=204)


@router.get("/_emulator/avatars/{provider}/{key}.svg")
async def avatar(provider: Provider, key: str, state: EmulatorState = Depends(get_state)) -> Response:
    """A generated avatar, so the default `picture` / `avatar_url` work offline."""
    user = state.find_user(provider, key)
    if user is None:
        raise HTTPException(404, "no such user")
    initial = (user.name or user.key)[:1].upper()
    hue = int(hashlib.sha256(user.key.encode()).hexdigest()[:4], 16) % 360
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="96" height="96" viewBox="0 0 96 96">'
        f'<rect width="96" height="96" fill="hsl({hue},55%,45%)"/>'
        '<text x="48" y="62" font-family="sans-serif" font-size="44" fill="#fff" text-anchor="middle">'
        f"{escape(initial)}</text></svg>"
    )
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=3600"})
