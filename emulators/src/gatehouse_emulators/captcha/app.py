"""The CAPTCHA emulator: Cloudflare Turnstile's and hCaptcha's `siteverify` over real HTTP (form or
JSON body: `secret`, `response`, `remoteip`), and a widget script a page loads in place of theirs,
which hands out single-use tokens. A token is valid for 300 s and only once: a second verification
answers `timeout-or-duplicate` (Turnstile) or `already-seen-response` (hCaptcha), as the real
services do. Cloudflare's documented test keys behave as documented (a secret that always passes,
one that always fails, one that always says the token was spent; a site key whose widget always
blocks). It records every siteverify request and takes faults (slow or failing answers) to drive a
client's timeout.

gatehouse-captcha-emulator --host 127.0.0.1 --port 8092
"""

from __future__ import annotations

import argparse
import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from gatehouse_emulators.control import ControlledState, control_router

# Cloudflare Turnstile's documented test keys (developers.cloudflare.com/turnstile/troubleshooting/testing)
ALWAYS_PASSES_SITE_KEY = "1x00000000000000000000AA"
ALWAYS_BLOCKS_SITE_KEY = "2x00000000000000000000AB"
ALWAYS_PASSES_SECRET = "1x0000000000000000000000000000000AA"
ALWAYS_FAILS_SECRET = "2x0000000000000000000000000000000AA"
DUPLICATE_SECRET = "3x0000000000000000000000000000000AA"
# hCaptcha's test pair (docs.hcaptcha.com/#integration-testing-test-keys) passes any token
HCAPTCHA_TEST_SITE_KEY = "10000000-ffff-ffff-ffff-000000000001"
HCAPTCHA_TEST_SECRET = "0x0000000000000000000000000000000000000000"
HCAPTCHA_BLOCKS_SITE_KEY = "20000000-ffff-ffff-ffff-000000000002"
# The pair `make run` uses: tokens from the widget under this site key verify once with this secret
DEV_SITE_KEY = "gatehouse-dev-site-key"
DEV_SECRET_KEY = "gatehouse-dev-secret-key"

TOKEN_TTL_SECONDS = 300  # both services: a token older than 5 minutes is refused
WIDGET_JS = (Path(__file__).parent / "widget.js").read_text(encoding="utf-8")
BLOCKING_SITE_KEYS = {ALWAYS_BLOCKS_SITE_KEY, HCAPTCHA_BLOCKS_SITE_KEY}
Provider = Literal["turnstile", "hcaptcha"]


@dataclass
class CaptchaEmulatorConfig:
    keys: dict[str, str] = field(default_factory=lambda: {DEV_SITE_KEY: DEV_SECRET_KEY})
    """Site key → secret key: tokens issued under the site key verify with its secret."""
    token_ttl_seconds: float = TOKEN_TTL_SECONDS


@dataclass
class Token:
    site_key: str
    hostname: str
    action: str
    cdata: str
    issued_at: float
    spent: bool = False


class EmulatorState(ControlledState):
    def __init__(self, config: CaptchaEmulatorConfig) -> None:
        self.config = config
        super().__init__()

    def reset(self) -> None:
        super().reset()
        with self.lock:
            self.keys: dict[str, str] = dict(self.config.keys)
            self.tokens: dict[str, Token] = {}

    def issue(self, site_key: str, hostname: str, action: str = "", cdata: str = "") -> str:
        token = f"emu.{secrets.token_urlsafe(48)}"
        with self.lock:
            self.tokens[token] = Token(site_key, hostname, action, cdata, time.time())
        return token

    def verify(self, provider: Provider, form: dict[str, str]) -> dict[str, Any]:
        """The provider's answer to a siteverify request (always a 200, as theirs)."""
        secret, response = form.get("secret", ""), form.get("response", "")
        duplicate = "timeout-or-duplicate" if provider == "turnstile" else "already-seen-response"
        if not secret:
            return _failure("missing-input-secret")
        if not response:
            return _failure("missing-input-response")
        now = datetime.now(UTC)
        if secret in (ALWAYS_PASSES_SECRET, HCAPTCHA_TEST_SECRET):
            return _success(provider, now, hostname="example.com", action="", cdata="")
        if secret == ALWAYS_FAILS_SECRET:
            return _failure("invalid-input-response")
        if secret == DUPLICATE_SECRET:
            return _failure(duplicate)
        with self.lock:
            site_key = next((k for k, s in self.keys.items() if s == secret), None)
            if site_key is None:
                return _failure("invalid-input-secret")
            token = self.tokens.get(response)
            if token is None:
                return _failure("invalid-input-response")
            if token.site_key != site_key or form.get("sitekey", site_key) != site_key:
                return _failure(
                    "sitekey-secret-mismatch" if provider == "hcaptcha" else "invalid-input-response"
                )
            if token.spent:
                return _failure(duplicate)
            token.spent = True  # spent by this verification, whatever it says
            if time.time() - token.issued_at > self.config.token_ttl_seconds:
                return _failure(
                    "timeout-or-duplicate" if provider == "turnstile" else "expired-input-response"
                )
            issued = datetime.fromtimestamp(token.issued_at, UTC)
        return _success(provider, issued, hostname=token.hostname, action=token.action, cdata=token.cdata)


def _failure(code: str) -> dict[str, Any]:
    return {"success": False, "error-codes": [code], "messages": []}


def _success(provider: Provider, at: datetime, *, hostname: str, action: str, cdata: str) -> dict[str, Any]:
    stamp = at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if provider == "hcaptcha":
        return {
            "success": True,
            "challenge_ts": stamp,
            "hostname": hostname,
            "credit": False,
            "error-codes": [],
        }
    return {
        "success": True,
        "challenge_ts": stamp,
        "hostname": hostname,
        "error-codes": [],
        "action": action,
        "cdata": cdata,
        "metadata": {"ephemeral_id": f"x:{secrets.token_hex(10)}"},
    }


class TokenIn(BaseModel):
    sitekey: str = Field(default=DEV_SITE_KEY, min_length=1, max_length=100)
    hostname: str = Field(default="localhost", max_length=253)
    action: str = Field(default="", max_length=32)
    cdata: str = Field(default="", max_length=255)


class KeyPairIn(BaseModel):
    sitekey: str = Field(min_length=1, max_length=100)
    secret: str = Field(min_length=1, max_length=100)


def _state(request: Request) -> EmulatorState:
    state: EmulatorState = request.app.state.captcha_emulator
    return state


async def _form(request: Request) -> dict[str, str]:
    """The body as both services take it: form-encoded, or (Turnstile) JSON."""
    raw = (await request.body()).decode("utf-8", "replace")
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            data = json.loads(raw)
        except ValueError:
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    return dict(parse_qsl(raw, keep_blank_values=True))


def create_app(config: CaptchaEmulatorConfig | None = None) -> FastAPI:
    """A fresh emulator knowing the key pairs of `config.keys` (default: the dev pair)."""
    app = FastAPI(
        title="Gatehouse CAPTCHA emulator",
        description="Cloudflare Turnstile's and hCaptcha's siteverify and widget for local runs and tests.",
        version="1",
    )
    app.state.captcha_emulator = EmulatorState(config or CaptchaEmulatorConfig())
    app.include_router(control_router(_state))

    async def siteverify(request: Request, provider: Provider) -> Response:
        state = _state(request)
        form = await _form(request)
        state.record(
            {
                "provider": provider,
                "path": request.url.path,
                "content_type": request.headers.get("content-type", ""),
                "form": form,
            }
        )
        status = await state.injected_status()
        if status is not None:
            return JSONResponse({"success": False, "error-codes": ["internal-error"]}, status)
        return JSONResponse(state.verify(provider, form))

    @app.post("/turnstile/v0/siteverify")
    async def turnstile_siteverify(request: Request) -> Response:
        return await siteverify(request, "turnstile")

    @app.post("/siteverify")
    async def hcaptcha_siteverify(request: Request) -> Response:
        return await siteverify(request, "hcaptcha")

    def widget() -> Response:
        return Response(
            WIDGET_JS,
            media_type="text/javascript",
            headers={"Cache-Control": "no-store", "Access-Control-Allow-Origin": "*"},
        )

    @app.get("/turnstile/v0/api.js")
    async def turnstile_widget() -> Response:
        return widget()

    @app.get("/1/api.js")
    async def hcaptcha_widget() -> Response:
        return widget()

    @app.post("/widget/token")
    async def widget_token(request: Request) -> Response:
        """What the widget asks when the box is ticked (cross-origin, from the page using it)."""
        form = await _form(request)
        cors = {"Access-Control-Allow-Origin": "*"}
        site_key = form.get("sitekey", "")
        if not site_key:
            return JSONResponse({"error": "missing sitekey"}, 400, headers=cors)
        if site_key in BLOCKING_SITE_KEYS:
            return JSONResponse({"error": "challenge failed"}, 403, headers=cors)
        token = _state(request).issue(
            site_key, form.get("hostname", "")[:253], form.get("action", "")[:32], form.get("cdata", "")[:255]
        )
        return JSONResponse({"token": token}, headers=cors)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/_emulator/tokens", status_code=201)
    async def issue_token(body: TokenIn, request: Request) -> dict[str, str]:
        """A token as a solved widget would get it, for API tests that have no browser."""
        return {"token": _state(request).issue(body.sitekey, body.hostname, body.action, body.cdata)}

    @app.post("/_emulator/keys", status_code=201)
    async def add_key_pair(body: KeyPairIn, request: Request) -> dict[str, str]:
        state = _state(request)
        with state.lock:
            state.keys[body.sitekey] = body.secret
        return body.model_dump()

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8092)
    args = parser.parse_args(argv)
    print(f"CAPTCHA emulator on http://{args.host}:{args.port}", flush=True)
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="info")
