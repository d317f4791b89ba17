"""The web app factory."""

from time import monotonic as current_time
from typing import Any, Optional

from sanic import Request, Sanic
from sanic.exceptions import PayloadTooLarge, RequestTimeout
from sanic.http import Stage
from sanic.response import HTTPResponse, json
from sanic.server.protocols.http_protocol import HttpProtocol

from clinic.settings import Settings, get_settings
from clinic.storage import db
from clinic.http import guard as http_guard
from clinic.web import live_updates, pages, visitor_api
from clinic.web.idempotency import reply_cache
from clinic.http.rate_limit import limiter
from clinic.rasa_runtime.rasa_client import RasaClient

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


# Seconds a client has to send a whole request, headers and body (Sanic's default is 60, and
# counted from the last packet: see WholeRequestDeadline).
REQUEST_TIMEOUT_S = 10


class WholeRequestDeadline(HttpProtocol):
    """REQUEST_TIMEOUT for the whole request, headers and body. Sanic restarts its clock at
    every packet and gives the body the (longer) response timeout, so a client that trickles a
    byte a second would hold a connection for ever; here it gets a 408 and is disconnected."""

    __slots__ = ("_request_began",)

    def data_received(self, data: bytes) -> None:
        http = getattr(self, "_http", None)
        if http is None or http.stage is Stage.IDLE:
            self._request_began = current_time()  # the first bytes of a new request
        super().data_received(data)

    def check_timeouts(self) -> None:
        http = getattr(self, "_http", None)
        began = getattr(self, "_request_began", None)
        receiving = http is not None and (
            http.stage is Stage.REQUEST or (http.stage is Stage.HANDLER and http.request_body)
        )
        if self._task and receiving and began is not None and current_time() - began > self.request_timeout:
            http.exception = RequestTimeout("Request Timeout")
            self._task.cancel()
            self.loop.call_later(1.0, self.close)  # once the 408 is out: the rest of the body is not awaited
            return
        super().check_timeouts()


def create_app(
    settings: Optional[Settings] = None, rasa: Optional[Any] = None, name: str = "clinic_web"
) -> Sanic:
    """The public web app. ``rasa`` replaces the Rasa client (tests)."""
    settings = settings or get_settings()
    app = Sanic(name)
    app.config.REQUEST_MAX_SIZE = settings.max_body_bytes
    app.config.REQUEST_TIMEOUT = REQUEST_TIMEOUT_S  # with WholeRequestDeadline (clinic.web.__main__)
    app.config.FALLBACK_ERROR_FORMAT = "json"
    app.config.ACCESS_LOG = False
    app.ctx.settings = settings
    app.ctx.secret = settings.secret_key
    app.ctx.engine = db.get_engine(settings.clinic_db_url)  # the handoff state, shared by every process
    app.ctx.rasa = rasa if rasa is not None else RasaClient(settings.rasa_url, token=settings.rasa_token)
    # in Redis when REDIS_URL is set (shared by every web-app process), else in memory
    app.ctx.replies = reply_cache(settings.redis_url)
    app.ctx.message_limit = limiter(settings.rate_limit_messages, settings.redis_url, "messages")  # per conversation
    app.ctx.new_visitor_limit = limiter(settings.rate_limit_new_visitors, settings.redis_url, "new_visitors")  # per address
    app.ctx.read_limit = limiter(settings.rate_limit_reads, settings.redis_url, "reads")  # per conversation
    app.ctx.address_limit = limiter(settings.rate_limit_address, settings.redis_url, "address")  # per address

    app.blueprint(pages.bp)
    app.blueprint(visitor_api.bp)
    live_updates.setup(app)
    app.static("/static", str(pages.STATIC), name="static")
    http_guard.harden(app, lambda _request, status, code, detail: visitor_api.refusal(status, code, detail))

    @app.get("/health")
    async def health(request: Request) -> HTTPResponse:
        return json({"status": "ok"})

    @app.exception(PayloadTooLarge)
    async def too_large(request: Request, exc: Exception) -> HTTPResponse:
        return visitor_api.refusal(
            413, "message_too_long", "That message is too long for me. Please send a shorter one."
        )

    @app.on_response
    async def security_headers(request: Request, response: HTTPResponse) -> None:
        for header, value in SECURITY_HEADERS.items():
            response.headers.setdefault(header, value)
        if request.path.startswith("/api/"):  # a conversation: never in a browser's or a proxy's cache
            response.headers["Cache-Control"] = "no-store"
        if settings.hsts_header:
            response.headers.setdefault("Strict-Transport-Security", settings.hsts_header)
        visitor_api.add_cors_headers(request, response)

    @app.after_server_stop
    async def close_rasa(app: Sanic, _loop: Any) -> None:
        for client in (app.ctx.rasa, app.ctx.replies, app.ctx.message_limit, app.ctx.new_visitor_limit,
                       app.ctx.read_limit, app.ctx.address_limit):
            close = getattr(client, "close", None)
            if close is not None:
                await close()

    return app
