"""Verifying access tokens in services other than the issuer, and the FastAPI dependencies that
turn `Authorization: Bearer …` into claims for any `TokenVerifier`."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

import httpx
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import Counter

from gatehouse_contracts.tokens import AccessTokenClaims
from gatehouse_platform.errors import (
    Forbidden,
    InsufficientScope,
    ReauthenticationRequired,
    ServiceUnavailable,
    Unauthorized,
    raises,
)
from gatehouse_platform.jwt import InvalidToken, UnknownKeyId, decode_access_token, jwks_to_keys

log = logging.getLogger(__name__)

TOKEN_VERIFICATION_FAILURES = Counter(
    "gatehouse_token_verification_failures_total", "Bearer tokens rejected, by reason", ["reason"]
)
JWKS_FETCHES = Counter("gatehouse_jwks_fetches_total", "JWKS fetch attempts, by outcome", ["outcome"])


class TokenVerifier(Protocol):
    """What the bearer dependencies need: JWKSVerifier here, a local-keys verifier in auth-service."""

    async def verify(self, token: str) -> AccessTokenClaims: ...


class Denylist(Protocol):
    """Revocation check run after the signature and claims are valid (e.g. a logged-out `sid`).

    Exceptions it raises propagate, so an unreachable denylist fails closed.
    """

    async def is_revoked(self, claims: AccessTokenClaims) -> bool: ...


class KeysUnavailable(ServiceUnavailable):
    """No signing keys were ever obtained from the issuer: we cannot tell good tokens from bad.

    A 503 rather than a 401 so clients retry instead of discarding a token that may be valid.
    """

    def __init__(self, retry_after: float) -> None:
        retry_after_header = str(max(1, math.ceil(retry_after)))
        super().__init__("signing keys unavailable", headers={"Retry-After": retry_after_header})


class JWKSVerifier:
    """Verifies tokens against the issuer's JWKS, fetched on first use and cached.

    Refetches when `cache_ttl` has passed or a token names an unknown `kid`. Fetch attempts are
    spaced at least `min_refetch_interval` apart, so tokens with random kids cannot make us hammer
    the issuer; while no keys have ever been obtained the spacing is `empty_cache_retry_interval`
    instead, so a verifier started before the issuer recovers within seconds. A failed refetch
    keeps the cached keys (the issuer being down must not sign everyone out); with no cached keys,
    `verify` raises `KeysUnavailable`. Concurrent callers share one fetch.
    """

    def __init__(
        self,
        jwks_url: str,
        *,
        issuer: str,
        audience: str,
        client: httpx.AsyncClient | None = None,
        cache_ttl: float = 600.0,
        min_refetch_interval: float = 30.0,
        empty_cache_retry_interval: float = 1.0,
        fetch_timeout: float = 5.0,
        leeway_seconds: int = 5,
        denylist: Denylist | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.jwks_url = jwks_url
        self.issuer = issuer
        self.audience = audience
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient()
        self._cache_ttl = cache_ttl
        self._min_refetch_interval = min_refetch_interval
        self._empty_cache_retry_interval = empty_cache_retry_interval
        self._fetch_timeout = fetch_timeout
        self._leeway_seconds = leeway_seconds
        self._denylist = denylist
        self._clock = clock
        self._keys: dict[str, RSAPublicKey] = {}
        self._fetched_at: float | None = None  # last successful fetch
        self._attempted_at: float | None = None  # last fetch attempt, successful or not
        self._lock = asyncio.Lock()

    async def verify(self, token: str) -> AccessTokenClaims:
        keys = await self._keys_for(stale_after=self._cache_ttl, wait_for_fetch=False)
        try:
            claims = self._decode(token, keys)
        except UnknownKeyId:
            # Maybe the issuer rotated keys since we fetched: refetch (rate-limited) and retry once.
            claims = self._decode(token, await self._keys_for(stale_after=0.0, wait_for_fetch=True))
        if self._denylist is not None and await self._denylist.is_revoked(claims):
            raise InvalidToken("token revoked", reason="revoked")
        return claims

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    def _decode(self, token: str, keys: Mapping[str, RSAPublicKey]) -> AccessTokenClaims:
        return decode_access_token(
            token, keys, issuer=self.issuer, audience=self.audience, leeway_seconds=self._leeway_seconds
        )

    async def _keys_for(self, *, stale_after: float, wait_for_fetch: bool) -> Mapping[str, RSAPublicKey]:
        """The cached keys, refetched first if older than `stale_after` and the rate limit allows.

        Without `wait_for_fetch`, a caller holding usable cached keys does not queue behind a fetch
        already in flight, so a slow issuer delays one request per refetch, not all of them.
        """
        if not self._is_stale(stale_after):
            return self._keys
        if self._keys and self._lock.locked() and not wait_for_fetch:
            return self._keys
        async with self._lock:
            # Re-check under the lock: whoever held it may just have fetched for us.
            if self._is_stale(stale_after) and self._may_attempt():
                await self._fetch()
        if not self._keys:
            raise KeysUnavailable(self._empty_cache_retry_interval)
        return self._keys

    def _is_stale(self, stale_after: float) -> bool:
        return self._fetched_at is None or self._clock() - self._fetched_at >= stale_after

    def _may_attempt(self) -> bool:
        if self._attempted_at is None:
            return True
        interval = self._min_refetch_interval if self._keys else self._empty_cache_retry_interval
        return self._clock() - self._attempted_at >= interval

    async def _fetch(self) -> None:
        self._attempted_at = self._clock()
        try:
            response = await self._client.get(self.jwks_url, timeout=self._fetch_timeout)
            response.raise_for_status()
            keys = jwks_to_keys(response.json())
            if not keys:
                raise ValueError("JWKS has no usable RS256 signing key")
        except (httpx.HTTPError, ValueError) as exc:
            JWKS_FETCHES.labels("error").inc()
            log.warning(
                "JWKS fetch failed; keeping cached keys",
                extra={"url": self.jwks_url, "error": type(exc).__name__, "cached_keys": len(self._keys)},
            )
            return
        JWKS_FETCHES.labels("ok").inc()
        self._keys = keys
        self._fetched_at = self._clock()
        log.info("JWKS fetched", extra={"url": self.jwks_url, "kids": sorted(keys)})


_bearer_scheme = HTTPBearer(auto_error=False, bearerFormat="JWT")

ClaimsDependency = Callable[..., Awaitable[AccessTokenClaims]]


class MissingCredentials(Unauthorized):
    """No usable `Authorization: Bearer` header: RFC 6750 §3.1 says to send no error code then."""

    def __init__(self) -> None:
        super().__init__("bearer token required")
        self.headers = {"WWW-Authenticate": "Bearer"}


def require_scope(claims: AccessTokenClaims, scope: str | None) -> AccessTokenClaims:
    """The claims, if they may do what `scope` names (an API key's token must hold that scope; a
    person's session always may); else 403 insufficient-scope. `scope=None` is a route no scope
    covers: every API key's token is refused it."""
    if claims.is_api_key and (scope is None or not claims.allows(scope)):
        TOKEN_VERIFICATION_FAILURES.labels("insufficient_scope").inc()
        raise InsufficientScope(scope)
    return claims


def current_claims(
    verifier_dep: Callable[..., TokenVerifier] | Callable[..., Awaitable[TokenVerifier]],
    *,
    scope: str | None = None,
) -> ClaimsDependency:
    """A dependency returning the verified claims of the request's bearer token.

    `verifier_dep` is itself a dependency (e.g. reading the verifier from `app.state`). Use it as
    `CurrentClaims = Annotated[AccessTokenClaims, Depends(current_claims(get_verifier))]`.
    Failures are counted here, at the request boundary, so every verifier is covered and a
    verifier's internal retry is not counted twice.

    A token exchanged from an API key passes only where `scope` is named and among its scopes
    (`require_scope`): without `scope` the route is for people's sessions alone, so a route
    nobody thought about is closed to keys.
    """

    @raises(Unauthorized, InsufficientScope)
    async def dependency(
        credentials: HTTPAuthorizationCredentials | None = Depends(_bearer_scheme),
        verifier: TokenVerifier = Depends(verifier_dep),
    ) -> AccessTokenClaims:
        if credentials is None:
            TOKEN_VERIFICATION_FAILURES.labels("missing").inc()
            raise MissingCredentials()
        try:
            claims = await verifier.verify(credentials.credentials)
        except InvalidToken as exc:
            TOKEN_VERIFICATION_FAILURES.labels(exc.reason).inc()
            raise
        except KeysUnavailable:
            TOKEN_VERIFICATION_FAILURES.labels("keys_unavailable").inc()
            raise
        return require_scope(claims, scope)

    return dependency


def require_role(role: str, claims_dep: ClaimsDependency) -> ClaimsDependency:
    """A dependency returning the claims of a caller who holds `role`, else Forbidden (403).

    Pass the same `claims_dep` object the routes use, so FastAPI verifies the token once per request.
    """

    @raises(Forbidden)
    async def dependency(claims: AccessTokenClaims = Depends(claims_dep)) -> AccessTokenClaims:
        if role not in claims.roles:
            raise Forbidden(f"requires the {role!r} role")
        return claims

    return dependency


def require_recent_sign_in(claims: AccessTokenClaims, max_age_seconds: int, now: float) -> None:
    """From the token alone: its `auth_time` at most `max_age_seconds` before `now`, else 401
    reauthentication-required (tokens from before the claim existed have none: they count as old).
    auth-service guards its sensitive actions with it, and any service may guard its own."""
    if claims.auth_time is None or now - claims.auth_time > max_age_seconds:
        raise ReauthenticationRequired(
            "This needs a recent sign-in: re-authenticate (POST /auth/reauthenticate) and try again."
        )
