"""A visitor message sent again (the widget's Retry, with the same message id) after Rasa took
it but answered nothing: shown once in every transcript.

When the action server is down, Rasa logs the visitor's message, cannot run the custom action
that answers it, and answers nothing; the web app tells the visitor (503) and they retry once it
is back. Rasa logs the retry as a second user event with the same ``metadata.message_id``; the
tracker store only appends, so the first stays. Every view of a conversation (the widget's
history, the console's transcript, its exports) leaves out such an unanswered first try:
``superseded(steps)`` says which events those are.
"""

from typing import Dict, Iterable, Optional, Set, Tuple

USER = "user"  # a visitor message, with its client message id (or None)
REPLY = "reply"  # something the visitor was shown: a bot, staff or notice message

Step = Tuple[str, Optional[str]]


def superseded(steps: Iterable[Step]) -> Set[int]:
    """Positions of the visitor messages that a later try with the same message id replaces:
    those that got no reply before the next visitor message. ``steps`` holds one item per
    event, in order: ``(USER, message id)``, ``(REPLY, None)``, or anything else (ignored)."""
    unanswered: Dict[str, int] = {}  # message id -> position of its latest try, while it has no reply
    latest: Optional[str] = None  # the message id of the latest visitor message
    replaced: Set[int] = set()
    for position, (kind, message_id) in enumerate(steps):
        if kind == USER:
            if message_id is not None:
                earlier = unanswered.pop(message_id, None)
                if earlier is not None:
                    replaced.add(earlier)
                unanswered[message_id] = position
            latest = message_id
        elif kind == REPLY and latest is not None:
            unanswered.pop(latest, None)
            latest = None
    return replaced


def message_id_of(metadata: object) -> Optional[str]:
    """The client message id in a user event's metadata (None when there is none)."""
    if not isinstance(metadata, dict):
        return None
    message_id = metadata.get("message_id")
    return message_id if isinstance(message_id, str) and message_id else None
