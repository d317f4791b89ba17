"""Signed values: the visitor's conversation id cookie and the bot's button payloads.

The conversation id travels in an HttpOnly cookie signed with the app's
secret, so nobody can read or write another visitor's conversation. Button
payloads such as ``/human_handoff`` use Rasa's intent syntax, which visitors
may not type; each button the bot offers carries a signature bound to the
conversation, and only a payload with a valid signature is forwarded.
"""

import base64
import hashlib
import hmac
import re
import uuid
from typing import Optional

_ID = re.compile(r"^[0-9a-f]{32}$")


def _mac(secret: bytes, purpose: str, value: str) -> str:
    digest = hmac.new(secret, f"{purpose}\x00{value}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:24]).decode().rstrip("=")


def new_conversation_id() -> str:
    return uuid.uuid4().hex


def sign_conversation_id(secret: bytes, conversation_id: str) -> str:
    return f"{conversation_id}.{_mac(secret, 'cid', conversation_id)}"


def read_conversation_id(secret: bytes, cookie: Optional[str]) -> Optional[str]:
    """The conversation id in a cookie, or None if it is missing or forged."""
    if not cookie or "." not in cookie:
        return None
    conversation_id, _, mac = cookie.partition(".")
    if not _ID.match(conversation_id):
        return None
    if not hmac.compare_digest(mac, _mac(secret, "cid", conversation_id)):
        return None
    return conversation_id


def sign_payload(secret: bytes, conversation_id: str, payload: str) -> str:
    return _mac(secret, "button", f"{conversation_id}\x00{payload}")


def payload_is_genuine(secret: bytes, conversation_id: str, payload: str, signature: str) -> bool:
    expected = sign_payload(secret, conversation_id, payload)
    return hmac.compare_digest(expected.encode(), (signature or "").encode())
