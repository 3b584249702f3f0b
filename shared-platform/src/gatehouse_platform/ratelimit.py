"""Rate limits kept in Redis (shared by every replica), with the `limits` library's sliding window."""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from gatehouse_platform.errors import TooManyRequests


class RateLimiter:
    def __init__(self, redis_url: str, *, prefix: str) -> None:
        scheme, _, rest = redis_url.partition("://")
        self._storage = RedisStorage(f"async+{scheme}://{rest}", implementation="redispy", key_prefix=prefix)
        self._limiter = SlidingWindowCounterRateLimiter(self._storage)
        self._parsed: dict[str, RateLimitItem] = {}

    def _item(self, limit: str) -> RateLimitItem:
        if limit not in self._parsed:
            self._parsed[limit] = parse(limit)
        return self._parsed[limit]

    async def hit(self, limit: str, *identifiers: str, detail: str | None = None) -> None:
        """Count one hit against `limit` ("10/minute") for the identifiers; 429 once it is spent."""
        item = self._item(limit)
        if not await self._limiter.hit(item, *identifiers):
            stats = await self._limiter.get_window_stats(item, *identifiers)
            raise TooManyRequests(max(1, math.ceil(stats.reset_time - time.time())), detail)

    async def clear(self, limit: str, *identifiers: str) -> None:
        await self._limiter.clear(self._item(limit), *identifiers)

    async def ping(self) -> bool:
        return bool(await self._storage.check())
