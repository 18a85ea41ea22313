"""Rate limits per API key (`PESAGATE_RATE_LIMIT`, e.g. "100/second"), with the `limits`
library: in memory on one node, shared through Redis when `PESAGATE_REDIS_URL` is set."""

import math
import time

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from pesagate.errors import ApiError

NAMESPACE = "pesagate-api"


class Throttled(ApiError):
    status_code = 429

    def __init__(self, retry_after_s: int) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(f"Request was throttled. Expected available in {retry_after_s} seconds.")

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


class RateLimiter:
    def __init__(self, spec: str | None, redis_url: str | None = None) -> None:
        self.item: RateLimitItem | None = parse(spec) if spec else None
        storage: Storage = RedisStorage(f"async+{redis_url}") if redis_url else MemoryStorage()
        self.limiter = MovingWindowRateLimiter(storage)

    async def check(self, key: str) -> None:
        """Count one request for `key`; raise Throttled when over the limit."""
        if self.item is None:
            return
        if await self.limiter.hit(self.item, NAMESPACE, key):
            return
        stats = await self.limiter.get_window_stats(self.item, NAMESPACE, key)
        raise Throttled(max(1, math.ceil(stats.reset_time - time.time())))
