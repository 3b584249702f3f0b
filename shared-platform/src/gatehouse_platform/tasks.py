"""What every service's Celery process repeats, written once: the app (broker RabbitMQ, one queue
per service, late acks so a task a worker dies in runs again, one task at a time per worker
process) with its beat schedule and traces when tracing is on, and `run_job`, the edge of one job
outside a request.

Only services with periodic work import this module (it needs `celery`, which they depend on).
Celery itself is imported by `make_celery_app`, which only the workers call: the API processes
import `run_job` (through their maintenance commands) and would otherwise load Celery at every
start (~100 ms) for nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gatehouse_platform.db import make_engine, make_session_factory
from gatehouse_platform.tracing import configure_tracing

if TYPE_CHECKING:
    from celery import Celery

T = TypeVar("T")


def make_celery_app(name: str, *, broker_url: str, schedule: Mapping[str, tuple[str, float]]) -> Celery:
    """`schedule` maps an entry's name to (task name, interval in seconds). The queue is named
    after the service (`auth_service` -> `auth-service.tasks`)."""
    from celery import Celery
    from celery.signals import beat_init, worker_process_init

    app = Celery(name, broker=broker_url)
    app.conf.update(
        task_default_queue=f"{name.replace('_', '-')}.tasks",
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        beat_schedule={
            entry: {"task": task, "schedule": float(seconds)} for entry, (task, seconds) in schedule.items()
        },
    )
    service = name.replace("_", "-")

    @worker_process_init.connect(weak=False)
    def trace_worker_process(**_: object) -> None:
        # In each worker process (the prefork pool forks: an exporter thread would not survive).
        configure_tracing(service)

    @beat_init.connect(weak=False)
    def trace_beat(**_: object) -> None:
        configure_tracing(service)

    return app


async def run_job(
    database_url: str, work: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]], *, pool_size: int = 2
) -> T:
    """Run one job (a CLI command, a Celery task) on a short-lived engine of its own, disposed of
    afterwards: Celery runs each task in a fresh event loop, which a pooled engine cannot cross."""
    engine = make_engine(database_url, pool_size=pool_size)
    try:
        return await work(make_session_factory(engine))
    finally:
        await engine.dispose()
