"""Typed dependencies: the request's database session, the caller, the process-wide services."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

import httpx
from fastapi import Depends, Request
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from auth_service.keys.service import KeyRing
from auth_service.models import AuthSession, User
from auth_service.oauth.providers import Provider
from auth_service.oauth.state import StateCookies
from auth_service.security import PasswordHasher
from auth_service.settings import Settings
from auth_service.throttle import Throttle
from gatehouse_contracts.tokens import AccessTokenClaims
from gatehouse_platform.db import session_scope, utcnow
from gatehouse_platform.errors import Forbidden, Unauthorized
from gatehouse_platform.jwt import InvalidToken, UnknownKeyId, decode_access_token

KEY_REFRESH_MIN_AGE = 5.0  # seconds: an unknown kid reloads the key ring at most this often


@dataclass
class Services:
    """What `create_app()` builds once per process and every request shares."""

    settings: Settings
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    keyring: KeyRing
    hasher: PasswordHasher
    redis: Redis
    throttle: Throttle
    http: httpx.AsyncClient  # to the sign-in providers
    providers: dict[str, Provider]
    state_cookies: StateCookies


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_db(services: ServicesDep) -> AsyncIterator[AsyncSession]:
    """The request's unit of work, committed when the route returns, before the response is sent;
    a domain error rolls it back unless the error `keeps_changes`."""
    async with session_scope(services.session_factory) as session:
        yield session


DbSession = Annotated[AsyncSession, Depends(get_db, scope="function")]


@dataclass(frozen=True)
class Client:
    ip: str | None
    user_agent: str | None


def get_client(request: Request) -> Client:
    agent = request.headers.get("user-agent")
    return Client(
        ip=request.client.host if request.client else None, user_agent=agent[:512] if agent else None
    )


ClientDep = Annotated[Client, Depends(get_client)]


@dataclass(frozen=True)
class Principal:
    user: User
    session_id: uuid.UUID
    claims: AccessTokenClaims


def bearer_token(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Send the access token as `Authorization: Bearer <token>`.")
    return token.strip()


async def verify_access_token(services: Services, token: str) -> AccessTokenClaims:
    keyring, settings = services.keyring, services.settings
    keys = await keyring.current()
    try:
        return decode_access_token(
            token, keys.public_keys, issuer=settings.issuer, audience=settings.audience
        )
    except UnknownKeyId:
        # Another replica may have rotated keys since our cache was filled.
        if time.monotonic() - keys.loaded_at < KEY_REFRESH_MIN_AGE:
            raise
        keys = await keyring.refresh()
        return decode_access_token(
            token, keys.public_keys, issuer=settings.issuer, audience=settings.audience
        )


async def current_principal(request: Request, services: ServicesDep, db: DbSession) -> Principal:
    """The signed-in caller. Unlike remote verifiers, we can see the database: a revoked session or
    a deactivated user is refused at once, whatever the token's expiry."""
    claims = await verify_access_token(services, bearer_token(request))
    row = (
        await db.execute(
            select(User, AuthSession)
            .join(AuthSession, AuthSession.user_id == User.id)
            .where(User.id == claims.sub, AuthSession.id == claims.sid)
        )
    ).one_or_none()
    if row is None:
        raise InvalidToken("Unknown session.", reason="unknown_session")
    user, session = row
    if not user.is_active:
        raise InvalidToken("Account deactivated.", reason="user_deactivated")
    if session.revoked_at is not None or session.expires_at <= utcnow():
        raise InvalidToken("Session revoked.", reason="session_revoked")
    return Principal(user=user, session_id=session.id, claims=claims)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


async def admin_principal(principal: CurrentPrincipal) -> Principal:
    if not principal.user.is_admin:
        raise Forbidden("Admins only.")
    return principal


AdminPrincipal = Annotated[Principal, Depends(admin_principal)]
