"""Token revocation for verifiers that cannot see auth-service's database (gateway, billing).

`RedisDenylist` implements the `jwks.Denylist` protocol from what the events say:

- `user.deactivated` (at T): tokens of that user issued at or before T are rejected. Tokens live
  at most `access_token_ttl_seconds`, so the entry expires T + TTL + leeway later.
- `user.reactivated` (at T'): lifts the user's entry. Events arrive unordered, so each user key
  holds the latest event's kind and time, and an older event never overwrites a newer one: a
  deactivation delivered after a later reactivation changes nothing.
- `session.revoked`: every token carrying one of the `sid`s is rejected until it would have
  expired anyway (revoked_at + TTL + leeway).
- `api_key.revoked`: the same for the key's id, which is the `sid` of every token exchanged from it.

Writes are idempotent (re-applying an event leaves the same state), which is why the consumer
that feeds the denylist needs no database for deduplication: run it with
`EventConsumer(..., session_factory=None, handlers=denylist_handlers(denylist))`.
One Redis round trip (MGET) per check, or none of its own: `keys_for` and `judge` let a caller
batch the lookup with its other Redis work. Redis being unreachable raises, so verification fails
closed. Every replica of a verifier sharing the Redis and key prefix shares the denylist.

A Redis that lost its data (restarted without persistence, flushed, failed over to an empty
replica) would otherwise accept again every token revoked before the loss. So the denylist is only
trusted while its `ready` marker exists: `rebuild()` writes every revocation that can still matter
(auth-service's list, `gatehouse_contracts.revocations`) and then sets the marker, and `judge()`
raises `DenylistNotReady` (a 503: retry, not "your token is bad") while it is missing.
`DenylistRebuilder`, a worker beside the consumer, notices the marker gone and rebuilds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import httpx
from redis.asyncio import Redis

from gatehouse_contracts.envelope import CloudEvent, EventData
from gatehouse_contracts.events import ApiKeyRevoked, SessionRevoked, UserDeactivated, UserReactivated
from gatehouse_contracts.revocations import Revocations
from gatehouse_contracts.tokens import AccessTokenClaims
from gatehouse_platform.consumer import EventConsumer
from gatehouse_platform.errors import ServiceUnavailable
from gatehouse_platform.settings import TokenVerifierSettings

log = logging.getLogger(__name__)

# KEYS[1] user key; ARGV: kind ("D"/"R"), event time (epoch seconds), ttl in ms.
# Keeps whichever event is newer, so redelivered and out-of-order events converge.
_SET_IF_NEWER = """
local current = redis.call('GET', KEYS[1])
if current then
  local at = tonumber(string.sub(current, 3))
  if at and at > tonumber(ARGV[2]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. ARGV[2], 'PX', ARGV[3])
return 1
"""


class DenylistNotReady(ServiceUnavailable):
    """The denylist has not been rebuilt since Redis lost its data: revocations cannot be judged."""

    def __init__(self) -> None:
        super().__init__("revocations are being reloaded; try again shortly", headers={"Retry-After": "1"})


class RedisDenylist:
    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str,
        access_token_ttl_seconds: int,
        leeway_seconds: int = 5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._lifetime = access_token_ttl_seconds + leeway_seconds
        self._clock = clock
        self._set_if_newer = redis.register_script(_SET_IF_NEWER)

    def _user_key(self, user_id: uuid.UUID) -> str:
        return f"{self._prefix}:user:{user_id}"

    def _sid_key(self, sid: uuid.UUID) -> str:
        return f"{self._prefix}:sid:{sid}"

    @property
    def _ready_key(self) -> str:
        return f"{self._prefix}:ready"

    def _ttl_ms(self, at: datetime) -> int:
        """How long an entry about an event at `at` matters: until tokens issued then expire."""
        return int((at.timestamp() + self._lifetime - self._clock()) * 1000)

    async def is_revoked(self, claims: AccessTokenClaims) -> bool:
        return self.judge(claims, await self._redis.mget(*self.keys_for(claims)))

    def keys_for(self, claims: AccessTokenClaims) -> list[str]:
        """The keys `judge` needs, for callers that fetch them (MGET) in a pipeline of their own."""
        return [self._user_key(claims.sub), self._sid_key(claims.sid), self._ready_key]

    @staticmethod
    def judge(claims: AccessTokenClaims, values: Sequence[bytes | str | None]) -> bool:
        """Whether `claims` are revoked, given the values of `keys_for(claims)`; raises
        `DenylistNotReady` when the denylist cannot be trusted (not rebuilt since a data loss)."""
        user, sid, ready = values
        if ready is None:
            raise DenylistNotReady()
        if sid is not None:
            return True
        if user is None:
            return False
        kind, _, at = (user.decode() if isinstance(user, bytes) else user).partition(":")
        return kind == "D" and claims.iat <= float(at)

    async def deactivate_user(self, user_id: uuid.UUID, at: datetime) -> None:
        await self._record_user(user_id, "D", at)

    async def reactivate_user(self, user_id: uuid.UUID, at: datetime) -> None:
        await self._record_user(user_id, "R", at)

    async def revoke_sessions(self, session_ids: Iterable[uuid.UUID], at: datetime) -> None:
        ttl = self._ttl_ms(at)
        if ttl <= 0:
            return  # every token of these sessions has expired already
        async with self._redis.pipeline(transaction=False) as pipe:
            for sid in session_ids:
                pipe.set(self._sid_key(sid), f"{at.timestamp():.6f}", px=ttl)
            await pipe.execute()

    async def is_ready(self) -> bool:
        return bool(await self._redis.exists(self._ready_key))

    async def rebuild(self, revocations: Revocations) -> None:
        """Write every revocation in `revocations` (the same idempotent writes the events make, so
        events applied meanwhile are neither lost nor undone), then mark the denylist ready."""
        for user in revocations.users:
            await self.deactivate_user(user.user_id, user.deactivated_at)
        by_time: dict[datetime, list[uuid.UUID]] = {}
        for session in revocations.sessions:
            by_time.setdefault(session.revoked_at, []).append(session.session_id)
        for at, session_ids in by_time.items():
            await self.revoke_sessions(session_ids, at)
        await self._redis.set(self._ready_key, f"{self._clock():.6f}")

    async def _record_user(self, user_id: uuid.UUID, kind: str, at: datetime) -> None:
        ttl = self._ttl_ms(at)
        if ttl <= 0:
            return
        await self._set_if_newer(keys=[self._user_key(user_id)], args=[kind, f"{at.timestamp():.6f}", ttl])


RevocationSource = Callable[[], Awaitable[Revocations]]


def revocations_from(http: httpx.AsyncClient, url: str) -> RevocationSource:
    """Auth-service's list of revocations that can still matter, over HTTP."""

    async def fetch() -> Revocations:
        response = await http.get(url)
        response.raise_for_status()
        return Revocations.model_validate_json(response.content)

    return fetch


STOP_SECONDS = 10.0  # a check's Redis calls and fetch are bounded by their clients' own timeouts


class DenylistRebuilder:
    """A worker that keeps the denylist trusted: whenever its `ready` marker is missing (at first
    start, after Redis lost its data), it fetches the revocations from `source` and rebuilds.
    Its owner calls `ensure_ready()` once before `start()` (so the first token check finds it
    ready); the worker then checks every `interval` seconds (one EXISTS). A failed rebuild is retried
    at the next check, and token checks fail closed (503) until one succeeds."""

    def __init__(self, denylist: RedisDenylist, source: RevocationSource, *, interval: float = 1.0) -> None:
        self._denylist = denylist
        self._source = source
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.rebuilds = 0

    async def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name="denylist-rebuilder")

    async def stop(self) -> None:
        """Let a check under way finish (a Redis command cancelled halfway can leave the shared
        client's connection unusable), then end; cancel only if it takes longer than
        STOP_SECONDS."""
        if self._task is not None:
            self._stopping.set()
            try:
                await asyncio.wait_for(self._task, STOP_SECONDS)
            except TimeoutError:
                log.warning("denylist rebuilder did not stop in %.0f s; cancelled", STOP_SECONDS)
            self._task = None

    async def ensure_ready(self) -> bool:
        """Rebuild if needed; True when the denylist is ready afterwards."""
        try:
            if await self._denylist.is_ready():
                return True
            await self._denylist.rebuild(await self._source())
        except Exception as exc:  # Redis or auth-service down: fail closed, try again later
            log.warning("denylist rebuild failed", extra={"error": type(exc).__name__})
            return False
        self.rebuilds += 1
        log.info("denylist rebuilt from the issuer's revocations")
        return True

    async def _run(self) -> None:
        # The owner calls ensure_ready() once before start(), ahead of the first token check.
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)
                return
            await self.ensure_ready()


# Handlers that ignore the session: they fit a consumer with a database (billing can add them to
# its own handlers) as well as one without (the gateway's, `session_factory=None`).
SessionAgnosticHandler = Callable[[object, CloudEvent, EventData], Awaitable[None]]


def denylist_handlers(denylist: RedisDenylist) -> dict[str, SessionAgnosticHandler]:
    """The event handlers that keep `denylist` current. Their Redis writes are idempotent, so they
    need no processed-event record and may run in a consumer without a database."""

    async def on_deactivated(_: object, event: CloudEvent, data: EventData) -> None:
        assert isinstance(data, UserDeactivated)
        await denylist.deactivate_user(data.user_id, data.deactivated_at)

    async def on_reactivated(_: object, event: CloudEvent, data: EventData) -> None:
        assert isinstance(data, UserReactivated)
        await denylist.reactivate_user(data.user_id, data.reactivated_at)

    async def on_sessions_revoked(_: object, event: CloudEvent, data: EventData) -> None:
        assert isinstance(data, SessionRevoked)
        await denylist.revoke_sessions(data.session_ids, data.revoked_at)

    async def on_api_key_revoked(_: object, event: CloudEvent, data: EventData) -> None:
        # a token exchanged from an API key has the key's id as its `sid`
        assert isinstance(data, ApiKeyRevoked)
        await denylist.revoke_sessions([data.key_id], data.revoked_at)

    return {
        UserDeactivated.event_type: on_deactivated,
        UserReactivated.event_type: on_reactivated,
        SessionRevoked.event_type: on_sessions_revoked,
        ApiKeyRevoked.event_type: on_api_key_revoked,
    }


REVOCATIONS_TIMEOUT_SECONDS = 2.0  # fetching the revocation list from auth-service


@dataclass
class TokenDenylist:
    """A service's denylist and what keeps it true: the consumer of revocation events and the
    rebuilder that refills it from auth-service after Redis lost it (with its HTTP client)."""

    denylist: RedisDenylist
    consumer: EventConsumer
    rebuilder: DenylistRebuilder
    http: httpx.AsyncClient


def token_denylist(settings: TokenVerifierSettings, redis: Redis, *, consumer_name: str) -> TokenDenylist:
    """The denylist of a service that verifies tokens remotely. Revocations need no database and get
    a queue of their own (`<consumer_name>.denylist`), so nothing slow in the service's other
    consumers ever delays one."""
    denylist = RedisDenylist(
        redis,
        prefix=f"{settings.redis_key_prefix}:denylist",
        access_token_ttl_seconds=settings.access_token_ttl_seconds,
    )
    http = httpx.AsyncClient(timeout=REVOCATIONS_TIMEOUT_SECONDS)
    consumer = EventConsumer(
        settings.amqp_url,
        exchange=settings.events_exchange,
        name=f"{consumer_name}.denylist",
        handlers=denylist_handlers(denylist),
        session_factory=None,
    )
    return TokenDenylist(
        denylist, consumer, DenylistRebuilder(denylist, revocations_from(http, settings.revocations)), http
    )
