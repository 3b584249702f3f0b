"""Queries on the Google / GitHub identities linked to accounts."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, select

from auth_service.models import Identity
from gatehouse_platform.db import Repository


class IdentityRepository(Repository[Identity]):
    model = Identity

    async def by_subject(self, provider: str, subject: str) -> Identity | None:
        stmt = select(Identity).where(Identity.provider == provider, Identity.subject == subject)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def of_user(self, user_id: uuid.UUID) -> list[Identity]:
        stmt = select(Identity).where(Identity.user_id == user_id).order_by(Identity.created_at)
        return list((await self.session.execute(stmt)).scalars())

    async def remove(self, user_id: uuid.UUID, provider: str) -> None:
        await self.session.execute(
            delete(Identity).where(Identity.user_id == user_id, Identity.provider == provider)
        )
