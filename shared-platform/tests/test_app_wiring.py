"""The wiring every service shares: the request's unit of work, the services dependency, the
lifespan's order of starting and stopping, the Celery app and the job edge."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import APIRouter, Depends, FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gatehouse_platform.app import DbSession, Lifespan, from_services, service_app
from gatehouse_platform.db import make_session_factory
from gatehouse_platform.errors import Conflict
from gatehouse_platform.tasks import make_celery_app, run_job


@dataclass
class Services:
    session_factory: async_sessionmaker[AsyncSession]
    greeting: str


GreetingDep = Annotated[str, Depends(from_services("greeting"))]


@pytest.fixture(scope="module")
async def probe_table(engine: AsyncEngine) -> AsyncIterator[str]:
    name = f"wiring_probe_{uuid.uuid4().hex[:8]}"
    async with engine.begin() as conn:
        await conn.execute(text(f"CREATE TABLE {name} (id text primary key)"))
    yield name
    async with engine.begin() as conn:
        await conn.execute(text(f"DROP TABLE {name}"))


def probe_app(engine: AsyncEngine, table: str, lifespan: Lifespan | None = None) -> FastAPI:
    router = APIRouter()

    @router.post("/rows/{row_id}")
    async def add(row_id: str, db: DbSession, greeting: GreetingDep, fail: bool = False) -> dict[str, str]:
        await db.execute(text(f"INSERT INTO {table} (id) VALUES (:id)"), {"id": row_id})
        if fail:
            raise Conflict("Refused after the insert.")
        return {"greeting": greeting}

    return service_app(
        title="probe",
        description="",
        services=Services(make_session_factory(engine), "hello"),
        lifespan=lifespan or Lifespan(),
        checks={},
        routers=[router],
    )


def client_of(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://probe")


async def rows(engine: AsyncEngine, table: str) -> set[str]:
    async with engine.connect() as conn:
        return set((await conn.execute(text(f"SELECT id FROM {table}"))).scalars())


async def test_the_request_unit_of_work_commits_when_the_route_returns(
    engine: AsyncEngine, probe_table: str
) -> None:
    async with client_of(probe_app(engine, probe_table)) as client:
        response = await client.post("/rows/kept")
    assert response.status_code == 200
    assert response.json() == {"greeting": "hello"}  # from_services hands over one collaborator
    assert "kept" in await rows(engine, probe_table)


async def test_a_domain_error_rolls_the_unit_of_work_back(engine: AsyncEngine, probe_table: str) -> None:
    async with client_of(probe_app(engine, probe_table)) as client:
        response = await client.post("/rows/refused", params={"fail": True})
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert "refused" not in await rows(engine, probe_table)


async def test_service_app_has_the_platform_endpoints(engine: AsyncEngine, probe_table: str) -> None:
    async with client_of(probe_app(engine, probe_table)) as client:
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/readyz")).status_code == 200
        assert "http_requests_total" in (await client.get("/metrics")).text


@dataclass
class Recorder:
    name: str
    log: list[str]
    fail_on_start: bool = False

    async def start(self) -> None:
        if self.fail_on_start:
            raise RuntimeError(f"{self.name} cannot start")
        self.log.append(f"start {self.name}")

    async def stop(self) -> None:
        self.log.append(f"stop {self.name}")


async def test_lifespan_starts_in_order_and_stops_in_reverse_then_closes(
    engine: AsyncEngine, probe_table: str
) -> None:
    log: list[str] = []

    async def hook() -> None:
        log.append("on start")

    async def close_async() -> None:
        log.append("close engine")

    lifespan = Lifespan(
        workers=[Recorder("relay", log), Recorder("consumer", log)],
        closers=[lambda: log.append("close hasher"), close_async],
        on_start=[hook],
    )
    async with LifespanManager(probe_app(engine, probe_table, lifespan)):
        assert log == ["on start", "start relay", "start consumer"]
    assert log[3:] == ["stop consumer", "stop relay", "close hasher", "close engine"]


async def test_a_worker_failing_to_start_stops_those_already_started(
    engine: AsyncEngine, probe_table: str
) -> None:
    log: list[str] = []
    lifespan = Lifespan(
        workers=[
            Recorder("relay", log),
            Recorder("consumer", log, fail_on_start=True),
            Recorder("never", log),
        ],
        closers=[lambda: log.append("close engine")],
    )
    with pytest.raises(RuntimeError, match="consumer cannot start"):
        async with LifespanManager(probe_app(engine, probe_table, lifespan)):
            pass
    assert log == ["start relay", "stop relay", "close engine"]


@dataclass
class Hung(Recorder):
    """A worker whose stop waits for something that is not coming back (a broker gone)."""

    async def stop(self) -> None:
        self.log.append(f"stopping {self.name}")
        await asyncio.Event().wait()


async def test_stopping_has_a_deadline_a_hung_or_failing_step_leaves_the_rest_their_turn(
    engine: AsyncEngine, probe_table: str
) -> None:
    """issue 22: a process whose consumer's stop waited for a vanished broker never exited."""
    log: list[str] = []

    def broken_close() -> None:
        raise ConnectionError("already gone")

    lifespan = Lifespan(
        workers=[Recorder("relay", log), Hung("consumer", log)],
        closers=[broken_close, lambda: log.append("close engine")],
        stop_seconds=1.5,
    )
    async with LifespanManager(probe_app(engine, probe_table, lifespan), shutdown_timeout=30):
        pass
    assert log == ["start relay", "start consumer", "stopping consumer", "stop relay", "close engine"]


def test_the_celery_app_has_the_house_settings_and_schedule() -> None:
    app = make_celery_app(
        "auth_service",
        broker_url="amqp://guest:guest@127.0.0.1:5672//",
        schedule={"purge": ("auth_service.tasks.purge", 60)},
    )
    assert app.conf.task_default_queue == "auth-service.tasks"
    assert app.conf.task_acks_late is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.beat_schedule == {"purge": {"task": "auth_service.tasks.purge", "schedule": 60.0}}


async def test_run_job_runs_one_unit_on_its_own_engine(
    database_url: str, probe_table: str, engine: AsyncEngine
) -> None:
    async def work(sessions: async_sessionmaker[AsyncSession]) -> str:
        async with sessions() as session, session.begin():
            await session.execute(text(f"INSERT INTO {probe_table} (id) VALUES ('from-a-job')"))
        return "done"

    assert await run_job(database_url, work) == "done"
    assert "from-a-job" in await rows(engine, probe_table)
