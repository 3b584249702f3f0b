"""Typed dependencies: each process-wide service a route hands to the rules, the request's database
session (`DbSession`, the platform's), the admin caller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gatehouse_contracts.tokens import AccessTokenClaims
from gatehouse_platform.app import DbSession as DbSession  # re-exported for the routers
from gatehouse_platform.app import from_services
from gatehouse_platform.consumer import EventConsumer
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


SettingsDep = Annotated[Settings, Depends(from_services("settings"))]
DispatcherDep = Annotated[Dispatcher, Depends(from_services("dispatcher"))]
ConsumerDep = Annotated[EventConsumer, Depends(from_services("consumer"))]
RendererDep = Annotated[Renderer, Depends(from_services("renderer"))]
LinksDep = Annotated[Links, Depends(from_services("links"))]

_claims = current_claims(from_services("verifier"))
require_admin = require_role("admin", _claims)
AdminClaims = Annotated[AccessTokenClaims, Depends(require_admin)]
