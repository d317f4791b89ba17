"""The clinic's page, with the chat on it."""

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sanic import Blueprint, Request
from sanic.response import HTTPResponse, html

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

bp = Blueprint("pages")
_env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]))


@bp.get("/")
async def home(request: Request) -> HTTPResponse:
    settings = request.app.ctx.settings
    page = _env.get_template("index.html").render(clinic=settings.clinic)
    return html(page)
