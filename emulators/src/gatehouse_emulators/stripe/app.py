"""`create_app(config)`: the Stripe emulator as one ASGI app, and the `gatehouse-stripe-emulator` command."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gatehouse_emulators.stripe.config import StripeEmulatorConfig
from gatehouse_emulators.stripe.domain.lifecycle import advance_to
from gatehouse_emulators.stripe.domain.state import Emulator
from gatehouse_emulators.stripe.domain.store import new_id
from gatehouse_emulators.stripe.http import (
    control,
    routes_billing,
    routes_catalog,
    routes_money,
    routes_portal,
)
from gatehouse_emulators.stripe.http.edge import Runtime, register
from gatehouse_emulators.stripe.http.webhooks import Dispatcher
from gatehouse_emulators.stripe.pages import checkout as checkout_page
from gatehouse_emulators.stripe.pages import invoice as invoice_page
from gatehouse_emulators.stripe.pages import portal as portal_page
from gatehouse_emulators.stripe.wire.errors import StripeError, unrecognized_url

log = logging.getLogger(__name__)


def _mark_delivered(emu: Emulator, event_id: str) -> None:
    event = emu.store.get(event_id, "event")
    if event is not None and event["pending_webhooks"] > 0:
        event["pending_webhooks"] -= 1


async def _tick(runtime: Runtime) -> None:
    """Wall-clock mode: run due work (renewals, retries, expiries) as real time passes."""
    interval = runtime.emu.config.tick_interval
    while True:
        await asyncio.sleep(interval)
        try:
            await runtime.run(lambda: advance_to(runtime.emu, runtime.emu.now()))
        except Exception:
            log.exception("stripe emulator: due work failed")


def create_app(config: StripeEmulatorConfig | None = None) -> FastAPI:
    config = config or StripeEmulatorConfig.from_env()
    emu = Emulator(config)
    dispatcher = Dispatcher(config, on_delivered=lambda event_id: _mark_delivered(emu, event_id))
    runtime = Runtime(emu, dispatcher)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state_file = Path(config.state_file) if config.state_file else None
        if state_file is not None and state_file.exists():
            emu.load(state_file)
            log.info("stripe emulator: state loaded from %s", state_file)
        await dispatcher.start()
        ticker = asyncio.create_task(_tick(runtime)) if config.clock == "wall" else None
        try:
            yield
        finally:
            if ticker is not None:
                ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ticker
            await dispatcher.stop()
            if state_file is not None:
                async with emu.lock:
                    emu.save(state_file)
                log.info("stripe emulator: state saved to %s", state_file)

    app = FastAPI(title="Gatehouse Stripe emulator", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.runtime = runtime
    groups = [routes_catalog, routes_billing, routes_money, routes_portal]
    register(app, runtime, [group.routes for group in groups])
    app.include_router(control.build_router(runtime))
    app.include_router(checkout_page.build_router(runtime))
    app.include_router(invoice_page.build_router(runtime))
    app.include_router(portal_page.build_router(runtime))

    @app.exception_handler(HTTPException)
    async def not_found(request: Request, exc: HTTPException) -> Response:
        if exc.status_code in (404, 405):
            error: StripeError = unrecognized_url(request.method, request.url.path)
        else:
            error = StripeError(exc.status_code, str(exc.detail))
        return JSONResponse(
            error.body(), status_code=error.status, headers={"Request-Id": new_id("req_", 14)}
        )

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Stateful Stripe API emulator for local development and tests."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--webhook-url", help="overrides STRIPE_EMULATOR_WEBHOOK_URL ('' disables)")
    parser.add_argument("--webhook-secret", help="overrides STRIPE_WEBHOOK_SECRET")
    parser.add_argument("--clock", choices=("wall", "frozen"), help="overrides STRIPE_EMULATOR_CLOCK")
    parser.add_argument("--public-url", help="base URL for Checkout links (default: the request's)")
    parser.add_argument("--state-file", help="keep the state here between runs (STRIPE_EMULATOR_STATE_FILE)")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    config = StripeEmulatorConfig.from_env()
    if args.webhook_url is not None:
        config = replace(config, webhook_url=args.webhook_url or None)
    if args.webhook_secret:
        config = replace(config, webhook_secret=args.webhook_secret)
    if args.clock:
        config = replace(config, clock=args.clock)
    if args.state_file:
        config = replace(config, state_file=args.state_file)
    if args.public_url:
        config = replace(config, public_url=args.public_url.rstrip("/"))
    logging.basicConfig(level=args.log_level.upper())
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
