"""Signed values: the visitor's conversation id cookie and the bot's buttons.

The conversation id travels in an HttpOnly cookie signed with the app's secret, so nobody can
read or write another visitor's conversation. The signature covers the time the cookie was
issued: the web app issues it anew with each answer, and one not renewed for
``VISITOR_IDLE_DAYS`` is refused by the server (a conversation left idle ends there, whatever
the browser keeps). Button payloads such as ``/human_handoff`` use Rasa's intent syntax, which
visitors may not type; each button the bot offers carries a signature bound to the
conversation, the payload and the title shown, so only a payload the bot offered, with the
title it offered it under, is forwarded (the title is what staff see the visitor press).
"""

import base64
import hashlib
import hmac
import re
import time
import uuid
from typing import Optional, Tuple

_ID = re.compile(r"^[0-9a-f]{32}$")
_ISSUED = re.compile(r"^[0-9]{1,12}$")


def _mac(secret: bytes, purpose: str, value: str) -> str:
    digest = hmac.new(secret, f"{purpose}\x00{value}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:24]).decode().rstrip("=")


def new_conversation_id() -> str:
    return uuid.uuid4().hex


def sign_conversation_id(secret: bytes, conversation_id: str, issued: Optional[int] = None) -> str:
    """The cookie's value: the id, when it was issued (unix seconds) and their signature."""
    issued = int(time.time()) if issued is None else int(issued)
    return f"{conversation_id}.{issued}.{_mac(secret, 'cid', f'{conversation_id}.{issued}')}"


def read_cookie(secret: bytes, cookie: Optional[str], max_idle_s: Optional[float] = None,
                now: Optional[float] = None) -> Optional[Tuple[str, int]]:
    """The conversation id in a cookie and when it was issued; None if it is missing, forged,
    issued in the future or not renewed for ``max_idle_s``."""
    if not cookie or cookie.count(".") != 2:
        return None
    conversation_id, issued, mac = cookie.split(".")
    if not _ID.match(conversation_id) or not _ISSUED.match(issued):
        return None
    if not hmac.compare_digest(mac, _mac(secret, "cid", f"{conversation_id}.{issued}")):
        return None
    now = time.time() if now is None else now
    if int(issued) > now + 300 or (max_idle_s is not None and now - int(issued) > max_idle_s):
        return None
    return conversation_id, int(issued)


def read_conversation_id(secret: bytes, cookie: Optional[str], max_idle_s: Optional[float] = None) -> Optional[str]:
    """The conversation id in a cookie, or None (``read_cookie``)."""
    found = read_cookie(secret, cookie, max_idle_s)
    return found[0] if found else None


def sign_payload(secret: bytes, conversation_id: str, payload: str, title: str = "") -> str:
    return _mac(secret, "button", f"{conversation_id}\x00{payload}\x00{title}")


def payload_is_genuine(secret: bytes, conversation_id: str, payload: str, title: str, signature: str) -> bool:
    expected = sign_payload(secret, conversation_id, payload, title)
    return hmac.compare_digest(expected.encode(), (signature or "").encode())
