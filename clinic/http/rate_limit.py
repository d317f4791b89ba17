"""Rate limits of the visitor API: token buckets, per key.

One visitor (conversation) may send a burst of messages and then about two a
second; one address may open a burst of new conversations and then about one
a second. Past that the visitor API answers 429 with a clear message, and
other visitors are unaffected.

``RateLimiter`` keeps the buckets in memory, per web-app process, like the
in-memory reply cache. ``RedisRateLimiter`` (``REDIS_URL`` set; ``limiter()``
picks) keeps them in Redis, shared by every web-app process on every host:
one Lua script takes a token atomically, on Redis's clock. Both answer
``await check(key)``: None when the request may go on, else the seconds to
wait. When Redis cannot be reached, requests go through (a warning is logged).
"""

import asyncio
import logging
import math
import time
from typing import Any, Dict, Optional, Tuple

logger = logging.getLogger(__name__)


class RateLimiter:
    def __init__(self, per_second: float, burst: float, idle_forget_s: float = 600.0) -> None:
        self.per_second = per_second
        self.burst = burst
        self.idle_forget_s = idle_forget_s
        self._buckets: Dict[str, Tuple[float, float]] = {}  # key -> (tokens, last time)
        self._last_sweep = 0.0

    @classmethod
    def from_setting(cls, setting: Optional[Tuple[float, float]]) -> "RateLimiter":
        """From a (burst, per second) setting; None (``off``) lets everything through."""
        if setting is None:
            return cls(per_second=float("inf"), burst=float("inf"))
        burst, per_second = setting
        return cls(per_second=per_second, burst=burst)

    def allow(self, key: str, now: float = None) -> bool:
        if self.burst == float("inf"):
            return True
        now = time.monotonic() if now is None else now
        self._sweep(now)
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.per_second)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            return False
        self._buckets[key] = (tokens - 1, now)
        return True

    def retry_after(self, key: str) -> int:
        tokens, _ = self._buckets.get(key, (self.burst, 0.0))
        return max(1, int((1 - tokens) / self.per_second + 0.999))

    async def check(self, key: str) -> Optional[int]:
        """None when ``key`` may go on, else the seconds to wait."""
        return None if self.allow(key) else self.retry_after(key)

    async def close(self) -> None:
        pass

    def _sweep(self, now: float) -> None:
        if now - self._last_sweep < self.idle_forget_s:
            return
        self._last_sweep = now
        for key in [k for k, (_, last) in self._buckets.items() if now - last > self.idle_forget_s]:
            del self._buckets[key]


# KEYS[1]: the bucket (a hash of tokens and the time they were counted, in ms);
# ARGV: burst, tokens per second. Returns 0 when a token was taken, else the ms to wait.
_TAKE = """
local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(bucket[1]) or burst
local at = tonumber(bucket[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) * 1000 / rate) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return wait
"""


class RedisRateLimiter:
    def __init__(self, url: str, per_second: float, burst: float, name: str) -> None:
        self.url = url
        self.per_second = per_second
        self.burst = burst
        self.prefix = f"clinic:rate:{name}:"
        self._redis: Any = None
        self._take: Any = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None

    def _script(self) -> Any:
        """The token script on a client of the running event loop's (a client's connections belong to one loop)."""
        import redis.asyncio

        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._redis = redis.asyncio.Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=5)
            self._take = self._redis.register_script(_TAKE)
            self._loop = loop
        return self._take

    async def check(self, key: str) -> Optional[int]:
        """None when ``key`` may go on, else the seconds to wait."""
        import redis

        try:
            wait_ms = await self._script()(keys=[self.prefix + key], args=[repr(self.burst), repr(self.per_second)])
        except redis.RedisError as exc:
            logger.warning("rate limits unavailable (%s): request let through", type(exc).__name__)
            return None
        return None if not wait_ms else max(1, math.ceil(int(wait_ms) / 1000))

    async def close(self) -> None:
        if self._redis is not None and self._loop is asyncio.get_running_loop():
            await self._redis.close()
        self._redis = self._take = self._loop = None


def limiter(setting: Optional[Tuple[float, float]], redis_url: Optional[str], name: str) -> Any:
    """A limiter for a (burst, per second) setting (None: ``off``, everything goes through):
    in Redis when ``REDIS_URL`` is set, else in memory. ``name`` tells the limiters apart in Redis."""
    if setting is None or not redis_url:
        return RateLimiter.from_setting(setting)
    burst, per_second = setting
    return RedisRateLimiter(redis_url, per_second=per_second, burst=burst, name=name)
