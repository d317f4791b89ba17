"""A retried message is processed once: concurrent retries wait, failures are retried."""

import asyncio

import pytest

from clinic.web.idempotency import ReplyCache


def test_the_same_key_is_produced_once_even_when_concurrent():
    calls = []

    async def produce():
        calls.append(1)
        await asyncio.sleep(0.05)
        return ["answer"]

    async def main():
        cache = ReplyCache()
        results = await asyncio.gather(*(cache.once(("c", "m1"), produce) for _ in range(5)))
        again = await cache.once(("c", "m1"), produce)
        other = await cache.once(("c", "m2"), produce)
        return results, again, other

    results, again, other = asyncio.run(main())
    assert results == [["answer"]] * 5 and again == ["answer"] and other == ["answer"]
    assert len(calls) == 2  # m1 once, m2 once


def test_a_failure_is_not_kept():
    attempts = []

    async def produce():
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("rasa down")
        return "ok"

    async def main():
        cache = ReplyCache()
        with pytest.raises(ConnectionError):
            await cache.once(("c", "m"), produce)
        return await cache.once(("c", "m"), produce)

    assert asyncio.run(main()) == "ok"
    assert len(attempts) == 2


def test_old_entries_expire():
    async def main():
        cache = ReplyCache(max_entries=2, ttl_s=3600)
        for i in range(5):
            await cache.once(("c", str(i)), lambda: asyncio.sleep(0, result=i))
        return len(cache._entries)

    assert asyncio.run(main()) == 2
