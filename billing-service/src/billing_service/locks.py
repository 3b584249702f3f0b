"""Row locks that read the row fresh (for repositories)."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gatehouse_platform.db import Base

ModelT = TypeVar("ModelT", bound=Base)


async def lock_one(session: AsyncSession, model: type[ModelT], *criteria: Any) -> ModelT | None:
    """`SELECT … FOR NO KEY UPDATE` of at most one row, refreshed from the database (another
    transaction may have changed it before we got the lock).

    NO KEY UPDATE, not UPDATE: we never change keys, and a plain FOR UPDATE would also block the
    key-share locks that inserts referencing the row take (a payment's foreign keys), which made
    the webhook worker and a request locking in opposite orders deadlock.

    Changes pending in this session are flushed first: the refresh would otherwise overwrite them
    with the stored values (the sessions do not autoflush), and a change made earlier in the same
    unit of work (a webhook batch) would be silently lost.
    """
    await session.flush()
    stmt = (
        select(model)
        .where(*criteria)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one_or_none()
