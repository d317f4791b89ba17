"""Patch: ``RemoteAction.__init__`` gives every remote action one ``ActionEndpoint`` of its
configuration, whose aiohttp session is kept per event loop (Rasa opens a session, so a TCP
connection, per call); ``Sanic._server_event`` closes the sessions when the Rasa server stops.

Checked against Rasa 3.6.21 (Sanic 21.12). Gain when added, with action_result_check and the body by
ujson: Rasa's side of custom actions 3.7 -> 1.7 ms a turn (docs/PERFORMANCE.md). Measured on
2026-12-06 with every patch on and off (`make bench`, Rasa's CPU a turn at c=10: 14.3-17.1 ms with
them, 26.5-26.7 without, a busy shared machine, two runs each way) and this one left out alone
(`scripts/bench_profile.py --without kept_action_session`: not distinguishable from that machine's
noise of ~3 ms); docs/PERFORMANCE.md.

Rasa 3.6 calls the action server for each custom action (``RemoteAction.run`` ->
``EndpointConfig.request``), and each call opens an aiohttp ``ClientSession`` (so a new TCP
connection) and writes the whole request body with ``json.dumps``: the tracker and
``domain.as_dict()`` (~47 kB, most of it the responses, the same on every call: Rasa's
``Domain.as_dict`` returns the dict the domain was built with) when the action reads it. Here:

- ``ActionEndpoint``: Rasa's ``EndpointConfig`` whose ``request`` goes through one aiohttp session
  per endpoint and event loop, kept (``remote_action_init`` gives it to every ``RemoteAction``).
  Same request as Rasa's (URL, headers, auth, query parameters, CA file, the timeout and
  compression Rasa asks for), same answers and errors: a status >= 400 is Rasa's
  ``ClientResponseError``, redirects followed as Rasa's session follows them (a 307 or 308 sends
  the same body again), an action server down or restarted fails or reconnects as before. Idle
  connections are closed by this side after ``KEEPALIVE_TIMEOUT_S``, before the action server's
  Sanic drops them at 5 s, so that a request never goes out on a connection the server is
  closing. No cap on connections (aiohttp's default is 100; Rasa opens one per call), the host
  name resolved for each new connection (no DNS cache, as Rasa's session of one call); no
  cookies kept (a cookie the action server or a proxy sets is never sent back, as with Rasa's
  session of one call). ``close_sessions`` closes them: run when the Rasa server stops
  (after Sanic's ``server.shutdown.after`` event, where Rasa closes its own resources).
- the body's JSON is written by ujson (``dumps``: the same data as ``json.dumps`` writes, once
  parsed), the whole body each call, as Rasa writes it with ``json.dumps``.
"""

import asyncio
import json
import ssl
import weakref
from typing import Any, Dict, List, Optional, Text, Tuple

import aiohttp
import ujson
from aiohttp.client_exceptions import ContentTypeError
from rasa.core.actions.action import RemoteAction
from rasa.core.constants import DEFAULT_REQUEST_TIMEOUT
from rasa.utils.endpoints import ClientResponseError, EndpointConfig, concat_url
from sanic import Sanic

from clinic.rasa_runtime.patches.patching import Patch

KEEPALIVE_TIMEOUT_S = 2.0  # < Sanic's KEEP_ALIVE_TIMEOUT (5 s) on the action server


def dumps(value: Any) -> Text:
    """The JSON of ``value`` by ujson (3x faster than ``json.dumps`` on a tracker; the same
    data once parsed: no spaces, "/" written "\\/"); ``json.dumps`` when ujson fails, so that
    what json cannot write fails as before (ujson also writes Decimals and objects with a
    ``toDict`` or ``__json__`` method, which Rasa's tracker holds none of)."""
    try:
        return ujson.dumps(value)
    except Exception:  # noqa: BLE001 (json.dumps raises its own error, or writes it)
        return json.dumps(value)


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
                json_serialize=dumps,
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


# the kept sessions, by event loop and by ``id()`` of their endpoint (Rasa's EndpointConfig
# compares by value, so it is no dict key; the endpoint is kept beside its session)
_sessions: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Dict[int, Tuple[ActionEndpoint, aiohttp.ClientSession]]]" = (
    weakref.WeakKeyDictionary()
)


async def close_sessions() -> None:
    """Close the kept sessions (and their connections) of the running event loop."""
    loop = asyncio.get_running_loop()
    for _, session in _sessions.pop(loop, {}).values():
        await session.close()


_rasa_remote_action_init = RemoteAction.__init__
_action_endpoints: List[Tuple[EndpointConfig, ActionEndpoint]] = []  # Rasa's, ours


def kept_endpoint(endpoint: Optional[EndpointConfig]) -> Optional[EndpointConfig]:
    """The ``ActionEndpoint`` of Rasa's endpoint configuration (the same one each time)."""
    if endpoint is None or isinstance(endpoint, ActionEndpoint):
        return endpoint
    for rasa_endpoint, ours in _action_endpoints:
        if rasa_endpoint is endpoint:
            return ours
    ours = ActionEndpoint.of(endpoint)
    _action_endpoints.append((endpoint, ours))
    return ours


def remote_action_init(self: RemoteAction, name: Text, endpoint: Optional[EndpointConfig]) -> None:
    """``RemoteAction.__init__``, with the endpoint whose session is kept."""
    _rasa_remote_action_init(self, name, kept_endpoint(endpoint))


_sanic_server_event = Sanic._server_event


async def _server_event(self: Sanic, concern: str, action: str, *args: Any, **kwargs: Any) -> None:
    """Sanic's server events; after the last one (``server.shutdown.after``) the action
    server's kept sessions are closed."""
    try:
        await _sanic_server_event(self, concern, action, *args, **kwargs)
    finally:
        if (concern, action) == ("shutdown", "after"):
            await close_sessions()


PATCH = Patch(
    "kept_action_session",
    (RemoteAction, "__init__", remote_action_init),
    (Sanic, "_server_event", _server_event),
)
