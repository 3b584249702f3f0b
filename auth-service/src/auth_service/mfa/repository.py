"""Queries on second factors, recovery codes and sign-ins awaiting their second factor."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, exists, func, or_, select

from auth_service.accounts.repository import WITH_PROFILE
from auth_service.models import MfaChallenge, Passkey, RecoveryCode, TotpFactor, User
from gatehouse_platform.db import Repository, utcnow


class TotpFactorRepository(Repository[TotpFactor]):
    model = TotpFactor

    async def confirmed(self, user_id: uuid.UUID, *, for_update: bool = False) -> TotpFactor | None:
        """The user's authenticator app, if set up and confirmed."""
        if for_update:
            return await self.lock(TotpFactor.user_id == user_id, TotpFactor.confirmed_at.is_not(None))
        stmt = select(TotpFactor).where(TotpFactor.user_id == user_id, TotpFactor.confirmed_at.is_not(None))
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def factors(self, user_id: uuid.UUID) -> tuple[bool, int, int]:
        """(authenticator app confirmed, unused recovery codes, passkeys) of the user, in one query:
        every sign-in asks."""
        stmt = select(
            exists().where(TotpFactor.user_id == user_id, TotpFactor.confirmed_at.is_not(None)),
            select(func.count())
            .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
            .scalar_subquery(),
            select(func.count()).where(Passkey.user_id == user_id).scalar_subquery(),
        )
        totp, recovery_codes, passkeys = (await self.session.execute(stmt)).one()
        return bool(totp), int(recovery_codes), int(passkeys)

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

    async def pending(self, digest: bytes) -> tuple[MfaChallenge, User] | None:
        """The unused, unexpired challenge with this token digest and its user (with profile), both
        locked in one query: concurrent attempts on one token take turns, so its attempt budget
        holds, and the user's row is the one the sign-in then changes."""
        stmt = (
            select(MfaChallenge, User)
            .join(User, User.id == MfaChallenge.user_id)
            .options(WITH_PROFILE)
            .where(
                MfaChallenge.token_hash == digest,
                MfaChallenge.used_at.is_(None),
                MfaChallenge.expires_at > utcnow(),
            )
        )
        row = (await self.locked(stmt, MfaChallenge, User)).unique().one_or_none()
        return None if row is None else (row[0], row[1])

    async def purge(self, now: datetime, horizon: datetime) -> int:
        """Challenges expired by `now`, or used before `horizon`."""
        return await self.delete_where(or_(MfaChallenge.expires_at < now, MfaChallenge.used_at < horizon))
