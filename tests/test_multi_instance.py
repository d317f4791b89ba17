"""Past one machine: two Rasa servers (each with its own action server) on PostgreSQL and
Redis, the web app spreading visitors across them (tests/scale_stack.py, what `make scale-up`
starts), and the pieces that make it work: settings, the web app's Rasa client with several
servers, the lock store, and the reply cache and rate limits in Redis.

Needs Debian's postgresql and redis-server (`.ci/run` installs them); skipped, saying so,
where they are missing.
"""

import asyncio
import json
import os
import shutil
import sqlite3
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List

import pytest
import requests

from tests.scale_stack import Postgres, Redis, ScaleStack, missing_programs
from tests.fake_rasa import FakeRasa
from tests.stack import ROOT, free_port

QUESTIONS = [
    "what are your hours",
    "how much does it cost",
    "where are you located",
    "do you take insurance",
    "how long does a session take",
]


def _skip_unless_installed(*programs: str) -> None:
    missing = [p for p in missing_programs() if not programs or p in programs]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (Debian packages postgresql, redis-server; .ci/run installs them)")


def _workdir(prefix: str) -> Path:
    """A folder PostgreSQL's account can reach when the tests run as root (pytest's tmp is 0700)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o711)
    return path


# --- settings ------------------------------------------------------------------


def test_one_database_url_and_several_rasa_servers_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from clinic import settings

    for name in ("CLINIC_DB_URL", "TRACKER_DB_URL", "REDIS_URL", "DB_POOL_SIZE", "DB_MAX_OVERFLOW"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", "postgresql://clinic:pw@db:5432/clinic")
    monkeypatch.setenv("RASA_URL", " http://a:5005/ , http://b:5005 ")
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/0")
    monkeypatch.setenv("DB_POOL_SIZE", "20")
    settings.get_settings.cache_clear()
    try:
        s = settings.get_settings()
        assert s.clinic_db_url == s.tracker_db_url == "postgresql://clinic:pw@db:5432/clinic"
        assert s.rasa_url == "http://a:5005,http://b:5005" and s.rasa_urls == ("http://a:5005", "http://b:5005")
        assert s.redis_url == "redis://cache:6379/0" and "cache" not in repr(s) and "pw@" not in repr(s)
        assert (s.db_pool_size, s.db_max_overflow) == (20, 10)
        monkeypatch.setenv("TRACKER_DB_URL", "postgresql://clinic:pw@other:5432/rasa")  # still overrides
        settings.get_settings.cache_clear()
        assert settings.get_settings().tracker_db_url.endswith("/rasa")
        monkeypatch.setenv("DB_POOL_SIZE", "0")
        settings.get_settings.cache_clear()
        with pytest.raises(ValueError, match="DB_POOL_SIZE"):
            settings.get_settings()
        monkeypatch.delenv("DB_POOL_SIZE")
        monkeypatch.delenv("DATABASE_URL")
        monkeypatch.delenv("TRACKER_DB_URL")
        settings.get_settings.cache_clear()
        assert settings.get_settings().clinic_db_url.startswith("sqlite:///")  # the default is unchanged
    finally:
        settings.get_settings.cache_clear()


def test_the_scale_endpoints_name_the_shared_stores() -> None:
    import yaml

    endpoints = yaml.safe_load((ROOT / "endpoints.scale.yml").read_text())
    assert endpoints["tracker_store"] == {"type": "clinic.rasa_runtime.tracker_store.SQLTrackerStore", "url": "${DATABASE_URL}"}
    assert endpoints["lock_store"] == {"type": "clinic.rasa_runtime.lock_store.RedisTicketLockStore", "url": "${REDIS_URL}"}
    default = yaml.safe_load((ROOT / "endpoints.yml").read_text())
    assert default["tracker_store"]["dialect"] == "sqlite"  # one machine: SQLite files in var/, the lock too
    assert default["lock_store"] == {"type": "clinic.rasa_runtime.lock_store.SQLiteTicketLockStore", "db": "var/locks.db"}


# --- the web app's Rasa client with several servers -------------------------------


def test_each_conversation_goes_to_one_server_and_to_another_when_it_is_down() -> None:
    from clinic.rasa_runtime.rasa_client import RasaClient

    async def main() -> None:
        a, b = FakeRasa("a"), FakeRasa("b")
        await a.start()
        await b.start()
        down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
        conversations = [uuid.uuid4().hex for _ in range(40)]

        first, second = RasaClient(f"{a.url},{b.url}"), RasaClient(f" {a.url}/ , {b.url} ")
        answers = {c: (await first.send(c, "hi"))[0]["text"] for c in conversations}
        again = {c: (await second.send(c, "hi"))[0]["text"] for c in conversations}
        assert answers == again  # every web-app process sends a conversation to the same server
        assert set(answers.values()) == {"a", "b"}  # and both servers get their share

        with_a_dead_one = RasaClient(f"{down},{a.url}")
        owned_by_dead = [c for c in conversations if with_a_dead_one.servers_for(c)[0] == down]
        assert owned_by_dead
        for c in owned_by_dead:
            assert (await with_a_dead_one.send(c, "hi"))[0]["text"] == "a"  # retried on the other

        failing = FakeRasa("failing", status=500)
        await failing.start()
        no_retry = RasaClient(f"{failing.url},{b.url}")
        c = next(c for c in conversations if no_retry.servers_for(c)[0] == failing.url)
        before = len(b.senders)
        from clinic.rasa_runtime.rasa_client import RasaUnavailable

        with pytest.raises(RasaUnavailable):
            await no_retry.send(c, "hi")  # an error answer may follow processing: not sent twice
        assert len(b.senders) == before

        behind_a_balancer = FakeRasa("balanced", drop=1)  # one URL: the retry goes to it again
        await behind_a_balancer.start()
        one_url = RasaClient(behind_a_balancer.url)
        assert (await one_url.send("c", "hi"))[0]["text"] == "balanced" and len(behind_a_balancer.senders) == 2
        behind_a_balancer.drop = 2
        with pytest.raises(RasaUnavailable):
            await one_url.send("c", "hi")  # retried once only

        for client in (first, second, with_a_dead_one, no_retry, one_url):
            await client.close()
        for server in (a, b, failing, behind_a_balancer):
            await server.runner.cleanup()

    asyncio.run(main())


def test_a_message_the_dead_server_processed_before_it_went_away_is_read_back_not_sent_again() -> None:
    """Rasa stores a turn whole at its end: a server killed after that but before it answered
    leaves the message processed. The retry finds it in the tracker (by its message id) on the
    next server and returns its replies; a message it had not stored is sent again."""
    from clinic.rasa_runtime.rasa_client import RasaClient

    async def main() -> None:
        trackers: Dict[str, List[Dict[str, Any]]] = {}
        dying = FakeRasa("dying", drop=1, trackers=trackers, stored_then_drop=True)
        other = FakeRasa("other", trackers=trackers)
        for server in (dying, other):
            await server.start()
        client = RasaClient(f"{dying.url},{other.url}")
        owned = [c for c in (uuid.uuid4().hex for _ in range(40)) if client.servers_for(c)[0] == dying.url]
        c1, c2, c3 = owned[:3]

        replies = await client.send(c1, "hi", {"message_id": "m-1"})
        assert [r["text"] for r in replies] == ["dying"]  # its replies, read back from the tracker
        assert other.senders == [] and [e["event"] for e in trackers[c1]] == ["user", "bot"]  # stored once

        dying.drop, dying.stored_then_drop = 1, False  # this time it goes away before storing
        client._down_until.clear()
        assert [r["text"] for r in await client.send(c2, "hi", {"message_id": "m-2"})] == ["other"]
        assert other.senders == [c2] and [e["text"] for e in trackers[c2]] == ["hi", "other"]

        dying.drop, dying.stored_then_drop = 1, True  # no message id (not from a visitor): sent again
        client._down_until.clear()
        assert [r["text"] for r in await client.send(c3, "hi")] == ["other"]

        await client.close()
        for server in (dying, other):
            await server.runner.cleanup()

    asyncio.run(main())


# --- Redis: the lock store, the reply cache, the rate limits ------------------------


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    _skip_unless_installed("redis-server")
    workdir = _workdir("clinic-redis-")
    server = Redis(workdir, free_port(), workdir / "redis.log")
    try:
        server.start()
        yield server.url
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(params=["redis", "sqlite"])
def lock_stores(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., Any]:
    """Makes lock stores that share one lock: in Redis (several machines) or in one SQLite file
    (several Rasa servers on one machine, `make run`), each with its own connection."""
    from clinic.rasa_runtime.lock_store import RedisTicketLockStore, SQLiteTicketLockStore

    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        return lambda **options: RedisTicketLockStore(url=url, **options)
    return lambda **options: SQLiteTicketLockStore(db=str(tmp_path / "locks.db"), **options)


def test_the_sqlite_lock_store_takes_its_options_from_endpoints_yml(tmp_path: Path) -> None:
    from rasa.utils.endpoints import EndpointConfig

    from clinic.rasa_runtime.lock_store import SQLiteTicketLockStore

    config = EndpointConfig(type="clinic.rasa_runtime.lock_store.SQLiteTicketLockStore", db=str(tmp_path / "x.db"),
                            lease_seconds="3", poll_seconds=0.5)
    store = SQLiteTicketLockStore(config)  # as Rasa makes it from endpoints.yml
    assert (store.path, store.lease_seconds, store.poll_seconds) == (tmp_path / "x.db", 3.0, 0.5)
    assert (tmp_path / "x.db").exists()
    with pytest.raises(ValueError, match="above 0"):
        SQLiteTicketLockStore(db=str(tmp_path / "y.db"), lease_seconds=0)


def test_tickets_issued_by_several_servers_at_once_are_all_different(lock_stores: Callable[..., Any]) -> None:
    stores = [lock_stores() for _ in range(4)]  # one per Rasa server
    conversation = uuid.uuid4().hex
    start = threading.Barrier(len(stores))

    def issue(store: Any) -> List[int]:
        start.wait()
        return [store.issue_ticket(conversation) for _ in range(25)]

    with ThreadPoolExecutor(len(stores)) as pool:
        tickets = [t for batch in pool.map(issue, stores) for t in batch]
    assert sorted(tickets) == list(range(100))
    lock = stores[0].get_lock(conversation)
    assert len(lock.tickets) == 100
    for t in tickets:
        stores[t % 4].cleanup(conversation, t)
    assert stores[0].get_lock(conversation) is None  # the last one out deletes the lock


def test_the_lock_serves_one_holder_at_a_time_in_ticket_order_across_servers(lock_stores: Callable[..., Any]) -> None:
    async def main() -> List[tuple]:
        stores = [lock_stores(poll_seconds=0.01) for _ in range(2)]
        conversation = uuid.uuid4().hex
        log: List[tuple] = []

        async def message(i: int) -> None:
            await asyncio.sleep(i * 0.005)
            async with stores[i % 2].lock(conversation):
                log.append(("in", i))
                await asyncio.sleep(0.01)
                log.append(("out", i))

        await asyncio.gather(*(message(i) for i in range(20)))
        return log

    log = asyncio.run(main())
    assert log == [(step, i) for i in range(20) for step in ("in", "out")]


def test_a_dead_holders_ticket_runs_out_and_a_live_one_is_renewed(lock_stores: Callable[..., Any]) -> None:
    async def main() -> None:
        store = lock_stores(lease_seconds=0.6, poll_seconds=0.02)
        dead = uuid.uuid4().hex
        store.issue_ticket(dead)  # a server died holding it: nobody renews it
        t0 = time.monotonic()
        async with store.lock(dead):
            waited = time.monotonic() - t0
        assert 0.4 < waited < 3

        live = uuid.uuid4().hex
        order: List[str] = []

        async def long_holder() -> None:
            async with store.lock(live):
                await asyncio.sleep(1.5)  # longer than the lease: renewed meanwhile
                order.append("long")

        async def next_one() -> None:
            await asyncio.sleep(0.1)
            async with store.lock(live):
                order.append("next")

        await asyncio.gather(long_holder(), next_one())
        assert order == ["long", "next"]

    asyncio.run(main())


def test_a_sqlite_lock_nobody_holds_is_one_statement_to_take_and_one_to_release(tmp_path: Path) -> None:
    from clinic.rasa_runtime.lock_store import SQLiteTicketLockStore

    store, other = (SQLiteTicketLockStore(db=str(tmp_path / "locks.db")) for _ in range(2))
    statements: List[str] = []
    store._conn.set_trace_callback(statements.append)

    async def main() -> None:
        async with store.lock("c-1") as lock:
            assert [t.number for t in lock.tickets] == [0]
            assert [t.number for t in other.get_lock("c-1").tickets] == [0]  # held, for every server
        assert other.get_lock("c-1") is None

    asyncio.run(main())
    assert [s.split()[0] for s in statements] == ["INSERT", "DELETE"]


def test_the_one_statement_sqlite_lock_keeps_to_the_tickets_of_others(tmp_path: Path) -> None:
    from clinic.rasa_runtime.lock_store import SQLiteTicketLockStore

    def store(**options: Any) -> SQLiteTicketLockStore:
        return SQLiteTicketLockStore(db=str(tmp_path / "locks.db"), poll_seconds=0.01, **options)

    first, second = store(), store()

    async def main() -> None:
        # another server's ticket issued while the lock is held: the release leaves it there
        async with first.lock("c-1"):
            assert second.issue_ticket("c-1") == 1
        assert [t.number for t in second.get_lock("c-1").tickets] == [1]
        second.cleanup("c-1", 1)
        assert second.get_lock("c-1") is None
        # a lock renewed while held (its row written again) is released whole
        renewing = store(lease_seconds=0.15)
        async with renewing.lock("c-2"):
            await asyncio.sleep(0.3)
        assert first.get_lock("c-2") is None
        # the row of a server that died holding the lock, gone stale: taken over with ticket 0 at once
        dead = store(lease_seconds=0.1)
        assert dead.issue_ticket("c-3") == 0
        time.sleep(0.25)
        started = time.monotonic()
        async with first.lock("c-3") as lock:
            assert [t.number for t in lock.tickets] == [0] and time.monotonic() - started < 0.1
        # a live lock is never taken over: the next ticket waits its turn
        waiting = second.lock("c-4")
        async with first.lock("c-4"):
            waiter = asyncio.ensure_future(waiting.__aenter__())
            await asyncio.sleep(0.1)
            assert not waiter.done()
        lock = await asyncio.wait_for(waiter, 2)
        assert [t.number for t in lock.tickets] == [1]
        await waiting.__aexit__(None, None, None)
        assert first.get_lock("c-4") is None

    asyncio.run(main())


def test_the_two_rasa_servers_of_make_run_share_one_lock_on_the_sqlite_file(tmp_path: Path) -> None:
    """`make run` has two Rasa servers on one machine (Procfile), with endpoints.yml's tracker
    store and lock store in var/: 12 messages of one conversation sent to both at the same
    instant are each stored once and processed whole, one after the other."""
    from scripts.bench_stack import BenchStack

    stack = BenchStack(tmp_path / "two", rasa_servers=2)
    try:
        stack.start_all()
        urls = list(stack.rasa_urls.values())
        assert len(urls) == 2
        conversation = "two-" + uuid.uuid4().hex[:12]
        sent = [f"{QUESTIONS[i % len(QUESTIONS)]} <{i}>" for i in range(12)]
        start = threading.Barrier(len(sent))
        replies: Dict[str, List[str]] = {}

        def send(i: int) -> None:
            start.wait()
            response = requests.post(f"{urls[i % 2]}/webhooks/rest/webhook",
                                     json={"sender": conversation, "message": sent[i]}, timeout=120)
            assert response.status_code == 200
            replies[sent[i]] = [m.get("text") or "" for m in response.json()]

        with ThreadPoolExecutor(len(sent)) as pool:
            list(pool.map(send, range(len(sent))))
        events = requests.get(f"{urls[1]}/conversations/{conversation}/tracker",
                              params={"include_events": "ALL", **stack.rasa_params}, timeout=30).json()["events"]
        order = _user_texts(events)
        assert sorted(order) == sorted(sent)  # none lost, none doubled
        assert _turns(events) == [replies[text] for text in order]  # each processed whole before the next
        assert all(replies[text] for text in sent)
        assert (stack.var_dir / "locks.db").exists()
    finally:
        stack.stop_all()


def test_the_reply_cache_in_redis_answers_a_retry_on_any_process_once(redis_url: str) -> None:
    from clinic.web.idempotency import RedisReplyCache, ReplyCache, reply_cache

    assert isinstance(reply_cache(None), ReplyCache) and isinstance(reply_cache(redis_url), RedisReplyCache)
    calls: List[str] = []

    async def produce() -> List[Dict[str, str]]:
        calls.append("x")
        await asyncio.sleep(0.1)
        return [{"text": "answer"}]

    async def main() -> None:
        processes = [RedisReplyCache(redis_url, poll_s=0.01) for _ in range(3)]  # three web-app processes
        key = (uuid.uuid4().hex, "m1")
        results = await asyncio.gather(*(p.once(key, produce) for p in processes for _ in range(2)))
        assert results == [[{"text": "answer"}]] * 6 and len(calls) == 1
        assert await processes[2].once(key, produce) == [{"text": "answer"}] and len(calls) == 1
        assert await processes[0].once((key[0], "m2"), produce) == [{"text": "answer"}] and len(calls) == 2

        attempts: List[int] = []

        async def fails_once() -> str:
            attempts.append(1)
            if len(attempts) == 1:
                raise ConnectionError("rasa down")
            return "ok"

        failing = (uuid.uuid4().hex, "m")
        with pytest.raises(ConnectionError):
            await processes[0].once(failing, fails_once)
        assert await processes[1].once(failing, fails_once) == "ok" and len(attempts) == 2  # not kept
        for p in processes:
            await p.close()

        unreachable = RedisReplyCache(f"redis://127.0.0.1:{free_port()}/0")
        assert await unreachable.once(("c", "m"), produce) == [{"text": "answer"}]  # answered without it
        await unreachable.close()

    asyncio.run(main())


def test_rate_limits_in_redis_are_shared_by_every_process(redis_url: str) -> None:
    from clinic.http.rate_limit import RateLimiter, RedisRateLimiter, limiter

    assert isinstance(limiter((30, 2), None, "messages"), RateLimiter)
    assert isinstance(limiter(None, redis_url, "messages"), RateLimiter)  # off stays off
    assert isinstance(limiter((30, 2), redis_url, "messages"), RedisRateLimiter)

    async def main() -> None:
        one, two = (limiter((3, 2), redis_url, "messages") for _ in range(2))
        other_kind = limiter((3, 2), redis_url, "visitors")
        key = f"cid:{uuid.uuid4().hex}"
        answers = [await one.check(key), await two.check(key), await one.check(key), await two.check(key)]
        assert answers == [None, None, None, 1]  # a burst of 3 across both processes, then wait
        assert await other_kind.check(key) is None  # another limiter, another bucket
        await asyncio.sleep(0.55)  # two a second: one token back
        assert await one.check(key) is None and await two.check(key) == 1
        for lim in (one, two, other_kind):
            await lim.close()

        in_memory = RateLimiter.from_setting((2, 1))
        assert [await in_memory.check("a") for _ in range(3)] == [None, None, 1]

        unreachable = RedisRateLimiter(f"redis://127.0.0.1:{free_port()}/0", per_second=1, burst=1, name="m")
        assert await unreachable.check("a") is None and await unreachable.check("a") is None  # let through
        await unreachable.close()

    asyncio.run(main())


class CountingRasa:
    """Rasa's REST channel, replaced: counts what the web app forwards."""

    def __init__(self) -> None:
        self.sent: List[str] = []

    async def send(self, conversation_id: str, text: str, metadata: Any = None) -> List[Dict[str, Any]]:
        self.sent.append(text)
        return [{"recipient_id": conversation_id, "text": f"answer {len(self.sent)}"}]

    async def events(self, conversation_id: str) -> List[Dict[str, Any]]:
        return []


def test_two_web_app_processes_share_the_reply_cache_and_the_rate_limits_in_redis(
    redis_url: str, clinic_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sanic import Sanic

    from clinic import settings
    from clinic.web.app import create_app
    from clinic.web.idempotency import RedisReplyCache

    Sanic.test_mode = True
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("RATE_LIMIT_MESSAGES", "3/0.01")  # a burst of 3 per conversation, then one a 100 s
    settings.get_settings.cache_clear()
    rasa = CountingRasa()
    one, two = (create_app(settings.get_settings(), rasa=rasa, name=f"web_{n}_{uuid.uuid4().hex[:6]}") for n in "ab")
    assert isinstance(one.ctx.replies, RedisReplyCache) and isinstance(two.ctx.replies, RedisReplyCache)

    def chat(app: Any, message_id: str, cookies: Dict[str, str]) -> Any:
        _, response = app.test_client.post("/api/chat", json={"message": "hello", "id": message_id}, cookies=cookies)
        return response

    first = chat(one, "m1", {})
    cookies = {"cid": first.cookies["cid"]}
    retried = chat(two, "m1", cookies)  # the retry reaches the other process
    assert retried.status == 200 and retried.json["messages"] == first.json["messages"]
    assert len(rasa.sent) == 1  # processed once
    assert chat(one, "m2", cookies).status == 200 and chat(two, "m3", cookies).status == 200
    limited = chat(one, "m4", cookies)  # the retry, m2 and m3 took the burst, whichever process took them
    assert limited.status == 429 and int(limited.headers["retry-after"]) >= 1
    assert len(rasa.sent) == 3


# --- PostgreSQL: the clinic DB's engine ------------------------------------------------


def test_processes_starting_together_on_a_new_database_all_make_their_tables(postgres: Postgres) -> None:
    import subprocess
    import sys

    url = postgres.new_database()
    start_at = time.time() + 3  # after every interpreter has started
    code = f"import time; time.sleep(max(0, {start_at} - time.time())); from clinic.storage import db; db.get_engine({url!r})"
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stderr=subprocess.PIPE,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}) for _ in range(5)]
    failures = [p.communicate()[1].decode()[-300:] for p in procs]
    assert not [p for p in procs if p.returncode != 0], failures


def test_the_clinic_db_pool_follows_the_settings_and_outlives_a_database_restart(
    postgres: Postgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlalchemy as sa

    from clinic.storage import db
    from clinic import settings

    monkeypatch.setenv("DB_POOL_SIZE", "3")
    monkeypatch.setenv("DB_MAX_OVERFLOW", "2")
    settings.get_settings.cache_clear()
    url = postgres.new_database()
    try:
        engine = db.get_engine(url)
        assert (engine.pool.size(), engine.pool._max_overflow) == (3, 2)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM referrals")).scalar() == 0
        postgres.stop()  # the pooled connection is dead now
        postgres.start()
        with engine.connect() as conn:  # checked before use and replaced: no error
            assert conn.execute(sa.text("SELECT count(*) FROM referrals")).scalar() == 0
    finally:
        settings.get_settings.cache_clear()
        db.get_engine.cache_clear()


# --- the whole stack: PostgreSQL, Redis, two Rasa servers, two action servers, the web app ---


@pytest.fixture(scope="module")
def scale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScaleStack]:
    _skip_unless_installed()
    if not (ROOT / "models" / "clinic.tar.gz").exists():
        pytest.fail("models/clinic.tar.gz is missing: run `make train` (make test does it)")
    stack = ScaleStack(
        workdir=_workdir("clinic-scale-"), durable=False,
        extra_env={"RATE_LIMIT_MESSAGES": "off", "RATE_LIMIT_NEW_VISITORS": "off", "RATE_LIMIT_READS": "off",
                   "RATE_LIMIT_ADDRESS": "off"},
    )
    try:
        stack.start_all()
        yield stack
    finally:
        stack.stop_all()
        logs = tmp_path_factory.mktemp("scale-logs")  # kept by pytest for the last few runs
        for log in stack.workdir.glob("*.log"):
            shutil.copy(log, logs / log.name)
        shutil.rmtree(stack.workdir, ignore_errors=True)


def _events(stack: ScaleStack, conversation: str, server: int = 0) -> List[Dict[str, Any]]:
    url = f"{stack.rasa_urls[server]}/conversations/{conversation}/tracker"
    return requests.get(url, params={"include_events": "ALL", **stack.rasa_params}, timeout=30).json()["events"]


def _user_texts(events: List[Dict[str, Any]]) -> List[str]:
    return [e["text"] for e in events if e["event"] == "user"]


def _turns(events: List[Dict[str, Any]]) -> List[List[str]]:
    """Per user message, the bot texts that follow it before the next user message."""
    turns: List[List[str]] = []
    for e in events:
        if e["event"] == "user":
            turns.append([])
        elif e["event"] == "bot" and turns:
            turns[-1].append(e.get("text") or "")
    return turns


def test_messages_of_one_conversation_sent_to_both_servers_at_once_are_processed_in_order(scale: ScaleStack) -> None:
    from clinic.rasa_runtime.lock_store import RedisTicketLockStore

    conversation = "both-" + uuid.uuid4().hex[:12]
    sent = [f"{QUESTIONS[i % len(QUESTIONS)]} ({i})" for i in range(20)]
    replies: Dict[int, List[str]] = {}

    def send(i: int) -> None:
        url = f"{scale.rasa_urls[i % 2]}/webhooks/rest/webhook"  # alternating between the two servers
        response = requests.post(url, json={"sender": conversation, "message": sent[i]}, timeout=120)
        assert response.status_code == 200
        replies[i] = [m.get("text") or "" for m in response.json()]

    async def main() -> None:
        # The test holds the conversation's lock, as a message still being worked on would, and
        # sends each message once the one before it has its ticket: all 20 then wait at once, on
        # both servers, in a known order.
        store = RedisTicketLockStore(url=scale.redis.url)
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(len(sent)) as pool:
            async with store.lock(conversation):
                pending = []
                for i in range(len(sent)):
                    pending.append(loop.run_in_executor(pool, send, i))
                    deadline = time.monotonic() + 30
                    while len(store.get_lock(conversation).tickets) < i + 2:  # ours and one per message
                        assert time.monotonic() < deadline, f"message {i} got no ticket"
                        await asyncio.sleep(0.01)
            await asyncio.gather(*pending)

    asyncio.run(main())

    for server in (0, 1):  # both servers read the same conversation
        events = _events(scale, conversation, server)
        assert _user_texts(events) == sent  # none lost, none doubled, in the order sent
        assert _turns(events) == [replies[i] for i in range(len(sent))]  # each processed whole before the next
    assert all(replies[i] for i in range(len(sent)))

    import sqlalchemy as sa

    engine = sa.create_engine(scale.database_url)
    with engine.connect() as conn:  # stored in PostgreSQL (not Rasa's silent in-memory fallback)
        stored = conn.execute(sa.text("SELECT count(*) FROM events WHERE sender_id = :c AND type_name = 'user'"),
                              {"c": conversation}).scalar()
        tables = set(sa.inspect(conn).get_table_names())
    engine.dispose()
    assert stored == len(sent)
    assert {"handoff_requests", "referrals", "staff_users"} <= tables  # the clinic DB, from DATABASE_URL alone


def test_messages_arriving_at_the_same_moment_on_both_servers_are_all_processed_one_at_a_time(scale: ScaleStack) -> None:
    conversations = ["burst-" + uuid.uuid4().hex[:12] for _ in range(4)]
    each = 10
    sent = {c: [f"{QUESTIONS[i % len(QUESTIONS)]} [{i}]" for i in range(each)] for c in conversations}
    start = threading.Barrier(len(conversations) * each)
    replies: Dict[tuple, List[str]] = {}

    def send(c: str, i: int) -> None:
        start.wait()  # all at the same instant, half of each conversation's on each server
        url = f"{scale.rasa_urls[i % 2]}/webhooks/rest/webhook"
        response = requests.post(url, json={"sender": c, "message": sent[c][i]}, timeout=120)
        assert response.status_code == 200
        replies[(c, sent[c][i])] = [m.get("text") or "" for m in response.json()]

    with ThreadPoolExecutor(len(conversations) * each) as pool:
        list(pool.map(lambda job: send(*job), [(c, i) for c in conversations for i in range(each)]))

    for c in conversations:
        events = _events(scale, c)
        order = _user_texts(events)
        assert sorted(order) == sorted(sent[c]), c  # none lost, none doubled (the order is the servers' to pick)
        assert _turns(events) == [replies[(c, text)] for text in order], c  # one at a time
        assert all(replies[(c, text)] for text in order), c


def test_a_restarted_postgresql_is_reconnected_without_a_manual_step(scale: ScaleStack) -> None:
    from tests.stack import conversation_id

    direct = ["restart-" + uuid.uuid4().hex[:8] for _ in scale.rasa_urls]  # one conversation on each server
    visitors = [requests.Session() for _ in range(3)]  # and some through the web app (the clinic DB too)

    def message(round_: int) -> None:
        for server, cid in enumerate(direct):
            r = requests.post(f"{scale.rasa_urls[server]}/webhooks/rest/webhook",
                              json={"sender": cid, "message": QUESTIONS[round_]}, timeout=60)
            assert r.status_code == 200 and r.json(), r.text
        for visitor in visitors:
            r = visitor.post(f"{scale.web_url}/api/chat", json={"message": QUESTIONS[round_], "id": uuid.uuid4().hex},
                             timeout=60)
            assert r.status_code == 200 and r.json()["messages"], r.text

    message(0)
    scale.postgres.stop()  # every process still holds pooled connections to the old server
    scale.postgres.start()
    message(1)  # at once, no manual step

    conversations = direct + [conversation_id(visitor, scale) for visitor in visitors]
    for cid in conversations:  # each continued from what is stored, not Rasa's empty fallback tracker
        for server in range(len(scale.rasa_urls)):
            assert _user_texts(_events(scale, cid, server)) == QUESTIONS[:2], cid
    for name in scale.rasa_names():
        assert "InMemoryTrackerStore" not in (scale.workdir / f"{name}.log").read_text()


def test_the_failover_check_finds_what_was_lost_doubled_or_out_of_order() -> None:
    """The check that the kill test below and `bench_failover` rely on, on rows made up here."""
    from scripts.bench_failover import Conversation, FailoverRun, Sent, compare_stored
    from scripts.bench_visitors import LevelResult

    def sent(n: int, started: float, finished: float, reference: Any = None) -> Any:
        return Sent(f"m{n}", "", 200, True, started, finished, reference)

    def user(cid: str, n: int) -> tuple:
        return cid, "user", json.dumps({"event": "user", "metadata": {"message_id": f"m{n}"}})

    def bot(cid: str) -> tuple:
        return cid, "bot", json.dumps({"event": "bot", "text": "answer"})

    conversations = {
        "fine": Conversation("c", [sent(1, 0, 1), sent(2, 1, 2, reference="ABC-234")]),
        "lost": Conversation("c", [sent(1, 0, 1), sent(2, 1, 2)]),
        "again": Conversation("c", [sent(1, 9, 11)]),  # sent before the kill (at 10 s), answered after
        "twice": Conversation("c", [sent(1, 0, 1), sent(2, 1, 2)]),  # long before the kill
        "swapped": Conversation("c", [sent(1, 0, 1), sent(2, 1, 2)]),
        "mute": Conversation("c", [sent(1, 0, 1)]),
        "stranger": Conversation("c", [sent(1, 0, 1)]),
    }
    events = [
        user("fine", 1), bot("fine"), user("fine", 2), bot("fine"),
        user("lost", 1), bot("lost"),
        user("again", 1), bot("again"), user("again", 1), bot("again"),
        user("twice", 1), bot("twice"), user("twice", 1), bot("twice"), user("twice", 2), bot("twice"),
        user("swapped", 2), bot("swapped"), user("swapped", 1), bot("swapped"),
        user("mute", 1),
        user("stranger", 1), bot("stranger"), user("stranger", 9), bot("stranger"),
    ]
    run = FailoverRun(0.0, 20.0, LevelResult(1, 20.0), list(conversations.values()), killed_at=10.0)

    verdict = compare_stored(run, conversations, events, [("fine", "ABC-234")])
    assert verdict["lost"] == ["lost: m2"]
    assert verdict["stored_again_by_the_retry"] == ["again: m1 x2"]
    assert verdict["doubled"] == ["twice: m1 x2"]
    assert verdict["out_of_order"] == ["swapped"]
    assert verdict["without_bot_answer"] == ["mute: m1"]
    assert verdict["not_sent_by_visitors"] == ["stranger: m9"]
    assert verdict["referrals_missing_or_wrong"] == [] and verdict["referrals_shown"] == 1
    assert verdict["user_events"] == 13 and verdict["messages_answered"] == 11
    assert compare_stored(run, conversations, events, [])["referrals_missing_or_wrong"] == ["fine: ABC-234"]
    wrong = compare_stored(run, conversations, events, [("fine", "XYZ-789")])
    assert wrong["referrals_missing_or_wrong"] == ["fine: ABC-234"]


def test_a_rasa_server_killed_mid_load_loses_no_visitor_message(scale: ScaleStack) -> None:
    """The bench's visitors (greetings, FAQs, pre-screens to a referral) six at a time for 25 s,
    through the web app, with rasa1 SIGKILLed 8 s in: scripts/bench_failover.py's driver,
    shorter. Asserts on what visitors got and what was stored, never on the figures."""
    from scripts.bench_failover import KILLED, PROBLEMS, check_stored, retries_logged, run_failover, summarize_run

    # a turn may wait for the dead server's lock lease (15 s) and the web app's retry (30 s)
    run = asyncio.run(run_failover(scale, concurrency=6, duration_s=25, kill_at_s=8, timeout_s=150))
    summary = summarize_run(run)
    sent = [s for c in run.conversations for s in c.sent]

    assert run.killed_at is not None and KILLED not in scale.procs
    assert summary["errors"] == 0, summary["error_samples"]  # no error returned to any visitor
    assert sent and all(s.answered for s in sent)  # every turn answered
    assert summary["phases"]["down"]["turns"] > 0  # the visitors went on chatting while it was down
    assert retries_logged(scale) > 0  # some of them were the dead server's: retried on the other

    stored = check_stored(scale, run)
    # a message the killed server had processed but not answered is read back, not sent again
    for key in PROBLEMS:
        assert stored[key] == [], (key, stored[key])
    assert stored["conversations"] == len(run.conversations) and stored["answered_without_conversation"] == 0
    assert stored["messages_answered"] == len(sent)
    assert stored["user_events"] == len(sent)
    assert stored["referrals_shown"] >= 1  # the first six visitors include pre-screens, played to the end
    assert stored["referrals_stored"] == stored["referrals_shown"]  # one row each, the reference shown

    logs = "".join((scale.workdir / f"{name}.log").read_text(errors="replace") for name in ("web", *scale.rasa_names()))
    typed = {s.typed for s in sent if len(s.typed) >= 8}  # short ones ("no", "TX") are common words
    assert typed and not [t for t in typed if t in logs]  # nothing of a visitor's in the logs


def _open_lock_store(path: str) -> str:
    from clinic.rasa_runtime.lock_store import SQLiteTicketLockStore

    SQLiteTicketLockStore(db=path, poll_seconds=0.01)
    return "ok"


def test_two_servers_starting_at_once_on_a_new_lock_file_both_start(tmp_path: Path) -> None:
    """`make run` starts two Rasa servers together: on a fresh machine both turn the new lock file to
    WAL at the same moment, and SQLite answered one of them "database is locked" at once."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        for round_ in range(6):
            path = str(tmp_path / f"locks-{round_}.db")
            assert pool.map(_open_lock_store, [path] * 4) == ["ok"] * 4


def test_a_lock_store_waits_while_another_server_holds_its_new_file(tmp_path: Path, monkeypatch: Any) -> None:
    from clinic.rasa_runtime.lock_store import SQLiteTicketLockStore

    store = SQLiteTicketLockStore(db=str(tmp_path / "locks.db"), poll_seconds=0.01)
    calls = []

    def locked_twice() -> None:
        calls.append(1)
        if len(calls) <= 2:
            raise sqlite3.OperationalError("database is locked")

    store._while_locked(locked_twice, timeout_s=5)
    assert len(calls) == 3

    def always_locked() -> None:
        raise sqlite3.OperationalError("database is locked")

    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        store._while_locked(always_locked, timeout_s=0.1)
    assert time.monotonic() - started < 2

    def broken() -> None:
        calls.append(1)
        raise sqlite3.OperationalError("no such table: x")

    calls.clear()
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        store._while_locked(broken, timeout_s=5)
    assert len(calls) == 1  # another error is not waited on


def _open_clinic_db(path: str) -> str:
    from clinic.storage.db import get_engine

    with get_engine(f"sqlite:///{path}").connect() as conn:
        conn.exec_driver_sql("SELECT count(*) FROM handoff_requests")
    return "ok"


def test_processes_starting_at_once_on_a_new_clinic_database_all_start(tmp_path: Path) -> None:
    """Each process makes the tables it finds missing: on a new SQLite file one made a table between
    another's check and its CREATE ("table handoff_requests already exists")."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        for round_ in range(4):
            path = str(tmp_path / f"clinic-{round_}.db")
            assert pool.map(_open_clinic_db, [path] * 4) == ["ok"] * 4


def test_a_schema_error_no_other_process_explains_is_raised_at_once(monkeypatch: Any) -> None:
    from sqlalchemy.exc import OperationalError

    from clinic.storage import db

    calls = []

    def create_all(engine: Any) -> None:
        calls.append(1)
        raise OperationalError("CREATE TABLE x", {}, sqlite3.OperationalError("disk I/O error"))

    monkeypatch.setattr(db.metadata, "create_all", create_all)
    with pytest.raises(OperationalError, match="disk I/O error"):
        db._create_sqlite_tables(object())
    assert len(calls) == 1

    def made_by_another(engine: Any) -> None:
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("CREATE TABLE x", {}, sqlite3.OperationalError("table x already exists"))

    calls.clear()
    monkeypatch.setattr(db.metadata, "create_all", made_by_another)
    monkeypatch.setattr(db, "add_missing_columns", lambda engine: None)
    db._create_sqlite_tables(object())
    assert len(calls) == 3
