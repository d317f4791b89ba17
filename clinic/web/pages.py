"""The clinic's page, with the chat on it."""

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sanic import Blueprint, Request
from sanic.response import HTTPResponse, file, html

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

bp = Blueprint("pages")
_env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]))


@bp.get("/widget.js")
async def widget_script(request: Request) -> HTTPResponse:
    """The embeddable widget: one script tag on any page of an allowed site."""
    return await file(STATIC / "widget.js", mime_type="text/javascript; charset=utf-8")


@bp.get("/widget.css")
async def widget_styles(request: Request) -> HTTPResponse:
    return await file(STATIC / "widget.css", mime_type="text/css; charset=utf-8")


@bp.get("/")
async def home(request: Request) -> HTTPResponse:
    settings = request.app.ctx.settings
    # retention_days: the chat's privacy line in the widget quotes the purge's own setting
    page = _env.get_template("index.html").render(clinic=settings.clinic, retention_days=settings.retention_days)
    return html(page)
