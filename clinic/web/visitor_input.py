"""What a visitor may send: checks with a clear reason for each refusal."""

import json
from dataclasses import dataclass
from typing import Any, Optional

from clinic.rules.visible_text import visible_text


@dataclass
class Refusal(Exception):
    status: int
    code: str
    detail: str


@dataclass(frozen=True)
class Button:
    payload: str
    signature: str
    title: str = ""


@dataclass(frozen=True)
class Starter:
    """One of the starter buttons shown when the chat opens (clinic.web.starters), by number."""
    number: int


def clean_text(text: str) -> str:
    return visible_text(text)


def _is_text(value: Any) -> bool:
    """A string that can be encoded (JSON's "\\ud800" decodes to a lone surrogate, which cannot)."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_body(body: bytes, content_type: Optional[str]) -> Any:
    if not (content_type or "").split(";")[0].strip().lower() == "application/json":
        raise Refusal(415, "unsupported_media_type", "Send the message as JSON (Content-Type: application/json).")
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: nested too deep
        raise Refusal(400, "invalid_json", "The request body is not valid JSON.")


def button_title(title: Any) -> str:
    """A button's title as it is shown, signed (clinic.web.signing) and kept: cleaned, 200 characters at most."""
    return clean_text(title)[:200] if isinstance(title, str) else ""


def chat_message(data: Any, max_chars: int) -> "str | Button | Starter":
    """The visitor's text, or the button they pressed (a starter by its number)."""
    if not isinstance(data, dict):
        raise Refusal(400, "invalid_body", 'Expected a JSON object such as {"message": "Hello"}.')
    if "starter" in data:
        number = data.get("starter")
        if not isinstance(number, int) or isinstance(number, bool) or not 0 <= number < 100:
            raise Refusal(400, "invalid_starter", "A starter is given by its number.")
        return Starter(number)
    button = data.get("button")
    if button is not None:
        if not isinstance(button, dict) or not all(_is_text(button.get(k)) for k in ("payload", "sig")):
            raise Refusal(400, "invalid_button", "A button needs its payload and signature.")
        return Button(payload=button["payload"], signature=button["sig"], title=button_title(button.get("title")))
    message = data.get("message")
    if not isinstance(message, str):
        raise Refusal(400, "invalid_body", 'Expected a JSON object such as {"message": "Hello"}.')
    text = clean_text(message)
    if not text:
        raise Refusal(422, "empty_message", "Please type a message first.")
    if len(text) > max_chars:
        raise Refusal(
            413, "message_too_long",
            f"That message is too long for me. Please keep it under {max_chars:,} characters.",
        )
    if text.startswith("/"):
        raise Refusal(
            422, "slash_command",
            "Messages can't start with '/'. Please type your question in words, or use the buttons.",
        )
    return text
