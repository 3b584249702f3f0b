"""Queries on API keys."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select

from auth_service.accounts.repository import WITH_PROFILE
from auth_service.models import ApiKey, User
from gatehouse_platform.db import Repository, utcnow


class ApiKeyRepository(Repository[ApiKey]):
    model = ApiKey

    async def active_of_user(self, user_id: uuid.UUID, *, for_update: bool = False) -> list[ApiKey]:
        """The person's keys that still work (neither revoked nor expired), newest first."""
        stmt = (
            select(ApiKey)
            .where(
                ApiKey.user_id == user_id,
                ApiKey.org_id.is_(None),
                ApiKey.revoked_at.is_(None),
                (ApiKey.expires_at.is_(None)) | (ApiKey.expires_at > utcnow()),
            )
            .order_by(ApiKey.created_at.desc(), ApiKey.id)
        )
        if for_update:
            stmt = stmt.with_for_update()
        return list((await self.session.execute(stmt)).scalars())

    async def active_of_org(self, org_id: uuid.UUID, *, for_update: bool = False) -> list[ApiKey]:
        """The org's keys that still work, newest first."""
        stmt = (
            select(ApiKey)
            .where(
                ApiKey.org_id == org_id,
                ApiKey.revoked_at.is_(None),
                (ApiKey.expires_at.is_(None)) | (ApiKey.expires_at > utcnow()),
            )
            .order_by(ApiKey.created_at.desc(), ApiKey.id)
        )
        if for_update:
            stmt = stmt.with_for_update()
        return list((await self.session.execute(stmt)).scalars())

    async def count_active(self, user_id: uuid.UUID | None = None, *, org_id: uuid.UUID | None = None) -> int:
        """Working personal keys of `user_id`, or (given `org_id`) working keys of the org."""
        owner = (
            ApiKey.org_id == org_id
            if org_id is not None
            else (ApiKey.user_id == user_id) & ApiKey.org_id.is_(None)
        )
        stmt = select(func.count()).where(
            owner,
            ApiKey.revoked_at.is_(None),
            (ApiKey.expires_at.is_(None)) | (ApiKey.expires_at > utcnow()),
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def own(self, user_id: uuid.UUID, key_id: uuid.UUID) -> ApiKey | None:
        """The person's personal key with that id (locked), whatever its state; None for anyone
        else's and for an org's key (which belongs to the org, not to its creator)."""
        return await self.lock(ApiKey.id == key_id, ApiKey.user_id == user_id, ApiKey.org_id.is_(None))

    async def of_some_org(self, key_id: uuid.UUID) -> ApiKey | None:
        """The org key with that id (locked), whatever its state; None for a personal key."""
        return await self.lock(ApiKey.id == key_id, ApiKey.org_id.is_not(None))

    async def org_key(self, key_id: uuid.UUID, org_id: uuid.UUID) -> ApiKey | None:
        """The org's key an exchanged access token names (its `sub` and `sid`)."""
        stmt = select(ApiKey).where(ApiKey.id == key_id, ApiKey.org_id == org_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def by_prefix_with_user(self, prefix: str) -> tuple[ApiKey, User] | None:
        row = (
            await self.session.execute(
                select(ApiKey, User).join(User, User.id == ApiKey.user_id).where(ApiKey.prefix == prefix)
            )
        ).one_or_none()
        return None if row is None else (row[0], row[1])

    async def with_user(self, user_id: uuid.UUID, key_id: uuid.UUID) -> tuple[User, ApiKey] | None:
        """The user and the key an exchanged access token names, if it is that user's personal key."""
        row = (
            await self.session.execute(
                select(User, ApiKey)
                .join(ApiKey, ApiKey.user_id == User.id)
                .where(User.id == user_id, ApiKey.id == key_id, ApiKey.org_id.is_(None))
                .options(WITH_PROFILE)  # /auth/me answers from it: no second read of the user
            )
        ).one_or_none()
        return None if row is None else (row[0], row[1])

    async def revoked_since(self, since: datetime) -> list[tuple[uuid.UUID, datetime]]:
        """(id, revoked_at) of every key revoked at or after `since`."""
        stmt = select(ApiKey.id, ApiKey.revoked_at).where(ApiKey.revoked_at >= since)
        return [(kid, at) for kid, at in (await self.session.execute(stmt)).all() if at is not None]
