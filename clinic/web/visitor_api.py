"""The visitor API: what the chat widget talks to.

``POST /api/chat`` takes ``{"message": "..."}`` (typed text) or
``{"button": {"payload": "...", "sig": "..."}}`` (a button the bot offered)
and answers ``{"messages": [{"text": ..., "buttons": [...]}]}``. The
conversation id lives in a signed, HttpOnly cookie.
"""

import logging
from typing import Any, Dict, List, Optional

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from clinic.web import signing, visitor_input
from clinic.web.rasa_client import RasaUnavailable

logger = logging.getLogger(__name__)

bp = Blueprint("visitor_api", url_prefix="/api")

COOKIE = "cid"
COOKIE_MAX_AGE = 60 * 60 * 24 * 30

UNAVAILABLE = (
    "Sorry, the assistant can't be reached right now. Please try again in a moment. "
    "If you need to talk to someone now, call or text 988, or call 911 in an emergency."
)


def refusal(status: int, code: str, detail: str) -> HTTPResponse:
    return json({"error": code, "detail": detail}, status=status)


def _conversation_id(request: Request) -> Optional[str]:
    return signing.read_conversation_id(request.app.ctx.secret, request.cookies.get(COOKIE))


def _set_cookie(request: Request, response: HTTPResponse, conversation_id: str) -> None:
    response.cookies[COOKIE] = signing.sign_conversation_id(request.app.ctx.secret, conversation_id)
    cookie = response.cookies[COOKIE]
    cookie["httponly"] = True
    cookie["samesite"] = "Lax"
    cookie["path"] = "/"
    cookie["max-age"] = COOKIE_MAX_AGE
    if request.app.ctx.settings.cookie_secure:
        cookie["secure"] = True


def for_browser(secret: bytes, conversation_id: str, replies: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Rasa's replies, reduced to text and signed buttons."""
    messages = []
    for reply in replies:
        text = reply.get("text")
        buttons = [
            {
                "title": str(b.get("title", "")),
                "payload": str(b.get("payload", "")),
                "sig": signing.sign_payload(secret, conversation_id, str(b.get("payload", ""))),
            }
            for b in reply.get("buttons") or []
            if b.get("payload")
        ]
        if text or buttons:
            messages.append({"text": text or "", "buttons": buttons})
    return messages


@bp.post("/chat")
async def chat(request: Request) -> HTTPResponse:
    settings = request.app.ctx.settings
    secret = request.app.ctx.secret
    conversation_id = _conversation_id(request)
    is_new = conversation_id is None
    if conversation_id is None:
        conversation_id = signing.new_conversation_id()
    try:
        parsed = visitor_input.chat_message(
            visitor_input.parse_body(request.body, request.headers.get("content-type")),
            settings.max_message_chars,
        )
    except visitor_input.Refusal as r:
        return refusal(r.status, r.code, r.detail)

    if isinstance(parsed, visitor_input.Button):
        if is_new or not signing.payload_is_genuine(secret, conversation_id, parsed.payload, parsed.signature):
            return refusal(403, "unknown_button", "That button has expired. Please type your message instead.")
        text = parsed.payload
    else:
        text = parsed

    try:
        replies = await request.app.ctx.rasa.send(conversation_id, text)
    except RasaUnavailable as exc:
        logger.warning("rasa unavailable: %s", exc)  # never the visitor's text
        return refusal(503, "assistant_unavailable", UNAVAILABLE)

    response = json({"messages": for_browser(secret, conversation_id, replies)})
    if is_new:
        _set_cookie(request, response, conversation_id)
    return response
