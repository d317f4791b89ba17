"""A stand-in for Rasa servers' REST channel, for the tests of the web app's Rasa client."""

import asyncio
from typing import Any, Dict, List, Optional

from tests.stack import free_port


class FakeRasa:
    """A stand-in for one Rasa server's REST channel: answers with its name, or an error, or
    (``drop`` times) closes the connection unanswered: before storing the turn in ``trackers``
    (shared by the servers, as a tracker store is), or after when ``stored_then_drop``; each
    answer after ``delay_s``, noting how many messages it held at once (``most_held``)."""

    def __init__(
        self, name: str, status: int = 200, drop: int = 0,
        trackers: Optional[Dict[str, List[Dict[str, Any]]]] = None, stored_then_drop: bool = False,
        delay_s: float = 0.0,
    ) -> None:
        self.name, self.status, self.drop, self.port = name, status, drop, free_port()
        self.senders: List[str] = []
        self.trackers = trackers if trackers is not None else {}
        self.stored_then_drop = stored_then_drop
        self.delay_s = delay_s
        self.holding = self.most_held = 0

    async def start(self) -> None:
        from aiohttp import web

        async def webhook(request: Any) -> Any:
            body = await request.json()
            self.senders.append(body["sender"])
            self.holding += 1
            self.most_held = max(self.most_held, self.holding)
            try:
                await asyncio.sleep(self.delay_s)
            finally:
                self.holding -= 1
            turn = [{"event": "user", "text": body["message"], "metadata": body.get("metadata") or {}},
                    {"event": "bot", "text": self.name}]
            dropping = self.drop > 0
            self.drop -= dropping
            if not dropping or self.stored_then_drop:
                self.trackers.setdefault(body["sender"], []).extend(turn)
            if dropping:
                request.transport.close()
            return web.json_response([{"text": self.name}], status=self.status)

        async def tracker(request: Any) -> Any:
            return web.json_response({"events": self.trackers.get(request.match_info["sender"], [])})

        app = web.Application()
        app.router.add_post("/webhooks/rest/webhook", webhook)
        app.router.add_get("/conversations/{sender}/tracker", tracker)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"
