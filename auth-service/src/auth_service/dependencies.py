"""Typed dependencies: the request's database session, the caller, and each process-wide service a
route hands to the rules (only routers, `main.py` and the CLI import this module).

`DbSession` is the platform's (`gatehouse_platform.app`), re-exported for the routers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

import httpx
from fastapi import Depends, Request
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from auth_service.accounts.breaches import BreachedPasswords
from auth_service.captcha import Captcha
from auth_service.clock import Clock
from auth_service.errors import (
    CaptchaFailed,
    CaptchaRequired,
    CaptchaUnavailable,
    MfaEnrollmentRequired,
    MfaSignInRequired,
    ReauthenticationRequired,
)
from auth_service.geoip import Places
from auth_service.keys.service import KeyRing
from auth_service.mfa.stepup import require_admin_factor, require_recent_sign_in
from auth_service.mfa.totp import TotpSeeds
from auth_service.oauth.providers import Provider
from auth_service.oauth.state import StateCookies
from auth_service.passkeys.challenges import Challenges
from auth_service.passkeys.webauthn import WebAuthn
from auth_service.principal import Client, OrgKeyCaller, Principal
from auth_service.security import PasswordHasher
from auth_service.sessions.service import authenticate, org_key_caller, principal_of, verify_access_token
from auth_service.settings import Settings
from auth_service.throttle import Throttle
from gatehouse_contracts.tokens import ApiKeyScope
from gatehouse_platform.app import DbSession as DbSession  # re-exported for the routers
from gatehouse_platform.app import from_services
from gatehouse_platform.clientip import TrustedProxies
from gatehouse_platform.errors import Forbidden, InsufficientScope, TooManyRequests, Unauthorized, raises
from gatehouse_platform.jwks import require_scope


@dataclass
class Services:
    """What `create_app()` builds once per process and every request shares."""

    settings: Settings
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    keyring: KeyRing
    hasher: PasswordHasher
    breaches: BreachedPasswords  # Have I Been Pwned's range API (AUTH_PWNED_PASSWORDS_*)
    redis: Redis
    throttle: Throttle
    captcha: Captcha  # bot checks (AUTH_CAPTCHA_*)
    http: httpx.AsyncClient  # to the sign-in providers
    providers: dict[str, Provider]
    state_cookies: StateCookies
    totp_seeds: TotpSeeds
    webauthn: WebAuthn
    challenges: Challenges
    clock: Clock
    proxies: TrustedProxies  # AUTH_TRUSTED_PROXIES: whose X-Forwarded-For names the client
    places: Places  # AUTH_GEOIP_DATABASE: an address's approximate place


SettingsDep = Annotated[Settings, Depends(from_services("settings"))]
KeyRingDep = Annotated[KeyRing, Depends(from_services("keyring"))]
HasherDep = Annotated[PasswordHasher, Depends(from_services("hasher"))]
BreachesDep = Annotated[BreachedPasswords, Depends(from_services("breaches"))]
ThrottleDep = Annotated[Throttle, Depends(raises(TooManyRequests)(from_services("throttle")))]
"""The rate limits: a route that takes them answers 429 too."""
CaptchaDep = Annotated[
    Captcha,
    Depends(raises(CaptchaRequired, CaptchaFailed, CaptchaUnavailable)(from_services("captcha"))),
]
"""The bot check: a route that takes it answers 428 `captcha-required`/`captcha-failed` and 503 too."""
CaptchaSettingsDep = Annotated[Captcha, Depends(from_services("captcha"))]
"""The bot check's settings only (no check runs)."""
ProvidersDep = Annotated[dict[str, Provider], Depends(from_services("providers"))]
StateCookiesDep = Annotated[StateCookies, Depends(from_services("state_cookies"))]
TotpSeedsDep = Annotated[TotpSeeds, Depends(from_services("totp_seeds"))]
ClockDep = Annotated[Clock, Depends(from_services("clock"))]
WebAuthnDep = Annotated[WebAuthn, Depends(from_services("webauthn"))]
ChallengesDep = Annotated[Challenges, Depends(from_services("challenges"))]
ProxiesDep = Annotated[TrustedProxies, Depends(from_services("proxies"))]


PlacesDep = Annotated[Places, Depends(from_services("places"))]
HttpDep = Annotated[httpx.AsyncClient, Depends(from_services("http"))]
"""The outbound HTTP client (sign-in providers, org domain verification)."""


async def get_client(request: Request, proxies: ProxiesDep, places: PlacesDep) -> Client:
    agent = request.headers.get("user-agent")
    ip = proxies.client_of(request).ip if request.client else None
    return Client(ip=ip, user_agent=agent[:512] if agent else None, place=places.of(ip))


ClientDep = Annotated[Client, Depends(get_client)]


def bearer_token(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Send the access token as `Authorization: Bearer <token>`.")
    return token.strip()


async def _any_principal(
    request: Request, db: DbSession, keyring: KeyRingDep, settings: SettingsDep
) -> Principal:
    return await authenticate(db, keyring, settings, bearer_token(request))


@raises(Unauthorized, InsufficientScope)
async def current_principal(principal: Principal = Depends(_any_principal)) -> Principal:
    require_scope(principal.claims, None)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
"""The signed-in person: a token exchanged from an API key is refused (403 insufficient-scope)."""


def scoped_principal(scope: ApiKeyScope) -> Callable[..., Awaitable[Principal]]:
    """The caller, who may also be an API key holding `scope`."""

    @raises(Unauthorized, InsufficientScope)
    async def dependency(principal: Principal = Depends(_any_principal)) -> Principal:
        require_scope(principal.claims, scope)
        return principal

    return dependency


ProfileReader = Annotated[Principal, Depends(scoped_principal("profile:read"))]


@raises(ReauthenticationRequired)
async def recent_principal(principal: CurrentPrincipal, settings: SettingsDep, clock: ClockDep) -> Principal:
    require_recent_sign_in(principal, settings, clock)
    return principal


RecentPrincipal = Annotated[Principal, Depends(recent_principal)]
"""The caller, signed in recently enough for a sensitive action (else 401 reauthentication-required)."""


@raises(Forbidden, MfaEnrollmentRequired, MfaSignInRequired)
async def admin_principal(principal: CurrentPrincipal, db: DbSession, settings: SettingsDep) -> Principal:
    if not principal.user.is_admin:
        raise Forbidden("Admins only.")
    await require_admin_factor(db, settings, principal)
    return principal


AdminPrincipal = Annotated[Principal, Depends(admin_principal)]


@raises(Unauthorized, InsufficientScope)
async def org_reader(
    request: Request, db: DbSession, keyring: KeyRingDep, settings: SettingsDep
) -> Principal | OrgKeyCaller:
    """Who reads an org: a person (or their API key with `orgs:read`), or an org's own API key
    with `orgs:read` (which reads its org only, as a member would)."""
    claims = await verify_access_token(keyring, settings, bearer_token(request))
    caller: Principal | OrgKeyCaller = (
        await org_key_caller(db, claims)
        if claims.is_api_key and claims.org_id is not None
        else await principal_of(db, claims)
    )
    require_scope(claims, "orgs:read")
    return caller


OrgReader = Annotated[Principal | OrgKeyCaller, Depends(org_reader)]
"""A reader of an org's details and members: `orgs:read` for API keys, an org's own key included."""
