"""Platform tests run against the machine's real Postgres and RabbitMQ, in a database and a vhost
made for this run only (dropped afterwards)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gatehouse_platform import testing
from gatehouse_platform.db import Base, make_engine, make_session_factory


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    with testing.rabbitmq_vhost(testing.unique_name("gh_platform")) as url:
        yield url


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    name = testing.unique_name("gh_platform")
    url = await testing.create_database(name)
    try:
        yield url
    finally:
        await testing.drop_database(name)


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    # The platform has no migrations of its own: each service's Alembic migrations create these
    # tables. Here the platform's own tables are made straight from its models.
    import gatehouse_platform.models  # noqa: F401  (registers the platform tables on Base)

    engine = make_engine(database_url, pool_size=5)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return make_session_factory(engine)
