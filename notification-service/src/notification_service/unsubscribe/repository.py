"""Queries on suppressions: who unsubscribed from which category (no commits here)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from gatehouse_platform.db import Repository
from notification_service.models import Suppression


class SuppressionRepository(Repository[Suppression]):
    model = Suppression

    async def is_suppressed(self, email: str, category: str) -> bool:
        found = await self.session.scalar(
            select(Suppression.email).where(
                Suppression.email == email.lower(), Suppression.category == category
            )
        )
        return found is not None

    async def suppress(self, email: str, category: str) -> None:
        await self.session.execute(
            insert(Suppression).values(email=email.lower(), category=category).on_conflict_do_nothing()
        )

    async def forget(self, emails: set[str]) -> int:
        return await self.delete_where(Suppression.email.in_(emails))
