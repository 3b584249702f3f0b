"""Typed dependencies: the request's database session, the caller's verified claims, the process-wide
services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from billing_service.integrations.stripe import StripeGateway
from billing_service.settings import Settings
from gatehouse_contracts.tokens import AccessTokenClaims
from gatehouse_platform.db import session_scope
from gatehouse_platform.jwks import JWKSVerifier, TokenVerifier, current_claims, require_role

if TYPE_CHECKING:
    from billing_service.webhooks.processor import WebhookProcessor
    from billing_service.webhooks.recorder import EventRecorder


@dataclass
class Services:
    """What `bootstrap()` builds once per process and every request shares."""

    settings: Settings
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    stripe: StripeGateway
    verifier: JWKSVerifier
    redis: Redis
    processor: WebhookProcessor
    recorder: EventRecorder


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_stripe(services: ServicesDep) -> StripeGateway:
    return services.stripe


StripeDep = Annotated[StripeGateway, Depends(get_stripe)]


def get_settings_dep(services: ServicesDep) -> Settings:
    return services.settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


async def get_db(services: ServicesDep) -> AsyncIterator[AsyncSession]:
    """The request's unit of work, committed when the route returns, before the response is sent;
    a domain error rolls it back unless the error `keeps_changes` (a declined upgrade keeps its
    bumped revision, so the next attempt is a new request at Stripe)."""
    async with session_scope(services.session_factory) as session:
        yield session


DbSession = Annotated[AsyncSession, Depends(get_db, scope="function")]


def get_verifier(services: ServicesDep) -> TokenVerifier:
    return services.verifier


_claims = current_claims(get_verifier)
CurrentClaims = Annotated[AccessTokenClaims, Depends(_claims)]
AdminClaims = Annotated[AccessTokenClaims, Depends(require_role("admin", _claims))]
