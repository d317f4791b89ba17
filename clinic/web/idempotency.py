"""Answers kept per (conversation, client message id), so that a retried
message is answered again without being processed twice.

In memory, per web-app process: a retry reaches the process that answered
the first try as long as one process serves the site (the default). A
message still in flight when its retry arrives is awaited, not re-sent.
Failures are not kept: their retry is processed afresh.
"""

import asyncio
import time
from collections import OrderedDict
from typing import Any, Awaitable, Callable, Tuple

Key = Tuple[str, str]


class ReplyCache:
    def __init__(self, max_entries: int = 20_000, ttl_s: float = 15 * 60) -> None:
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
