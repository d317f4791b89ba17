"""The action server's endpoint in the Rasa server: kept connections per event loop, the body's
JSON by clinic/action_body.py (README "Performance").

Rasa 3.6 calls the action server for each custom action (``RemoteAction.run`` ->
``EndpointConfig.request``), and each call opens an aiohttp ``ClientSession`` (so a new TCP
connection) and writes the whole request body with ``json.dumps``: the tracker and
``domain.as_dict()`` (~47 kB, most of it the responses, the same on every call: Rasa's
``Domain.as_dict`` returns the dict the domain was built with) when the action reads it. Here
(the domain sent without its responses: clinic/action_body.py):

- ``ActionEndpoint``: Rasa's ``EndpointConfig`` whose ``request`` sends what Rasa's actions send
  (a POST of JSON over plain HTTP, no compression) with clinic/keepalive_client.py's lean client
  (the very bytes aiohttp sends, its answers read as aiohttp reads them: ~0.3 ms of CPU less a
  call), one per endpoint, host and event loop, and anything else through one aiohttp session per
  event loop, kept (clinic/rasa_speedups.py gives it to every ``RemoteAction``). Same request
  as Rasa's (URL, headers, auth, query parameters, CA file, the timeout and compression Rasa
  asks for), same answers and errors: a status >= 400 is Rasa's ``ClientResponseError``, an
  action server down or restarted fails or reconnects as before (a kept connection the server
  closed is not used again; idle ones are closed by this side after
  ``KEEPALIVE_TIMEOUT_S``, before the action server's Sanic drops them at 5 s, so that a
  request never goes out on a connection the server is closing). No cap on connections
  (aiohttp's default is 100; Rasa opens one per call), the host name resolved for each new
  connection (no DNS cache, as Rasa's session of one call); no cookies kept (a cookie the action
  server or a proxy sets is never sent back, as with Rasa's session of one call).
  ``close_sessions`` closes them (sessions and connections): run when the Rasa server stops
  (clinic/rasa_speedups.py).
- the body's JSON is clinic/action_body.py's ``body_json`` (ujson, the events' and the domain's
  JSON kept).
"""

import asyncio
import ssl
import weakref
from typing import Any, Dict, Optional, Text, Tuple

import aiohttp
from aiohttp.client_exceptions import ContentTypeError
from multidict import MultiDict
from rasa.core.constants import DEFAULT_REQUEST_TIMEOUT
from rasa.utils.endpoints import ClientResponseError, EndpointConfig, concat_url
from yarl import URL

from clinic.action_body import body_json
from clinic.keepalive_client import KeepAliveClient, head_for

KEEPALIVE_TIMEOUT_S = 2.0  # < Sanic's KEEP_ALIVE_TIMEOUT (5 s) on the action server


class ActionEndpoint(EndpointConfig):
    """Rasa's ``EndpointConfig`` for the action server, its HTTP session kept per event loop."""

    @classmethod
    def of(cls, endpoint: EndpointConfig) -> "ActionEndpoint":
        """The same configuration (same attributes, shared), as an ``ActionEndpoint``."""
        kept = cls.__new__(cls)
        kept.__dict__.update(endpoint.__dict__)
        return kept

    def kept_session(self) -> aiohttp.ClientSession:
        """This event loop's session (made on first use, again once closed)."""
        sessions = _sessions.setdefault(asyncio.get_running_loop(), {})
        kept = sessions.get(id(self))
        session = kept[1] if kept is not None and kept[0] is self else None
        if session is None or session.closed:
            auth = None
            if self.basic_auth:  # as EndpointConfig.session
                auth = aiohttp.BasicAuth(self.basic_auth["username"], self.basic_auth["password"])
            session = aiohttp.ClientSession(
                headers=self.headers,
                auth=auth,
                timeout=aiohttp.ClientTimeout(total=DEFAULT_REQUEST_TIMEOUT),
                # no cap on connections, host names resolved for each new one (as Rasa's)
                connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=KEEPALIVE_TIMEOUT_S, use_dns_cache=False),
                cookie_jar=aiohttp.DummyCookieJar(),  # none kept: Rasa's session of one call sends none back
                json_serialize=body_json,
            )
            sessions[id(self)] = (self, session)
        return session

    async def request(
        self,
        method: Text = "post",
        subpath: Optional[Text] = None,
        content_type: Optional[Text] = "application/json",
        compress: bool = False,
        **kwargs: Any,
    ) -> Optional[Any]:
        """``EndpointConfig.request``, on the kept connections."""
        headers: Dict[Text, Any] = {}
        if content_type:
            headers["Content-Type"] = content_type
        if "headers" in kwargs:
            headers.update(kwargs.pop("headers"))
        if self.headers:
            headers.update(self.headers)
        url = concat_url(self.url, subpath)
        params = self.combine_parameters(kwargs)
        lean = self.lean(method, url, headers, params, content_type, compress, kwargs)
        if lean is not None:
            client, head = lean
            data = body_json(kwargs["json"]).encode("utf-8")
            answer = await client.post(head % len(data) + data, kwargs.get("timeout", DEFAULT_REQUEST_TIMEOUT))
            if answer.status >= 400:
                raise ClientResponseError(answer.status, answer.reason, answer.body)  # type: ignore[arg-type]
            try:
                return answer.json()
            except ContentTypeError:
                return None
        sslcontext = None
        if self.cafile:
            try:
                sslcontext = ssl.create_default_context(cafile=self.cafile)
            except FileNotFoundError:
                kwargs["params"] = params
                return await super().request(method, subpath, content_type, compress, **kwargs)  # Rasa's error
        async with self.kept_session().request(
            method,
            url,
            headers=headers,
            params=params,
            compress=compress,
            ssl=sslcontext,
            **kwargs,
        ) as response:
            if response.status >= 400:
                raise ClientResponseError(response.status, response.reason, await response.content.read())
            try:
                return await response.json()
            except ContentTypeError:
                return None

    def lean(self, method: Text, url: Text, headers: Dict[Text, Any], params: Dict[Text, Any],
             content_type: Optional[Text], compress: bool, kwargs: Dict[Text, Any]) -> Optional[Tuple[KeepAliveClient, bytes]]:
        """This event loop's ``KeepAliveClient`` for the request and its head, when the request is
        what Rasa's actions send (a POST of JSON over plain HTTP, nothing more); else None (the
        aiohttp session sends it)."""
        if (method.lower() != "post" or not content_type or compress or self.cafile
                or set(kwargs) - {"json", "timeout"} or "json" not in kwargs
                or not isinstance(kwargs.get("timeout", 0), (int, float, type(None)))):
            return None
        clients = _clients.setdefault(asyncio.get_running_loop(), {})
        kept = clients.get(id(self))
        if kept is None or kept[0] is not self:
            kept = clients[id(self)] = (self, {}, {})
        _, by_address, heads = kept
        key = (url, tuple(params.items()), tuple(headers.items()))
        try:
            found = heads.get(key)
        except TypeError:  # a value that is no dict key (a list of query values, ...)
            return None
        if found is None:
            found = heads[key] = self._head(url, params, headers)
        if found is False:
            return None
        head, address = found
        client = by_address.get(address)
        if client is None:
            client = by_address[address] = KeepAliveClient(address[0], address[1], KEEPALIVE_TIMEOUT_S)
        client.keepalive_s = KEEPALIVE_TIMEOUT_S
        return client, head

    def _head(self, url: Text, params: Dict[Text, Any], headers: Dict[Text, Any]) -> Any:
        """The request's head and the host and port it goes to; False when the aiohttp session
        is to send it (not plain HTTP, credentials in the URL, an Authorization header besides
        basic auth, or what aiohttp refuses: it raises its own error)."""
        try:
            target = URL(url)
            if params:  # as aiohttp's ClientRequest
                query = MultiDict(target.query)
                query.extend(target.with_query(params).query)
                target = target.with_query(query)
        except (TypeError, ValueError):
            return False
        names = {str(name).lower() for name in [*headers, *(self.headers or {})]}
        if (target.scheme != "http" or not target.raw_host or target.user is not None
                or target.password is not None or (self.basic_auth and "authorization" in names)):
            return False
        auth = (self.basic_auth["username"], self.basic_auth["password"]) if self.basic_auth else None
        try:
            return head_for(target, self.headers, headers, auth), (target.raw_host, target.port or 80)
        except (TypeError, ValueError, UnicodeError):
            return False


# this event loop's lean clients and request heads, by ``id()`` of their endpoint: (the endpoint,
# clients by host and port, heads by URL, query and headers)
_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Dict[int, Tuple[ActionEndpoint, Dict[Any, KeepAliveClient], Dict[Any, Any]]]]" = (
    weakref.WeakKeyDictionary()
)


# the kept sessions, by event loop and by ``id()`` of their endpoint (Rasa's EndpointConfig
# compares by value, so it is no dict key; the endpoint is kept beside its session)
_sessions: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Dict[int, Tuple[ActionEndpoint, aiohttp.ClientSession]]]" = (
    weakref.WeakKeyDictionary()
)


async def close_sessions() -> None:
    """Close the kept sessions and connections of the running event loop."""
    loop = asyncio.get_running_loop()
    for _, session in _sessions.pop(loop, {}).values():
        await session.close()
    for _, by_address, _ in _clients.pop(loop, {}).values():
        for client in by_address.values():
            client.close()
