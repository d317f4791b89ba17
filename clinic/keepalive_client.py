"""A lean HTTP/1.1 keep-alive client: the Rasa server's POSTs to the action server
(clinic/action_endpoint.py) and the web app's calls to Rasa (clinic/rasa_client.py, which makes
its connections within a connect timeout); README "Performance".

aiohttp's client spends ~0.3 ms of CPU on each call of the action server (its request and
response objects, helpers, the payload writer), several times what the exchange needs: a
request head that is the same every call but for its length, the body, and a short answer.
``KeepAliveClient`` sends the very bytes aiohttp's ``ClientSession`` sends for Rasa's
``EndpointConfig.request`` (the same request line and query, headers in the same order:
``Host``, the session's and the request's headers, ``Accept``, ``Accept-Encoding``,
``User-Agent``, basic auth, ``Content-Length``; ``head_for`` makes it once per endpoint) and reads
the answer as aiohttp's ``ClientResponse`` does (``Content-Length``, chunked or until the
connection closes; gzip or deflate bodies inflated; ``json()`` by aiohttp's rules: ``None`` for an
empty body, ``ContentTypeError`` when the type is not JSON, the charset of the type or UTF-8).

Connections are kept per client (one per endpoint and event loop, clinic/action_endpoint.py), one
request at a time each, as many as calls at once; a connection idle more than ``keepalive_s``,
closed by the server, or answered with ``Connection: close`` (or HTTP/1.0) is not used again.
Failures are aiohttp's exceptions, which Rasa maps to its own: the server unreachable
``ClientConnectorError`` (its message as aiohttp's), the connection closed before the whole
answer ``ServerDisconnectedError``, a malformed answer ``ClientResponseError`` (status 400, as
aiohttp's parser reports it) or ``ClientPayloadError``; the total timeout ``asyncio.TimeoutError``.
A request cancelled or timed out closes its connection.
"""

import asyncio
import base64
import json
import zlib
from typing import Any, Dict, List, Optional, Tuple

import aiohttp
from aiohttp.client_exceptions import ContentTypeError
from aiohttp.client_reqrep import ConnectionKey, RequestInfo
from aiohttp.helpers import parse_mimetype
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

USER_AGENT = f"Python/3.10 aiohttp/{aiohttp.__version__}"  # aiohttp's SERVER_SOFTWARE
JSON_TYPE = aiohttp.client_reqrep.json_re  # what aiohttp's json() takes for JSON


def head_for(url: URL, session_headers: Optional[Dict[str, str]], headers: Dict[str, str],
             basic_auth: Optional[Tuple[str, str]]) -> bytes:
    """The request head aiohttp writes for a POST with a JSON body to ``url`` (its query
    included), with a ``%d`` where the body's length goes."""
    merged: CIMultiDict[str] = CIMultiDict(session_headers or {})
    for name, value in headers.items():  # ClientSession._prepare_headers
        merged[name] = value
    head: CIMultiDict[str] = CIMultiDict()
    netloc = url.raw_host or ""
    if ":" in netloc:  # an IPv6 address
        netloc = f"[{netloc}]"
    netloc = netloc.rstrip(".")
    if url.port is not None and not url.is_default_port():
        netloc += f":{url.port}"
    head["Host"] = netloc
    for name, value in merged.items():  # ClientRequest.update_headers
        if name.lower() == "host":
            head[name] = value
        else:
            head.add(name, value)
    for name, value in (("Accept", "*/*"), ("Accept-Encoding", "gzip, deflate")):  # update_auto_headers
        if name not in head:
            head.add(name, value)
    if "User-Agent" not in head:
        head["User-Agent"] = USER_AGENT
    if basic_auth is not None:  # update_auth
        user, password = basic_auth
        head["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode("latin1")).decode("latin1")
    for name, value in head.items():
        if any(c in f"{name}{value}" for c in "\r\n"):  # aiohttp's http_writer refuses them so
            raise ValueError("Newline or carriage return detected in headers. "
                             "Potential header injection attack.")
    path = url.raw_path + (f"?{url.raw_query_string}" if url.raw_query_string else "")
    lines = [f"POST {path} HTTP/1.1"] + [f"{name}: {value}" for name, value in head.items()]
    text = "\r\n".join(lines).replace("%", "%%") + "\r\nContent-Length: %d\r\n\r\n"
    return text.encode("utf-8")


class Answer:
    """The action server's answer: what Rasa's ``EndpointConfig.request`` reads of aiohttp's."""

    def __init__(self, status: int, reason: str, headers: CIMultiDictProxy, body: bytes) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        """aiohttp's ``ClientResponse.json()``."""
        content_type = self.headers.get("Content-Type", "").lower()
        if not JSON_TYPE.match(content_type):
            raise ContentTypeError(
                RequestInfo(URL(), "POST", CIMultiDictProxy(CIMultiDict())),
                (),
                message=f"Attempt to decode JSON with unexpected mimetype: {content_type}",
                headers=self.headers,
            )
        stripped = self.body.strip()
        if not stripped:
            return None
        return json.loads(stripped.decode(self.encoding()))

    def encoding(self) -> str:
        import codecs

        charset = parse_mimetype(self.headers.get("Content-Type", "").lower()).parameters.get("charset")
        if charset:
            try:
                return codecs.lookup(charset).name
            except LookupError:
                pass
        return "utf-8"


class _Malformed(Exception):
    pass


class Connection(asyncio.Protocol):
    """One keep-alive connection: one request at a time, its answer parsed as it comes."""

    def __init__(self) -> None:
        self.transport: Optional[asyncio.Transport] = None
        self.buffer = bytearray()
        self.waiter: Optional[asyncio.Future] = None
        self.open = True
        self.idle_since = 0.0
        self._head: Optional[Tuple[int, str, CIMultiDictProxy, bool]] = None  # status, reason, headers, keep-alive
        self._until_close = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiter is not None and not self.waiter.done():
            self._try_answer(closed=False)

    def eof_received(self) -> Optional[bool]:
        return False  # close the transport

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.open = False
        if self.waiter is not None and not self.waiter.done():
            if self._until_close and self._head is not None:
                self._try_answer(closed=True)
            if not self.waiter.done():  # (as aiohttp: a body cut short, or no answer)
                self.waiter.set_exception(aiohttp.ClientPayloadError("Response payload is not completed")
                                          if self._head is not None else aiohttp.ServerDisconnectedError())

    def send(self, data: bytes) -> "asyncio.Future[Tuple[Answer, bool]]":
        self.waiter = asyncio.get_running_loop().create_future()
        self._head = None
        self._until_close = False
        if not self.open:  # the server closed it before the request went out (as a balancer with
            self.waiter.set_exception(aiohttp.ServerDisconnectedError())  # nothing behind does): at once
            return self.waiter
        assert self.transport is not None
        self.transport.write(data)
        return self.waiter

    def close(self) -> None:
        self.open = False
        if self.transport is not None:
            self.transport.close()

    def _try_answer(self, closed: bool) -> None:
        assert self.waiter is not None
        try:
            answer = self._answer(closed)
        except _Malformed as exc:
            self.waiter.set_exception(aiohttp.ClientResponseError(
                RequestInfo(URL(), "POST", CIMultiDictProxy(CIMultiDict())), (), status=400, message=str(exc)))
            self.close()
        except aiohttp.ClientPayloadError as exc:
            self.waiter.set_exception(exc)
            self.close()
        else:
            if answer is not None:
                self.waiter.set_result(answer)

    def _parse_head(self) -> bool:
        """The status line and headers once whole (informational answers skipped)."""
        while self._head is None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return False
            lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            del self.buffer[:end + 4]
            version, _, rest = lines[0].partition(" ")
            code, _, reason = rest.partition(" ")
            if version not in ("HTTP/1.1", "HTTP/1.0") or len(code) != 3 or not code.isdigit():
                raise _Malformed("Invalid response status" if version.startswith("HTTP/") else "Invalid HTTP version")
            headers: CIMultiDict[str] = CIMultiDict()
            for line in lines[1:]:
                name, colon, value = line.partition(":")
                if not colon or not name or name != name.strip():
                    raise _Malformed("Invalid header")
                headers.add(name, value.strip(" \t"))
            status = int(code)
            if 100 <= status < 200 and status != 101:
                continue  # e.g. 100 Continue: the answer follows
            connection = headers.get("Connection", "").lower()
            keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
            self._head = (status, reason.strip(), CIMultiDictProxy(headers), keep_alive)
        return True

    def _answer(self, closed: bool) -> Optional[Tuple[Answer, bool]]:
        """The answer once whole, and whether the connection may be used again; else None."""
        if not self._parse_head():
            return None
        assert self._head is not None
        status, reason, headers, keep_alive = self._head
        if status in (204, 304):
            body = b""
        elif "chunked" in headers.get("Transfer-Encoding", "").lower():
            found = self._chunked()
            if found is None:
                return None
            body = found
        elif "Content-Length" in headers:
            try:
                length = int(headers["Content-Length"])
            except ValueError:
                raise _Malformed("Invalid Content-Length") from None
            if length < 0:
                raise _Malformed("Invalid Content-Length")
            if len(self.buffer) < length:
                return None
            body = bytes(self.buffer[:length])
            del self.buffer[:length]
        else:  # the body ends with the connection
            self._until_close = True
            if not closed:
                return None
            body, keep_alive = bytes(self.buffer), False
            self.buffer.clear()
        return Answer(status, reason, headers, _inflated(body, headers.get("Content-Encoding", ""))), keep_alive

    def _chunked(self) -> Optional[bytes]:
        """A chunked body once whole (removed from the buffer), else None."""
        at, parts = 0, []
        buffer = self.buffer
        while True:
            end = buffer.find(b"\r\n", at)
            if end < 0:
                return None
            size_text = bytes(buffer[at:end]).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise _Malformed("Invalid character in chunk size") from None
            at = end + 2
            if size == 0:
                while True:  # trailers, up to an empty line
                    end = buffer.find(b"\r\n", at)
                    if end < 0:
                        return None
                    line_empty = end == at
                    at = end + 2
                    if line_empty:
                        del buffer[:at]
                        return b"".join(parts)
            if len(buffer) < at + size + 2:
                return None
            if buffer[at + size:at + size + 2] != b"\r\n":
                raise _Malformed("Invalid chunk end")
            parts.append(bytes(buffer[at:at + size]))
            at += size + 2


def _inflated(body: bytes, encoding: str) -> bytes:
    """The body as aiohttp hands it out: gzip and deflate inflated, others as they are."""
    encoding = encoding.lower()
    if not body or encoding not in ("gzip", "deflate", "br"):
        return body
    if encoding == "br":
        raise aiohttp.ClientPayloadError("Can not decode content-encoding: brotli (br). Please install `Brotli`")
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else (zlib.MAX_WBITS if body[0] & 0x0F == 8 else -zlib.MAX_WBITS)
    try:
        inflater = zlib.decompressobj(wbits=wbits)
        return inflater.decompress(body) + inflater.flush()
    except zlib.error as exc:
        raise aiohttp.ClientPayloadError(f"Can not decode content-encoding: {encoding}") from exc


def _expire(waiter: "asyncio.Future[Any]") -> None:
    if not waiter.done():
        waiter.set_exception(asyncio.TimeoutError())


class KeepAliveClient:
    """Keep-alive connections to one host and port, for POSTs of a ready head and body."""

    def __init__(self, host: str, port: int, keepalive_s: float) -> None:
        self.host, self.port = host, port
        self.keepalive_s = keepalive_s
        self._idle: List[Connection] = []
        self._busy: "set[Connection]" = set()

    async def post(self, data: bytes, timeout_s: Optional[float]) -> Answer:
        """Send ``data`` (head and body) and wait for the answer, ``timeout_s`` in all."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        connection = self._idle_connection(loop.time())
        if connection is None:
            connection = await (self._connect() if deadline is None else
                                asyncio.wait_for(self._connect(), deadline - loop.time()))
        self._busy.add(connection)
        waiter = connection.send(data)
        timer = None if deadline is None else loop.call_at(deadline, _expire, waiter)
        try:
            answer, keep_alive = await waiter
        except BaseException:  # failed, timed out or cancelled: the answer may still come
            connection.close()
            raise
        finally:
            self._busy.discard(connection)
            if timer is not None:
                timer.cancel()
        if keep_alive and connection.open and not connection.buffer:
            connection.waiter = None
            connection.idle_since = loop.time()
            self._idle.append(connection)
        else:
            connection.close()
        return answer

    def _idle_connection(self, now: float) -> Optional[Connection]:
        """The connection idle last, when still open and idle less than ``keepalive_s``."""
        while self._idle:
            connection = self._idle.pop()
            if connection.open and not connection.buffer and now - connection.idle_since < self.keepalive_s:
                return connection
            connection.close()
        return None

    async def _connect(self) -> Connection:
        try:
            _, connection = await asyncio.get_running_loop().create_connection(Connection, self.host, self.port)
        except OSError as exc:  # as aiohttp's TCPConnector reports it
            key = ConnectionKey(self.host, self.port, False, True, None, None, None)
            raise aiohttp.ClientConnectorError(key, exc) from exc
        return connection

    def close(self) -> None:
        for connection in self._idle + list(self._busy):
            connection.close()
        self._idle.clear()
