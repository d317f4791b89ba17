"""Too many messages from one visitor, or too many new visitors from one address, get a 429."""

from clinic.web.rate_limit import RateLimiter


def test_a_burst_then_the_steady_rate():
    limiter = RateLimiter(per_second=2.0, burst=3)
    assert [limiter.allow("a", now=0.0) for _ in range(4)] == [True, True, True, False]
    assert limiter.retry_after("a") == 1
    assert limiter.allow("a", now=0.5)       # one token back after half a second
    assert not limiter.allow("a", now=0.5)
    assert limiter.allow("b", now=0.5)       # another visitor is not affected


def test_idle_keys_are_forgotten():
    limiter = RateLimiter(per_second=1.0, burst=1, idle_forget_s=10)
    limiter.allow("a", now=0.0)
    limiter.allow("b", now=11.0)
    assert list(limiter._buckets) == ["b"]
