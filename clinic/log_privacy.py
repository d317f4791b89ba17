"""Keeps visitors' words out of the logs.

Rasa logs the action server's error response, which echoes the request body
with the whole conversation, and tracebacks can carry the values being
processed. ``PrivacyFilter`` (installed on the log handlers of the Rasa
server and the action server by ``settings/logging.yml``) keeps, of any
record with an exception, only the message and the exception's class name,
and withholds bodies that Rasa puts into messages. Rasa's structured (JSON)
log lines, e.g. ``{"text": ..., "event": "rest.message.received.failure"}``,
keep only their event name, level and the names of the fields withheld.
"""

import json
import logging
import re

_BODY = re.compile(r"(body=|request_body|\"tracker\"|'tracker')", re.IGNORECASE)


class PrivacyFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = _structured(record.getMessage())
        match = _BODY.search(message)
        if match:
            message = message[: match.start()].rstrip() + " [body withheld]"
        if record.exc_info:
            exc = record.exc_info[1]
            message = f"{message} [{type(exc).__name__}]" if exc is not None else message
            record.exc_info = None
            record.exc_text = None
            record.stack_info = None
        record.msg = message
        record.args = ()
        return True


_KEPT_FIELDS = ("event", "level", "event_info")


def _structured(message: str) -> str:
    """A structlog JSON line reduced to what says what happened, never the values it carried."""
    if not message.startswith("{"):
        return message
    try:
        fields = json.loads(message)
    except ValueError:
        return message
    if not isinstance(fields, dict) or "event" not in fields:
        return message
    kept = {k: fields[k] for k in _KEPT_FIELDS if k in fields and isinstance(fields[k], str)}
    withheld = sorted(k for k in fields if k not in kept)
    if withheld:
        kept["withheld"] = withheld
    return json.dumps(kept)
