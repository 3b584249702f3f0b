"""Queries on sessions, their refresh tokens and sign-in codes."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import or_, select, update

from auth_service.models import AuthSession, LoginCode, RefreshToken, User
from gatehouse_platform.db import Repository, utcnow


class SessionRepository(Repository[AuthSession]):
    model = AuthSession

    async def with_user(self, user_id: uuid.UUID, session_id: uuid.UUID) -> tuple[User, AuthSession] | None:
        """The user and the session an access token names, if that session belongs to that user."""
        row = (
            await self.session.execute(
                select(User, AuthSession)
                .join(AuthSession, AuthSession.user_id == User.id)
                .where(User.id == user_id, AuthSession.id == session_id)
            )
        ).one_or_none()
        return None if row is None else (row[0], row[1])

    async def revoked_since(self, since: datetime) -> list[tuple[uuid.UUID, datetime]]:
        """(id, revoked_at) of every session revoked at or after `since`."""
        stmt = select(AuthSession.id, AuthSession.revoked_at).where(AuthSession.revoked_at >= since)
        return [(sid, at) for sid, at in (await self.session.execute(stmt)).all() if at is not None]

    async def active(self, user_id: uuid.UUID, *, for_update: bool = False) -> list[AuthSession]:
        """Neither revoked nor expired, most recently used first."""
        stmt = (
            select(AuthSession)
            .where(
                AuthSession.user_id == user_id,
                AuthSession.revoked_at.is_(None),
                AuthSession.expires_at > utcnow(),
            )
            .order_by(AuthSession.last_used_at.desc())
        )
        if for_update:
            stmt = stmt.with_for_update()
        return list((await self.session.execute(stmt)).scalars())

    async def own(self, user_id: uuid.UUID, session_id: uuid.UUID) -> AuthSession | None:
        """The user's session with that id (locked), whatever its state; None for anyone else's."""
        stmt = (
            select(AuthSession)
            .where(AuthSession.id == session_id, AuthSession.user_id == user_id)
            .with_for_update()
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def purge(self, horizon: datetime) -> int:
        """Sessions that expired or were revoked before `horizon` (their refresh tokens cascade)."""
        return await self.delete_where(
            or_(AuthSession.expires_at < horizon, AuthSession.revoked_at < horizon)
        )


class RefreshTokenRepository(Repository[RefreshToken]):
    model = RefreshToken

    async def with_owner(self, digest: bytes) -> tuple[RefreshToken, AuthSession, User] | None:
        """The token with this digest, its session and user; the token and session rows locked, so
        concurrent refreshes with one token take turns."""
        row = (
            await self.session.execute(
                select(RefreshToken, AuthSession, User)
                .join(AuthSession, AuthSession.id == RefreshToken.session_id)
                .join(User, User.id == AuthSession.user_id)
                .where(RefreshToken.token_hash == digest)
                .with_for_update(of=[RefreshToken, AuthSession])
            )
        ).one_or_none()
        return None if row is None else (row[0], row[1], row[2])

    async def rotate_out(self, session_id: uuid.UUID, *, at: datetime) -> None:
        """The session's current token is rotated out without a successor (a re-authentication
        issued a new one)."""
        await self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.session_id == session_id, RefreshToken.rotated_at.is_(None))
            .values(rotated_at=at)
        )

    async def by_digest(self, digest: bytes) -> RefreshToken | None:
        stmt = select(RefreshToken).where(RefreshToken.token_hash == digest)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def purge(self, now: datetime, horizon: datetime) -> int:
        """Tokens expired by `now`, or rotated out before `horizon`."""
        return await self.delete_where(or_(RefreshToken.expires_at < now, RefreshToken.rotated_at < horizon))


class LoginCodeRepository(Repository[LoginCode]):
    model = LoginCode

    async def latest_usable(self, user_id: uuid.UUID) -> LoginCode | None:
        """The user's newest code that is unused and unexpired (locked); older ones are dead."""
        stmt = (
            select(LoginCode)
            .where(LoginCode.user_id == user_id, LoginCode.used_at.is_(None), LoginCode.expires_at > utcnow())
            .order_by(LoginCode.created_at.desc())
            .limit(1)
            .with_for_update()
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def spend_all(self, user_id: uuid.UUID, *, at: datetime) -> None:
        """Older codes die when a new one is sent."""
        await self.session.execute(
            update(LoginCode)
            .where(LoginCode.user_id == user_id, LoginCode.used_at.is_(None))
            .values(used_at=at)
        )

    async def purge(self, now: datetime, horizon: datetime) -> int:
        """Codes expired by `now`, or used before `horizon`."""
        return await self.delete_where(or_(LoginCode.expires_at < now, LoginCode.used_at < horizon))
