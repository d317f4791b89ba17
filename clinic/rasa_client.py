"""Talks to the Rasa server: its REST channel on the visitor's behalf, and its HTTP API
(``--enable-api``, with ``RASA_TOKEN`` when the server has ``--auth-token``) for the
transcript and for what a live handoff adds to it (used by the web app and the console)."""

import asyncio
from typing import Any, Dict, List, Optional

import aiohttp


class RasaUnavailable(Exception):
    """The Rasa server could not be reached or did not answer in time."""


class RasaClient:
    def __init__(self, base_url: str, timeout_s: float = 30.0, token: Optional[str] = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: Optional[aiohttp.ClientSession] = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=self.timeout)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _call(self, method: str, path: str, body: Any = None, params: Optional[Dict[str, str]] = None) -> Any:
        if self._session is None:
            await self.start()
        assert self._session is not None
        params = dict(params or {})
        if self.token and not path.startswith("/webhooks/"):
            params["token"] = self.token
        try:
            async with self._session.request(method, f"{self.base_url}{path}", json=body, params=params) as resp:
                if resp.status != 200:
                    raise RasaUnavailable(f"Rasa answered HTTP {resp.status}")
                return await resp.json()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise RasaUnavailable(type(exc).__name__) from exc

    async def send(
        self, conversation_id: str, text: str, metadata: Optional[Dict[str, Any]] = None
    ) -> List[Dict[str, Any]]:
        """The bot's replies to one visitor message, as Rasa's REST channel gives them."""
        body = {"sender": conversation_id, "message": text, "metadata": metadata or {}}
        replies = await self._call("POST", "/webhooks/rest/webhook", body)
        return replies if isinstance(replies, list) else []

    async def events(self, conversation_id: str) -> List[Dict[str, Any]]:
        """Every event of a conversation."""
        tracker = await self._call("GET", f"/conversations/{conversation_id}/tracker", params={"include_events": "ALL"})
        return (tracker or {}).get("events") or []

    async def parse(self, text: str) -> Dict[str, Any]:
        """What the NLU pipeline makes of a text (intent, entities), nothing stored."""
        return await self._call("POST", "/model/parse", {"text": text}) or {}

    async def append_events(self, conversation_id: str, events: List[Dict[str, Any]]) -> None:
        """Add events to a conversation's tracker (Rasa holds the conversation's lock meanwhile)."""
        await self._call(
            "POST", f"/conversations/{conversation_id}/tracker/events", events, params={"include_events": "NONE"}
        )
