"""The bench's load generator (scripts/bench_visitors.py): its own small HTTP client (WebClient)
sends the web app the very bytes aiohttp's client sent, and reads the answers as aiohttp read
them (status, cookie, JSON), failures included."""

import asyncio
import itertools
import uuid
from typing import Any, Dict, List, Tuple

import aiohttp
import pytest

from scripts import bench_visitors
from scripts.bench_visitors import LevelResult, Script, VisitorSession, WebAppUnreachable, WebClient, run_visitor

ANSWER = (b'{"messages": [{"text": "Hi! How can I help?", "buttons": [{"title": "Yes, let\'s start", '
          b'"payload": "/affirm", "sig": "s1"}], "ts": 1.5}], "handoff": {"mode": "assistant"}}')


class RecordingServer:
    """Takes HTTP requests on keep-alive connections, records their bytes, answers from a list
    (status line and headers as given, the body with its length)."""

    def __init__(self, answers: List[Tuple[str, List[str], bytes]]) -> None:
        self.answers = itertools.cycle(answers)
        self.requests: List[bytes] = []
        self.connections = 0

    async def start(self) -> str:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                self.requests.append(head + await reader.readexactly(length))
                status, headers, body = next(self.answers)
                if status == "drop":
                    writer.close()
                    return
                if status == "stall":
                    await asyncio.sleep(5)
                    return
                lines = [f"HTTP/1.1 {status}", *headers, f"Content-Length: {len(body)}", "", ""]
                writer.write("\r\n".join(lines).encode() + body)
                await writer.drain()
                if "Connection: close" in headers:
                    writer.close()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass

    async def stop(self) -> None:
        self.server.close()
        await self.server.wait_closed()


FIRST = ("200 OK", ["Content-Type: application/json",
                    "Set-Cookie: cid=0123abcd.sIgNaTuRe; Path=/; Max-Age=2592000; HttpOnly; SameSite=Lax"], ANSWER)
LATER = ("200 OK", ["Content-Type: application/json"], ANSWER)
TOO_FAST = ("429 Too Many Requests", ["Retry-After: 2", "Content-Type: application/json"],
            b'{"error": "rate_limited", "detail": "slow down"}')
CLOSING = ("200 OK", ["Content-Type: application/json", "Connection: close"], ANSWER)


async def converse(http: Any, url: str, bodies: List[Dict[str, Any]]) -> List[Tuple[int, Dict[str, Any], str, Any]]:
    visitor = VisitorSession(http, url)
    said = []
    for body in bodies:
        status, answer, error = await visitor.post(dict(body), 5.0)
        said.append((status, answer, error, visitor.cookie))
    return said


BODIES = [{"message": "hello there"}, {"button": {"payload": "/affirm", "sig": "s1", "title": "Yes, let's start"}},
          {"message": "caf\u00e9 \u00bfqu\u00e9? \"quoted\""}, {"message": "I'm 41"}]


def test_the_web_client_sends_what_aiohttp_sent_and_reads_the_answers_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    async def run(client_of: Any) -> Tuple[List[bytes], Any, int]:
        ids = (uuid.UUID(int=n) for n in itertools.count())
        monkeypatch.setattr(bench_visitors.uuid, "uuid4", lambda: next(ids))
        server = RecordingServer([FIRST, LATER, TOO_FAST, CLOSING])
        url = await server.start()
        async with client_of(url) as http:
            said = await converse(http, url, BODIES + BODIES)
        await server.stop()
        return server.requests, said, server.connections

    def aiohttp_session(url: str) -> Any:
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), cookie_jar=aiohttp.DummyCookieJar())

    async def main() -> None:
        sent_before, read_before, _ = await run(aiohttp_session)
        sent_now, read_now, connections = await run(WebClient)
        ports = lambda requests: [r.replace(r.split(b"Host: ")[1].split(b"\r\n")[0], b"HOST") for r in requests]  # noqa: E731
        assert ports(sent_now) == ports(sent_before) and len(sent_now) == 8
        assert b"Cookie: cid=0123abcd.sIgNaTuRe\r\n" in sent_now[1] and b"Cookie" not in sent_now[0]
        assert read_now == read_before
        assert [r[0] for r in read_now] == [200, 200, 429, 200] * 2 and read_now[0][1]["messages"][0]["buttons"]
        assert read_now[2][2].startswith('{"error": "rate_limited"')
        assert connections == 2  # kept alive until the web app said "Connection: close"

    asyncio.run(main())


def test_a_connection_dropped_or_an_answer_too_late_is_a_failed_turn_and_the_next_turn_reconnects() -> None:
    async def main() -> None:
        server = RecordingServer([LATER, ("drop", [], b""), LATER, ("stall", [], b""), LATER])
        url = await server.start()
        async with WebClient(url) as http:
            visitor = VisitorSession(http, url)
            assert (await visitor.post({"message": "one"}, 5.0))[0] == 200
            with pytest.raises(aiohttp.ClientConnectionError):  # WebAppUnreachable, as aiohttp's
                await visitor.post({"message": "two"}, 5.0)
            assert (await visitor.post({"message": "three"}, 5.0))[0] == 200
            with pytest.raises(asyncio.TimeoutError):
                await visitor.post({"message": "four"}, 0.3)
            assert (await visitor.post({"message": "five"}, 5.0))[0] == 200
        await server.stop()
        assert server.connections == 3  # a new one after the drop and after the timeout

        result = LevelResult(1, 10)  # run_visitor counts a dropped turn as an error and stops there
        server = RecordingServer([LATER, ("drop", [], b"")])
        url = await server.start()
        async with WebClient(url) as http:
            await run_visitor(VisitorSession(http, url), Script("questions", [("say", "hi")] * 3), result,
                              float("inf"), 5.0)
        await server.stop()
        assert [t.status for t in result.turns] == [200, 0] and result.error_samples == ["HTTP 0: WebAppUnreachable"]

        async with WebClient("http://127.0.0.1:1") as http:  # nothing listens
            with pytest.raises(WebAppUnreachable):
                await VisitorSession(http, "http://127.0.0.1:1").post({"message": "hi"}, 5.0)

    asyncio.run(main())
