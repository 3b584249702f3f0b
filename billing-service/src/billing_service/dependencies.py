"""Typed dependencies: the request's database session (`DbSession`, the platform's), the caller's
verified claims, and each process-wide service a route hands to the rules."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from billing_service.integrations.stripe import StripeGateway
from billing_service.settings import Settings
from gatehouse_contracts.tokens import AccessTokenClaims
from gatehouse_platform.app import DbSession as DbSession  # re-exported for the routers
from gatehouse_platform.app import from_services
from gatehouse_platform.jwks import JWKSVerifier, current_claims, require_recent_sign_in, require_role

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


StripeDep = Annotated[StripeGateway, Depends(from_services("stripe"))]
SettingsDep = Annotated[Settings, Depends(from_services("settings"))]
RecorderDep = Annotated["EventRecorder", Depends(from_services("recorder"))]
ProcessorDep = Annotated["WebhookProcessor", Depends(from_services("processor"))]

_claims = current_claims(from_services("verifier"))
CurrentClaims = Annotated[AccessTokenClaims, Depends(_claims)]
require_admin = require_role("admin", _claims)
"""A person's session: an API key's token is refused (403 insufficient-scope)."""
AdminClaims = Annotated[AccessTokenClaims, Depends(require_admin)]
ReaderClaims = Annotated[
    AccessTokenClaims, Depends(current_claims(from_services("verifier"), scope="billing:read"))
]
"""A person, or an API key with `billing:read` (their subscription, entitlements, payments, invoices)."""
WriterClaims = Annotated[
    AccessTokenClaims, Depends(current_claims(from_services("verifier"), scope="billing:write"))
]
"""A person, or an API key with `billing:write` (subscribe, change plan, cancel, resume)."""


async def recent_claims(claims: WriterClaims, settings: SettingsDep) -> AccessTokenClaims:
    if settings.recent_auth_seconds is not None:
        require_recent_sign_in(claims, settings.recent_auth_seconds, time.time())
    return claims


RecentClaims = Annotated[AccessTokenClaims, Depends(recent_claims)]
"""The caller, signed in recently enough when BILLING_RECENT_AUTH_SECONDS asks for it (money
actions: plan changes, cancellation), judged from the token's auth_time alone."""
