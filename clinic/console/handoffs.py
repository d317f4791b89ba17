"""Console pages: handoffs (being built)."""

from sanic import Blueprint

bp = Blueprint("console_handoffs")
