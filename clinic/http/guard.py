"""What both Sanic apps (the web app, the staff console) refuse before any route runs.

- A request with both ``Transfer-Encoding`` and ``Content-Length``: HTTP/1.1 says the first wins,
  but a proxy in front may have read the body by the second; the two then disagree on where the
  next request starts (request smuggling). Answered 400 and the connection closed.
- A static path that names no file: ``/static/`` (the folder itself) or a name with a NUL byte
  (``/static/x%00``) made Sanic's file handler fail with a 500 and a traceback; a 404 now.
"""

from typing import Any, Callable, Optional
from urllib.parse import unquote

from sanic import Request
from sanic.response import HTTPResponse


def harden(app: Any, refusal: Callable[[Request, int, str, str], HTTPResponse], static_prefix: str = "/static/") -> None:
    """Adds the checks to ``app``; ``refusal(request, status, code, detail)`` makes the app's own
    error answer."""

    async def guard(request: Request) -> Optional[HTTPResponse]:
        headers = request.headers
        if "transfer-encoding" in headers and "content-length" in headers:
            stream = getattr(request, "stream", None)
            if stream is not None and hasattr(stream, "keep_alive"):
                stream.keep_alive = False  # what follows on this connection is not read as a request
            response = refusal(request, 400, "ambiguous_length",
                               "A request may have Transfer-Encoding or Content-Length, not both.")
            response.headers["Connection"] = "close"
            return response
        path = request.path
        if path.startswith(static_prefix):
            name = unquote(path[len(static_prefix):])
            if not name or name.endswith("/") or "\x00" in name:
                return refusal(request, 404, "not_found", "No such file.")
        return None

    app.register_middleware(guard, "request")
