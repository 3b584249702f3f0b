"""Async SQLAlchemy: the declarative base every service's models share, engine and session helpers.

Services never commit: the session of a request, message or task is committed once at its edge
(`session_scope`), and outbox rows ride in that same transaction.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar, TypeVarTuple

from sqlalchemy import DateTime, MetaData, Result, Select, delete, event, exc, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import ConnectionPoolEntry

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: DateTime(timezone=True)}


def utcnow() -> datetime:
    return datetime.now(UTC)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow, onupdate=utcnow)


PING_IDLE_SECONDS = 1.0
"""A pooled connection idle longer than this is pinged before it is handed out."""


def make_engine(
    url: str, *, pool_size: int = 10, echo: bool = False, ping_idle_seconds: float = PING_IDLE_SECONDS
) -> AsyncEngine:
    """An engine whose pool pings a connection on checkout only if it sat idle more than
    `ping_idle_seconds` (SQLAlchemy's `pool_pre_ping` pings on every checkout: a round trip per
    request). A connection that fails its ping is replaced before anyone sees it; one lost while
    busy or just checked in fails its statement, and the pool is invalidated (the error is a
    disconnect), as with `pool_pre_ping`."""
    engine = create_async_engine(url, pool_size=pool_size, max_overflow=pool_size, echo=echo)
    dialect = engine.dialect

    @event.listens_for(engine.sync_engine, "checkin")
    def checked_in(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_CHECKED_IN_AT] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def checked_out(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        checked_in_at = record.info.get(_CHECKED_IN_AT)
        if checked_in_at is None or time.monotonic() - checked_in_at <= ping_idle_seconds:
            return  # just connected, or just used
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as error:
            # the pool invalidates this connection and checks out another (a fresh one, unpinged)
            raise exc.DisconnectionError("a pooled connection failed its ping") from error

    return engine


_CHECKED_IN_AT = "gatehouse_checked_in_at"


def make_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def session_scope(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit if the block finishes, roll back if it raises.

    An exception whose class sets `keeps_changes = True` (a domain error whose effect must stand,
    such as a spent sign-in attempt or a revoked token family) is committed and then raised: this
    is how a request can both change state and answer with an error.
    """
    async with factory() as session:
        try:
            yield session
            await session.commit()
        except BaseException as error:
            if getattr(error, "keeps_changes", False):
                await session.commit()
            else:
                await session.rollback()
            raise


Columns = TypeVarTuple("Columns")
ModelT = TypeVar("ModelT", bound=Base)


class Repository(Generic[ModelT]):
    """Queries only; never commits. Subclasses set `model` and add their own queries."""

    model: type[ModelT]

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, id_: uuid.UUID | Any, *, for_update: bool = False) -> ModelT | None:
        if for_update:
            return await self.lock(self.model.__mapper__.primary_key[0] == id_)
        return await self.session.get(self.model, id_)

    async def lock(self, *criteria: Any) -> ModelT | None:
        """`SELECT … FOR NO KEY UPDATE` of at most one row (see `locked`)."""
        return (await self.locked(select(self.model).where(*criteria))).scalar_one_or_none()

    async def locked(self, stmt: Select[*Columns], *of: Any) -> Result[*Columns]:
        """`stmt` run as `SELECT … FOR NO KEY UPDATE` (of the tables of `of`, else all), its rows
        refreshed from the database (another transaction may have changed them before we got the
        lock).

        NO KEY UPDATE, not UPDATE: we never change keys, and a plain FOR UPDATE would also block the
        key-share locks that inserts referencing the row take (a child row's foreign key), which
        makes two transactions locking in opposite orders deadlock.

        Changes pending in this session are flushed first: the refresh would otherwise overwrite
        them with the stored values (sessions do not autoflush), and a change made earlier in the
        same unit of work would be silently lost.
        """
        await self.session.flush()
        locking = stmt.with_for_update(key_share=True, of=list(of) or None)
        return await self.session.execute(locking.execution_options(populate_existing=True))

    def add(self, instance: ModelT) -> ModelT:
        self.session.add(instance)
        return instance

    async def flush(self) -> None:
        await self.session.flush()

    async def delete_where(self, *criteria: Any) -> int:
        """`DELETE` the rows matching `criteria`; how many went."""
        result = await self.session.execute(delete(self.model).where(*criteria))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]  # a DELETE gives a CursorResult

    async def list_where(
        self, *criteria: Any, order_by: Sequence[Any] = (), limit: int | None = None
    ) -> list[ModelT]:
        stmt = select(self.model).where(*criteria).order_by(*order_by)
        if limit is not None:
            stmt = stmt.limit(limit)
        return list((await self.session.execute(stmt)).scalars())
