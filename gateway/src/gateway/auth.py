"""The edge token check: routes whose access rule says `token` or `admin` are refused here,
before any upstream sees them, unless they carry a valid, unrevoked access token (with the
`admin` role for `admin`). The token is passed on unchanged: services verify it themselves.

Verification is `gatehouse_platform.jwks.JWKSVerifier` (RS256 against auth-service's JWKS);
revocation is `gatehouse_platform.denylist.RedisDenylist`, kept current by an `EventConsumer` (no
database) that applies `user.deactivated`, `user.reactivated`, `session.revoked` and
`api_key.revoked`. An API key (`Bearer gk_live_…`) is exchanged for an access token first
(`gateway.api_keys`), which then goes through the same checks and replaces the key upstream. The denylist
lookup is not the verifier's: the edge batches it with the request's rate limits (`keys_for` +
`judge`), one Redis round trip per request whether the token is new or remembered.
"""

from __future__ import annotations

import logging
import time

import httpx
from redis.asyncio import Redis

from gatehouse_contracts.tokens import AccessTokenClaims
from gatehouse_platform.consumer import EventConsumer
from gatehouse_platform.denylist import (
    DenylistNotReady,
    DenylistRebuilder,
    RedisDenylist,
    revocations_from,
)
from gatehouse_platform.errors import Forbidden, InsufficientScope, ServiceUnavailable
from gatehouse_platform.jwks import JWKSVerifier, KeysUnavailable, MissingCredentials
from gatehouse_platform.jwt import InvalidToken
from gateway.api_keys import ApiKeys, revocation_handlers
from gateway.metrics import EDGE_REJECTIONS
from gateway.settings import Access, Settings

log = logging.getLogger(__name__)


class RevocationUnknown(ServiceUnavailable):
    slug = "revocation-check-unavailable"
    title = "Cannot check the token right now"

    def __init__(self) -> None:
        super().__init__("Token revocation cannot be checked right now.", headers={"Retry-After": "1"})


def make_denylist(settings: Settings, redis: Redis) -> RedisDenylist:
    return RedisDenylist(
        redis,
        prefix=f"{settings.redis_key_prefix}:denylist",
        access_token_ttl_seconds=settings.access_token_max_ttl_seconds,
        leeway_seconds=settings.token_leeway_seconds,
    )


def make_consumer(settings: Settings, denylist: RedisDenylist, keys: ApiKeys) -> EventConsumer:
    """One durable queue for all replicas: the denylist is shared in Redis, so each event needs
    applying once, by whichever replica receives it (which also forgets a revoked key's exchange;
    the others refuse it through the denylist and forget it then)."""
    return EventConsumer(
        settings.amqp_url,
        exchange=settings.events_exchange,
        name=settings.consumer_name,
        handlers=revocation_handlers(denylist, keys),
        session_factory=None,
    )


def make_rebuilder(settings: Settings, denylist: RedisDenylist, http: httpx.AsyncClient) -> DenylistRebuilder:
    """Rebuilds the denylist from auth-service's revocation list whenever Redis has lost it."""
    return DenylistRebuilder(denylist, revocations_from(http, settings.revocations))


class EdgeAuth:
    """Verifies each distinct token once (signature and claims, the costly part: ~0.3 ms in
    PyJWT) and remembers its claims until it expires; revocation is checked on every request."""

    def __init__(self, settings: Settings, denylist: RedisDenylist) -> None:
        self._denylist = denylist
        self._leeway = settings.token_leeway_seconds
        self._cache_size = settings.verified_token_cache_size
        self._verified: dict[str, AccessTokenClaims] = {}
        self.verifier = JWKSVerifier(
            settings.jwks,
            issuer=settings.issuer,
            audience=settings.audience,
            cache_ttl=settings.jwks_cache_seconds,
            min_refetch_interval=settings.jwks_min_refetch_seconds,
            leeway_seconds=settings.token_leeway_seconds,
        )

    async def aclose(self) -> None:
        await self.verifier.aclose()

    async def check(self, authorization: bytes | None) -> AccessTokenClaims:
        """The verified claims, or the DomainError to answer with (401 or 503). Revocation is left
        to the caller (`keys_for` + `judge`), and the role to `require` after it, so a revoked
        token is a 401 whatever route it was sent to."""
        token = _bearer(authorization)
        if token is None:
            EDGE_REJECTIONS.labels("missing").inc()
            raise MissingCredentials()
        claims = self._remembered(token)
        if claims is None:
            try:
                claims = await self.verifier.verify(token)  # signature and claims
            except InvalidToken as exc:
                EDGE_REJECTIONS.labels(exc.reason).inc()
                raise
            except KeysUnavailable:
                EDGE_REJECTIONS.labels("keys_unavailable").inc()
                raise
            self._remember(token, claims)
        return claims

    @staticmethod
    def require(claims: AccessTokenClaims, access: Access) -> None:
        """403 when the route is for admins and the (unrevoked) token is not an admin's; an API
        key's token never is (insufficient-scope: no scope covers an admin API)."""
        if access == "admin" and claims.is_api_key:
            EDGE_REJECTIONS.labels("insufficient_scope").inc()
            raise InsufficientScope(None)
        if access == "admin" and not claims.is_admin:
            EDGE_REJECTIONS.labels("not_admin").inc()
            raise Forbidden("This route is for admins.")

    def keys_for(self, claims: AccessTokenClaims) -> list[str]:
        return self._denylist.keys_for(claims)

    def judge(self, claims: AccessTokenClaims, reply: list[bytes | None] | Exception) -> None:
        """Raise the 401 for revoked `claims`, or the 503 when the lookup failed, given the reply
        to `MGET keys_for(claims)`."""
        if isinstance(reply, Exception):
            raise self.revocation_unknown(reply)
        try:
            revoked = self._denylist.judge(claims, reply)
        except DenylistNotReady as exc:  # Redis lost the denylist; it is being rebuilt
            raise self.revocation_unknown(exc) from exc
        if revoked:
            EDGE_REJECTIONS.labels("revoked").inc()
            raise InvalidToken("token revoked", reason="revoked")

    @staticmethod
    def revocation_unknown(exc: BaseException) -> RevocationUnknown:
        """The denylist is unreachable: fail closed, but as "retry", not as "your token is bad"."""
        EDGE_REJECTIONS.labels("denylist_unavailable").inc()
        log.warning("denylist unreachable", extra={"error": type(exc).__name__})
        return RevocationUnknown()

    def _remembered(self, token: str) -> AccessTokenClaims | None:
        claims = self._verified.get(token)
        if claims is None:
            return None
        now = time.time()
        if claims.nbf - self._leeway <= now < claims.exp + self._leeway:
            return claims
        del self._verified[token]  # expired: the verifier says so
        return None

    def _remember(self, token: str, claims: AccessTokenClaims) -> None:
        if not self._cache_size:
            return
        if len(self._verified) >= self._cache_size:
            del self._verified[next(iter(self._verified))]  # the oldest entry
        self._verified[token] = claims


def _bearer(authorization: bytes | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.decode("latin-1").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token
