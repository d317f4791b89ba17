"""The web app's Rasa client spreading messages over several Rasa servers by load
(clinic.rasa_runtime.rasa_client): a conversation keeps its own server (rendezvous hash) while loads are
near, goes to the least busy server when its own has clearly more in flight, and the
failover rules (servers that failed lately last, one retry on the next) hold all the same.
The failover itself is tested in test_multi_instance.py and test_faults.py."""

import asyncio
import json
import uuid
from typing import Any, Dict, List

import pytest

from yarl import URL

from clinic.rasa_runtime.rasa_client import SPREAD_MARGIN, RasaClient, RasaUnavailable
from tests.fake_rasa import FakeRasa
from tests.stack import free_port

A, B, C = "http://a:5005", "http://b:5005", "http://c:5005"


def owned_by(client: RasaClient, url: str, count: int = 5) -> List[str]:
    found = []
    while len(found) < count:
        cid = uuid.uuid4().hex
        if client.servers_for(cid)[0] == url:
            found.append(cid)
    return found


def test_a_conversation_keeps_its_own_server_while_loads_are_near() -> None:
    client = RasaClient(f"{A},{B}")
    cid = owned_by(client, A, 1)[0]
    assert client.servers_for(cid) == [A, B]
    client.in_flight.update({A: 7, B: 7 - SPREAD_MARGIN + 1})
    assert client.servers_for(cid) == [A, B]
    client.in_flight.update({A: 3, B: 5})  # the other busier: its own all the more
    assert client.servers_for(cid) == [A, B]


def test_a_conversation_goes_to_the_least_busy_server_when_its_own_has_clearly_more_in_flight() -> None:
    client = RasaClient(f"{A},{B},{C}")
    cid = owned_by(client, A, 1)[0]
    own_order = client.servers_for(cid)
    client.in_flight.update({A: 6, B: 4, C: 4})
    least = own_order[1]  # of equal loads, the one the hash puts first
    assert client.servers_for(cid) == [least, A, own_order[2]]  # its own next: the retry goes there
    client.in_flight.update({A: 6, B: 5, C: 5})
    assert client.servers_for(cid) == own_order
    client.in_flight.update({A: 6, own_order[1]: 4, own_order[2]: 1})
    assert client.servers_for(cid) == [own_order[2], A, own_order[1]]


def test_a_server_that_failed_lately_is_not_chosen_for_being_idle() -> None:
    client = RasaClient(f"{A},{B}")
    cid = owned_by(client, A, 1)[0]
    client._down_until[B] = float("inf")
    client.in_flight.update({A: 9, B: 0})
    assert client.servers_for(cid) == [A, B]
    client._down_until[A] = float("inf")  # both down: the hash order
    assert client.servers_for(cid) == [A, B]
    one = RasaClient(A)  # one URL (a load balancer): nothing to choose
    one.in_flight[A] = 50
    assert one.servers_for(cid) == [A]


def test_messages_without_a_conversation_go_round_by_turn_unless_one_is_clearly_busier() -> None:
    client = RasaClient(f"{A},{B}")
    assert [client.servers_for(None)[0] for _ in range(4)] == [A, B, A, B]
    client.in_flight.update({A: 4, B: 0})
    assert [client.servers_for(None)[0] for _ in range(4)] == [B, B, B, B]


def SlowRasa(name: str, delay_s: float = 0.05, status: int = 200) -> FakeRasa:
    """A Rasa stand-in answering each message after ``delay_s`` (its name as the reply)."""
    return FakeRasa(name, status=status, delay_s=delay_s)


def test_ten_busy_conversations_hashed_to_one_server_are_spread_and_each_alone_stays_on_its_own() -> None:
    async def main() -> None:
        a, b = SlowRasa("a"), SlowRasa("b")
        for server in (a, b):
            await server.start()
        client = RasaClient(f"{a.url},{b.url}")
        conversations = owned_by(client, a.url, 10)

        async def visitor(cid: str) -> List[str]:  # a closed loop: the next message once answered
            return [(await client.send(cid, "hi"))[0]["text"] for _ in range(6)]

        answers = await asyncio.gather(*(visitor(c) for c in conversations))
        assert len(b.senders) >= 20  # of 60, all hashed to a
        assert {text for texts in answers for text in texts} == {"a", "b"}
        assert a.most_held - b.most_held <= SPREAD_MARGIN + 1 and a.most_held <= 10 - 4
        assert client.in_flight == {a.url: 0, b.url: 0}

        b.senders.clear()
        for cid in conversations:  # one at a time: nothing in flight elsewhere, each on its own
            assert (await client.send(cid, "hi"))[0]["text"] == "a"
        assert b.senders == []

        await client.close()
        for server in (a, b):
            await server.runner.cleanup()

    asyncio.run(main())


def test_the_count_in_flight_comes_back_to_zero_after_errors_and_a_moved_message_is_retried_on_its_own_server() -> None:
    async def main() -> None:
        failing, slow = SlowRasa("failing", status=500), SlowRasa("slow", delay_s=2.0)
        for server in (failing, slow):
            await server.start()
        down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
        client = RasaClient(f"{failing.url},{down}", timeout_s=0.5)
        with pytest.raises(RasaUnavailable):
            await client.send(owned_by(client, failing.url, 1)[0], "hi")  # an error answer: not retried
        with pytest.raises(RasaUnavailable):
            await client.send(owned_by(client, down, 1)[0], "hi")  # refused, then the retry gets a 500
        assert client.in_flight == {failing.url: 0, down: 0}

        timing_out = RasaClient(slow.url, timeout_s=0.2)
        with pytest.raises(RasaUnavailable):
            await timing_out.send("c", "hi")
        assert timing_out.in_flight == {slow.url: 0}

        # a message moved off its busy server to one that turns out down: retried on its own
        ok = SlowRasa("ok", delay_s=0.0)
        await ok.start()
        spread = RasaClient(f"{ok.url},{down}")
        cid = owned_by(spread, ok.url, 1)[0]
        spread.in_flight[ok.url] = SPREAD_MARGIN  # as if busy
        assert spread.servers_for(cid) == [down, ok.url]
        assert (await spread.send(cid, "hi"))[0]["text"] == "ok"
        assert spread.servers_for(cid) == [ok.url, down]  # the down one is not chosen again meanwhile

        for c in (client, timing_out, spread):
            await c.close()
        for server in (failing, slow, ok):
            await server.runner.cleanup()

    asyncio.run(main())


# --- the HTTP calls: aiohttp's kept session ---


class RecordingServer:
    """A bare HTTP/1.1 server: notes each request (request line, Content-Type, body) and answers
    200 with ``body`` as ``content_type``, on a kept connection; a request whose path is in
    ``redirects`` is answered with that status and ``Location`` (its path with ``/moved`` before it)."""

    def __init__(self) -> None:
        self.requests: List[tuple] = []
        self.body = b'{"events": [{"event": "user"}]}'
        self.content_type = b"application/json"
        self.port = free_port()
        self.redirects: Dict[str, int] = {}

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
                body = await reader.readexactly(int(headers.get("content-length", 0)))
                self.requests.append((lines[0], headers.get("content-type"), body))
                path = lines[0].split(" ")[1]
                status = self.redirects.get(path.split("?")[0])
                if status is not None:
                    writer.write(b"HTTP/1.1 %d Redirect\r\nLocation: /moved%s\r\nContent-Length: 0\r\n\r\n"
                                 % (status, path.encode()))
                    await writer.drain()
                    continue
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: " + self.content_type
                             + b"\r\nContent-Length: %d\r\n\r\n" % len(self.body) + self.body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        self.server.close()
        await self.server.wait_closed()


CALLS = [
    ("POST", "/webhooks/rest/webhook", {"sender": "3f9a", "message": "Is it safe with my \u00e9 meds? \"yes\" / no",
                                        "metadata": {"message_id": "m-1", "display": "Yes \u2714"}}, {}),
    ("GET", "/conversations/3f9a/tracker", None, {"include_events": "ALL"}),
    ("POST", "/conversations/3f9a/tracker/events", [{"event": "pause", "timestamp": 1.5}], {"include_events": "NONE"}),
    ("POST", "/model/parse", {"text": "I need help now \U0001f622"}, {}),
]


def test_each_call_sends_its_json_and_the_token_to_the_api_but_not_to_the_webhook() -> None:
    async def main() -> None:
        server = RecordingServer()
        await server.start()
        client = RasaClient(server.url, token="t0k/en+=&?x")
        for method, path, body, params in CALLS:
            assert await client._call_one(server.url, method, path, body, params) == {"events": [{"event": "user"}]}
        assert len(server.requests) == len(CALLS)
        for (method, path, body, params), (line, content_type, sent) in zip(CALLS, server.requests):
            target = URL(line.split(" ")[1])
            assert line.startswith(f"{method} ") and target.path == path
            expected = dict(params) if path.startswith("/webhooks/") else {**params, "token": client.token}
            assert dict(target.query) == expected
            assert (json.loads(sent) if sent else None) == body
            assert (content_type == "application/json") == (body is not None)
        assert client.in_flight == {server.url: 0}
        await client.close()
        await server.stop()

    asyncio.run(main())


@pytest.mark.parametrize("status", [307, 308])
def test_a_redirect_that_keeps_the_method_is_followed_with_the_same_body(status: int) -> None:
    """As Rasa's own client (aiohttp) follows it: the answer of the new location, not nothing."""
    async def main() -> None:
        server = RecordingServer()
        await server.start()
        server.redirects["/webhooks/rest/webhook"] = status
        server.body = b'[{"recipient_id": "c", "text": "moved"}]'
        client = RasaClient(server.url)
        assert await client.send("c", "hi") == [{"recipient_id": "c", "text": "moved"}]
        first, second = server.requests
        assert second[0].startswith("POST /moved/webhooks/rest/webhook ") and second[2] == first[2]
        await client.close()
        await server.stop()

    asyncio.run(main())


def test_an_answer_that_is_not_json_or_malformed_is_rasa_unavailable() -> None:
    async def main() -> None:
        server = RecordingServer()
        await server.start()
        client = RasaClient(server.url)
        server.content_type = b"text/html"
        with pytest.raises(RasaUnavailable):
            await client.events("c")
        server.content_type = b"application/json"
        server.body = b""  # an empty JSON answer: None, as aiohttp's json()
        assert await client.events("c") == []
        await client.close()
        await server.stop()

        async def garbling(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTX/9 abc\r\n\r\n")  # not HTTP
            await writer.drain()

        garbled = await asyncio.start_server(garbling, "127.0.0.1", server.port)
        other = RasaClient(server.url)
        with pytest.raises(RasaUnavailable) as raised:
            await other.events("c")
        assert not isinstance(raised.value.__cause__, asyncio.TimeoutError)
        await other.close()
        garbled.close()
        await garbled.wait_closed()

    asyncio.run(main())


def test_a_kept_connection_the_server_closed_is_replaced_without_a_failover() -> None:
    async def main() -> None:
        a, b = FakeRasa("a"), FakeRasa("b")
        for server in (a, b):
            await server.start()
        client = RasaClient(f"{a.url},{b.url}")
        cid = owned_by(client, a.url, 1)[0]
        assert (await client.send(cid, "hi"))[0]["text"] == "a"  # a connection is kept now
        await a.runner.cleanup()  # the server restarts: the kept connection is closed
        again = FakeRasa("a again")
        again.port = a.port
        await again.start()
        assert (await client.send(cid, "hi"))[0]["text"] == "a again"
        assert client._down_until == {} and b.senders == []
        await client.close()
        for server in (again, b):
            await server.runner.cleanup()

    asyncio.run(main())


def test_a_server_that_closes_each_connection_at_once_is_left_for_the_next() -> None:
    """As a load balancer with no server behind it: closed before the request went out, a
    connection error (aiohttp's ServerDisconnectedError), so the next server gets the message."""
    async def main() -> None:
        other = FakeRasa("other")
        await other.start()
        closing = await asyncio.start_server(lambda _r, w: w.close(), "127.0.0.1", free_port())
        closer = f"http://127.0.0.1:{closing.sockets[0].getsockname()[1]}"
        client = RasaClient(f"{closer},{other.url}", timeout_s=5)
        for cid in owned_by(client, closer, 3):
            assert (await client.send(cid, "hi", {"message_id": "m1"}))[0]["text"] == "other"
        assert client._down_until.get(closer, 0) > 0
        await client.close()
        closing.close()
        await other.runner.cleanup()

    asyncio.run(main())


def test_a_server_that_does_not_take_the_connection_in_time_is_left_for_the_next(monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection not made within connect_timeout_s: a connection error (aiohttp's
    ServerTimeoutError), so the next server is asked whether it has the message, then sent it."""
    async def main() -> None:
        other = FakeRasa("other")
        await other.start()
        black_hole = free_port()
        create_connection = asyncio.get_running_loop().create_connection

        async def hanging(*args: Any, **kwargs: Any) -> Any:
            if args[2] == black_hole:
                await asyncio.sleep(3600)
            return await create_connection(*args, **kwargs)

        monkeypatch.setattr(asyncio.get_running_loop(), "create_connection", hanging)
        hole = f"http://127.0.0.1:{black_hole}"
        client = RasaClient(f"{hole},{other.url}", connect_timeout_s=0.3)
        cid = owned_by(client, hole, 1)[0]
        assert (await client.send(cid, "hi", {"message_id": "m1"}))[0]["text"] == "other"
        assert other.senders == [cid] and client._down_until.get(hole, 0) > 0
        assert client.in_flight == {hole: 0, other.url: 0}
        await client.close()
        await other.runner.cleanup()

    asyncio.run(main())
