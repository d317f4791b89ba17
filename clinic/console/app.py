"""The staff console app factory (loopback :8001 by default)."""

from typing import Any, Optional

from sanic import Request, Sanic
from sanic.exceptions import NotFound
from sanic.response import HTTPResponse, text
from sqlalchemy.engine import Engine

from clinic.storage import db
from clinic.http import guard as http_guard
from clinic.console import (
    canned_replies, conversations, dashboard, handoffs, live_chat, pages, referrals_queue, review, staff_admin, urgent,
)
from clinic.rasa_runtime.rasa_client import RasaClient
from clinic.settings import Settings, get_settings
from clinic.storage.tracker_reader import reader
from clinic.http.rate_limit import RateLimiter

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def tracker_reader(url: str) -> Engine:
    """Rasa's tracker store, read-only: the console never writes to what Rasa writes, and on
    SQLite it reads in WAL mode so that Rasa is never blocked by a reader (clinic.storage.tracker_reader)."""
    return reader(url)


def _refusal(request: Request, status: int, code: str, detail: str) -> HTTPResponse:
    if status == 404:
        return pages.render(request, "not_found.html", status=404)
    return text(detail, status=status)


def create_console_app(
    settings: Optional[Settings] = None, name: str = "clinic_console", rasa: Optional[Any] = None
) -> Sanic:
    """The staff console. ``rasa`` replaces the Rasa client (tests); the live chat writes to
    conversations through it (Rasa's HTTP API), and reads them from the tracker store."""
    settings = settings or get_settings()
    app = Sanic(name)
    app.config.FALLBACK_ERROR_FORMAT = "html"
    app.config.ACCESS_LOG = False
    app.config.REQUEST_MAX_SIZE = 1_000_000
    app.ctx.settings = settings
    app.ctx.secret = settings.secret_key
    app.ctx.engine = db.get_engine(settings.clinic_db_url)
    app.ctx.tracker = tracker_reader(settings.tracker_db_url)
    app.ctx.tracker_url = settings.tracker_db_url
    app.ctx.rasa = rasa if rasa is not None else RasaClient(settings.rasa_url, timeout_s=10.0, token=settings.rasa_token)
    app.ctx.login_limit = RateLimiter.from_setting(settings.login_attempts)  # sign-ins per address (one console)

    for module in (pages, urgent, conversations, review, referrals_queue, handoffs, live_chat, dashboard, staff_admin,
                   canned_replies):
        app.blueprint(module.bp)
    app.static("/static", str(pages.STATIC), name="console_static")
    http_guard.harden(app, _refusal)

    @app.get("/health")
    async def health(request: Request) -> HTTPResponse:
        from sanic.response import json

        return json({"status": "ok"})

    @app.exception(NotFound)
    async def not_found(request: Request, exc: Exception) -> HTTPResponse:
        return pages.render(request, "not_found.html", status=404)

    @app.after_server_stop
    async def close_rasa(app: Sanic, _loop: Any) -> None:
        close = getattr(app.ctx.rasa, "close", None)
        if close is not None:
            await close()

    @app.on_response
    async def security_headers(request: Request, response: HTTPResponse) -> None:
        for header, value in SECURITY_HEADERS.items():
            response.headers.setdefault(header, value)
        if settings.hsts_header:
            response.headers.setdefault("Strict-Transport-Security", settings.hsts_header)

    return app
