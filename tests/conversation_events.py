"""Two plays of the same conversation compared by their events: what differs by design taken out
(used by tests/test_patches_equivalence.py and tests/test_rest_channel.py)."""

import json
from typing import Any, Dict, List

RANDOM_SLOTS = {"referral_code"}  # drawn at random by the action server


def comparable(events: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The events without what differs from one run to the next by design."""
    references = {str((event.get("metadata") or {}).get("referral_reference")) for event in events
                  if isinstance(event.get("metadata"), dict) and (event["metadata"].get("referral_reference"))}
    if references:  # a referral's reference code, wherever it is written
        text = json.dumps(events)
        for reference in references:
            text = text.replace(reference, "<reference>")
        events = json.loads(text)
    kept = []
    for event in events:
        event = {key: value for key, value in event.items() if key not in ("timestamp", "message_id")}
        if isinstance(event.get("parse_data"), dict):  # Rasa's id of each message: a new uuid
            event["parse_data"] = {k: v for k, v in event["parse_data"].items() if k != "message_id"}
        if event.get("event") == "slot" and event.get("name") in RANDOM_SLOTS and event.get("value") is not None:
            event["value"] = "<random>"
        metadata = event.get("metadata")
        if event.get("event") == "bot" and isinstance(metadata, dict) and "queue_place" in metadata:
            # the place in the queue for a person: the conversations before this one count
            event["metadata"] = {k: v for k, v in metadata.items() if k != "queue_place"}
            event["text"] = "<the place in the queue>"
        kept.append(event)
    return kept


def first_difference(a: List[Any], b: List[Any]) -> Any:
    """The first differing events of two lists, by index (or the lengths)."""
    for n, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return n, {k: (x.get(k), y.get(k)) for k in set(x) | set(y) if x.get(k) != y.get(k)}
    return len(a), len(b)
