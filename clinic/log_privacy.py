"""Keeps visitors' words out of the logs.

Rasa logs the action server's error response, which echoes the request body
with the whole conversation, and tracebacks can carry the values being
processed. ``PrivacyFilter`` (installed on the log handlers of the Rasa
server and the action server by ``settings/logging.yml``) keeps, of any
record with an exception, only the message and the exception's class name,
and withholds bodies that Rasa puts into messages.
"""

import logging
import re

_BODY = re.compile(r"(body=|request_body|\"tracker\"|'tracker')", re.IGNORECASE)


class PrivacyFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
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
