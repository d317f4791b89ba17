"""Visitors' ratings of the assistant's answers: a thumbs up or down under each answer in the
widget, and, after a thumbs down, what was wrong if the visitor says (``answer_ratings``).

An answer is named by the visitor's message it answers (the id the widget gave that message,
kept in the tracker's user event as ``metadata.message_id``), so the console finds its topic and
transcript in the tracker store. One rating per answer: a second tap changes it. The comment is
the visitor's own words: kept in the clinic DB (encrypted at rest like all of it), never logged.
"""

from typing import Any, Dict, List, Optional

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from clinic.storage.db import answer_ratings, utcnow

VALUES = {"up": 1, "down": -1}
MAX_COMMENT_CHARS = 500


def rate(engine: Engine, conversation_id: str, message_id: str, rating: int, comment: Optional[str] = None) -> None:
    """Record (or change) the rating of the answer to ``message_id``; a comment, when given, replaces
    the earlier one (a thumbs up clears it)."""
    now = utcnow()
    values: Dict[str, Any] = {"rating": rating, "updated_at": now}
    if comment is not None or rating > 0:
        values["comment"] = comment if rating < 0 else None
    for _ in range(2):
        with engine.begin() as conn:
            done = conn.execute(update(answer_ratings).where(
                answer_ratings.c.conversation_id == conversation_id, answer_ratings.c.message_id == message_id,
            ).values(**values)).rowcount
            if done:
                return
            try:
                conn.execute(insert(answer_ratings).values(
                    conversation_id=conversation_id, message_id=message_id, created_at=now,
                    **{"comment": None, **values}))
                return
            except IntegrityError:  # the same answer rated twice at once: update the other's row
                continue


def ratings_since(engine: Engine, since: Any) -> List[Dict[str, Any]]:
    """Ratings made at ``since`` (naive UTC) or later, oldest first."""
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(
            select(answer_ratings).where(answer_ratings.c.created_at >= since).order_by(answer_ratings.c.id))]
