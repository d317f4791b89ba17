"""Too many messages from one visitor, or too many new visitors from one address, get a 429."""

import pytest

from clinic.http.rate_limit import RateLimiter


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


def test_limits_come_from_settings_and_can_be_turned_off(monkeypatch):
    from clinic import settings
    from clinic.http.rate_limit import RateLimiter

    monkeypatch.setenv("RATE_LIMIT_MESSAGES", "3/0.5")
    monkeypatch.setenv("RATE_LIMIT_NEW_VISITORS", "off")
    settings.get_settings.cache_clear()
    try:
        s = settings.get_settings()
        assert s.rate_limit_messages == (3.0, 0.5) and s.rate_limit_new_visitors is None
        limited = RateLimiter.from_setting(s.rate_limit_messages)
        assert [limited.allow("a", now=0.0) for _ in range(4)] == [True, True, True, False]
        assert limited.allow("a", now=2.0) is True  # 0.5 a second: one more after 2 s
        unlimited = RateLimiter.from_setting(s.rate_limit_new_visitors)
        assert all(unlimited.allow("ip", now=0.0) for _ in range(10_000))
        for bad in ("fast", "0/1", "10/0", "10"):
            monkeypatch.setenv("RATE_LIMIT_MESSAGES", bad)
            settings.get_settings.cache_clear()
            with pytest.raises(ValueError, match="RATE_LIMIT_MESSAGES"):
                settings.get_settings()
    finally:
        settings.get_settings.cache_clear()
