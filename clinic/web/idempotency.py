"""Answers kept per (conversation, client message id), so that a retried
message is answered again without being processed twice.

``ReplyCache``: in memory, per web-app process: a retry reaches the process
that answered the first try as long as one process serves the site (the
default). A message still in flight when its retry arrives is awaited, not
re-sent. Failures are not kept: their retry is processed afresh.

``RedisReplyCache`` (``REDIS_URL`` set; ``reply_cache()`` picks): the same in
Redis, shared by every web-app process on every host, so a retry may reach any
of them. The first try claims the key (SET NX, expiring after ``pending_s`` in
case its process dies), then stores the answer (expiring after ``ttl_s``); a
retry meanwhile polls until the answer is there, or processes the message
itself when the first try failed (the claim is dropped) or its process died.
Redis holds the bot's answers for ``ttl_s``: keep it on a private network or
behind a password and TLS (docs/DEPLOYMENT.md). When Redis cannot be reached,
messages are processed without the cache (a warning is logged).
"""

import asyncio
import hashlib
import json
import logging
import secrets
import time
from collections import OrderedDict
from typing import Any, Awaitable, Callable, Optional, Tuple

logger = logging.getLogger(__name__)

Key = Tuple[str, str]

TTL_S = 15 * 60


class ReplyCache:
    def __init__(self, max_entries: int = 20_000, ttl_s: float = TTL_S) -> None:
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self._entries: "OrderedDict[Key, Tuple[float, asyncio.Future]]" = OrderedDict()

    def _expire(self) -> None:
        now = time.monotonic()
        while self._entries:
            key, (created, _) = next(iter(self._entries.items()))
            if now - created < self.ttl_s and len(self._entries) < self.max_entries:
                break
            self._entries.popitem(last=False)

    async def once(self, key: Key, produce: Callable[[], Awaitable[Any]]) -> Any:
        """The result of ``produce()`` for this key, produced at most once while it succeeds."""
        self._expire()
        entry = self._entries.get(key)
        if entry is not None:
            return await asyncio.shield(entry[1])
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._entries[key] = (time.monotonic(), future)
        try:
            result = await produce()
        except BaseException as exc:
            self._entries.pop(key, None)
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody waits
            raise
        future.set_result(result)
        return result

    async def close(self) -> None:
        pass


# Deletes the claim only while it is still this try's (not a later try's after it expired).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisReplyCache:
    def __init__(
        self,
        url: str,
        ttl_s: float = TTL_S,
        pending_s: float = 120.0,
        poll_s: float = 0.05,
        prefix: str = "clinic:reply:",
    ) -> None:
        self.url = url
        self._redis: Any = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self.ttl_ms = int(ttl_s * 1000)
        self.pending_ms = int(pending_s * 1000)  # longer than the web app's wait for Rasa, retry included
        self.poll_s = poll_s
        self.prefix = prefix

    @property
    def redis(self) -> Any:
        """A client of the running event loop's (a client's connections belong to one loop)."""
        import redis.asyncio

        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._redis = redis.asyncio.Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=5)
            self._loop = loop
        return self._redis

    def _key(self, key: Key) -> str:
        conversation_id, message_id = key
        return self.prefix + hashlib.sha256(f"{conversation_id}\n{message_id}".encode()).hexdigest()

    async def once(self, key: Key, produce: Callable[[], Awaitable[Any]]) -> Any:
        """The result of ``produce()`` (JSON) for this key, produced at most once while it succeeds."""
        import redis

        name = self._key(key)
        claim = "pending:" + secrets.token_hex(8)
        deadline = time.monotonic() + self.pending_ms / 1000 + 5
        try:
            while True:
                if await self.redis.set(name, claim, nx=True, px=self.pending_ms):
                    break  # ours to produce
                stored = await self.redis.get(name)
                if stored is not None and not stored.startswith(b"pending:"):
                    return json.loads(stored)
                if time.monotonic() > deadline:
                    raise TimeoutError("a retried message is still being answered")
                await asyncio.sleep(self.poll_s)
        except redis.RedisError as exc:
            logger.warning("reply cache unavailable (%s): answering without it", type(exc).__name__)
            return await produce()

        try:
            result = await produce()
        except BaseException:
            await self._release(name, claim)
            raise
        try:
            await self.redis.set(name, json.dumps(result, separators=(",", ":")), px=self.ttl_ms)
        except redis.RedisError as exc:
            logger.warning("reply cache unavailable (%s): answer not kept", type(exc).__name__)
        return result

    async def _release(self, name: str, claim: str) -> None:
        import redis

        try:
            await self.redis.eval(_RELEASE, 1, name, claim)
        except redis.RedisError as exc:  # the claim expires by itself
            logger.warning("reply cache unavailable (%s)", type(exc).__name__)

    async def close(self) -> None:
        if self._redis is not None and self._loop is asyncio.get_running_loop():
            await self._redis.close()
        self._redis = self._loop = None


def reply_cache(redis_url: Optional[str]) -> Any:
    """The reply cache for the web app: in Redis when ``REDIS_URL`` is set, else in memory."""
    return RedisReplyCache(redis_url) if redis_url else ReplyCache()
