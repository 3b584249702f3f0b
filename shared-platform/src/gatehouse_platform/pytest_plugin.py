"""Fixtures every service's test suite needs, written once. The root pyproject loads this plugin
for every suite (`-p gatehouse_platform.pytest_plugin`); a service's `tests/conftest.py` defines
two fixtures for it:

- `run_name` (session): this run's unique name (`testing.unique_name(...)`), used for the
  database, the RabbitMQ vhost and the event tap's queue;
- `service_root` (session): the service's folder (where `alembic.ini` is).

It then gets `amqp_url` (a vhost of its own), `database_url` (a database of its own, migrated
with the service's real migrations, dropped afterwards), `engine`, `db` (a session factory for
reading rows directly), `own_database` / `own_vhost` (the same, for one test alone),
`issuer` / `jwks_url` / `revocations_url` (a token issuer standing in for auth-service, its JWKS
and revocation list over real HTTP) and
`EventTap` / `open_event_tap` to read what the service published.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aio_pika
import jsonschema
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gatehouse_contracts.export import SCHEMAS_DIR
from gatehouse_contracts.revocations import REVOCATIONS_PATH
from gatehouse_platform import testing
from gatehouse_platform.db import make_engine, make_session_factory


@pytest.fixture(scope="session")
def amqp_url(run_name: str) -> Iterator[str]:
    with testing.rabbitmq_vhost(run_name) as url:
        yield url


@pytest.fixture(scope="session")
async def database_url(run_name: str, service_root: Path) -> AsyncIterator[str]:
    async with testing.migrated_database(run_name, service_root) as url:
        yield url


@pytest.fixture
async def own_database(run_name: str, service_root: Path) -> AsyncIterator[str]:
    """A migrated database for one test alone (a service it runs as a separate process, say)."""
    async with testing.migrated_database(testing.unique_name(f"{run_name[:30]}_own"), service_root) as url:
        yield url


@pytest.fixture
def own_vhost(run_name: str) -> Iterator[str]:
    """A RabbitMQ vhost for one test alone."""
    with testing.rabbitmq_vhost(testing.unique_name(f"{run_name[:30]}_own")) as url:
        yield url


@pytest.fixture(scope="session")
def issuer() -> testing.TestIssuer:
    """Mints access tokens as auth-service does, with a key of its own."""
    return testing.TestIssuer()


@pytest.fixture(scope="session")
def issuer_base_url(issuer: testing.TestIssuer) -> Iterator[str]:
    """The test issuer over real HTTP, where auth-service would be."""
    with testing.serve_in_thread(issuer.jwks_app()) as base:
        yield base


@pytest.fixture(scope="session")
def jwks_url(issuer_base_url: str) -> str:
    """The test issuer's JWKS, where auth-service publishes its keys."""
    return issuer_base_url + testing.JWKS_PATH


@pytest.fixture(scope="session")
def revocations_url(issuer_base_url: str) -> str:
    """The test issuer's revocation list (`issuer.revocations`), for denylists to rebuild from."""
    return issuer_base_url + REVOCATIONS_PATH


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database_url, pool_size=2)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def db(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """For tests to read rows directly."""
    return make_session_factory(engine)


def validate_event(event: dict[str, Any]) -> None:
    """The whole message against its exported schema (shared-contracts/schemas)."""
    schema = json.loads((SCHEMAS_DIR / f"{event['type']}.v1.json").read_text())
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(event)


class EventTap:
    """A queue bound to events of this run's vhost: tests read what was published, each event
    checked against its schema and its AMQP routing key and message id against the envelope."""

    def __init__(self, queue: aio_pika.abc.AbstractQueue) -> None:
        self.queue = queue
        self.seen: list[dict[str, Any]] = []

    async def _drain(self) -> None:
        while (message := await self.queue.get(fail=False, no_ack=True)) is not None:
            body = json.loads(message.body)
            assert message.routing_key == body["type"]
            assert message.message_id == body["id"]
            self.seen.append(body)

    async def wait_for(
        self, event_type: str, where: Callable[[dict[str, Any]], bool] = lambda e: True, within: float = 15.0
    ) -> dict[str, Any]:
        """The first event of the type matching `where`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            await self._drain()
            for event in self.seen:
                if event["type"] == event_type and where(event):
                    validate_event(event)
                    return event
            if loop.time() > deadline:
                raise AssertionError(f"no {event_type} event arrived; saw {[e['type'] for e in self.seen]}")
            await asyncio.sleep(0.05)

    async def all_of(
        self, event_type: str, where: Callable[[dict[str, Any]], bool] = lambda e: True, settle: float = 1.0
    ) -> list[dict[str, Any]]:
        """Every event of the type matching `where` seen within `settle` seconds."""
        await asyncio.sleep(settle)
        await self._drain()
        found = [e for e in self.seen if e["type"] == event_type and where(e)]
        for event in found:
            validate_event(event)
        return found


@asynccontextmanager
async def open_event_tap(
    amqp_url: str, queue_name: str, bindings: Iterable[str] = ("#",), exchange: str = "gatehouse.events"
) -> AsyncIterator[EventTap]:
    connection = await aio_pika.connect_robust(amqp_url)
    try:
        channel = await connection.channel()
        topic = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(queue_name, exclusive=True)
        for binding in bindings:
            await queue.bind(topic, binding)
        yield EventTap(queue)
    finally:
        await connection.close()
