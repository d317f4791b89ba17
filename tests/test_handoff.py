"""The live handoff state machine and its queue in the clinic DB (clinic.rules.handoff)."""

import threading

import pytest

from clinic.storage import db
from clinic.rules import handoff
from clinic.rules.handoff import ACTIVE, CANCELLED, CLOSED, HANDED_BACK, LIVE, TRANSITIONS, WAITING, HandoffError

from tests import encrypted_db

EVENTS = ("claim", "cancel", "close", "hand_back", "release")


@pytest.fixture
def engine(clinic_env):
    from clinic.settings import get_settings

    return db.get_engine(get_settings().clinic_db_url)


# --- the state machine alone ----------------------------------------------------


@pytest.mark.parametrize(
    "status,event,target",
    [
        (WAITING, "claim", LIVE),
        (WAITING, "cancel", CANCELLED),
        (WAITING, "close", CLOSED),
        (LIVE, "hand_back", HANDED_BACK),
        (LIVE, "close", CLOSED),
        (LIVE, "release", WAITING),
    ],
)
def test_allowed_transitions(status, event, target):
    assert handoff.next_status(status, event) == target


def test_every_other_transition_is_refused():
    allowed = {(s, e) for s, events in TRANSITIONS.items() for e in events}
    refused = [(s, e) for s in TRANSITIONS for e in EVENTS if (s, e) not in allowed]
    assert len(refused) == len(TRANSITIONS) * len(EVENTS) - 6
    for status, event in refused:
        with pytest.raises(HandoffError):
            handoff.next_status(status, event)
    with pytest.raises(HandoffError):
        handoff.next_status("no such state", "claim")


def test_ended_states_are_final_and_active_ones_are_not():
    for status, events in TRANSITIONS.items():
        assert bool(events) == (status in ACTIVE), status


# --- in the clinic DB -------------------------------------------------------------


def test_a_request_waits_then_a_person_holds_it_then_hands_back(engine):
    row = handoff.request_live(engine, "c1", "visitor_request", False)
    assert (row["kind"], row["status"], row["urgent"], row["version"]) == ("live", WAITING, False, 1)
    assert handoff.visitor_state(engine, "c1") == {
        "mode": "waiting", "agent": None, "position": 1, "version": 1, "request": row["id"]
    }
    held = handoff.change(engine, row["id"], "claim", WAITING, staff_id=7, staff_name="Dana")
    assert (held["status"], held["staff_id"], held["staff_name"]) == (LIVE, 7, "Dana")
    assert held["claimed_at"] is not None and held["ended_at"] is None
    state = handoff.visitor_state(engine, "c1")
    assert (state["mode"], state["agent"], state["position"]) == ("person", "Dana", None)
    assert state["version"] == 2
    handoff.touch(engine, row["id"])
    assert handoff.visitor_state(engine, "c1")["version"] == 3
    done = handoff.change(engine, row["id"], "hand_back", LIVE)
    assert done["status"] == HANDED_BACK and done["ended_at"] is not None
    assert handoff.visitor_state(engine, "c1") == {"mode": "assistant", "agent": None, "position": None, "version": 0}
    assert handoff.active(engine, "c1") is None


def test_a_second_request_of_a_conversation_finds_the_first(engine):
    first = handoff.request_live(engine, "c1", "visitor_request", False)
    again = handoff.request_live(engine, "c1", "visitor_request", False)
    assert again["id"] == first["id"]
    assert len(db.handoff_requests_for(engine, "c1")) == 1
    # once that one ended, a new request is a new row
    handoff.change(engine, first["id"], "cancel", WAITING)
    third = handoff.request_live(engine, "c1", "visitor_request", False)
    assert third["id"] != first["id"] and third["status"] == WAITING


def test_an_urgent_second_request_raises_the_first(engine):
    first = handoff.request_live(engine, "c1", "visitor_request", False)
    again = handoff.request_live(engine, "c1", "crisis", True)
    assert again["id"] == first["id"] and again["urgent"] and again["reason"] == "crisis"


def test_queue_puts_urgent_first_then_the_longest_waiting(engine):
    a = handoff.request_live(engine, "a", "visitor_request", False)
    b = handoff.request_live(engine, "b", "visitor_request", False)
    c = handoff.request_live(engine, "c", "visitor_request", False)
    assert [r["id"] for r in handoff.queue(engine)] == [a["id"], b["id"], c["id"]]
    assert [handoff.position(engine, r) for r in (a, b, c)] == [1, 2, 3]
    raised = handoff.raise_priority(engine, "c")
    assert raised is not None and raised["urgent"] and raised["version"] == 2
    assert [r["id"] for r in handoff.queue(engine)] == [c["id"], a["id"], b["id"]]
    assert handoff.visitor_state(engine, "c")["position"] == 1
    assert handoff.visitor_state(engine, "b")["position"] == 3
    handoff.change(engine, a["id"], "claim", WAITING, staff_id=1, staff_name="Dana")
    assert [r["id"] for r in handoff.queue(engine)] == [c["id"], b["id"]]
    assert [r["id"] for r in handoff.live_chats(engine)] == [a["id"]]
    assert handoff.position(engine, handoff.get(engine, a["id"])) is None


def test_raise_priority_without_an_active_request_changes_nothing(engine):
    row = handoff.request_live(engine, "c1", "visitor_request", False)
    handoff.change(engine, row["id"], "cancel", WAITING)
    assert handoff.raise_priority(engine, "c1") is None
    assert handoff.get(engine, row["id"])["urgent"] is False


def test_a_change_from_a_stale_status_is_refused(engine):
    row = handoff.request_live(engine, "c1", "visitor_request", False)
    handoff.change(engine, row["id"], "cancel", WAITING)
    with pytest.raises(HandoffError):
        handoff.change(engine, row["id"], "claim", WAITING, staff_id=1, staff_name="Dana")
    assert handoff.get(engine, row["id"])["status"] == CANCELLED


def test_a_claim_needs_a_staff_member(engine):
    row = handoff.request_live(engine, "c1", "visitor_request", False)
    with pytest.raises(HandoffError):
        handoff.change(engine, row["id"], "claim", WAITING)
    assert handoff.get(engine, row["id"])["status"] == WAITING


def test_release_puts_the_chat_back_in_the_queue_without_its_holder(engine):
    row = handoff.request_live(engine, "c1", "visitor_request", False)
    handoff.change(engine, row["id"], "claim", WAITING, staff_id=1, staff_name="Dana")
    back = handoff.change(engine, row["id"], "release", LIVE)
    assert (back["status"], back["staff_id"], back["staff_name"], back["claimed_at"]) == (WAITING, None, None, None)
    assert handoff.visitor_state(engine, "c1")["mode"] == "waiting"


def test_two_staff_claiming_at_once_one_wins(engine):
    row = handoff.request_live(engine, "c1", "visitor_request", False)
    barrier = threading.Barrier(8)
    results = []

    def claim(n: int) -> None:
        barrier.wait()
        try:
            handoff.change(engine, row["id"], "claim", WAITING, staff_id=n, staff_name=f"staff{n}")
            results.append(("won", n))
        except HandoffError:
            results.append(("lost", n))

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [n for outcome, n in results if outcome == "won"]
    assert len(winners) == 1 and len(results) == 8
    assert handoff.get(engine, row["id"])["staff_id"] == winners[0]


def test_callback_requests_are_not_in_the_live_queue(engine):
    request_id = handoff.request_callback(engine, "c1", "visitor_request", False, "gAAAA-encrypted")
    row = handoff.get(engine, request_id)
    assert (row["kind"], row["status"], row["contact_encrypted"]) == ("callback", "new", "gAAAA-encrypted")
    assert handoff.queue(engine) == [] and handoff.active(engine, "c1") is None
    with pytest.raises(HandoffError):
        handoff.change(engine, request_id, "claim", "new", staff_id=1, staff_name="Dana")


# --- what the tracker gets -----------------------------------------------------------


def test_a_person_joining_pauses_the_assistant_and_names_them():
    pause, joined = handoff.joined_events(3, "Dana", "Example Clinic")
    assert pause["event"] == "pause"
    assert joined["event"] == "bot" and joined["text"] == "Dana from the Example Clinic team has joined the chat."
    assert joined["metadata"] == {"staff": {"id": 3, "name": "Dana"}, "handoff": "joined"}


def test_staff_messages_carry_the_staff_member():
    event = handoff.staff_message_event(3, "Dana", "Hello, how can I help?")
    assert (event["event"], event["text"], event["metadata"]) == ("bot", "Hello, how can I help?", {"staff": {"id": 3, "name": "Dana"}})


@pytest.mark.parametrize("closed,word", [(False, "handed the chat back"), (True, "closed this chat")])
def test_letting_go_resumes_the_assistant_which_then_listens(closed, word):
    resume, bot, listen = handoff.resumed_events("Dana", closed)
    assert resume["event"] == "resume"
    assert bot["event"] == "bot" and word in bot["text"] and "Dana" in bot["text"]
    assert listen == {"event": "action", "name": "action_listen", "timestamp": listen["timestamp"]}


def test_an_existing_database_gets_the_new_columns(tmp_path):
    """A clinic DB made before live chat (handoff_requests without kind, version...) is upgraded in place."""
    import sqlite3

    path = tmp_path / "old.db"
    with encrypted_db.connect(path) as conn:
        conn.execute(
            "CREATE TABLE handoff_requests (id INTEGER PRIMARY KEY, conversation_id VARCHAR(64) NOT NULL, "
            "reason VARCHAR(32) NOT NULL, urgent BOOLEAN NOT NULL, status VARCHAR(16) NOT NULL, created_at DATETIME NOT NULL)"
        )
        conn.execute(
            "INSERT INTO handoff_requests (conversation_id, reason, urgent, status, created_at) "
            "VALUES ('old', 'visitor_request', 0, 'new', '2026-01-01 10:00:00')"
        )
    engine = db.get_engine(f"sqlite:///{path}")
    try:
        old = db.handoff_requests_for(engine, "old")[0]
        assert (old["kind"], old["version"], old["status"]) == (None, 0, "new")
        row = handoff.request_live(engine, "new", "visitor_request", False)
        assert row["version"] == 1 and handoff.queue(engine)[0]["id"] == row["id"]
    finally:
        db.get_engine.cache_clear()


def test_a_person_stepping_away_resumes_the_assistant_and_says_the_visitor_is_back_in_line():
    resume, bot, listen = handoff.released_events("Dana")
    assert (resume["event"], listen["event"], listen["name"]) == ("resume", "action", "action_listen")
    assert "Dana had to step away" in bot["text"] and "back in the queue" in bot["text"]
    assert bot["metadata"] == {"handoff": "released"}


def test_visitor_state_of_many_conversations_read_one_after_the_other_matches_their_rows(engine):
    """The turn's state read (statements built once, the conversation bound at each read) gives
    each conversation its own row's state, as worked out here in Python from every row."""
    made = {}
    for n in range(12):
        cid = f"v{n}"
        made[cid] = handoff.request_live(engine, cid, "visitor_request", urgent=(n % 5 == 0))
    handoff.request_callback(engine, "cb", "visitor_request", False, "token")  # never in the live queue
    handoff.change(engine, made["v1"]["id"], "claim", WAITING, staff_id=1, staff_name="Dana")
    handoff.change(engine, made["v2"]["id"], "claim", WAITING, staff_id=2, staff_name="Lee")
    handoff.change(engine, made["v2"]["id"], "hand_back", LIVE)
    handoff.change(engine, made["v3"]["id"], "cancel", WAITING)
    again = handoff.request_live(engine, "v3", "visitor_request", False)  # a new request after a cancel
    rows = db.handoff_requests_for(engine, "v3") + [r for c in made for r in db.handoff_requests_for(engine, c) if c != "v3"]

    def expected(cid):
        live = [r for r in rows if r["conversation_id"] == cid and r["kind"] == "live" and r["status"] in ACTIVE]
        if not live:
            return {"mode": "assistant", "agent": None, "position": None, "version": 0}
        row = max(live, key=lambda r: r["id"])
        if row["status"] == LIVE:
            return {"mode": "person", "agent": row["staff_name"], "position": None, "version": row["version"], "request": row["id"]}
        line = sorted((r for r in rows if r["kind"] == "live" and r["status"] == WAITING),
                      key=lambda r: (not r["urgent"], r["created_at"], r["id"]))
        return {"mode": "waiting", "agent": None, "position": [r["id"] for r in line].index(row["id"]) + 1,
                "version": row["version"], "request": row["id"]}

    conversations = [*made, "cb", "nobody"] * 2
    states = {cid: handoff.visitor_state(engine, cid) for cid in conversations}
    assert states == {cid: expected(cid) for cid in conversations}
    assert {s["mode"] for s in states.values()} == {"assistant", "waiting", "person"}
    assert states["v3"]["request"] == again["id"] and states["v1"]["agent"] == "Dana"
    assert handoff.active(engine, "v2") is None and handoff.active(engine, "v4")["id"] == made["v4"]["id"]
