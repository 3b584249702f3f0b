"""WebAuthn challenges in Redis: each issued for one ceremony (and, for registration, one user),
taken once (GETDEL), gone after `webauthn_challenge_ttl_seconds`."""

from __future__ import annotations

import hashlib

from redis.asyncio import Redis

from auth_service.settings import Settings


class Challenges:
    def __init__(self, settings: Settings, redis: Redis) -> None:
        self._redis = redis
        self._prefix = f"{settings.redis_key_prefix}:webauthn"
        self._ttl = settings.webauthn_challenge_ttl_seconds

    def _key(self, ceremony: str, challenge: bytes) -> str:
        return f"{self._prefix}:{ceremony}:{hashlib.sha256(challenge).hexdigest()}"

    async def issue(self, ceremony: str, challenge: bytes, subject: str) -> None:
        await self._redis.set(self._key(ceremony, challenge), subject, ex=self._ttl)

    async def take(self, ceremony: str, challenge: bytes) -> str | None:
        """Who the challenge was issued to, once; None if unknown, expired or already taken."""
        value = await self._redis.getdel(self._key(ceremony, challenge))
        return None if value is None else (value.decode() if isinstance(value, bytes) else str(value))
