"""Rendering for the console, and the pages every role shares: sign in, sign out, home."""

from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlparse

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sanic import Blueprint, Request
from sanic.exceptions import NotFound
from sanic.response import HTTPResponse, html, redirect

from clinic.console import auth, clock, contact_links
from clinic.http import client_address

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]))
env.filters["local"] = clock.local  # a stored time in the clinic's time zone (clinic.console.clock)
env.globals["clinic_zone"] = clock.zone_name
env.filters["contact_href"] = contact_links.contact_href  # tel:/mailto: for a visitor's number or address

bp = Blueprint("console_pages")


def render_fragment(request: Request, template: str, **context: Any) -> str:
    """A template as text, with what every template may use: ``user``, ``csrf``, ``can(role)``
    (a whole page, or a part of one that a page's script puts in place)."""
    user = getattr(request.ctx, "user", None)
    secret = request.app.ctx.secret
    csrf = auth.csrf_token(secret, user["session"]) if user else ""
    context.setdefault("reason", "")
    return env.get_template(template).render(
        request=request, user=user, csrf=csrf,
        can=lambda role: bool(user) and auth.RANK[user["role"]] >= auth.RANK[role],
        **context,
    )


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTTPResponse:
    """A page; besides what ``render_fragment`` gives, ``live_waiting`` (the count of visitors
    waiting for a person) and ``urgent_count`` (the Urgent view's open items), in the menu, once
    someone is signed in."""
    if getattr(request.ctx, "user", None) is not None:
        from clinic.console.live_chat import waiting_count
        from clinic.console.urgent import open_items

        context.setdefault("live_waiting", waiting_count(request.app.ctx.engine))
        context.setdefault("urgent_count", len(open_items(request.app.ctx.engine)))
    return html(render_fragment(request, template, **context), status=status)


def _safe_next(target: str) -> str:
    # A path on this site only: browsers read a backslash as a slash and drop tabs and
    # newlines, so "/<backslash>evil" or "/<tab>/evil" would become "//evil" (another host).
    target = target or "/"
    parsed = urlparse(target)
    if (
        parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//")
        or "\\" in target or any(ord(c) < 32 or ord(c) == 127 for c in target)
    ):
        return "/"
    return target


@bp.get("/login")
async def login_form(request: Request) -> HTTPResponse:
    pre = request.cookies.get(auth.LOGIN_CSRF_COOKIE) or auth.secrets.token_urlsafe(16)
    response = render(
        request, "login.html", csrf_login=auth.csrf_token(request.app.ctx.secret, pre),
        next=_safe_next(request.args.get("next", "/")), error="",
    )
    response.cookies[auth.LOGIN_CSRF_COOKIE] = pre
    response.cookies[auth.LOGIN_CSRF_COOKIE]["httponly"] = True
    response.cookies[auth.LOGIN_CSRF_COOKIE]["samesite"] = "Strict"
    response.cookies[auth.LOGIN_CSRF_COOKIE]["path"] = "/login"
    return response


@bp.post("/login")
async def login(request: Request) -> HTTPResponse:
    ctx = request.app.ctx
    next_url = _safe_next(request.form.get("next", "/"))
    if not auth.csrf_ok(ctx.secret, request.cookies.get(auth.LOGIN_CSRF_COOKIE), request.form.get("csrf")):
        return redirect("/login")
    pre = request.cookies.get(auth.LOGIN_CSRF_COOKIE)
    retry_after = await ctx.login_limit.check(f"ip:{client_address.of_request(request)}")
    if retry_after is not None:  # before any password is checked: one place cannot lock every account
        response = render(
            request, "login.html", status=429, csrf_login=auth.csrf_token(ctx.secret, pre), next=next_url,
            error="Too many sign-in attempts from here. Please wait a minute and try again.",
        )
        response.headers["Retry-After"] = str(retry_after)
        return response
    user = auth.authenticate(ctx.engine, request.form.get("username", ""), request.form.get("password", ""))
    if user is None:
        auth.audit(ctx.engine, None, "login_failed", "staff_user",
                   auth.username_tag(ctx.secret, request.form.get("username") or ""))
        return render(
            request, "login.html", status=401, csrf_login=auth.csrf_token(ctx.secret, pre), next=next_url,
            error="That username and password don't match, or the account is locked for a while after repeated failures.",
        )
    name = auth.session_cookie(ctx.settings)
    auth.end_session(ctx.engine, request.cookies.get(name))  # no session carried over a sign-in
    token = auth.start_session(ctx.engine, user["id"], ctx.settings.staff_session_hours)
    auth.audit(ctx.engine, user, "login")
    response = redirect(next_url)
    response.cookies[name] = token
    cookie = response.cookies[name]
    cookie["httponly"] = True
    cookie["samesite"] = "Strict"
    cookie["path"] = "/"
    if ctx.settings.cookie_secure:
        cookie["secure"] = True
    return response


@bp.post("/logout")
@auth.require("support")
async def logout(request: Request) -> HTTPResponse:
    name = auth.session_cookie(request.app.ctx.settings)
    auth.end_session(request.app.ctx.engine, request.cookies.get(name))
    response = redirect("/login")
    del response.cookies[name]
    return response


@bp.get("/")
@auth.require("support")
async def home(request: Request) -> HTTPResponse:
    return redirect("/urgent")


MAX_PAGE = 100_000  # a page number past this is no page of any list (5 million rows at 50 a page)


def page_arg(value: Optional[str], default: int = 1) -> int:
    """A list's page number from the query string: not a number is the first page; a number past
    ``MAX_PAGE`` is no page (404), never an offset for the database to overflow on."""
    try:
        page = int(value or default)
    except ValueError:
        return default
    if page > MAX_PAGE:
        raise NotFound("No such page")
    return max(page, 1)
