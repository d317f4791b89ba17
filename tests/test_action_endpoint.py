"""clinic/action_endpoint.py: the action server's endpoint with its HTTP session kept per event
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

import clinic.tracker_store  # noqa: F401  (what Rasa imports: it installs the speed-ups)
from clinic import action_body, action_endpoint, rasa_speedups
from tests.stack import free_port

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
    assert full["domain"] is DOMAIN.as_dict()
    for _ in range(2):  # the second time with the domain's JSON kept
        assert parsed(action_body.body_json(full)) == parsed(json.dumps(full))
    without = {k: v for k, v in full.items() if k != "domain"}
    assert parsed(action_body.body_json(without)) == parsed(json.dumps(without))
    for other in ({}, [1, 2], "x", {1: "a", "domain": {}}, {"domain": None}, {"domain": {"x": [1.5, None]}}):
        assert parsed(action_body.body_json(other)) == parsed(json.dumps(other))


def test_values_are_written_as_json_dumps_writes_them():
    rng = random.Random(7)
    floats = [rng.random() * 10 ** rng.randint(-30, 30) * rng.choice([1, -1]) for _ in range(5000)]
    floats += [0.0, -0.0, 1e16, 1e-7, 5e-324, 1.7976931348623157e308, 0.1 + 0.2, 2.0 ** 53 + 1, 123456789.123456789]
    values = [floats, [float("nan"), float("inf"), float("-inf")], 2 ** 70, -(2 ** 63) - 1,
              "a/b <\\> \"q\" \x00\x1f\u2028 é’✓😀 \ud800", {"1": {"": [True, False, None, (1, 2)]}},
              {1: "int key", None: "none", True: "bool", 1.5: "float"}]
    for value in values:
        assert parsed(action_body.dumps(value)) == parsed(json.dumps(value)), value
    for unwritable in (b"bytes", {1, 2}, object(), float.fromhex):  # fail as json.dumps fails
        with pytest.raises(TypeError) as theirs:
            json.dumps(unwritable)
        with pytest.raises(TypeError) as ours:
            action_body.dumps(unwritable)
        assert str(ours.value) == str(theirs.value)


def test_the_domain_s_json_is_made_once_per_domain(monkeypatch):
    dumped: List[Any] = []
    real = action_body.ujson.dumps
    monkeypatch.setattr(action_body.ujson, "dumps", lambda o, *a, **k: dumped.append(o) or real(o, *a, **k))
    action_body.body_json(body())
    dumped.clear()
    for sent in (body(), body(), body()):
        assert parsed(action_body.body_json(sent)) == parsed(json.dumps(sent))
    assert dumped and not any(o is DOMAIN.as_dict() for o in dumped)
    other = Domain.from_dict({**DOMAIN.as_dict(), "responses": {"utter_x": [{"text": "changed"}]}})
    sent = body(other)
    assert parsed(action_body.body_json(sent)) == parsed(json.dumps(sent))  # a new domain: its own JSON
    assert any(o is other.as_dict() for o in dumped)


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

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/webhook", self.webhook)
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
    clients = set()
    for compress in (False, True):
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


def test_no_cookie_the_action_server_sets_is_sent_back_as_with_rasa_s(loop, server):
    for endpoint in endpoints(server.url.replace("127.0.0.1", "localhost")):  # (cookies of IP hosts: never kept)
        for _ in range(3):
            run(loop, endpoint.request(json={}, method="post", timeout=10))
    assert len(server.requests) == 6
    assert [request["headers"].get("Cookie") for request in server.requests] == [None] * 6


def test_host_names_are_resolved_for_each_new_connection_as_rasa_s(loop, server):
    _, ours = endpoints(server.url.replace("127.0.0.1", "localhost"))
    run(loop, ours.request(json={}, method="post", timeout=10))
    connector = action_endpoint._sessions[loop][id(ours)][1].connector
    assert connector.use_dns_cache is False  # a new address of the action server is used at once


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
    assert RemoteAction.__init__ is rasa_speedups.remote_action_init
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
    kept = [s for _, s in action_endpoint._sessions[loop].values()]
    assert kept and not any(s.closed for s in kept)
    assert Sanic._server_event is rasa_speedups._server_event
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
