"""clinic/rasa_runtime/patches/kept_action_session.py: the action server's endpoint with its HTTP session kept per event
loop and the domain's JSON made once; the same requests, answers and errors as Rasa's
EndpointConfig.request, against a small aiohttp server standing in for the action server."""

import asyncio
import json
import random
from typing import Any, Dict, List

import aiohttp
import pytest
from aiohttp import web
from rasa.core.actions.action import RemoteAction
from rasa.shared.core import events
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity
from rasa.utils.endpoints import ClientResponseError, EndpointConfig
from sanic import Sanic

from clinic.rasa_runtime.patches import kept_action_session as action_endpoint
from tests.stack import free_port
from clinic.rasa_runtime.patches import applied as patches_applied


@pytest.fixture(autouse=True, scope="module")
def _patches_under_test():
    """The patches these tests test, in place whatever CLINIC_RASA_PATCHES says."""
    with patches_applied():
        yield


DOMAIN = Domain.load("domain")


def body(domain: Domain = DOMAIN) -> Dict[str, Any]:
    """What RemoteAction sends: a tracker with text outside ASCII, and the domain."""
    tracker = DialogueStateTracker.from_events("c-1", [
        events.ActionExecuted("action_session_start"), events.SessionStarted(),
        events.ActionExecuted("action_listen"),
        events.UserUttered("I’m 34 — and “anxious” ✓", {"name": "inform", "confidence": 0.93},
                           [{"entity": "CARDINAL", "value": "34", "start": 4, "end": 6}]),
        events.SlotSet("age", 34), events.SlotSet("concern", None), events.BotUttered("Thanks — noted"),
    ], slots=domain.slots)
    return RemoteAction("validate_prescreen_form", None)._action_call_format(tracker, domain)


def parsed(text: str) -> Any:
    """JSON text as data, NaN written back as text (NaN != NaN)."""
    return json.loads(text, parse_constant=lambda name: f"<{name}>")


def test_the_body_is_the_data_json_dumps_writes():
    full = body()
    assert set(full["domain"]) == set(DOMAIN.as_dict())  # the whole domain, responses included
    assert parsed(action_endpoint.dumps(full)) == parsed(json.dumps(full))
    for other in ({}, [1, 2], "x", {1: "a", "domain": {}}, {"domain": None}, {"domain": {"x": [1.5, None]}}):
        assert parsed(action_endpoint.dumps(other)) == parsed(json.dumps(other))


def test_values_are_written_as_json_dumps_writes_them():
    rng = random.Random(7)
    floats = [rng.random() * 10 ** rng.randint(-30, 30) * rng.choice([1, -1]) for _ in range(5000)]
    floats += [0.0, -0.0, 1e16, 1e-7, 5e-324, 1.7976931348623157e308, 0.1 + 0.2, 2.0 ** 53 + 1, 123456789.123456789]
    values = [floats, [float("nan"), float("inf"), float("-inf")], 2 ** 70, -(2 ** 63) - 1,
              "a/b <\\> \"q\" \x00\x1f\u2028 é’✓😀 \ud800", {"1": {"": [True, False, None, (1, 2)]}},
              {1: "int key", None: "none", True: "bool", 1.5: "float"}]
    for value in values:
        assert parsed(action_endpoint.dumps(value)) == parsed(json.dumps(value)), value
    for unwritable in (b"bytes", {1, 2}, object(), float.fromhex):  # fail as json.dumps fails
        with pytest.raises(TypeError) as theirs:
            json.dumps(unwritable)
        with pytest.raises(TypeError) as ours:
            action_endpoint.dumps(unwritable)
        assert str(ours.value) == str(theirs.value)


class FakeActionServer:
    """An HTTP server on a free port answering POST /webhook, noting each request and each
    connection (its client port)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.requests: List[Dict[str, Any]] = []
        self.status = 200
        self.runner: Any = None

    async def webhook(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.requests.append({"client": request.transport.get_extra_info("peername")[1],
                              "headers": dict(request.headers), "query": dict(request.query), "raw": raw})
        if self.status != 200:
            return web.json_response({"action_name": "x", "error": "no"}, status=self.status)
        answer = web.json_response({"events": [{"event": "slot", "name": "age", "value": 34}], "responses": []})
        answer.set_cookie("affinity", "server-1")  # e.g. a load balancer's
        return answer

    async def moved(self, request: web.Request) -> web.Response:
        """An old path of the action server, moved to /webhook (307: the same method and body)."""
        self.requests.append({"client": request.transport.get_extra_info("peername")[1], "moved": True,
                              "headers": dict(request.headers), "query": dict(request.query), "raw": await request.read()})
        raise web.HTTPTemporaryRedirect("/webhook")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/webhook", self.webhook)
        app.router.add_post("/old", self.moved)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        await self.runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhook"


def run(loop: asyncio.AbstractEventLoop, coroutine: Any) -> Any:
    return loop.run_until_complete(coroutine)


@pytest.fixture
def server(loop):
    fake = FakeActionServer()
    run(loop, fake.start())
    yield fake
    run(loop, action_endpoint.close_sessions())
    run(loop, fake.stop())


def endpoints(url: str, **extra: Any):
    config = {"url": url, "headers": {"X-Clinic": "1"}, "token": "t0k", "params": {"a": "b"}, **extra}
    return EndpointConfig.from_dict(dict(config)), action_endpoint.ActionEndpoint.of(EndpointConfig.from_dict(dict(config)))


def test_the_same_request_and_answer_as_rasa_s_on_one_kept_connection(loop, server):
    rasa, ours = endpoints(server.url)
    sent = body()
    for compress in (False, True):
        clients = set()
        server.requests.clear()
        answers = [run(loop, e.request(json=sent, method="post", timeout=10, compress=compress))
                   for e in (rasa, ours, ours, ours)]
        assert answers[0] == answers[1] == answers[2] == answers[3] == {
            "events": [{"event": "slot", "name": "age", "value": 34}], "responses": []}
        theirs, *mine = server.requests
        for request in mine:
            assert request["query"] == theirs["query"] == {"a": "b", "token": "t0k"}
            assert request["raw"] == mine[0]["raw"]
            for header in ("Content-Type", "X-Clinic", "Content-Encoding"):
                assert request["headers"].get(header) == theirs["headers"].get(header), header
        assert theirs["raw"] == json.dumps(sent).encode()  # (aiohttp's server inflates a compressed body)
        assert parsed(mine[0]["raw"]) == parsed(theirs["raw"])
        assert ("Content-Encoding" in theirs["headers"]) == compress
        clients |= {request["client"] for request in mine}
        assert len(clients) == 1  # one connection, kept


def test_an_action_server_answering_307_gives_the_events_of_the_new_location_as_rasa_s(loop, server):
    """Issue 21: the events of a custom action whose endpoint redirects (307) are not dropped."""
    rasa, ours = endpoints(server.url.replace("/webhook", "/old"))
    sent = body()
    answers = [run(loop, e.request(json=sent, method="post", timeout=10)) for e in (rasa, ours)]
    assert answers[0] == answers[1] == {"events": [{"event": "slot", "name": "age", "value": 34}], "responses": []}
    assert [bool(r.get("moved")) for r in server.requests] == [True, False, True, False]
    assert parsed(server.requests[3]["raw"]) == parsed(server.requests[2]["raw"]) == sent  # the body sent again

    from rasa.core.channels.channel import CollectingOutputChannel
    from rasa.core.nlg import TemplatedNaturalLanguageGenerator

    tracker = DialogueStateTracker.from_events("c-1", [events.ActionExecuted("action_listen")], slots=DOMAIN.slots)
    action = RemoteAction("validate_prescreen_form", ours)
    assert isinstance(action.action_endpoint, action_endpoint.ActionEndpoint)  # (the kept one, when installed)
    found = run(loop, action.run(CollectingOutputChannel(), TemplatedNaturalLanguageGenerator(DOMAIN.responses),
                                 tracker, DOMAIN))
    assert [(e.key, e.value) for e in found if isinstance(e, events.SlotSet)] == [("age", 34)]


def test_no_cookie_the_action_server_sets_is_sent_back_as_with_rasa_s(loop, server):
    for endpoint in endpoints(server.url.replace("127.0.0.1", "localhost")):  # (cookies of IP hosts: never kept)
        for _ in range(3):
            run(loop, endpoint.request(json={}, method="post", timeout=10))
    assert len(server.requests) == 6
    assert [request["headers"].get("Cookie") for request in server.requests] == [None] * 6


def test_host_names_are_resolved_for_each_new_connection_as_rasa_s(loop, server, monkeypatch):
    _, ours = endpoints(server.url.replace("127.0.0.1", "localhost"))
    resolved: List[str] = []
    real = loop.create_connection
    monkeypatch.setattr(loop, "create_connection", lambda f, host, port, **k: resolved.append(host) or real(f, host, port, **k))
    run(loop, ours.request(json={}, method="post", timeout=10))
    run(loop, ours.request(json={}, method="post", timeout=10))
    assert len(resolved) == 1  # one connection, kept
    run(loop, action_endpoint.close_sessions())
    run(loop, ours.request(json={}, method="post", timeout=10))
    assert len(resolved) == 2  # a new connection once the sessions are closed
    assert action_endpoint._sessions[loop][id(ours)][1].connector.use_dns_cache is False


def test_an_error_status_is_rasa_s_client_response_error(loop, server):
    rasa, ours = endpoints(server.url)
    server.status = 400
    errors = []
    for endpoint in (rasa, ours):
        with pytest.raises(ClientResponseError) as raised:
            run(loop, endpoint.request(json={"next_action": "x"}, method="post", timeout=10))
        errors.append((raised.value.status, raised.value.message, raised.value.text))
    assert errors[0] == errors[1] and errors[0][0] == 400
    assert json.loads(errors[1][2]) == {"action_name": "x", "error": "no"}


def test_an_action_server_down_or_restarted_fails_and_reconnects_as_before(loop, server):
    rasa, ours = endpoints(server.url)
    assert run(loop, ours.request(json={}, method="post", timeout=10))
    run(loop, server.stop())
    for endpoint in (rasa, ours):  # down: the same kind of error
        with pytest.raises(aiohttp.ClientConnectionError):
            run(loop, endpoint.request(json={}, method="post", timeout=10))
    run(loop, server.start())  # back on the same port
    assert run(loop, ours.request(json={}, method="post", timeout=10))
    run(loop, server.stop())  # restarted between two calls: the kept connection is not used again
    run(loop, server.start())
    assert run(loop, ours.request(json={}, method="post", timeout=10))
    assert len({request["client"] for request in server.requests}) == 3


def test_an_idle_connection_is_closed_before_the_action_server_would(loop, server, monkeypatch):
    monkeypatch.setattr(action_endpoint, "KEEPALIVE_TIMEOUT_S", 0.2)
    _, ours = endpoints(server.url)
    run(loop, ours.request(json={}, method="post", timeout=10))
    run(loop, ours.request(json={}, method="post", timeout=10))
    run(loop, asyncio.sleep(0.6))
    run(loop, ours.request(json={}, method="post", timeout=10))
    first, second, third = (request["client"] for request in server.requests)
    assert first == second != third
    assert action_endpoint.KEEPALIVE_TIMEOUT_S < 5  # Sanic's keep-alive on the action server: 5 s


def test_every_remote_action_gets_one_kept_endpoint_of_its_configuration():
    assert RemoteAction.__init__ is action_endpoint.remote_action_init
    config = EndpointConfig.from_dict({"url": "http://127.0.0.1:1/webhook", "enable_selective_domain": True})
    first, second = RemoteAction("a", config), RemoteAction("b", config)
    assert isinstance(first.action_endpoint, action_endpoint.ActionEndpoint)
    assert first.action_endpoint is second.action_endpoint
    assert first.action_endpoint.url == config.url and first.action_endpoint.kwargs is config.kwargs
    assert first._is_selective_domain_enabled()
    assert RemoteAction("c", None).action_endpoint is None


def test_the_sessions_are_closed_when_the_rasa_server_stops(loop, server):
    _, ours = endpoints(server.url)
    run(loop, ours.request(json={}, method="post", timeout=10))
    run(loop, ours.request(json={}, method="post", timeout=10, compress=True))
    kept = [s for _, s in action_endpoint._sessions[loop].values()]
    assert kept and not any(s.closed for s in kept)
    assert all(s.connector._conns for s in kept)  # an idle connection kept
    assert Sanic._server_event is action_endpoint._server_event
    app = Sanic("clinic_test_action_endpoint")

    async def finalize() -> None:  # what Sanic does at startup, in the loop
        app.signal_router.finalize()

    run(loop, finalize())
    run(loop, app._server_event("shutdown", "before", loop))
    assert not any(s.closed for s in kept)
    run(loop, app._server_event("shutdown", "after", loop))
    assert all(s.closed for s in kept)
    assert loop not in action_endpoint._sessions
    assert run(loop, ours.request(json={}, method="post", timeout=10))  # a new one if asked again


# --- against a raw HTTP server: what the kept session sends and reads, as Rasa's session of one call


class RawServer:
    """A TCP server on a free port noting the bytes of each request (and its client port) and
    answering each with ``answer`` (bytes, or None: no answer), then closing when ``close``."""

    def __init__(self) -> None:
        self.port = free_port()
        self.requests: List[Dict[str, Any]] = []
        self.answer: Any = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
        self.close = False
        self.server: Any = None

    def protocol(self) -> asyncio.Protocol:
        server = self

        class Protocol(asyncio.Protocol):
            def connection_made(self, transport: Any) -> None:
                self.transport, self.buffer = transport, b""

            def data_received(self, data: bytes) -> None:
                self.buffer += data
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                length = int(self.buffer[:end].lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                if len(self.buffer) < end + 4 + length:
                    return
                request, self.buffer = self.buffer[:end + 4 + length], self.buffer[end + 4 + length:]
                server.requests.append({"raw": request, "client": self.transport.get_extra_info("peername")[1]})
                if server.answer is not None:
                    answer = server.answer
                    for part in answer if isinstance(answer, list) else [answer]:
                        self.transport.write(part)
                    if server.close:
                        self.transport.close()

        return Protocol()

    async def start(self) -> None:
        self.server = await asyncio.get_running_loop().create_server(self.protocol, "127.0.0.1", self.port)

    async def stop(self) -> None:
        self.server.close()
        await self.server.wait_closed()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhook"


@pytest.fixture
def raw(loop):
    fake = RawServer()
    run(loop, fake.start())
    yield fake
    run(loop, action_endpoint.close_sessions())
    run(loop, fake.stop())


def outcome(loop: asyncio.AbstractEventLoop, endpoint: EndpointConfig, **request: Any) -> Any:
    """What a request gives: its answer, or its exception's class, text and Rasa's fields."""
    request = {"json": {"next_action": "x", "t": "é✓"}, "method": "post", "timeout": 10, **request}
    try:
        return ("answer", run(loop, endpoint.request(**request)))
    except Exception as error:  # noqa: BLE001
        return (type(error).__name__, str(error), getattr(error, "status", None), getattr(error, "text", None))


def head_and_body(request: bytes) -> Any:
    head, body = request.split(b"\r\n\r\n", 1)
    return head, json.loads(body)


@pytest.mark.parametrize("config", [
    {},
    {"headers": {"X-Clinic": "1", "User-Agent": "clinic-rasa"}, "token": "t0k", "params": {"a": "b c/é", "n": 2}},
    {"basic_auth": {"username": "üser", "password": "p:w"}, "headers": {"Accept": "application/json"}},
    {"headers": {"Host": "actions.internal", "Content-Type": "application/json; charset=utf-8"}, "token": "x",
     "token_name": "auth"},
])
@pytest.mark.parametrize("path", ["/webhook", "/webhook?v=1&v=2", "/"])
def test_the_kept_session_sends_the_bytes_rasa_s_session_sends(loop, raw, config, path):
    url = raw.url.replace("/webhook", path)
    rasa, ours = endpoints(url, **config)
    for endpoint in (rasa, ours, ours):
        assert outcome(loop, endpoint) == ("answer", {})
    (theirs_head, theirs_body), *mine = [head_and_body(r["raw"]) for r in raw.requests]
    for head, body in mine:
        assert body == theirs_body
        assert head.split(b"\r\nContent-Length: ")[0] == theirs_head.split(b"\r\nContent-Length: ")[0]
        assert head.endswith(b"Content-Length: %d" % len(json.dumps(body, separators=(",", ":")).encode()))
    assert len({r["client"] for r in raw.requests[1:]}) == 1


GZIPPED = __import__("gzip").compress(b'{"events": [], "responses": [{"text": "\xc3\xa9"}]}')
ZLIBBED = __import__("zlib").compress(b'{"events": []}')
RAW_DEFLATE = ZLIBBED[2:-4]


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n{\"events\": [1.5]}",
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
    b"5;x=y\r\n{\"a\":\r\n4\r\n [1]\r\n1\r\n}\r\n0\r\nTrailer: 1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=latin-1\r\nContent-Length: 10\r\n\r\n{\"a\": \"\xe9\"}",
    b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.api+json\r\nContent-Length: 2\r\n\r\n[]",
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}",
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 3\r\n\r\n \r\n",
    b"HTTP/1.1 204 No Content\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n"
    % len(GZIPPED) + GZIPPED,
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: deflate\r\nContent-Length: %d\r\n\r\n"
    % len(ZLIBBED) + ZLIBBED,
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: deflate\r\nContent-Length: %d\r\n\r\n"
    % len(RAW_DEFLATE) + RAW_DEFLATE,
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
    [b"HTTP/1.1 200 OK\r\nContent-Type: appli", b"cation/json\r\nContent-Length: 8\r\n\r\n{\"a\"", b": 1}"],
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: 37\r\n\r\n"
    b"{\"action_name\": \"x\", \"error\": \"no\"}\r\n",
    b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\n\r\noops!",
    b"HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n{\"a\":",
])
def test_answers_are_read_as_rasa_s_session_reads_them(loop, raw, answer):
    rasa, ours = endpoints(raw.url)
    raw.answer = answer
    theirs = outcome(loop, rasa)
    assert outcome(loop, ours) == theirs
    assert outcome(loop, ours) == theirs  # again, on the kept connection
    assert len({r["client"] for r in raw.requests[1:]}) == 1


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}",
    b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"until\": \"closed\"}",  # (the server closes)
])
def test_an_answer_that_ends_the_connection_gives_a_new_one_next_time(loop, raw, answer):
    rasa, ours = endpoints(raw.url)
    raw.answer, raw.close = answer, b"Connection: close" in answer or b"Length" not in answer
    theirs = outcome(loop, rasa)
    assert theirs[0] == "answer"
    assert [outcome(loop, ours) for _ in range(3)] == [theirs] * 3
    assert len({r["client"] for r in raw.requests[1:]}) == 3


@pytest.mark.parametrize("answer", [
    None,  # no answer, then the server closes
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{\"cut\": ",
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":",
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    b"HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n",
    b"SMTP ready\r\n\r\n",
])
def test_broken_answers_fail_as_with_aiohttp(loop, raw, answer):
    rasa, ours = endpoints(raw.url)
    raw.answer, raw.close = answer, True
    if answer is None:
        raw.answer = b""
    theirs, mine = outcome(loop, rasa), outcome(loop, ours)
    assert mine[0] == theirs[0] and mine[0] != "answer"
    assert isinstance(getattr(aiohttp, mine[0]), type) and issubclass(getattr(aiohttp, mine[0]), aiohttp.ClientError)
    raw.answer, raw.close = RawServer().answer, False
    assert outcome(loop, ours) == ("answer", {})  # and the next call is answered


def test_an_action_server_not_listening_fails_as_with_aiohttp(loop):
    rasa, ours = endpoints(f"http://127.0.0.1:{free_port()}/webhook")
    theirs, mine = outcome(loop, rasa), outcome(loop, ours)
    assert mine == theirs and mine[0] == "ClientConnectorError" and "Cannot connect to host 127.0.0.1:" in mine[1]


def test_no_answer_in_time_is_a_timeout_as_with_aiohttp(loop, raw):
    rasa, ours = endpoints(raw.url)
    raw.answer = None
    for endpoint in (rasa, ours):
        with pytest.raises(asyncio.TimeoutError):
            run(loop, endpoint.request(json={}, method="post", timeout=0.3))
    raw.answer = RawServer().answer
    assert outcome(loop, ours) == ("answer", {})
    assert len({r["client"] for r in raw.requests[1:]}) == 2  # the connection that timed out is not used again


def test_a_cancelled_call_closes_its_connection(loop, raw):
    _, ours = endpoints(raw.url)
    assert outcome(loop, ours) == ("answer", {})
    raw.answer = None

    async def cancelled() -> None:
        task = asyncio.ensure_future(ours.request(json={}, method="post", timeout=10))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(loop, cancelled())
    raw.answer = RawServer().answer
    assert outcome(loop, ours) == ("answer", {})
    assert len({r["client"] for r in raw.requests}) == 2


def test_calls_at_once_each_get_a_connection(loop, raw):
    _, ours = endpoints(raw.url)

    async def together() -> List[Any]:
        return await asyncio.gather(*(ours.request(json={"n": n}, method="post", timeout=10) for n in range(5)))

    assert run(loop, together()) == [{}] * 5
    assert len({r["client"] for r in raw.requests}) == 5
    assert run(loop, together()) == [{}] * 5
    assert len({r["client"] for r in raw.requests}) == 5  # the same five, kept


@pytest.mark.parametrize("request_", [
    {"method": "put"}, {"params": {"x": "1"}}, {"params": {"x": ["1", "2"]}}, {"headers": {"X-More": "1"}},
    {"timeout": aiohttp.ClientTimeout(total=10)},
])
def test_other_requests_are_sent_as_rasa_s_session_sends_them(loop, raw, request_):
    rasa, ours = endpoints(raw.url)
    assert outcome(loop, ours, **request_) == outcome(loop, rasa, **request_)
    assert loop in action_endpoint._sessions
    mine, theirs = raw.requests[1]["raw"], raw.requests[0]["raw"]
    assert mine.split(b"\r\nContent-Length")[0] == theirs.split(b"\r\nContent-Length")[0] or "compress" in request_


def test_the_remote_action_s_errors_are_rasa_s(loop, raw):
    from rasa.core.actions.action import ActionExecutionRejection
    from rasa.core.channels.channel import CollectingOutputChannel
    from rasa.core.nlg import TemplatedNaturalLanguageGenerator
    from rasa.shared.exceptions import RasaException

    tracker = DialogueStateTracker.from_events("c-1", [events.ActionExecuted("action_listen")], slots=DOMAIN.slots)
    nlg = TemplatedNaturalLanguageGenerator(DOMAIN.responses)

    def errors(answer: Any, url: str = raw.url) -> List[Any]:
        raw.answer = answer
        found = []
        for endpoint in endpoints(url):
            action = RemoteAction("validate_prescreen_form", None)
            action.action_endpoint = endpoint
            with pytest.raises(RasaException) as raised:
                run(loop, action.run(CollectingOutputChannel(), nlg, tracker, DOMAIN))
            found.append((type(raised.value), str(raised.value), getattr(raised.value, "action_name", None)))
        return found

    rejection = json.dumps({"action_name": "x", "error": "no"}).encode()
    rejected = errors(b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                      % len(rejection) + rejection)
    assert rejected[0] == rejected[1] and rejected[0][0] is ActionExecutionRejection and rejected[0][2] == "x"
    failed = errors(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")
    assert failed[0] == failed[1] and "Failed to execute custom action" in failed[0][1]
    down = errors(None, f"http://127.0.0.1:{free_port()}/webhook")
    assert down[0] == down[1] and "Couldn't connect" in down[0][1]
