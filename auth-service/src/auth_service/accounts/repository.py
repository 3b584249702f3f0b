"""Queries on users, profiles and one-time tokens."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import joinedload, selectinload

from auth_service.models import (
    ApiKey,
    AuthSession,
    Identity,
    LoginCode,
    MfaChallenge,
    OneTimeToken,
    Passkey,
    Profile,
    RecoveryCode,
    TokenPurpose,
    TotpFactor,
    User,
)
from gatehouse_platform.db import Repository, utcnow

# A user and their profile in one query: the profile is one row per user, and a second round trip
# for it on every sign-in costs more than the join.
WITH_PROFILE = joinedload(User.profile)


class UserRepository(Repository[User]):
    model = User

    async def deactivated_since(self, since: datetime) -> list[tuple[uuid.UUID, datetime]]:
        """(id, deactivated_at) of every user deactivated at or after `since` and still so."""
        stmt = select(User.id, User.deactivated_at).where(
            User.is_active.is_(False), User.deactivated_at >= since
        )
        return [(uid, at) for uid, at in (await self.session.execute(stmt)).all() if at is not None]

    async def by_id(self, user_id: uuid.UUID, *, for_update: bool = False) -> User | None:
        stmt = select(User).where(User.id == user_id).options(WITH_PROFILE)
        if for_update:
            stmt = stmt.with_for_update(of=User)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def by_email(self, email: str, *, for_update: bool = False) -> User | None:
        stmt = select(User).where(func.lower(User.email) == email.strip().lower()).options(WITH_PROFILE)
        if for_update:
            stmt = stmt.with_for_update(of=User)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def by_login(self, login: str) -> User | None:
        """By email or username, both case-insensitive."""
        value = login.strip().lower()
        stmt = (
            select(User)
            .where(or_(func.lower(User.email) == value, func.lower(User.username) == value))
            .options(WITH_PROFILE)
        )
        return (await self.session.execute(stmt)).scalars().first()

    async def email_taken(self, email: str, *, excluding: uuid.UUID | None = None) -> bool:
        stmt = select(User.id).where(func.lower(User.email) == email.strip().lower())
        if excluding:
            stmt = stmt.where(User.id != excluding)
        return (await self.session.execute(stmt.limit(1))).first() is not None

    async def username_taken(self, username: str, *, excluding: uuid.UUID | None = None) -> bool:
        stmt = select(User.id).where(func.lower(User.username) == username.strip().lower())
        if excluding:
            stmt = stmt.where(User.id != excluding)
        return (await self.session.execute(stmt.limit(1))).first() is not None

    async def search(
        self,
        query: str | None,
        *,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None,
        user_id: uuid.UUID | None = None,
    ) -> list[User]:
        """Newest first, keyset-paginated on (created_at, id)."""
        stmt = select(User).options(selectinload(User.profile))
        if user_id is not None:
            stmt = stmt.where(User.id == user_id)
        if query:
            escaped = query.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            pattern = f"%{escaped}%"
            stmt = stmt.where(
                or_(func.lower(User.email).like(pattern), func.lower(User.username).like(pattern))
            )
        if after:
            created_at, last_id = after
            stmt = stmt.where(
                or_(User.created_at < created_at, (User.created_at == created_at) & (User.id < last_id))
            )
        stmt = stmt.order_by(User.created_at.desc(), User.id.desc()).limit(limit)
        return list((await self.session.execute(stmt)).scalars())

    async def count_active_admins(self) -> int:
        stmt = select(func.count()).select_from(User).where(User.is_active, User.roles.contains(["admin"]))
        return int((await self.session.execute(stmt)).scalar_one())

    async def due_for_erasure(self, now: datetime, *, limit: int) -> list[User]:
        """Deleted accounts whose grace is over and that are not erased yet, locked (SKIP LOCKED: two
        beats never erase the same one)."""
        stmt = (
            select(User)
            .where(User.erased_at.is_(None), User.erase_at <= now)
            .order_by(User.erase_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def erase_belongings(self, user_id: uuid.UUID) -> None:
        """Everything personal the user has besides the users row: the profile's fields are emptied
        (the row stays, as every user has one); identities, second factors, passkeys, sessions (their
        refresh tokens go with them), emailed tokens, codes, pending sign-ins and personal API keys are
        deleted."""
        await self.session.execute(
            update(Profile)
            .where(Profile.user_id == user_id)
            .values(
                display_name=None,
                first_name=None,
                last_name=None,
                avatar_url=None,
                bio=None,
                locale=None,
                timezone=None,
            )
        )
        for model in (
            Identity,
            TotpFactor,
            RecoveryCode,
            MfaChallenge,
            Passkey,
            AuthSession,
            OneTimeToken,
            LoginCode,
        ):
            await self.session.execute(delete(model).where(model.user_id == user_id))
        # personal API keys (revoked since the deletion began); an org's keys belong to the org
        await self.session.execute(delete(ApiKey).where(ApiKey.user_id == user_id, ApiKey.org_id.is_(None)))

    def add_with_profile(self, user: User) -> User:
        user.profile = Profile(user_id=user.id)
        self.session.add(user)
        return user


class OneTimeTokenRepository(Repository[OneTimeToken]):
    model = OneTimeToken

    async def by_digest(self, digest: bytes, purpose: TokenPurpose) -> OneTimeToken | None:
        stmt = (
            select(OneTimeToken)
            .where(OneTimeToken.token_hash == digest, OneTimeToken.purpose == purpose)
            .with_for_update()
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def spend_all(self, user_id: uuid.UUID, purpose: TokenPurpose) -> None:
        """Older links die when a new one is sent or one is used."""
        await self.session.execute(
            update(OneTimeToken)
            .where(
                OneTimeToken.user_id == user_id,
                OneTimeToken.purpose == purpose,
                OneTimeToken.used_at.is_(None),
            )
            .values(used_at=utcnow())
        )

    async def purge(self, now: datetime, horizon: datetime) -> int:
        """Tokens expired by `now`, or used before `horizon`."""
        return await self.delete_where(or_(OneTimeToken.expires_at < now, OneTimeToken.used_at < horizon))
