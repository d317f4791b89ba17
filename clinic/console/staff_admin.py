"""Console pages: staff_admin (being built)."""

from sanic import Blueprint

bp = Blueprint("console_staff_admin")
