"""Typed dependencies: the process-wide services, the request's database session, the admin caller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gatehouse_contracts.tokens import AccessTokenClaims
from gatehouse_platform.consumer import EventConsumer
from gatehouse_platform.db import session_scope
from gatehouse_platform.jwks import JWKSVerifier, current_claims, require_role
from notification_service.deliveries.dispatch import Dispatcher
from notification_service.email.links import Links
from notification_service.email.render import Renderer
from notification_service.email.smtp import SmtpSender
from notification_service.settings import Settings


@dataclass
class Services:
    """What `bootstrap()` builds once per process and every request and message shares."""

    settings: Settings
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    links: Links
    renderer: Renderer
    sender: SmtpSender
    dispatcher: Dispatcher
    consumer: EventConsumer
    verifier: JWKSVerifier


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


def get_verifier(services: ServicesDep) -> JWKSVerifier:
    return services.verifier


_claims = current_claims(get_verifier)
AdminClaims = Annotated[AccessTokenClaims, Depends(require_role("admin", _claims))]
