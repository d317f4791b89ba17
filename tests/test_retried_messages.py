"""A visitor message retried after it got no answer (the action server was down) shows once in
every transcript: the rule (clinic.rules.retried_messages), the widget's history and the console's
transcript and exports. The same through the real stack: tests/test_faults.py."""

import json
from typing import Any, Dict, List, Optional, Tuple

from clinic.console.conversations import build_transcript
from clinic.rules.retried_messages import REPLY, USER, superseded
from clinic.web.visitor_api import history_from_events

SECRET = b"k" * 32


def test_an_unanswered_try_followed_by_its_retry_is_superseded() -> None:
    steps = [(USER, "m1"), (REPLY, None), (USER, "m2"), ("action", None), (USER, "m2"), (REPLY, None)]
    assert superseded(steps) == {2}


def test_a_retry_after_other_messages_supersedes_the_unanswered_try() -> None:
    steps = [(USER, "m2"), (USER, "m3"), (REPLY, None), (USER, "m2"), (REPLY, None)]
    assert superseded(steps) == {0}


def test_several_unanswered_tries_leave_only_the_last() -> None:
    steps = [(USER, "m1"), (USER, "m1"), (USER, "m1"), (REPLY, None)]
    assert superseded(steps) == {0, 1}


def test_answered_messages_and_messages_without_id_are_kept() -> None:
    # an answered message sent again is shown twice (it was answered twice); no id, no retry
    assert superseded([(USER, "m1"), (REPLY, None), (USER, "m1"), (REPLY, None)]) == set()
    assert superseded([(USER, None), (USER, None), (REPLY, None)]) == set()
    # an unanswered message never retried stays (a live chat: nobody answers at once)
    assert superseded([(USER, "m1"), (USER, "m2"), (REPLY, None)]) == set()


# --- the views ------------------------------------------------------------------------------------

def rasa_events() -> List[Dict[str, Any]]:
    """A conversation as Rasa's HTTP API gives it: "twenty five" sent while the action server was
    down (no answer), then retried with the same id."""
    return [
        {"event": "user", "text": "am i eligible?", "metadata": {"message_id": "m-1"}, "timestamp": 1.0},
        {"event": "bot", "text": "How old are you?", "timestamp": 1.1},
        {"event": "user", "text": "twenty five", "metadata": {"message_id": "m-2"}, "timestamp": 2.0},
        {"event": "action", "name": "prescreen_form", "timestamp": 2.1},
        {"event": "action", "name": "action_listen", "timestamp": 2.2},
        {"event": "user", "text": "twenty five", "metadata": {"message_id": "m-2"}, "timestamp": 9.0},
        {"event": "action", "name": "prescreen_form", "timestamp": 9.1},
        {"event": "bot", "text": "Which US state do you live in?", "timestamp": 9.2},
    ]


def test_the_widget_history_shows_the_retried_message_once_where_it_was_answered() -> None:
    history = history_from_events(SECRET, "c" * 32, rasa_events())
    assert [(m["role"], m["text"]) for m in history] == [
        ("visitor", "am i eligible?"), ("bot", "How old are you?"),
        ("visitor", "twenty five"), ("bot", "Which US state do you live in?"),
    ]
    assert history[2]["ts"] == 9.0  # the try that was answered


def tracker_rows(events: List[Dict[str, Any]]) -> List[Tuple[Any, ...]]:
    """The same events as the console reads them from the tracker store."""
    rows = []
    for i, e in enumerate(events, start=1):
        intent: Optional[str] = "inform" if e["event"] == "user" else None
        rows.append((i, "c" * 32, e["event"], e["timestamp"], intent, e.get("name"), json.dumps(e)))
    return rows


def test_the_console_transcript_and_exports_show_the_retried_message_once() -> None:
    transcript = build_transcript(tracker_rows(rasa_events()), answers_visible=True)
    said = [(m["speaker"], m["text"]) for m in transcript["messages"]]
    assert said == [
        ("visitor", "am i eligible?"), ("bot", "How old are you?"),
        ("visitor", "twenty five"), ("bot", "Which US state do you live in?"),
    ]
    assert transcript["messages"][2]["id"] == 6  # the answered try
    # the timeline keeps every event, the unanswered try marked as such
    first_try = [t for t in transcript["timeline"] if t["id"] == 3][0]
    assert first_try["type"] == "user" and first_try["detail"] == "unanswered; retried"
    assert len(transcript["timeline"]) == len(rasa_events())
