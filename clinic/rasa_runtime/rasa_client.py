"""Talks to the Rasa server: its REST channel on the visitor's behalf, and its HTTP API
(``--enable-api``, always with the token of the settings: ``RASA_TOKEN`` or ``var/rasa_token``) for the
transcript and for what a live handoff adds to it (used by the web app and the console).

Several Rasa servers (``RASA_URL`` comma-separated, sharing a tracker store and a lock store):
each conversation goes to one of them, chosen by a hash of its id that every web-app process
computes alike (rendezvous hashing: adding a server moves only its share of conversations),
unless that server has clearly more requests in flight from this process than another
(``SPREAD_MARGIN`` more or beyond): the message then goes to the least busy one. A few busy
conversations hashed to one server would otherwise leave the other idle; the conversation
keeps its own server whenever loads are near (a server's caches serve it best there).
When that server cannot be reached (connection refused or reset, or closed before it
answered), the same call is made once more on the next server of the conversation's order;
the shared lock store keeps the conversation's messages in order whichever server takes
them. A server that failed so is tried last for ``down_for_s`` seconds. With a single URL (a
load balancer or a Kubernetes Service in front of the Rasa servers), the retry goes to that
URL again, which hands it to a server that is up. A server that answers
with an error, or too late, is not retried: it may have processed the message.

A visitor message whose connection broke after it was sent (reset or closed, not refused) may
have been processed by a server killed before it answered: Rasa stores the whole turn at its
end. Before sending it again, the next server is asked for the conversation's tracker; when the
message (by its client ``message_id``) is there with its replies, those are the answer, and it
is not processed twice.

The HTTP calls go through one aiohttp ``ClientSession`` per client, kept (as Rasa keeps its
own): the whole call within ``timeout_s`` (``asyncio.TimeoutError``), a new connection within
``connect_timeout_s`` (else ``ServerTimeoutError``, a connection error: the next server is tried),
a server that cannot be reached ``ClientConnectorError``, one that closed the connection before it
answered ``ServerDisconnectedError``, a body that is not JSON ``ContentTypeError``. Redirects are
followed as aiohttp follows them (a 307 or 308 sends the same method and body again). Idle
connections are closed after ``KEEPALIVE_S``, before Rasa's Sanic drops them.
"""

import asyncio
import hashlib
import itertools
import logging
import time
from typing import Any, Awaitable, Callable, Dict, List, Optional

import aiohttp

logger = logging.getLogger(__name__)


# A conversation's message goes to another server than its own when its own has this many
# requests in flight more than that one (or more). 10 visitors in a closed loop on two stand-in
# servers that take one message at a time (20 ms on average): by the hash alone 77-86 messages/s,
# one server busy 0.89 of the time and the other 0.64; with this margin 86-89/s, both 0.87-0.88,
# 4-11% of messages off their own server (a simulation: a margin of 1 moved half of them).
SPREAD_MARGIN = 2


# Idle connections to a Rasa server are not used after this long: Rasa's Sanic closes them at 5 s,
# and a request sent on a connection the server is closing fails.
KEEPALIVE_S = 2.0


class RasaUnavailable(Exception):
    """The Rasa server could not be reached or did not answer in time."""


class RasaClient:
    def __init__(
        self,
        base_url: str,
        timeout_s: float = 30.0,
        token: Optional[str] = None,
        connect_timeout_s: float = 5.0,
        down_for_s: float = 10.0,
        spread_margin: int = SPREAD_MARGIN,
    ) -> None:
        self.base_urls = [url.strip().rstrip("/") for url in base_url.split(",") if url.strip()]
        if not self.base_urls:
            raise ValueError("no Rasa server URL")
        self.base_url = self.base_urls[0]
        self.token = token
        self.timeout_s = timeout_s
        self.connect_timeout_s = min(connect_timeout_s, timeout_s)
        self.down_for_s = down_for_s
        self._down_until: Dict[str, float] = {}
        self.spread_margin = spread_margin
        self.in_flight: Dict[str, int] = {url: 0 for url in self.base_urls}  # this process's requests
        self._round_robin = itertools.cycle(range(len(self.base_urls)))
        self._session: Optional[aiohttp.ClientSession] = None

    async def start(self) -> None:
        """The session of the running event loop (made as needed)."""
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout_s, sock_connect=self.connect_timeout_s),
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=KEEPALIVE_S),
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def servers_for(self, conversation_id: Optional[str]) -> List[str]:
        """The servers to try for a conversation, in order: its own first (the highest hash of
        conversation and server), servers that failed lately last. Without a conversation, in
        turn. When the first has ``spread_margin`` requests in flight more than the least busy
        server that is up (or more), that one comes first, and the conversation's own second."""
        if conversation_id is None:
            start = next(self._round_robin)
            order = self.base_urls[start:] + self.base_urls[:start]
        else:
            def score(url: str) -> bytes:
                return hashlib.sha256(f"{conversation_id}\n{url}".encode()).digest()

            order = sorted(self.base_urls, key=score, reverse=True)
        now = time.monotonic()
        order.sort(key=lambda url: self._down_until.get(url, 0.0) > now)  # stable: keeps the order
        up = [url for url in order if self._down_until.get(url, 0.0) <= now]
        if len(up) > 1:
            least = min(up, key=self.in_flight.__getitem__)  # the first of equals
            if self.in_flight[up[0]] - self.in_flight[least] >= self.spread_margin:
                order.remove(least)
                order.insert(0, least)
        return order

    async def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Optional[Dict[str, str]] = None,
        conversation_id: Optional[str] = None,
        done_already: Optional[Callable[[str], Awaitable[Any]]] = None,
    ) -> Any:
        """``done_already(base_url)``: asked of the next server, when the connection broke after
        the request went out, whether the request was carried out (its result), or None."""
        servers = self.servers_for(conversation_id)
        # its own, then one retry on another; with one URL (a load balancer), on that one again
        servers = servers[:2] if len(servers) > 1 else servers * 2
        for attempt, base_url in enumerate(servers):
            try:
                return await self._call_one(base_url, method, path, body, params)
            except aiohttp.ClientConnectionError as exc:  # refused, reset, closed: not answered
                self._down_until[base_url] = time.monotonic() + self.down_for_s
                if attempt + 1 < len(servers):
                    logger.warning("rasa server %s unreachable (%s): retrying on %s",
                                   base_url, type(exc).__name__, servers[attempt + 1])
                    if done_already is not None and not isinstance(exc, aiohttp.ClientConnectorError):
                        try:
                            result = await done_already(servers[attempt + 1])
                        except (aiohttp.ClientError, asyncio.TimeoutError) as read_exc:
                            raise RasaUnavailable(type(read_exc).__name__) from read_exc
                        if result is not None:
                            logger.warning("rasa server %s had carried out the request before it went away", base_url)
                            return result
                    continue
                raise RasaUnavailable(type(exc).__name__) from exc
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                raise RasaUnavailable(type(exc).__name__) from exc
        raise AssertionError("unreachable")

    async def _call_one(
        self, base_url: str, method: str, path: str, body: Any, params: Optional[Dict[str, str]]
    ) -> Any:
        if self._session is None or self._session.closed:
            await self.start()
        assert self._session is not None
        params = dict(params or {})
        if self.token and not path.startswith("/webhooks/"):
            params["token"] = self.token
        self.in_flight[base_url] += 1
        try:
            async with self._session.request(
                method, f"{base_url}{path}", json=body, params=params, headers={"Accept": "application/json"}
            ) as response:
                if response.status != 200:
                    raise RasaUnavailable(f"Rasa answered HTTP {response.status}")
                return await response.json()
        finally:
            self.in_flight[base_url] -= 1

    async def send(
        self, conversation_id: str, text: str, metadata: Optional[Dict[str, Any]] = None
    ) -> List[Dict[str, Any]]:
        """The bot's replies to one visitor message, as Rasa's REST channel gives them."""
        body = {"sender": conversation_id, "message": text, "metadata": metadata or {}}
        message_id = (metadata or {}).get("message_id")

        async def answered_already(base_url: str) -> Optional[List[Dict[str, Any]]]:
            tracker = await self._call_one(
                base_url, "GET", f"/conversations/{conversation_id}/tracker", None, {"include_events": "ALL"}
            )
            return replies_to((tracker or {}).get("events") or [], message_id)

        replies = await self._call(
            "POST", "/webhooks/rest/webhook", body, conversation_id=conversation_id,
            done_already=answered_already if message_id else None,
        )
        return replies if isinstance(replies, list) else []

    async def events(self, conversation_id: str) -> List[Dict[str, Any]]:
        """Every event of a conversation."""
        tracker = await self._call(
            "GET", f"/conversations/{conversation_id}/tracker", params={"include_events": "ALL"},
            conversation_id=conversation_id,
        )
        return (tracker or {}).get("events") or []

    async def parse(self, text: str) -> Dict[str, Any]:
        """What the NLU pipeline makes of a text (intent, entities), nothing stored."""
        return await self._call("POST", "/model/parse", {"text": text}) or {}

    async def append_events(self, conversation_id: str, events: List[Dict[str, Any]]) -> None:
        """Add events to a conversation's tracker (Rasa holds the conversation's lock meanwhile)."""
        await self._call(
            "POST", f"/conversations/{conversation_id}/tracker/events", events, params={"include_events": "NONE"},
            conversation_id=conversation_id,
        )


def replies_to(events: List[Dict[str, Any]], message_id: str) -> Optional[List[Dict[str, Any]]]:
    """The bot's replies to the visitor message with this client id in the tracker (Rasa keeps
    the id in the user event's metadata), or None when Rasa never answered that message."""
    answered: Optional[List[Dict[str, Any]]] = None
    replies: Optional[List[Dict[str, Any]]] = None
    for event in events + [{"event": "user"}]:
        kind = event.get("event")
        if kind == "user":
            if replies:
                answered = replies  # the last try that got an answer
            replies = [] if (event.get("metadata") or {}).get("message_id") == message_id else None
        elif kind == "bot" and replies is not None and not isinstance((event.get("metadata") or {}).get("staff"), dict):
            if event.get("text") or (event.get("data") or {}).get("buttons"):
                replies.append({"text": event.get("text"), "buttons": (event.get("data") or {}).get("buttons")})
    return answered
