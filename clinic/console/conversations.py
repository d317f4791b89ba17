"""Console pages: conversations (being built)."""

from sanic import Blueprint

bp = Blueprint("console_conversations")
