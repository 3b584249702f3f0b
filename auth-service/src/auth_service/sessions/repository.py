"""Queries on sessions, their refresh tokens and sign-in codes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, insert, or_, select, update
from sqlalchemy.orm.attributes import set_committed_value

from auth_service.accounts.repository import WITH_PROFILE
from auth_service.models import AuthSession, LoginCode, RefreshToken, User
from gatehouse_platform.db import Repository, utcnow


class SessionRepository(Repository[AuthSession]):
    model = AuthSession

    async def start(
        self, session: AuthSession, user: User, *, token_digest: bytes, expires_at: datetime
    ) -> None:
        """One statement: the new `session` (built in full by the caller, and left out of the unit
        of work), its first refresh token, and the user's last sign-in (`session.created_at`)."""
        at = session.created_at
        params = {
            "p_session_id": session.id,
            "p_user_id": user.id,
            "p_method": session.method,
            "p_at": at,
            "p_session_expires_at": session.expires_at,
            "p_user_agent": session.user_agent,
            "p_ip": session.ip,
            "p_amr": session.amr,
            "p_token_id": uuid.uuid4(),
            "p_token_hash": token_digest,
            "p_expires_at": expires_at,
        }
        await self.session.execute(_START, params)
        set_committed_value(user, "last_login_at", at)
        set_committed_value(user, "updated_at", at)

    async def with_user(self, user_id: uuid.UUID, session_id: uuid.UUID) -> tuple[User, AuthSession] | None:
        """The user and the session an access token names, if that session belongs to that user."""
        row = (
            await self.session.execute(
                select(User, AuthSession)
                .join(AuthSession, AuthSession.user_id == User.id)
                .where(User.id == user_id, AuthSession.id == session_id)
                .options(WITH_PROFILE)  # /auth/me answers from it: no second read of the user
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


_WITH_OWNER = (
    select(RefreshToken, AuthSession, User)
    .join(AuthSession, AuthSession.id == RefreshToken.session_id)
    .join(User, User.id == AuthSession.user_id)
    .where(RefreshToken.token_hash == bindparam("digest"))
    .with_for_update(of=[RefreshToken, AuthSession])
)
_tokens, _sessions = cast(Table, RefreshToken.__table__), cast(Table, AuthSession.__table__)
# Core on the tables (no ORM bookkeeping), built once: a refresh is its lock and this statement.
# Parameter names match no column: SQLAlchemy would add a parameter named like a column of an
# INSERT or UPDATE to it (a `p_` prefix keeps a refresh from resetting the old token's `expires_at`).
# A session's new refresh token, which a login's and a refresh's statement each store.
_NEW_TOKEN = insert(_tokens).values(
    id=bindparam("p_token_id"),
    session_id=bindparam("p_session_id"),
    token_hash=bindparam("p_token_hash"),
    created_at=bindparam("p_at"),
    expires_at=bindparam("p_expires_at"),
)
_ROTATE = _NEW_TOKEN.add_cte(
    update(_tokens)
    .where(_tokens.c.id == bindparam("p_old_token_id"))
    .values(rotated_at=bindparam("p_at"))
    .cte("rotated_out")
).add_cte(
    update(_sessions)
    .where(_sessions.c.id == bindparam("p_session_id"))
    .values(
        last_used_at=bindparam("p_at"),
        user_agent=bindparam("p_user_agent"),
        ip=bindparam("p_ip"),
        org_role=bindparam("p_org_role"),
    )
    .cte("used")
)


_users = cast(Table, User.__table__)
_START = _NEW_TOKEN.add_cte(
    insert(_sessions)
    .values(
        id=bindparam("p_session_id"),
        user_id=bindparam("p_user_id"),
        method=bindparam("p_method"),
        created_at=bindparam("p_at"),
        last_used_at=bindparam("p_at"),
        auth_time=bindparam("p_at"),
        expires_at=bindparam("p_session_expires_at"),
        user_agent=bindparam("p_user_agent"),
        ip=bindparam("p_ip"),
        amr=bindparam("p_amr"),
    )
    .cte("started")
).add_cte(
    update(_users)
    .where(_users.c.id == bindparam("p_user_id"))
    .values(last_login_at=bindparam("p_at"), updated_at=bindparam("p_at"))
    .cte("signed_in")
)


class RefreshTokenRepository(Repository[RefreshToken]):
    model = RefreshToken

    async def with_owner(self, digest: bytes) -> tuple[RefreshToken, AuthSession, User] | None:
        """The token with this digest, its session and user; the token and session rows locked, so
        concurrent refreshes with one token take turns."""
        row = (await self.session.execute(_WITH_OWNER, {"digest": digest})).one_or_none()
        return None if row is None else (row[0], row[1], row[2])

    async def rotate(
        self,
        token: RefreshToken,
        session: AuthSession,
        *,
        successor_digest: bytes,
        expires_at: datetime,
        at: datetime,
        user_agent: str | None,
        ip: str | None,
    ) -> None:
        """One statement: `token` rotated out, its successor stored, and the session marked used
        (with the client's user agent and address, and `session.org_role`, which the caller may
        have refreshed). The loaded objects are brought in line without being made dirty."""
        params = {
            "p_old_token_id": token.id,
            "p_session_id": session.id,
            "p_at": at,
            "p_user_agent": user_agent,
            "p_ip": ip,
            "p_org_role": session.org_role,
            "p_token_id": uuid.uuid4(),
            "p_token_hash": successor_digest,
            "p_expires_at": expires_at,
        }
        await self.session.execute(_ROTATE, params)
        set_committed_value(token, "rotated_at", at)
        fields = {"last_used_at": at, "user_agent": user_agent, "ip": ip, "org_role": session.org_role}
        for name, value in fields.items():
            set_committed_value(session, name, value)

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
