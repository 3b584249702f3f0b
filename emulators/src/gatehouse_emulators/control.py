"""What the small emulators (Pwned Passwords, CAPTCHA) share so that tests and drills can steer
them: the log of the requests each was sent, faults injected into its next answers (a delay, an
error status, so many times) and a reset. One state base class and one router serve both:
`GET`/`DELETE /_emulator/requests`, `POST`/`DELETE /_emulator/faults`, `POST /_emulator/reset`."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field


@dataclass
class Fault:
    delay_seconds: float
    status: int | None
    times: int


class FaultIn(BaseModel):
    delay_seconds: float = Field(default=0, ge=0, le=30)
    status: int | None = Field(default=None, ge=400, le=599)
    times: int = Field(default=1, ge=1, le=1000)


class ControlledState:
    """The request log and the faults to come, under one lock. An emulator's state adds its own
    fields in `reset` (calling this one's first, outside its own `with self.lock`)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.requests: list[dict[str, Any]] = []
            self.faults: list[Fault] = []

    def record(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.requests.append(entry)

    def next_fault(self) -> Fault | None:
        with self.lock:
            if not self.faults:
                return None
            fault = self.faults[0]
            fault.times -= 1
            if fault.times <= 0:
                self.faults.pop(0)
            return fault

    async def injected_status(self) -> int | None:
        """Apply the next fault, if one is set: wait its delay, then the status to answer with
        instead of the real answer (None: answer as usual)."""
        fault = self.next_fault()
        if fault is None:
            return None
        await asyncio.sleep(fault.delay_seconds)
        return fault.status


def control_router(state_of: Callable[[Request], ControlledState]) -> APIRouter:
    """The control endpoints over the state `state_of` finds for a request."""
    router = APIRouter(prefix="/_emulator")

    @router.get("/requests")
    async def requests(request: Request) -> list[dict[str, Any]]:
        state = state_of(request)
        with state.lock:
            return list(state.requests)

    @router.delete("/requests", status_code=204)
    async def forget_requests(request: Request) -> None:
        state = state_of(request)
        with state.lock:
            state.requests.clear()

    @router.post("/faults", status_code=201)
    async def add_fault(body: FaultIn, request: Request) -> dict[str, Any]:
        state = state_of(request)
        with state.lock:
            state.faults.append(Fault(body.delay_seconds, body.status, body.times))
        return body.model_dump()

    @router.delete("/faults", status_code=204)
    async def clear_faults(request: Request) -> None:
        state = state_of(request)
        with state.lock:
            state.faults.clear()

    @router.post("/reset", status_code=204)
    async def reset(request: Request) -> None:
        state_of(request).reset()

    return router
