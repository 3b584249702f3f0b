"""Sessions: start one on sign-in, rotate its refresh token, revoke it; sign access tokens."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

import jwt
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.dependencies import Client, Services
from auth_service.errors import AccountDeactivated, InvalidRefreshToken, RefreshTokenReused
from auth_service.events import emit
from auth_service.keys.service import KeySet
from auth_service.models import AuthSession, RefreshToken, User
from auth_service.security import derive_successor, new_token, token_digest
from auth_service.settings import Settings
from gatehouse_contracts.events import SessionRevoked
from gatehouse_contracts.tokens import ACCESS_TOKEN_TYP, ALGORITHM
from gatehouse_platform.db import utcnow


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    expires_in: int
    refresh_token: str
    user: User
    session: AuthSession


def sign_access_token(keys: KeySet, settings: Settings, user: User, session_id: uuid.UUID) -> str:
    now = int(time.time())
    claims = {
        "iss": settings.issuer,
        "aud": settings.audience,
        "sub": str(user.id),
        "iat": now,
        "nbf": now,
        "exp": now + settings.access_token_ttl_seconds,
        "jti": uuid.uuid4().hex,
        "sid": str(session_id),
        "email": user.email,
        "email_verified": user.email_verified,
        "roles": sorted(user.roles),
    }
    return jwt.encode(
        claims,
        keys.signing_key,
        algorithm=ALGORITHM,
        headers={"kid": keys.signing_kid, "typ": ACCESS_TOKEN_TYP},
    )


async def _issue(services: Services, user: User, session: AuthSession, refresh_token: str) -> IssuedTokens:
    keys = await services.keyring.current()
    return IssuedTokens(
        access_token=sign_access_token(keys, services.settings, user, session.id),
        expires_in=services.settings.access_token_ttl_seconds,
        refresh_token=refresh_token,
        user=user,
        session=session,
    )


def _new_refresh_row(settings: Settings, session: AuthSession, token: str) -> RefreshToken:
    expires = min(utcnow() + timedelta(seconds=settings.refresh_token_ttl_seconds), session.expires_at)
    return RefreshToken(session_id=session.id, token_hash=token_digest(token), expires_at=expires)


async def start_session(
    db: AsyncSession, services: Services, user: User, *, method: str, client: Client
) -> IssuedTokens:
    if not user.is_active:
        raise AccountDeactivated("This account is deactivated.")
    now = utcnow()
    session = AuthSession(
        id=uuid.uuid4(),
        user_id=user.id,
        method=method,
        created_at=now,
        last_used_at=now,
        expires_at=now + timedelta(seconds=services.settings.session_max_age_seconds),
        user_agent=client.user_agent,
        ip=client.ip,
    )
    user.last_login_at = now
    db.add(session)
    token = new_token()
    db.add(_new_refresh_row(services.settings, session, token))
    await db.flush()
    return await _issue(services, user, session, token)


async def refresh_session(
    db: AsyncSession, services: Services, raw_token: str, client: Client
) -> IssuedTokens:
    """Rotate: the presented token is spent and its successor returned.

    The row lock makes concurrent refreshes with one token take turns: the first rotates, the
    next (within the grace period) gets the same successor. A token rotated out earlier than
    that is a stolen copy: the whole family is revoked.
    """
    settings = services.settings
    row = (
        await db.execute(
            select(RefreshToken, AuthSession, User)
            .join(AuthSession, AuthSession.id == RefreshToken.session_id)
            .join(User, User.id == AuthSession.user_id)
            .where(RefreshToken.token_hash == token_digest(raw_token))
            .with_for_update(of=[RefreshToken, AuthSession])
        )
    ).one_or_none()
    if row is None:
        raise InvalidRefreshToken("Unknown refresh token.")
    token, session, user = row
    now = utcnow()
    if session.revoked_at is not None:
        raise InvalidRefreshToken("This session has ended.")
    if not user.is_active:
        raise InvalidRefreshToken("This account is deactivated.")
    if session.expires_at <= now or token.expires_at <= now:
        raise InvalidRefreshToken("The refresh token has expired.")

    successor = derive_successor(settings.token_secret, str(session.id), raw_token)
    if token.rotated_at is not None:
        current = (
            await db.execute(select(RefreshToken).where(RefreshToken.token_hash == token_digest(successor)))
        ).scalar_one_or_none()
        within_grace = now - token.rotated_at <= timedelta(seconds=settings.refresh_reuse_grace_seconds)
        if within_grace and current is not None and current.rotated_at is None:
            return await _issue(services, user, session, successor)
        await revoke_sessions(db, user.id, [session], reason="refresh_reuse")
        raise RefreshTokenReused("This refresh token was already used; the session is revoked.")

    token.rotated_at = now
    session.last_used_at = now
    session.user_agent = client.user_agent or session.user_agent
    session.ip = client.ip or session.ip
    db.add(_new_refresh_row(settings, session, successor))
    await db.flush()
    return await _issue(services, user, session, successor)


async def revoke_sessions(
    db: AsyncSession, user_id: uuid.UUID, sessions: list[AuthSession], *, reason: str
) -> list[uuid.UUID]:
    """Revoke the given sessions and tell the verifiers (session.revoked)."""
    now = utcnow()
    revoked = [s for s in sessions if s.revoked_at is None]
    for session in revoked:
        session.revoked_at = now
        session.revoke_reason = reason
    if revoked:
        await db.flush()
        await emit(
            db,
            SessionRevoked(
                user_id=user_id,
                session_ids=[s.id for s in revoked],
                reason=reason,
                revoked_at=now,
            ),
            user_id=user_id,
        )
    return [s.id for s in revoked]


async def active_sessions(
    db: AsyncSession, user_id: uuid.UUID, *, for_update: bool = False
) -> list[AuthSession]:
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
    return list((await db.execute(stmt)).scalars())


async def revoke_all_sessions(
    db: AsyncSession, user_id: uuid.UUID, *, reason: str, keep: uuid.UUID | None = None
) -> list[uuid.UUID]:
    sessions = [s for s in await active_sessions(db, user_id, for_update=True) if s.id != keep]
    return await revoke_sessions(db, user_id, sessions, reason=reason)


async def get_own_session(db: AsyncSession, user_id: uuid.UUID, session_id: uuid.UUID) -> AuthSession | None:
    stmt = (
        select(AuthSession)
        .where(AuthSession.id == session_id, AuthSession.user_id == user_id)
        .with_for_update()
    )
    return (await db.execute(stmt)).scalar_one_or_none()
