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
start stops the ones already started, so a half-started process never leaks connections.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from inspect import isawaitable
from typing import Annotated, Any, Protocol, cast

from fastapi import APIRouter, Depends, FastAPI, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gatehouse_platform.db import session_scope
from gatehouse_platform.http import ReadinessCheck, install_platform


class Worker(Protocol):
    """Runs beside the API in its process: an outbox relay, an event consumer, a processor."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class HasSessionFactory(Protocol):
    session_factory: async_sessionmaker[AsyncSession]


def from_services(attribute: str) -> Callable[[Request], Any]:
    """A dependency handing a route one collaborator the composition root built (an attribute of
    the app's `Services`); the alias that uses it declares its type."""

    def dependency(request: Request) -> Any:
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

    @asynccontextmanager
    async def __call__(self, app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            for close in reversed(list(self.closers)):
                stack.push_async_callback(_call, close)
            for hook in self.on_start:
                await hook()
            for worker in self.workers:
                await worker.start()
                stack.push_async_callback(worker.stop)
            yield


async def _call(close: Closer) -> None:
    result = close()
    if isawaitable(result):
        await result


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
