"""The visitor API: what the chat widget talks to.

- ``POST /api/chat`` takes ``{"message": "...", "id": "<uuid>"}`` (typed text) or
  ``{"button": {"payload": ..., "sig": ..., "title": ...}, "id": "<uuid>"}`` (a
  button the bot offered), or ``{"starter": <number>}`` (one of the starter buttons the
  widget shows before anything is typed, ``clinic.web.starters``), and answers ``{"messages": [{"text", "buttons", "ts"}],
  "handoff": {"mode", "agent", "position", "version"}}``. The same ``id`` sent
  again (a retry) gets the first answer and is not processed twice. While a
  person holds the chat the message goes to them and nothing answers it (but a
  crisis: ``clinic.web.live_chat``).
- ``GET /api/history`` gives the conversation so far (staff messages with the
  person's name), so that a reload or another page of the site restores it, and the
  starter buttons (``starters``: their numbers and titles); so does ``/api/reset``.
- ``GET /api/updates`` waits for what a person sends (``clinic.web.live_updates``).
- ``POST /api/handoff/cancel`` leaves the queue for a person.
- ``POST /api/rating`` rates the assistant's answer to one of the visitor's messages (by that
  message's id): a thumbs up or down, and after a down what was wrong (``clinic.storage.ratings``).
- ``POST /api/reset`` starts a new conversation ("start over"); a wait for a
  person is cancelled, a live chat closed.

``handoff`` in each answer says who answers the visitor: ``mode`` "assistant",
"waiting" (in the queue for a person, at ``position``) or "person" (``agent``
answers); ``version`` changes whenever that or the live chat changes.

The conversation id lives in a signed, HttpOnly cookie (``__Host-cid`` with
``COOKIE_SECURE``), issued anew with each answer; its signature covers its issue
time, and one not renewed for ``VISITOR_IDLE_DAYS`` is refused (a new
conversation starts). A request with two such cookies is taken as having none.
Other sites may embed the widget when their origin is in
``WIDGET_ALLOWED_ORIGINS`` (CORS); ``/api/reset`` and ``/api/handoff/cancel``
(which need no preflight) refuse a request from any other site's page.

**Limits** (``clinic.http.rate_limit``; 429 with ``Retry-After`` and a reason that
gives 988): every request per address (``RATE_LIMIT_ADDRESS``; the address as
``clinic.http.client_address`` finds it behind ``TRUSTED_PROXIES``); new
conversations, "start over" included, per address (``RATE_LIMIT_NEW_VISITORS``);
messages per conversation (``RATE_LIMIT_MESSAGES``); history, updates, leaving
the queue and "start over" per conversation (``RATE_LIMIT_READS``); one open long poll per
conversation. A button's signature is checked before any limit is charged, so a
forged button costs nobody else anything.
"""

import functools
import logging
import re
import time
from collections import OrderedDict
from typing import Any, Awaitable, Callable, Dict, List, Optional

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, empty, json

from clinic.storage import ratings
from clinic.rules import retried_messages
from clinic.http import client_address
from clinic.web import live_chat, signing, starters, visitor_input
from clinic.rasa_runtime.rasa_client import RasaUnavailable, replies_to

logger = logging.getLogger(__name__)

bp = Blueprint("visitor_api", url_prefix="/api")

COOKIE = "cid"
SECURE_COOKIE = "__Host-cid"  # with COOKIE_SECURE: Secure, Path=/, no Domain (RFC 6265bis prefix)
MESSAGE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

UNAVAILABLE = (
    "Sorry, the assistant can't be reached right now. Please try again in a moment. "
    "If you need to talk to someone now, call or text 988, or call 911 in an emergency."
)
# Rasa answered, but what it answered with is missing (the action server is down: Rasa then
# carries on without the custom action's replies, so a form, a crisis or a greeting gets none).
PART_UNAVAILABLE = (
    "Sorry, part of the assistant isn't working right now, so I couldn't answer that. "
    "Please try again in a moment. If you need to talk to someone now, call or text 988 "
    "(Suicide & Crisis Lifeline), or call 911 in an emergency."
)


class IncompleteAnswer(Exception):
    """Rasa took the message but answered nothing, or a new conversation has no session."""


# Conversations a web-app process keeps in mind as seen (see _earlier_answer).
KNOWN_CONVERSATIONS = 50_000


def answers_preflight(handler: Callable[[Request], Awaitable[HTTPResponse]]) -> Callable[[Request], Awaitable[HTTPResponse]]:
    """CORS preflight (OPTIONS) answered with 204; the headers come from add_cors_headers."""

    @functools.wraps(handler)
    async def wrapped(request: Request) -> HTTPResponse:
        if request.method == "OPTIONS":
            return empty(status=204)
        return await handler(request)

    return wrapped


def refusal(status: int, code: str, detail: str, **extra: Any) -> HTTPResponse:
    return json({"error": code, "detail": detail, **extra}, status=status)


def cookie_name(settings: Any) -> str:
    return SECURE_COOKIE if settings.cookie_secure else COOKIE


def _cookie_count(request: Request, name: str) -> int:
    """How many cookies named ``name`` the request carries (Sanic keeps only one of them)."""
    count = 0
    for header in request.headers.getall("cookie", []):
        count += sum(1 for part in header.split(";") if part.strip().partition("=")[0] == name)
    return count


def visitor_conversation(request: Request) -> Optional[str]:
    """The conversation id in the visitor's cookie; None without one (or with a forged, stale or
    duplicated one)."""
    settings = request.app.ctx.settings
    name = cookie_name(settings)
    cookie = request.cookies.get(name)
    if cookie is None:
        return None
    if not cookie.isascii() or _cookie_count(request, name) != 1:  # an escaped character; a second cookie
        return None
    return signing.read_conversation_id(request.app.ctx.secret, cookie, settings.visitor_idle_days * 86400)


def _set_cookie(request: Request, response: HTTPResponse, conversation_id: str) -> None:
    """The conversation's cookie, issued now (so its idle time starts again)."""
    settings = request.app.ctx.settings
    name = cookie_name(settings)
    response.cookies[name] = signing.sign_conversation_id(request.app.ctx.secret, conversation_id)
    cookie = response.cookies[name]
    cookie["httponly"] = True
    cookie["samesite"] = settings.cookie_samesite
    cookie["path"] = "/"
    cookie["max-age"] = int(settings.visitor_idle_days * 86400)
    if settings.cookie_secure:
        cookie["secure"] = True


def _buttons(secret: bytes, conversation_id: str, buttons: Any) -> List[Dict[str, str]]:
    """The bot's buttons, each signed for the conversation, its payload and its title."""
    signed = []
    for b in buttons or []:
        if isinstance(b, dict) and b.get("payload"):
            title, payload = visitor_input.button_title(str(b.get("title", ""))), str(b.get("payload", ""))
            signed.append({"title": title, "payload": payload,
                           "sig": signing.sign_payload(secret, conversation_id, payload, title)})
    return signed


def for_browser(secret: bytes, conversation_id: str, replies: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Rasa's replies, reduced to text and signed buttons."""
    now = time.time()
    messages = []
    for reply in replies:
        text = reply.get("text")
        buttons = _buttons(secret, conversation_id, reply.get("buttons"))
        if text or buttons:
            messages.append({"text": text or "", "buttons": buttons, "ts": now})
    return messages


def history_from_events(secret: bytes, conversation_id: str, events: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """What the visitor saw: their messages (a button press as its title), the bot's, and
    the clinic staff's (bot events with the staff member in ``metadata.staff``). A message
    retried after it got no answer shows once (``clinic.rules.retried_messages``)."""
    messages = []
    retried = retried_messages.superseded(_steps(events))
    for position, event in enumerate(events):
        kind = event.get("event")
        if position in retried:
            continue
        if kind == "user":
            text = (event.get("metadata") or {}).get("display") or event.get("text") or ""
            if text and not text.startswith("/"):
                shown = {"role": "visitor", "text": text, "buttons": [], "ts": event.get("timestamp")}
                message_id = (event.get("metadata") or {}).get("message_id")
                if isinstance(message_id, str) and MESSAGE_ID.match(message_id):
                    shown["id"] = message_id  # what a rating of the answer to it names
                messages.append(shown)
        elif kind == "bot" and isinstance((event.get("metadata") or {}).get("staff"), dict):
            if event.get("text"):
                messages.append({
                    "role": "staff", "agent": str(event["metadata"]["staff"].get("name") or ""),
                    "text": event["text"], "buttons": [], "ts": event.get("timestamp"),
                })
        elif kind == "bot":
            buttons = _buttons(secret, conversation_id, (event.get("data") or {}).get("buttons"))
            if event.get("text") or buttons:
                messages.append(
                    {"role": "bot", "text": event.get("text") or "", "buttons": buttons, "ts": event.get("timestamp")}
                )
    return messages


def _steps(events: List[Dict[str, Any]]) -> List[retried_messages.Step]:
    steps: List[retried_messages.Step] = []
    for event in events:
        kind = event.get("event")
        if kind == "user":
            steps.append((retried_messages.USER, retried_messages.message_id_of(event.get("metadata"))))
        elif kind == "bot" and (event.get("text") or (event.get("data") or {}).get("buttons")):
            steps.append((retried_messages.REPLY, None))
        else:
            steps.append(("", None))
    return steps


async def _earlier_answer(request: Request, rasa: Any, conversation_id: str, message_id: str) -> Optional[List[Dict[str, Any]]]:
    """A retry that reaches a web-app process other than the one that took the first try (a
    restarted one: its reply cache is empty) must not be processed twice: the first time this
    process sees a conversation, the tracker says whether Rasa already has the message."""
    if _seen(request, conversation_id):
        return None
    return replies_to(await rasa.events(conversation_id), message_id)


def _seen(request: Request, conversation_id: str) -> bool:
    """Whether this process has seen the conversation before; it has from now on."""
    known = getattr(request.app.ctx, "known_conversations", None)
    if known is None:
        known = request.app.ctx.known_conversations = OrderedDict()
    if conversation_id in known:
        known.move_to_end(conversation_id)
        return True
    known[conversation_id] = True
    while len(known) > KNOWN_CONVERSATIONS:
        known.popitem(last=False)
    return False


def _answers_something(replies: List[Dict[str, Any]]) -> bool:
    return any(isinstance(r, dict) and (r.get("text") or r.get("buttons")) for r in replies)


async def _session_started(rasa: Any, conversation_id: str) -> bool:
    """A new conversation begins with action_session_start (the project's own, on the action
    server). Rasa logs it even when the action server cannot be reached, but then without its
    SessionStarted event, and never runs it again for that conversation."""
    events = await rasa.events(conversation_id)
    tried = any(e.get("event") == "action" and e.get("name") == "action_session_start" for e in events)
    return not tried or any(e.get("event") == "session_started" for e in events)


CRISIS_LINE = "If you need to talk to someone now, call or text 988, or call 911 in an emergency."
TOO_FAST = f"You're sending messages faster than I can answer. Please wait a few seconds and try again. {CRISIS_LINE}"
TOO_MANY = f"There are too many requests from your connection just now. Please wait a moment and try again. {CRISIS_LINE}"
ALREADY_WAITING = (f"This chat is already waiting for the team's messages in another window or tab. "
                   f"Please use that one, or try again in a moment. {CRISIS_LINE}")
FOREIGN_ORIGIN = "That request came from another website's page, so it was not carried out."

# what a request is charged, besides the per-address limit of every request: the limiter of the
# app (its ctx name) and whether it is keyed on the address (else on the conversation)
CHARGES = {
    "new": ("new_visitor_limit", True),  # a new conversation (a first message, "start over")
    "message": ("message_limit", False),
    "read": ("read_limit", False),  # history, updates, leaving the queue
}


async def rate_limited(request: Request, conversation_id: Optional[str], kind: str) -> Optional[HTTPResponse]:
    """A 429 when this address, or this conversation, goes too fast for a request of ``kind``
    (``CHARGES``; a read without a conversation is charged to the address only)."""
    ctx, address = request.app.ctx, client_address.of_request(request)
    checks = [(ctx.address_limit, f"ip:{address}", TOO_MANY)]
    name, by_address = CHARGES[kind]
    if by_address:
        checks.append((getattr(ctx, name), f"ip:{address}", TOO_MANY))
    elif conversation_id is not None:
        checks.append((getattr(ctx, name), f"cid:{conversation_id}", TOO_FAST))
    for limiter, key, reason in checks:
        retry_after = await limiter.check(key)
        if retry_after is not None:
            response = refusal(429, "rate_limited", reason)
            response.headers["Retry-After"] = str(retry_after)
            return response
    return None


def foreign_origin(request: Request) -> Optional[HTTPResponse]:
    """A 403 for a request sent by another site's page (its ``Origin`` is neither this site nor one
    of ``WIDGET_ALLOWED_ORIGINS``): with ``COOKIE_SAMESITE=None`` the browser sends the visitor's
    cookie along, and a request with no body needs no CORS preflight."""
    origin = request.headers.get("origin")
    if origin is None:
        return None  # browsers send it with every POST; a request without one is no other site's page
    origin = origin.strip().rstrip("/")
    if origin in request.app.ctx.settings.widget_allowed_origins:
        return None
    _, _, host = origin.partition("://")
    if host and host.lower() == (request.headers.get("host") or "").lower():
        return None
    return refusal(403, "foreign_origin", FOREIGN_ORIGIN)


@bp.route("/chat", methods=["POST", "OPTIONS"])
@answers_preflight
async def chat(request: Request) -> HTTPResponse:
    settings = request.app.ctx.settings
    secret = request.app.ctx.secret
    conversation_id = visitor_conversation(request)
    is_new = conversation_id is None
    if conversation_id is None:
        conversation_id = signing.new_conversation_id()
    try:
        body = visitor_input.parse_body(request.body, request.headers.get("content-type"))
        parsed = visitor_input.chat_message(body, settings.max_message_chars)
    except visitor_input.Refusal as r:
        return refusal(r.status, r.code, r.detail)
    message_id = body.get("id")
    if message_id is not None and not (isinstance(message_id, str) and MESSAGE_ID.match(message_id)):
        return refusal(400, "invalid_id", "A message id is up to 64 letters, digits, - or _.")

    metadata: Dict[str, Any] = {}
    if isinstance(parsed, visitor_input.Button):  # its signature first: a forged button is charged to nobody
        if is_new or not signing.payload_is_genuine(secret, conversation_id, parsed.payload, parsed.title,
                                                    parsed.signature):
            return refusal(403, "unknown_button", "That button has expired. Please type your message instead.")

    limited = await rate_limited(request, conversation_id, "new" if is_new else "message")
    if limited is not None:
        return limited

    if isinstance(parsed, visitor_input.Starter):
        chosen = starters.starter(parsed.number)
        if chosen is None:
            return refusal(400, "unknown_starter", "That button is no longer offered. Please type your message instead.")
        metadata["display"], text = chosen
    elif isinstance(parsed, visitor_input.Button):
        text = parsed.payload
        if parsed.title:
            metadata["display"] = parsed.title
    else:
        text = parsed

    rasa, engine = request.app.ctx.rasa, request.app.ctx.engine

    if message_id:
        metadata["message_id"] = message_id  # kept in the tracker: a retry is recognised after a restart
    if is_new:
        _seen(request, conversation_id)  # nothing earlier to look for

    async def answer() -> List[Dict[str, Any]]:
        state = await live_chat.full_state(engine, None if is_new else conversation_id)
        if state["mode"] == "person":
            replies = await live_chat.send_to_person(rasa, engine, conversation_id, state["request"], text, metadata)
        else:
            if message_id and not is_new:
                earlier = await _earlier_answer(request, rasa, conversation_id, message_id)
                if earlier is not None:
                    return for_browser(secret, conversation_id, earlier)
            replies = await rasa.send(conversation_id, text, metadata)
            if not _answers_something(replies) or (is_new and not await _session_started(rasa, conversation_id)):
                raise IncompleteAnswer()
        return for_browser(secret, conversation_id, replies)

    try:
        if message_id:
            messages = await request.app.ctx.replies.once((conversation_id, message_id), answer)
        else:
            messages = await answer()
    except RasaUnavailable as exc:
        logger.warning("rasa unavailable: %s", exc)  # never the visitor's text
        return refusal(503, "assistant_unavailable", UNAVAILABLE)
    except IncompleteAnswer:
        # a new conversation gets no cookie: its retry starts afresh, session start included
        logger.warning("rasa answered nothing: is the action server down?")
        return refusal(503, "assistant_unavailable", PART_UNAVAILABLE)

    # read after the message: the assistant may just have put the visitor in the queue
    state = await live_chat.visitor_state(engine, conversation_id)
    response = json({"messages": messages, "handoff": state})
    _set_cookie(request, response, conversation_id)  # new, or issued anew: its idle time starts again
    return response


@bp.route("/history", methods=["GET", "OPTIONS"])
@answers_preflight
async def history(request: Request) -> HTTPResponse:
    conversation_id = visitor_conversation(request)
    limited = await rate_limited(request, conversation_id, "read")
    if limited is not None:
        return limited
    if conversation_id is None:
        return json({"messages": [], "handoff": dict(live_chat.ASSISTANT), "starters": starters.for_browser()})
    try:
        events = await request.app.ctx.rasa.events(conversation_id)
    except RasaUnavailable as exc:
        logger.warning("rasa unavailable: %s", exc)
        return refusal(503, "assistant_unavailable", UNAVAILABLE)
    state = await live_chat.visitor_state(request.app.ctx.engine, conversation_id)
    response = json({"messages": history_from_events(request.app.ctx.secret, conversation_id, events), "handoff": state,
                     "starters": starters.for_browser()})
    _set_cookie(request, response, conversation_id)  # a reload renews it too
    return response


@bp.route("/handoff/cancel", methods=["POST", "OPTIONS"])
@answers_preflight
async def cancel_handoff(request: Request) -> HTTPResponse:
    """The visitor leaves the queue for a person; 409 when they are not in it."""
    refused = foreign_origin(request)
    if refused is not None:
        return refused
    conversation_id = visitor_conversation(request)
    limited = await rate_limited(request, conversation_id, "read")
    if limited is not None:
        return limited
    engine = request.app.ctx.engine
    try:
        events = await live_chat.leave_queue(request.app.ctx.rasa, engine, conversation_id)
    except live_chat.NotWaiting as refused:
        return refusal(409, "not_waiting", refused.detail, handoff=live_chat.public(refused.state))
    messages = [{"text": e["text"], "buttons": [], "ts": e["timestamp"]} for e in events if e.get("event") == "bot"]
    return json({"messages": messages, "handoff": await live_chat.visitor_state(engine, conversation_id)})


@bp.route("/rating", methods=["POST", "OPTIONS"])
@answers_preflight
async def rating(request: Request) -> HTTPResponse:
    """The visitor rates the assistant's answer to one of their messages: ``{"message_id": ...,
    "rating": "up" | "down", "comment": "what was wrong" (optional, after a thumbs down)}``."""
    conversation_id = visitor_conversation(request)
    if conversation_id is None:
        return refusal(409, "no_conversation", "There is no answer to rate yet.")
    try:
        body = visitor_input.parse_body(request.body, request.headers.get("content-type"))
    except visitor_input.Refusal as r:
        return refusal(r.status, r.code, r.detail)
    message_id = body.get("message_id") if isinstance(body, dict) else None
    value = ratings.VALUES.get(body.get("rating")) if isinstance(body, dict) else None
    if not (isinstance(message_id, str) and MESSAGE_ID.match(message_id)) or value is None:
        return refusal(400, "invalid_rating", 'Expected {"message_id": "...", "rating": "up" or "down"}.')
    comment = body.get("comment")
    if comment is not None:
        if not isinstance(comment, str):
            return refusal(400, "invalid_rating", "A comment is text.")
        comment = visitor_input.clean_text(comment)[:ratings.MAX_COMMENT_CHARS] or None
    limited = await rate_limited(request, conversation_id, "message")
    if limited is not None:
        return limited
    await live_chat.in_thread(ratings.rate, request.app.ctx.engine, conversation_id, message_id, value, comment)
    return json({"ok": True})


@bp.route("/reset", methods=["POST", "OPTIONS"])
@answers_preflight
async def reset(request: Request) -> HTTPResponse:
    ctx = request.app.ctx
    refused = foreign_origin(request)
    if refused is not None:
        return refused
    ending = visitor_conversation(request)
    for kind, conversation in (("read", ending), ("new", None)):  # the conversation's, then the address's
        limited = await rate_limited(request, conversation, kind)
        if limited is not None:
            return limited
    await live_chat.end_for_new_conversation(ctx.rasa, ctx.engine, ending)
    response = json({"messages": [], "handoff": dict(live_chat.ASSISTANT), "starters": starters.for_browser()})
    _set_cookie(request, response, signing.new_conversation_id())
    return response


def add_cors_headers(request: Request, response: HTTPResponse) -> None:
    """Let the allowed sites' pages call the visitor API with the visitor's cookie."""
    origin = request.headers.get("origin", "").rstrip("/")
    if not request.path.startswith("/api/") or origin not in request.app.ctx.settings.widget_allowed_origins:
        return
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Allow-Credentials"] = "true"
    response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
    response.headers["Access-Control-Allow-Headers"] = "Content-Type"
    response.headers["Access-Control-Max-Age"] = "600"
    response.headers["Vary"] = "Origin"
