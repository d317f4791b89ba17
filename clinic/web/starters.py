"""The starter buttons a visitor sees the moment the chat opens, before typing anything.

They are the greeting's buttons (``utter_greet`` in ``domain/conversation.yml``): one list for
the widget and the assistant. A button of the assistant's is signed for its conversation
(``clinic.web.signing``), and a visitor who has not written yet has none, so a starter is sent as
``{"starter": <its number>}``: the visitor API sends the starter's payload with its title shown,
and accepts nothing but a number of this list (no payload of the visitor's own making).
"""

from functools import lru_cache
from typing import Dict, List, Optional, Tuple

from clinic.rules.answers import domain_responses

GREETING = "utter_greet"


@lru_cache(maxsize=1)
def starters() -> Tuple[Tuple[str, str], ...]:
    """(title, payload) of each starter, in the greeting's order."""
    response = domain_responses().get(GREETING)
    if response is None or not response.variations:
        return ()
    return tuple((title, payload) for title, payload in response.variations[0].buttons if title and payload)


def for_browser() -> List[Dict[str, object]]:
    """What the widget shows: each starter's number and title (never its payload)."""
    return [{"id": i, "title": title} for i, (title, _payload) in enumerate(starters())]


def starter(number: int) -> Optional[Tuple[str, str]]:
    """(title, payload) of starter ``number``, or None when there is no such starter."""
    found = starters()
    return found[number] if 0 <= number < len(found) else None
