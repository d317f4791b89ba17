"""Rate limits of the visitor API: token buckets in memory, per key.

One visitor (conversation) may send a burst of messages and then about two a
second; one address may open a burst of new conversations and then about one
a second. Past that the visitor API answers 429 with a clear message, and
other visitors are unaffected. Per web-app process, like the reply cache.
"""

import time
from typing import Dict, Optional, Tuple


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

    def _sweep(self, now: float) -> None:
        if now - self._last_sweep < self.idle_forget_s:
            return
        self._last_sweep = now
        for key in [k for k, (_, last) in self._buckets.items() if now - last > self.idle_forget_s]:
            del self._buckets[key]
