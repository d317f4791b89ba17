"""Talks to the Rasa server's REST channel on the visitor's behalf."""

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

    async def send(
        self, conversation_id: str, text: str, metadata: Optional[Dict[str, Any]] = None
    ) -> List[Dict[str, Any]]:
        """The bot's replies to one visitor message, as Rasa's REST channel gives them."""
        if self._session is None:
            await self.start()
        assert self._session is not None
        url = f"{self.base_url}/webhooks/rest/webhook"
        body = {"sender": conversation_id, "message": text, "metadata": metadata or {}}
        try:
            async with self._session.post(url, json=body) as resp:
                if resp.status != 200:
                    raise RasaUnavailable(f"Rasa answered HTTP {resp.status}")
                replies = await resp.json()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise RasaUnavailable(type(exc).__name__) from exc
        return replies if isinstance(replies, list) else []

    async def events(self, conversation_id: str) -> List[Dict[str, Any]]:
        """Every event of a conversation (Rasa's HTTP API, enabled with --enable-api)."""
        if self._session is None:
            await self.start()
        assert self._session is not None
        params = {"include_events": "ALL"}
        if self.token:
            params["token"] = self.token
        url = f"{self.base_url}/conversations/{conversation_id}/tracker"
        try:
            async with self._session.get(url, params=params) as resp:
                if resp.status != 200:
                    raise RasaUnavailable(f"Rasa answered HTTP {resp.status}")
                tracker = await resp.json()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise RasaUnavailable(type(exc).__name__) from exc
        return tracker.get("events") or []
