"""Queries on the signing keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select, text

from auth_service.models import SigningKey
from gatehouse_platform.db import Repository


class SigningKeyRepository(Repository[SigningKey]):
    model = SigningKey

    async def unretired(self) -> list[SigningKey]:
        return list(
            (await self.session.execute(select(SigningKey).where(SigningKey.retired_at.is_(None)))).scalars()
        )

    async def published(self, *, retired_after: datetime) -> list[SigningKey]:
        """Every key not yet retired, and those retired after `retired_after`."""
        stmt = select(SigningKey).where(
            or_(SigningKey.retired_at.is_(None), SigningKey.retired_at > retired_after)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def lock_creation(self) -> None:
        """Until this transaction ends, no other one creating keys passes this point: replicas
        starting together must not each create a first key."""
        await self.session.execute(text("SELECT pg_advisory_xact_lock(hashtext('signing_keys'))"))
