"""``GET /api/updates``: the widget's long poll while it waits for, or talks with, a person.

``?after=<unix time>&version=<int>[&position=<int>]`` answers as soon as the
visitor's handoff state (``clinic.rules.handoff.visitor_state``, in the clinic DB,
so any web-app process sees a change made by the console) differs from the
given version (or, while waiting, position), else after ``UPDATES_WAIT_S``:
``{"handoff": state, "messages": [...]}``.

``messages`` are what reached the conversation from outside the visitor's own
requests, newer than ``after``: staff messages (``role`` "staff", with the
person's name as ``agent``) and the lines that announce a change (joined,
handed back, closed, cancelled). The assistant's own answers came back with
the visitor's ``/api/chat`` requests and are not repeated. The transcript is
read from Rasa only when the state changed.

The console changes the state first, then writes the announcing line to the
transcript; an answer that finds the state changed but not its line yet reads
the transcript again for up to ``UPDATES_SETTLE_S``, so the line comes with it.

One long poll at a time per conversation (``app.ctx.open_polls``, per web-app process): a second
one while the first is open is answered 429 (a page open twice, or a script holding many); each is
charged to the conversation's and the address's limits first (``clinic.web.visitor_api``).

App settings (``app.config``): ``UPDATES_WAIT_S`` (25), ``UPDATES_CHECK_S``
(0.3: how often the state is read), ``UPDATES_SETTLE_S`` (2). A server that is
stopping answers its open polls at once with 503, so a restart never waits on
them; the widget reconnects with a backoff.
"""

import asyncio
import logging
import math
import time
from typing import Any, Dict, List, Optional, Tuple

from sanic import Blueprint, Request, Sanic
from sanic.response import HTTPResponse, json

from clinic.rasa_runtime.rasa_client import RasaUnavailable
from clinic.web import live_chat
from clinic.web.visitor_api import (
    ALREADY_WAITING,
    UNAVAILABLE,
    answers_preflight,
    history_from_events,
    rate_limited,
    refusal,
    visitor_conversation,
)

logger = logging.getLogger(__name__)

bp = Blueprint("live_updates", url_prefix="/api")

DEFAULTS = {"UPDATES_WAIT_S": 25.0, "UPDATES_CHECK_S": 0.3, "UPDATES_SETTLE_S": 2.0}
# the lines that end a wait or a live chat (bot events' metadata.handoff)
ENDINGS = ("handed_back", "closed", "cancelled", "visitor_left")
RESTARTING = "The chat server is restarting. The widget reconnects by itself in a moment."


def setup(app: Sanic) -> None:
    for key, value in DEFAULTS.items():
        app.config.setdefault(key, value)
    app.blueprint(bp)

    app.ctx.open_polls = set()  # conversations with a long poll open in this process

    @app.before_server_start
    async def open_updates(app: Sanic, _loop: Any) -> None:
        app.ctx.stopping = asyncio.Event()

    @app.before_server_stop
    async def end_updates(app: Sanic, _loop: Any) -> None:
        app.ctx.stopping.set()  # open polls answer now instead of holding the shutdown


class BadParameter(ValueError):
    pass


def _number(args: Any, name: str, kind: type, required: bool) -> Optional[Any]:
    raw = args.get(name)
    if raw is None or raw == "":
        if required:
            raise BadParameter(f"'{name}' is missing.")
        return None
    try:
        value = kind(raw)
    except ValueError:
        raise BadParameter(f"'{name}' must be a {'whole ' if kind is int else ''}number, not {raw[:20]!r}.") from None
    if not math.isfinite(value) or value < 0:
        raise BadParameter(f"'{name}' must be a number of 0 or more.")
    return value


def parameters(args: Any) -> Tuple[float, int, Optional[int]]:
    """``after`` (unix time), ``version`` and the optional ``position`` the widget last saw."""
    return (
        _number(args, "after", float, required=True),
        _number(args, "version", int, required=True),
        _number(args, "position", int, required=False),
    )


def changed(state: Dict[str, Any], version: int, position: Optional[int]) -> bool:
    return state["version"] != version or (position is not None and state["position"] != position)


def pushed(events: List[Dict[str, Any]], after: float) -> List[Dict[str, Any]]:
    """Bot events the visitor's requests did not answer with (staff messages, handoff lines), newer than ``after``."""
    result = []
    for event in events:
        metadata = event.get("metadata") or {}
        if event.get("event") == "bot" and (metadata.get("staff") or metadata.get("handoff")):
            ts = event.get("timestamp")
            if isinstance(ts, (int, float)) and ts > after:
                result.append(event)
    return result


def announced(events: List[Dict[str, Any]], state: Dict[str, Any], after: float, version: int) -> bool:
    """Whether the transcript already has the line that announces the state: a person's
    "joined" in a live chat, the ending line when a wait or a live chat just ended."""
    markers = [
        (e.get("timestamp") or 0, (e.get("metadata") or {}).get("handoff"))
        for e in events
        if e.get("event") == "bot" and (e.get("metadata") or {}).get("handoff")
    ]
    if state["mode"] == "person":
        return bool(markers) and markers[-1][1] == "joined"
    if state["mode"] == "assistant" and version > 0:
        return any(ts > after and kind in ENDINGS for ts, kind in markers)
    return True


async def _pause(app: Sanic, seconds: float) -> None:
    """Sleep, or less when the server starts stopping."""
    try:
        await asyncio.wait_for(app.ctx.stopping.wait(), timeout=max(0.0, seconds))
    except asyncio.TimeoutError:
        pass


@bp.route("/updates", methods=["GET", "OPTIONS"])
@answers_preflight
async def updates(request: Request) -> HTTPResponse:
    app = request.app
    try:
        after, version, position = parameters(request.args)
    except BadParameter as bad:
        return refusal(400, "invalid_parameter", f"{bad} Expected /api/updates?after=<unix time>&version=<number>.")
    conversation_id = visitor_conversation(request)
    limited = await rate_limited(request, conversation_id, "read")
    if limited is not None:
        return limited
    if conversation_id is None:
        return json({"handoff": dict(live_chat.ASSISTANT), "messages": []})
    if conversation_id in app.ctx.open_polls:
        response = refusal(429, "already_waiting", ALREADY_WAITING)
        response.headers["Retry-After"] = str(math.ceil(float(app.config.UPDATES_WAIT_S)))
        return response
    app.ctx.open_polls.add(conversation_id)
    try:
        return await _wait_for_update(request, conversation_id, after, version, position)
    finally:
        app.ctx.open_polls.discard(conversation_id)


async def _wait_for_update(request: Request, conversation_id: str, after: float, version: int,
                           position: Optional[int]) -> HTTPResponse:
    app = request.app
    engine, config = app.ctx.engine, app.config

    deadline = time.monotonic() + float(config.UPDATES_WAIT_S)
    while True:
        if app.ctx.stopping.is_set():
            return refusal(503, "restarting", RESTARTING)
        state = await live_chat.full_state(engine, conversation_id)
        if changed(state, version, position):
            break
        left = deadline - time.monotonic()
        if left <= 0:
            return json({"handoff": await live_chat.for_visitor(engine, state), "messages": []})
        await _pause(app, min(float(config.UPDATES_CHECK_S), left))

    settle_until = time.monotonic() + float(config.UPDATES_SETTLE_S)
    while True:
        try:
            events = await app.ctx.rasa.events(conversation_id)
        except RasaUnavailable as exc:
            logger.warning("rasa unavailable: %s", exc)
            return refusal(503, "assistant_unavailable", UNAVAILABLE)
        if announced(events, state, after, version) or time.monotonic() >= settle_until or app.ctx.stopping.is_set():
            break
        await _pause(app, float(config.UPDATES_CHECK_S))
        state = await live_chat.full_state(engine, conversation_id)

    messages = history_from_events(app.ctx.secret, conversation_id, pushed(events, after))
    return json({"handoff": await live_chat.for_visitor(engine, state), "messages": messages})
