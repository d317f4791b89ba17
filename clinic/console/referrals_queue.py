"""Console pages: referrals_queue (being built)."""

from sanic import Blueprint

bp = Blueprint("console_referrals_queue")
