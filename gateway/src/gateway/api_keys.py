"""API keys at the edge: `Authorization: Bearer gk_live_…` is exchanged with auth-service
(`POST /auth/internal/api-keys/exchange`) for a short-lived access token, which the request then
carries upstream in place of the key, so services verify JWTs only and never see a key.

The exchange is remembered in this process's memory until shortly before the token expires (one
exchange per key per replica per token lifetime; measured against Redis in gateway/README.md):
a remembered key costs a SHA-256 and a dict lookup. Revocation does not wait for the token to
expire: the exchanged token's `sid` is the key's id, so `api_key.revoked` (applied to the shared
Redis denylist by whichever replica receives it) refuses it on every replica at the next request,
and this process forgets its exchange then (at once, on the replica that received the event).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from dataclasses import dataclass

import httpx

from gatehouse_contracts.envelope import CloudEvent, EventData
from gatehouse_contracts.events import ApiKeyRevoked
from gatehouse_contracts.tokens import API_KEY_PREFIX, AccessTokenClaims
from gatehouse_platform.denylist import RedisDenylist, SessionAgnosticHandler, denylist_handlers
from gatehouse_platform.errors import ServiceUnavailable, Unauthorized
from gatehouse_platform.jwks import JWKSVerifier
from gateway.metrics import API_KEY_EXCHANGES
from gateway.settings import Settings

log = logging.getLogger(__name__)

# Exchange again this long before the token expires, so no request carries one that expires on the way.
RENEW_BEFORE_SECONDS = 10


class InvalidApiKey(Unauthorized):
    slug = "invalid-api-key"
    title = "Invalid API key"


class ExchangeUnavailable(ServiceUnavailable):
    slug = "api-key-exchange-unavailable"
    title = "Cannot check the API key right now"

    def __init__(self) -> None:
        super().__init__("The API key cannot be checked right now.", headers={"Retry-After": "1"})


@dataclass(frozen=True, slots=True)
class Exchanged:
    authorization: bytes  # `Bearer <access token>`, what the upstream gets
    claims: AccessTokenClaims
    renew_at: float  # epoch seconds


def api_key_of(authorization: bytes | None) -> str | None:
    """The API key an `Authorization: Bearer gk_live_…` header carries, else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.decode("latin-1").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token.startswith(API_KEY_PREFIX):
        return None
    return token


class ApiKeys:
    def __init__(self, settings: Settings, verifier: JWKSVerifier, client: httpx.AsyncClient) -> None:
        self._url = settings.api_key_exchange
        self._timeout = settings.api_key_exchange_timeout_seconds
        self._cache_size = settings.api_key_cache_size
        self._verifier = verifier
        self._client = client
        self._exchanged: dict[bytes, Exchanged] = {}  # SHA-256 of the key → its exchange
        self._digests: dict[uuid.UUID, bytes] = {}  # key id → SHA-256 of the key
        self._pending: dict[bytes, asyncio.Future[Exchanged]] = {}

    async def exchange(self, key: str) -> Exchanged:
        """The key's access token: remembered, or asked of auth-service (one request per key at a
        time, however many wait for it). 401 invalid-api-key, or 503 when auth-service cannot say."""
        digest = hashlib.sha256(key.encode()).digest()
        remembered = self._exchanged.get(digest)
        if remembered is not None and time.time() < remembered.renew_at:
            return remembered
        pending = self._pending.get(digest)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Exchanged] = asyncio.get_running_loop().create_future()
        self._pending[digest] = future
        try:
            exchanged = await self._ask(key)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: nobody else may be waiting
            raise
        else:
            future.set_result(exchanged)
            self._remember(digest, exchanged)
            return exchanged
        finally:
            del self._pending[digest]

    def forget(self, key_id: uuid.UUID) -> None:
        """Drop a revoked key's exchange: its next request asks auth-service, which refuses it."""
        digest = self._digests.pop(key_id, None)
        if digest is not None:
            self._exchanged.pop(digest, None)

    async def _ask(self, key: str) -> Exchanged:
        try:
            response = await self._client.post(self._url, json={"key": key}, timeout=self._timeout)
        except httpx.HTTPError as exc:
            API_KEY_EXCHANGES.labels("unavailable").inc()
            log.warning("API key exchange failed", extra={"error": type(exc).__name__})
            raise ExchangeUnavailable() from None
        if response.status_code in (401, 422):
            API_KEY_EXCHANGES.labels("refused").inc()
            raise InvalidApiKey("This API key is not valid, or was revoked or has expired.")
        if response.status_code != 200:
            API_KEY_EXCHANGES.labels("unavailable").inc()
            log.warning("API key exchange answered %d", response.status_code)
            raise ExchangeUnavailable()
        token = str(response.json()["access_token"])
        claims = await self._verifier.verify(token)
        API_KEY_EXCHANGES.labels("exchanged").inc()
        return Exchanged(
            authorization=b"Bearer " + token.encode("latin-1"),
            claims=claims,
            renew_at=claims.exp - min(RENEW_BEFORE_SECONDS, (claims.exp - claims.iat) / 4),
        )

    def _remember(self, digest: bytes, exchanged: Exchanged) -> None:
        if not self._cache_size:
            return
        if digest not in self._exchanged and len(self._exchanged) >= self._cache_size:
            oldest = next(iter(self._exchanged))
            self._digests.pop(self._exchanged.pop(oldest).claims.sid, None)
        self._exchanged[digest] = exchanged
        self._digests[exchanged.claims.sid] = digest


def revocation_handlers(denylist: RedisDenylist, keys: ApiKeys) -> dict[str, SessionAgnosticHandler]:
    """The denylist's handlers, `api_key.revoked` also dropping this replica's exchange."""
    handlers = denylist_handlers(denylist)
    denylist_revoked = handlers[ApiKeyRevoked.event_type]

    async def on_api_key_revoked(session: object, event: CloudEvent, data: EventData) -> None:
        assert isinstance(data, ApiKeyRevoked)
        await denylist_revoked(session, event, data)
        keys.forget(data.key_id)

    return {**handlers, ApiKeyRevoked.event_type: on_api_key_revoked}
