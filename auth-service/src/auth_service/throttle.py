"""Throttling of credential endpoints: per-IP and per-account rate limits, and a back-off that
slows an account down after repeated failures without ever locking it out for good."""

from __future__ import annotations

import hashlib
import math
import time

from prometheus_client import Counter
from redis.asyncio import Redis

from auth_service.settings import Settings
from gatehouse_platform.errors import TooManyRequests
from gatehouse_platform.ratelimit import RateLimiter

SIGN_IN_FAILURES = Counter(
    "auth_sign_in_failures_total",
    "Credential checks that failed (a wrong password, code, second factor or passkey), by method.",
    ["method"],
)
THROTTLED = Counter(
    "auth_throttled_total",
    "Attempts refused with 429, by action and by what refused them (ip, account, backoff).",
    ["action", "scope"],
)


def account_key(identifier: str) -> str:
    """Accounts are keyed by a digest of the normalized identifier: no emails in Redis keys."""
    return hashlib.sha256(identifier.strip().lower().encode()).hexdigest()[:32]


class Throttle:
    def __init__(self, settings: Settings, redis: Redis) -> None:
        self._settings = settings
        self._redis = redis
        self._limiter = RateLimiter(settings.redis_url, prefix=settings.redis_key_prefix)

    @property
    def enabled(self) -> bool:
        return self._settings.rate_limits_enabled

    async def credential_attempt(self, action: str, ip: str | None, identifier: str) -> None:
        """Before checking a password or code: limits per IP and per account, then the back-off."""
        if not self.enabled:
            return
        account = account_key(identifier)
        await self._hit(self._settings.credential_ip_limit, action, "ip", ip or "unknown")
        await self._hit(self._settings.credential_account_limit, action, "account", account)
        wait = await self._backoff_remaining(account)
        if wait > 0:
            THROTTLED.labels(action, "backoff").inc()
            raise TooManyRequests(wait, "Too many failed attempts for this account; try again later.")

    async def address_attempt(self, action: str, ip: str | None) -> None:
        """Before a credential check that names no account (a passkey sign-in): the per-IP limit."""
        if not self.enabled:
            return
        await self._hit(self._settings.credential_ip_limit, action, "ip", ip or "unknown")

    async def request_attempt(self, action: str, ip: str | None, identifier: str) -> None:
        """Before sending an email (code, reset link): tighter limits, same answer for any address."""
        if not self.enabled:
            return
        await self._hit(self._settings.request_ip_limit, action, "ip", ip or "unknown")
        await self._hit(self._settings.request_account_limit, action, "account", account_key(identifier))

    async def invitation(self, org_id: str, inviter_id: str) -> None:
        """Before sending an org's invitation: a budget per org and per inviter."""
        if not self.enabled:
            return
        limit = self._settings.org_invitation_limit
        await self._hit(limit, "org_invitation", "org", org_id)
        await self._hit(limit, "org_invitation", "account", inviter_id)

    async def _hit(self, limit: str, action: str, scope: str, key: str) -> None:
        try:
            await self._limiter.hit(limit, action, scope, key)
        except TooManyRequests:
            THROTTLED.labels(action, scope).inc()
            raise

    def _failures_key(self, account: str) -> str:
        return f"{self._settings.redis_key_prefix}:failures:{account}"

    def _address_failures_key(self, ip: str | None) -> str:
        return f"{self._settings.redis_key_prefix}:failures-ip:{ip or 'unknown'}"

    async def failed(self, identifier: str, *, method: str, ip: str | None = None) -> None:
        """A credential check failed: counts towards the account's back-off and, with `ip`, towards
        the address's failures (which the adaptive bot check reads; a success does not clear them,
        so a bot cannot reset its count by signing in to an account of its own now and then)."""
        SIGN_IN_FAILURES.labels(method).inc()
        key = self._failures_key(account_key(identifier))
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(key, "count", 1)
            pipe.hset(key, "last", str(time.time()))
            pipe.expire(key, self._settings.max_backoff_seconds * 2)
            if ip is not None:
                address = self._address_failures_key(ip)
                pipe.incr(address)
                pipe.expire(address, self._settings.captcha_failure_window_seconds)
            await pipe.execute()

    async def past_failure_threshold(self, ip: str | None, identifier: str) -> bool:
        """The adaptive bot check's question: have this address's or this account's failed
        sign-ins reached `captcha_failure_threshold`? Counted for any identifier alike, known
        account or not, so the answer says nothing of who has an account."""
        threshold = self._settings.captcha_failure_threshold
        account = await self._redis.hget(self._failures_key(account_key(identifier)), "count")
        if account is not None and int(account) >= threshold:
            return True
        address = await self._redis.get(self._address_failures_key(ip))
        return address is not None and int(address) >= threshold

    async def succeeded(self, identifier: str) -> None:
        await self._redis.delete(self._failures_key(account_key(identifier)))

    async def _backoff_remaining(self, account: str) -> int:
        """After N failures each further attempt waits 2^(failures-N) s, capped; the count expires."""
        data = await self._redis.hgetall(self._failures_key(account))  # bytes: no decode_responses
        if not data:
            return 0
        failures = int(data.get(b"count", 0))
        last = float(data.get(b"last", 0))
        excess = failures - self._settings.failures_before_backoff
        if excess < 0:
            return 0
        delay = min(self._settings.max_backoff_seconds, 2**excess)
        return max(0, math.ceil(last + delay - time.time()))
