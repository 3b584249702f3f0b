"""Queries on second factors, recovery codes and sign-ins awaiting their second factor."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, func, or_, select

from auth_service.models import MfaChallenge, RecoveryCode, TotpFactor
from gatehouse_platform.db import Repository, utcnow


class TotpFactorRepository(Repository[TotpFactor]):
    model = TotpFactor

    async def confirmed(self, user_id: uuid.UUID, *, for_update: bool = False) -> TotpFactor | None:
        """The user's authenticator app, if set up and confirmed."""
        if for_update:
            return await self.lock(TotpFactor.user_id == user_id, TotpFactor.confirmed_at.is_not(None))
        stmt = select(TotpFactor).where(TotpFactor.user_id == user_id, TotpFactor.confirmed_at.is_not(None))
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def remove(self, user_id: uuid.UUID) -> bool:
        """Deletes the user's authenticator app (confirmed or pending); whether there was one."""
        return await self.delete_where(TotpFactor.user_id == user_id) > 0


class RecoveryCodeRepository(Repository[RecoveryCode]):
    model = RecoveryCode

    async def usable(self, user_id: uuid.UUID, digest: bytes) -> RecoveryCode | None:
        """The user's unused code with this digest, locked (two sign-ins with one code take turns)."""
        return await self.lock(
            RecoveryCode.user_id == user_id, RecoveryCode.code_hash == digest, RecoveryCode.used_at.is_(None)
        )

    async def count_unused(self, user_id: uuid.UUID) -> int:
        stmt = select(func.count()).where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
        return int((await self.session.execute(stmt)).scalar_one())

    async def remove_all(self, user_id: uuid.UUID) -> None:
        await self.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))


class MfaChallengeRepository(Repository[MfaChallenge]):
    model = MfaChallenge

    async def pending(self, digest: bytes) -> MfaChallenge | None:
        """The unused, unexpired challenge with this token digest, locked: concurrent attempts on
        one token take turns, so its attempt budget holds."""
        return await self.lock(
            MfaChallenge.token_hash == digest,
            MfaChallenge.used_at.is_(None),
            MfaChallenge.expires_at > utcnow(),
        )

    async def purge(self, now: datetime, horizon: datetime) -> int:
        """Challenges expired by `now`, or used before `horizon`."""
        return await self.delete_where(or_(MfaChallenge.expires_at < now, MfaChallenge.used_at < horizon))
