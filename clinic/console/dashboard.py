"""Console pages: dashboard (being built)."""

from sanic import Blueprint

bp = Blueprint("console_dashboard")
