"""Rate limits at the edge, counted in Redis so every gateway replica shares them.

Each route's rule (settings.rate_limit_rules) limits requests per client IP and, when the edge
verified a token, per user and, for a token exchanged from an API key, per key. Every limit of a
request is checked and counted in one Redis round trip (a Lua script): a request is counted only
if every limit admits it, so a refused request does not eat into another limit. The window is a
sliding-window counter (the `limits` library's strategy, and its "N/period" syntax): the previous
fixed window's count, weighted by how much of it still overlaps the sliding window, plus the
current window's count.

Responses of limited routes carry the IETF draft headers (RateLimit-Limit, -Remaining, -Reset,
-Policy) of the tightest limit; a refusal is 429 problem+json with Retry-After. Redis being
unreachable lets requests through (logged): rate limiting must not take the API down with it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from limits import RateLimitItem, parse
from redis.asyncio import Redis
from redis.exceptions import NoScriptError, RedisError

from gatehouse_platform.errors import TooManyRequests
from gateway.metrics import RATE_LIMITED
from gateway.settings import RateLimitRule
from gateway.transport.redis import RedisLane

log = logging.getLogger(__name__)

# KEYS: per limit, its current-window key then its previous-window key.
# ARGV: per limit, its amount then its window (seconds), then the weight of the previous window.
# Returns 1/0 (admitted), then per limit the current and previous windows' counts before this hit.
_SLIDING_WINDOW = """
local n = #KEYS / 2
local counts = {}
local admitted = 1
for i = 1, n do
  local amount = tonumber(ARGV[2 * i - 1])
  local weight = tonumber(ARGV[2 * n + i])
  local current = tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0')
  local previous = tonumber(redis.call('GET', KEYS[2 * i]) or '0')
  counts[2 * i - 1] = current
  counts[2 * i] = previous
  if previous * weight + current + 1 > amount then admitted = 0 end
end
if admitted == 1 then
  for i = 1, n do
    redis.call('INCR', KEYS[2 * i - 1])
    redis.call('EXPIRE', KEYS[2 * i - 1], 2 * tonumber(ARGV[2 * i]))
  end
end
table.insert(counts, 1, admitted)
return counts
"""


@dataclass(frozen=True, slots=True)
class LimitState:
    item: RateLimitItem
    remaining: int
    reset: int  # seconds until the window moves on (or, when refused, until a request fits)


@dataclass(frozen=True, slots=True)
class Verdict:
    admitted: bool
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    retry_after: int = 0


def _retry_after(item: RateLimitItem, current: int, previous: int, elapsed: float) -> float:
    """Seconds until one more request fits under `item`, given the counts now."""
    window, amount = item.get_expiry(), item.amount
    if current + 1 <= amount:
        # Wait until enough of the previous window has slid out.
        if previous <= 0:
            return 0.0
        overlap_ok = (amount - current - 1) / previous
        return max(0.0, window * (1 - overlap_ok) - elapsed)
    # Only the next window can admit it; there, this window's count is the one sliding out.
    until_next = window - elapsed
    if amount - 1 <= 0 or current <= 0:
        return until_next + window
    return until_next + max(0.0, window * (1 - (amount - 1) / current))


class RateLimits:
    def __init__(
        self, redis: Redis, lane: RedisLane, *, prefix: str, clock: Callable[[], float] = time.time
    ) -> None:
        self._redis = redis
        self._lane = lane
        self._prefix = prefix
        self._clock = clock
        self._script = redis.register_script(_SLIDING_WINDOW)
        # Per rule, what every request under it shares: the parsed limits and their key prefixes.
        self._plans: dict[tuple[str, str | None, str | None, str | None], list[_Planned]] = {}
        self._policies: dict[tuple[RateLimitItem, ...], bytes] = {}

    def _plan(self, rule: RateLimitRule) -> list[_Planned]:
        key = (rule.name, rule.ip, rule.user, rule.api_key)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = []
            kinds: tuple[tuple[Literal["ip", "user", "key"], str | None], ...] = (
                ("ip", rule.ip),
                ("user", rule.user),
                ("key", rule.api_key),
            )
            for kind, limit in kinds:
                if limit is not None:
                    item = parse(limit)
                    window = item.get_expiry()
                    base = f"{self._prefix}:rl:{rule.name}:{kind}:{window}:"
                    plan.append(_Planned(kind, item, window, base))
        return plan

    def prepare(
        self, rule: RateLimitRule, *, ip: str, user: str | None, api_key: str | None = None
    ) -> PendingHit | None:
        """The Redis work for one request under `rule` (None when no limit applies to it)."""
        limits: list[RateLimitItem] = []
        keys: list[str] = []
        windows: list[int] = []
        weights: list[float] = []
        elapsed: list[float] = []
        now = self._clock()
        for planned in self._plan(rule):
            identity = {"ip": ip, "user": user, "key": api_key}[planned.per]
            if identity is None:
                continue
            window = planned.window
            index, into_window = divmod(now, window)
            base = planned.base + identity
            keys += [f"{base}:{int(index)}", f"{base}:{int(index) - 1}"]
            limits.append(planned.item)
            windows.append(window)
            weights.append((window - into_window) / window)
            elapsed.append(into_window)
        if not limits:
            return None
        args: list[float] = []
        for item, window in zip(limits, windows, strict=True):
            args += [item.amount, window]
        return PendingHit(rule.name, limits, keys, [*args, *weights], weights, elapsed, windows)

    def command(self, pending: PendingHit) -> tuple[Any, ...]:
        """The hit as a command for a caller's batch; `verdict` reads its reply."""
        return ("EVALSHA", self._script.sha, len(pending.keys), *pending.keys, *pending.args)

    async def hit(self, rule: RateLimitRule, *, ip: str, user: str | None) -> Verdict:
        pending = self.prepare(rule, ip=ip, user=user)
        return Verdict(True) if pending is None else await self.run(pending)

    async def run(self, pending: PendingHit) -> Verdict:
        """The hit in a round trip of its own."""
        try:
            (reply,) = await self._lane.execute(self.command(pending))
        except RedisError as exc:
            return unavailable(exc)
        return await self.verdict(pending, reply)

    async def verdict(self, pending: PendingHit, reply: Sequence[int] | Exception) -> Verdict:
        """The verdict from the reply to `command(pending)` (an error reply comes as the exception)."""
        if isinstance(reply, NoScriptError):  # a restarted Redis lost the script: the client loads it
            try:
                reply = await self._script(keys=pending.keys, args=pending.args)
            except RedisError as exc:
                return unavailable(exc)
        if isinstance(reply, Exception):
            return unavailable(reply)
        return self.judge(pending, reply)

    def judge(self, pending: PendingHit, result: Sequence[int]) -> Verdict:
        admitted = bool(result[0])
        states: list[LimitState] = []
        retry_after = 0.0
        for i, item in enumerate(pending.limits):
            current, previous = int(result[1 + 2 * i]), int(result[2 + 2 * i])
            elapsed = pending.elapsed[i]
            weighted = previous * pending.weights[i] + current + (1 if admitted else 0)
            remaining = max(0, math.floor(item.amount - weighted))
            wait = 0.0 if admitted else _retry_after(item, current, previous, elapsed)
            retry_after = max(retry_after, wait)
            reset = wait if wait > 0 else pending.windows[i] - elapsed
            states.append(LimitState(item, remaining, max(1, math.ceil(reset))))
        headers = self._headers(states)
        if admitted:
            return Verdict(True, headers)
        RATE_LIMITED.labels(pending.rule).inc()
        return Verdict(False, headers, max(1, math.ceil(retry_after)))

    def _headers(self, states: list[LimitState]) -> list[tuple[bytes, bytes]]:
        tightest = min(states, key=lambda s: (s.remaining, -s.reset)) if len(states) > 1 else states[0]
        items = tuple(state.item for state in states)
        policy = self._policies.get(items)
        if policy is None:
            policy = ", ".join(f"{item.amount};w={item.get_expiry()}" for item in items).encode()
            self._policies[items] = policy
        return [
            (b"ratelimit-limit", b"%d" % tightest.item.amount),
            (b"ratelimit-remaining", b"%d" % tightest.remaining),
            (b"ratelimit-reset", b"%d" % tightest.reset),
            (b"ratelimit-policy", policy),
        ]


def unavailable(exc: Exception) -> Verdict:
    log.warning("rate limits unavailable, request let through", extra={"error": type(exc).__name__})
    return Verdict(True)


@dataclass(frozen=True, slots=True)
class PendingHit:
    rule: str
    limits: list[RateLimitItem]
    keys: list[str]
    args: list[float]
    weights: list[float]
    elapsed: list[float]
    windows: list[int]


@dataclass(frozen=True, slots=True)
class _Planned:
    per: Literal["ip", "user", "key"]  # counted per client IP, per user or per API key
    item: RateLimitItem
    window: int  # seconds
    base: str  # the key prefix; the identity and the window's index follow


def too_many_requests(verdict: Verdict) -> TooManyRequests:
    return TooManyRequests(verdict.retry_after, "Too many requests; slow down and retry later.")
