"""What every service's composition root repeats, written once.

A service builds its process-wide collaborators once (its `Services`), then asks `service_app()`
for the FastAPI app. Requests reach those collaborators through typed dependencies:

- `from_services("stripe")`: one collaborator of the service's `Services`, for the narrow aliases
  a service defines (`StripeDep = Annotated[StripeGateway, Depends(from_services("stripe"))]`) —
  routes depend on what they use, never on the bag;
- `DbSession`: the request's unit of work on `Services.session_factory`, committed once when the
  route returns (`gatehouse_platform.db.session_scope`).

`Lifespan` starts the background workers that run beside the API (outbox relay, consumers, the
webhook processor) and stops them in reverse order, then closes the clients; a worker that fails to
start stops the ones already started, so a half-started process never leaks connections. Stopping
has a deadline (`stop_within`): a step still waiting when it passes (a consumer's broker gone, a
handler stuck) is cancelled and logged, so SIGTERM always ends the process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from inspect import isawaitable
from typing import Annotated, Any, Protocol, cast

from fastapi import APIRouter, Depends, FastAPI, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gatehouse_platform.db import session_scope
from gatehouse_platform.http import ReadinessCheck, install_platform

logger = logging.getLogger(__name__)

# How long stopping the workers and closing the clients may take in all (the consumers' own grace
# for handlers in flight is within it). `serve --stop-seconds` sets it for the workers it starts.
LIFESPAN_STOP_SECONDS = 30.0
STOP_SECONDS_VARIABLE = "GATEHOUSE_LIFESPAN_STOP_SECONDS"
STEP_SECONDS = 1.0  # kept for each later step: a hung one leaves the rest a try
WATCHDOG_MARGIN_SECONDS = 5.0


class Worker(Protocol):
    """Runs beside the API in its process: an outbox relay, an event consumer, a processor."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class HasSessionFactory(Protocol):
    session_factory: async_sessionmaker[AsyncSession]


def from_services(attribute: str) -> Callable[[Request], Awaitable[Any]]:
    """A dependency handing a route one collaborator the composition root built (an attribute of
    the app's `Services`); the alias that uses it declares its type. `async` although it never
    waits: FastAPI runs a plain `def` dependency in its thread pool, a hop per request."""

    async def dependency(request: Request) -> Any:
        return getattr(request.app.state.services, attribute)

    dependency.__name__ = f"get_{attribute}"
    return dependency


async def get_db(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's unit of work, committed when the route returns, before the response is sent;
    a domain error rolls it back unless the error `keeps_changes`."""
    services = cast(HasSessionFactory, request.app.state.services)
    async with session_scope(services.session_factory) as session:
        yield session


DbSession = Annotated[AsyncSession, Depends(get_db, scope="function")]


Closer = Callable[[], Awaitable[object] | object]


@dataclass
class Lifespan:
    """The app's lifespan: `on_start` hooks, then `workers` started in order (stopped in reverse),
    and `closers` (engine disposal, clients' `aclose`) called in order once everything stopped."""

    workers: Iterable[Worker] = ()
    closers: Iterable[Closer] = ()
    on_start: Iterable[Callable[[], Awaitable[object]]] = field(default=())
    stop_seconds: float | None = None  # None: `serve --stop-seconds`, else LIFESPAN_STOP_SECONDS

    @asynccontextmanager
    async def __call__(self, app: FastAPI) -> AsyncIterator[None]:
        started: list[Worker] = []
        try:
            for hook in self.on_start:
                await hook()
            for worker in self.workers:
                await worker.start()
                started.append(worker)
            yield
        finally:
            steps = [worker.stop for worker in reversed(started)]
            seconds = stop_seconds() if self.stop_seconds is None else self.stop_seconds
            await stop_within(seconds, [*steps, *(_awaitable(close) for close in self.closers)])


def _awaitable(close: Closer) -> Callable[[], Awaitable[object]]:
    async def call() -> None:
        result = close()
        if isawaitable(result):
            await result

    call.__qualname__ = getattr(close, "__qualname__", repr(close))
    return call


def stop_seconds() -> float:
    """The stop deadline: `serve --stop-seconds` (in the environment of every worker), else 30 s."""
    return float(os.environ.get(STOP_SECONDS_VARIABLE, LIFESPAN_STOP_SECONDS))


async def stop_within(seconds: float, steps: Sequence[Callable[[], Awaitable[object]]]) -> None:
    """Run the shutdown steps in order, all within `seconds` (or one second a step, if more): a
    step still running at its deadline is cancelled and logged. The last second of each later step
    is kept for it, so closing the clients after a consumer that hung still gets its try. A step
    that fails is logged; the next one runs all the same.

    Under `serve` a watchdog thread ends the process (exit status 70) should even that not return
    (the event loop blocked), a few seconds after the time is up."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    watchdog: threading.Timer | None = None
    if STOP_SECONDS_VARIABLE in os.environ:
        limit = max(seconds, len(steps) * STEP_SECONDS) + WATCHDOG_MARGIN_SECONDS
        watchdog = threading.Timer(limit, _stopped_too_late, (limit,))
        watchdog.daemon = True
        watchdog.start()
    try:
        for index, step in enumerate(steps):
            name = getattr(step, "__qualname__", repr(step))
            deadline = start + seconds - (len(steps) - 1 - index) * STEP_SECONDS
            try:
                async with asyncio.timeout_at(max(deadline, loop.time() + STEP_SECONDS)):
                    await step()
            except TimeoutError:
                logger.error("shutdown: %s did not finish in time; abandoned", name)
            except Exception:
                logger.exception("shutdown: %s failed", name)
    finally:
        if watchdog is not None:
            watchdog.cancel()


def _stopped_too_late(limit: float) -> None:
    logger.critical("shutdown did not end within %.0f s: exiting now", limit)
    logging.shutdown()
    os._exit(70)  # EX_SOFTWARE; no cleanup can be trusted to return now


def service_app(
    *,
    title: str,
    description: str,
    services: Any,
    lifespan: Lifespan,
    checks: Mapping[str, ReadinessCheck],
    routers: Iterable[APIRouter],
    reported_checks: Mapping[str, ReadinessCheck] | None = None,
    version: str = "0.1.0",
) -> FastAPI:
    """The FastAPI app of a service: its lifespan and services, the platform's middleware, problem
    handlers, /healthz, /readyz (`checks` decide readiness, `reported_checks` are only reported),
    /metrics, then the service's routers."""
    app = FastAPI(title=title, version=version, description=description, lifespan=lifespan)
    app.state.services = services
    install_platform(app, checks, reported=reported_checks)
    for router in routers:
        app.include_router(router)
    return app
