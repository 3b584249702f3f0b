"""The Pwned Passwords emulator: `GET /range/{first 5 hex of the SHA-1}` answers `SUFFIX:COUNT`
lines as api.pwnedpasswords.com does (CRLF, uppercase, padded with zero-count lines when the client
sends `Add-Padding: true`), for the passwords it was seeded with. It records every request, so a
test can check that only the five-character prefix ever arrived, and takes faults (slow or failing
answers) to drive a client's timeout.

gatehouse-pwned-emulator --host 127.0.0.1 --port 8091 [--passwords FILE]
"""

from __future__ import annotations

import argparse
import hashlib
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field, model_validator

from gatehouse_emulators.control import ControlledState, control_router

PREFIX = re.compile(r"^[0-9A-Fa-f]{5}$")
SHA1 = re.compile(r"^[0-9A-Fa-f]{40}$")
PADDED_LINES = (800, 1000)  # the real API pads each answer to a random size in this range

DEFAULT_BREACHED: dict[str, int] = {
    # Seeded by default, so `make run` refuses them; tests seed their own through the control API.
    "Password1234!": 52_000,
    "qwertyuiop123": 31_500,
    "iloveyou2024": 4_200,
    "breached-password-demo": 3,
}


def sha1_hex(password: str) -> str:
    """The SHA-1 of the password's UTF-8 bytes, uppercase hex, as the API lists them."""
    return hashlib.sha1(password.encode("utf-8")).hexdigest().upper()  # noqa: S324 (the API's hash)


@dataclass
class PwnedEmulatorConfig:
    breached: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_BREACHED))
    """Passwords (plain text) → how often each was seen in breaches."""

    @classmethod
    def from_file(cls, path: Path | None) -> PwnedEmulatorConfig:
        """`--passwords FILE`: one password a line, optionally `password:count`; added to the defaults."""
        config = cls()
        if path is not None:
            for line in path.read_text(encoding="utf-8").splitlines():
                if not line.strip():
                    continue
                password, sep, count = line.rpartition(":")
                if sep and count.strip().isdigit():
                    config.breached[password] = int(count)
                else:
                    config.breached[line] = 1
        return config


class EmulatorState(ControlledState):
    def __init__(self, config: PwnedEmulatorConfig) -> None:
        self.config = config
        super().__init__()

    def reset(self) -> None:
        super().reset()
        with self.lock:
            self.hashes: dict[str, int] = {sha1_hex(p): n for p, n in self.config.breached.items()}

    def range_lines(self, prefix: str) -> list[tuple[str, int]]:
        with self.lock:
            return [(h[5:], n) for h, n in sorted(self.hashes.items()) if h.startswith(prefix)]


class SeedPassword(BaseModel):
    password: str | None = Field(default=None, min_length=1, max_length=1024)
    sha1: str | None = Field(default=None, pattern=SHA1.pattern)
    count: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _one_of(self) -> SeedPassword:
        if (self.password is None) == (self.sha1 is None):
            raise ValueError("send exactly one of password and sha1")
        return self


def _state(request: Request) -> EmulatorState:
    state: EmulatorState = request.app.state.pwned_emulator
    return state


def create_app(config: PwnedEmulatorConfig | None = None) -> FastAPI:
    """A fresh emulator seeded with `config.breached` (default: `DEFAULT_BREACHED`)."""
    app = FastAPI(
        title="Gatehouse Pwned Passwords emulator",
        description="Have I Been Pwned's Pwned Passwords range API for local runs and tests.",
        version="1",
    )
    app.state.pwned_emulator = EmulatorState(config or PwnedEmulatorConfig())
    app.include_router(control_router(_state))

    @app.get("/range/{prefix}", response_class=PlainTextResponse)
    async def hash_range(prefix: str, request: Request) -> PlainTextResponse:
        state = _state(request)
        state.record(
            {
                "method": request.method,
                "path": request.url.path,
                "query": request.url.query,
                "headers": dict(request.headers),
                "body": (await request.body()).decode("utf-8", "replace"),
            }
        )
        status = await state.injected_status()
        if status is not None:
            return PlainTextResponse("emulated failure", status_code=status)
        if not PREFIX.fullmatch(prefix):
            # the real API's answer to a prefix that is not five hex characters
            return PlainTextResponse("The hash prefix was not in a valid format", status_code=400)
        lines = state.range_lines(prefix.upper())
        if request.headers.get("add-padding", "").lower() == "true":
            known = {suffix for suffix, _ in lines}
            target = secrets.choice(range(*PADDED_LINES))
            while len(lines) < target:
                suffix = secrets.token_hex(18)[:35].upper()
                if suffix not in known:
                    lines.append((suffix, 0))
            lines.sort()
        body = "\r\n".join(f"{suffix}:{count}" for suffix, count in lines)
        return PlainTextResponse(body, headers={"Cache-Control": "public, max-age=2678400"})

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/_emulator/passwords", status_code=201)
    async def seed(body: SeedPassword, request: Request) -> dict[str, Any]:
        digest = sha1_hex(body.password) if body.password is not None else str(body.sha1).upper()
        state = _state(request)
        with state.lock:
            state.hashes[digest] = body.count
        return {"sha1": digest, "count": body.count}

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8091)
    parser.add_argument(
        "--passwords", type=Path, help="extra breached passwords: one a line, `password` or `password:count`"
    )
    args = parser.parse_args(argv)
    print(f"Pwned Passwords emulator on http://{args.host}:{args.port}", flush=True)
    uvicorn.run(
        create_app(PwnedEmulatorConfig.from_file(args.passwords)),
        host=args.host,
        port=args.port,
        log_level="info",
    )
