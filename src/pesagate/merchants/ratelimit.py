"""Rate limits with the `limits` library's moving window: in memory in one process, shared
through Redis when `PESAGATE_REDIS_URL` is set.

- Requests per API key (`PESAGATE_RATE_LIMIT`, e.g. "100/second"), off unless set.
- STK prompts, on by default: per API key (`PESAGATE_PROMPT_LIMIT_PER_KEY`) and per phone
  number (`PESAGATE_PROMPT_LIMIT_PER_PHONE`), the latter across every key and business. The
  public key is published in web pages by design: without these, anyone could make the
  gateway prompt any phone, as often as they like.
"""

import hashlib
import math
import time
from collections.abc import Awaitable, Callable

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from pesagate.errors import ApiError

NAMESPACE = "pesagate-api"
PROMPTS_PER_KEY = "pesagate-prompts-key"
PROMPTS_PER_PHONE = "pesagate-prompts-phone"


class Throttled(ApiError):
    status_code = 429

    def __init__(self, retry_after_s: int, reason: str = "") -> None:
        self.retry_after_s = retry_after_s
        because = f" {reason}" if reason else ""
        super().__init__(
            f"Request was throttled.{because} Expected available in {retry_after_s} seconds."
        )

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


def limit_storage(redis_url: str | None) -> Storage:
    return RedisStorage(f"async+{redis_url}") if redis_url else MemoryStorage()


def parse_limits(spec: str | None) -> list[RateLimitItem]:
    """`"5/minute;20/hour"`: every item must allow the hit. Empty or None: no limit."""
    return parse_many(spec) if spec else []


class _Window:
    """Items counted under one namespace, each hit against all of them."""

    def __init__(self, limiter: MovingWindowRateLimiter, namespace: str, spec: str | None):
        self.limiter = limiter
        self.namespace = namespace
        self.items = parse_limits(spec)

    async def hit(self, key: str, reason: str = "") -> None:
        """Count one hit for `key`; raise Throttled when any item is over its limit."""
        for item in self.items:
            if not await self.limiter.hit(item, self.namespace, key):
                stats = await self.limiter.get_window_stats(item, self.namespace, key)
                raise Throttled(max(1, math.ceil(stats.reset_time - time.time())), reason)


class RateLimiter:
    """Requests per API key, counted after authentication."""

    def __init__(self, spec: str | None, redis_url: str | None = None) -> None:
        self.limiter = MovingWindowRateLimiter(limit_storage(redis_url))
        self._window = _Window(self.limiter, NAMESPACE, spec)

    async def check(self, key: str) -> None:
        await self._window.hit(key)


def allowance(limiter: RateLimiter, key: str) -> Callable[[], Awaitable[bool]]:
    """Spends one of `key`'s allowance when called; False once it is used up. For posts that
    are refused anyway (callbacks for no invoice): past the allowance they are not stored."""

    async def allow() -> bool:
        try:
            await limiter.check(key)
        except Throttled:
            return False
        return True

    return allow


class PromptLimiter:
    """STK prompts per API key and per phone number, counted for each valid push request."""

    def __init__(self, per_key: str | None, per_phone: str | None, limiter: RateLimiter) -> None:
        self._per_key = _Window(limiter.limiter, PROMPTS_PER_KEY, per_key)
        self._per_phone = _Window(limiter.limiter, PROMPTS_PER_PHONE, per_phone)

    async def check(self, key_lookup: str, phone_number: str) -> None:
        await self._per_key.hit(key_lookup, "Too many payment prompts with this API key.")
        # Hashed: the shared store (Redis) never holds the phone numbers themselves.
        phone = hashlib.sha256(phone_number.encode()).hexdigest()
        await self._per_phone.hit(phone, "Too many payment prompts to this phone number.")
