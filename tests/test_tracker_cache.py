"""The tracker a turn saved, kept by clinic/rasa_runtime/tracker_store.py and handed to the next turn of that
conversation: on the bench's visitor scripts with the trained model, every turn, it is exactly
what a read of the database gives (Rasa's own ``SQLTrackerStore._retrieve`` on the same file),
with two Rasa servers taking turns on one conversation, and after a deletion."""

import asyncio
import json
import shutil
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.tracker_store import SQLTrackerStore as RasaSQLTrackerStore
from rasa.shared.core.constants import ACTION_LISTEN_NAME, ACTION_SESSION_START_NAME
from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity

from clinic.rasa_runtime import tracker_store as clinic_store
from scripts.bench_stack import BenchStack
from scripts.bench_visitors import Visitors, rasa_message
from tests import encrypted_db
from tests.conftest import MODEL


def deep(value: Any) -> Any:
    """A value with everything in it and the type of each part (a tuple is not a list, a numpy
    float not a float); dictionaries compared whatever their order."""
    if isinstance(value, dict):
        return ("dict", sorted((repr(k), deep(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [deep(v) for v in value])
    if hasattr(value, "maxlen") and hasattr(value, "appendleft"):  # a deque (the tracker's events)
        return ("deque", value.maxlen, [deep(v) for v in value])
    if hasattr(value, "__dict__") and not isinstance(value, type):
        return (type(value).__name__, deep(vars(value)))
    return (type(value).__name__, value)


def tracker_state(tracker: DialogueStateTracker) -> Any:
    """All a tracker holds but the model and assistant ids, which the processor sets after each
    read (a kept tracker is handed out with neither, as a read gives it: tested apart), and what
    clinic/rasa_runtime/patches/tracker_caches.py works out and keeps on it (compared through what it answers)."""
    return deep({k: v for k, v in vars(tracker).items()
                 if k not in ("model_id", "assistant_id") and not k.startswith("_clinic_")})


def assert_same_tracker(kept: DialogueStateTracker, read: DialogueStateTracker, domain: Any) -> None:
    assert kept.current_state(EventVerbosity.ALL) == read.current_state(EventVerbosity.ALL)
    assert {n: s.value for n, s in kept.slots.items()} == {n: s.value for n, s in read.slots.items()}
    assert kept.active_loop == read.active_loop
    assert kept.latest_message.as_dict() == read.latest_message.as_dict()
    assert tracker_state(kept) == tracker_state(read)
    # what the policies ask of a tracker, from what a kept one remembers from its last turn
    assert deep(kept.applied_events()) == deep(read.applied_events())
    assert deep(kept.past_states(domain)) == deep(read.past_states(domain))


class Rasa:
    """The trained model in this process, on endpoints.yml's stores in a temporary var/ and the
    action server of a temporary stack (as scripts/bench_profile.py runs it)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, workdir: Path) -> None:
        from rasa.core.agent import load_agent

        from clinic.rasa_runtime import patches

        patches.install()  # as the launcher does: what tracker_caches keeps is what this module checks
        self.loop = loop
        self.stack = BenchStack(workdir)
        self.stack.start("actions")
        self.stack.wait_ready(names=["actions"])
        self.stack.var_dir.mkdir(parents=True, exist_ok=True)
        self.endpoints = self.stack.read_endpoints()
        self.agent = loop.run_until_complete(load_agent(model_path=str(MODEL), endpoints=self.endpoints))
        self.store: clinic_store.SQLTrackerStore = self.agent.tracker_store._tracker_store  # inside Rasa's FailSafe
        assert type(self.store) is clinic_store.SQLTrackerStore

    def read(self, sender: str) -> Optional[DialogueStateTracker]:
        """The conversation as Rasa's own store reads it from the file."""
        return self.loop.run_until_complete(RasaSQLTrackerStore._retrieve(self.store, sender, False))

    def use(self, store: clinic_store.SQLTrackerStore) -> None:
        """Rasa reads and saves with ``store`` from now on (another server on the same file)."""
        self.agent.tracker_store._tracker_store = store

    def play(self, visitors: int, after_turn: Callable[[str, int], None], seed: int = 7) -> int:
        """The bench's visitor scripts, one message at a time; ``after_turn(sender, turn)``."""
        source, turns = Visitors(seed=seed), 0
        for _ in range(visitors):
            script, sender, last = source.next(), uuid.uuid4().hex, []
            for n, (kind, value) in enumerate(script.steps):
                last = self.say(sender, kind, value, last)
                after_turn(sender, n)
                turns += 1
        return turns

    def say(self, sender: str, kind: str, value: str, last: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        text, metadata = rasa_message(kind, value, last)
        out = CollectingOutputChannel()
        message = UserMessage(text, out, sender, input_channel="rest", metadata=metadata)
        self.loop.run_until_complete(self.agent.handle_message(message))
        return out.messages

    def close(self) -> None:
        from clinic.rasa_runtime.patches.kept_action_session import close_sessions

        self.loop.run_until_complete(close_sessions())  # the loop's kept session to the action server
        self.stack.stop_all()


@pytest.fixture(scope="module")
def rasa(loop: asyncio.AbstractEventLoop) -> Iterator[Rasa]:
    if not MODEL.exists():
        pytest.fail(f"{MODEL} is missing: run `make train` (make test does it)")
    workdir = Path(tempfile.mkdtemp(prefix="tracker-cache-"))
    r = Rasa(loop, workdir)
    try:
        yield r
    finally:
        r.close()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def replays(monkeypatch) -> List[str]:
    """The conversations read from the database (events replayed into a new tracker) meanwhile."""
    seen: List[str] = []
    from_dict = DialogueStateTracker.from_dict.__func__
    monkeypatch.setattr(DialogueStateTracker, "from_dict",
                        classmethod(lambda cls, sender, *a, **k: seen.append(sender) or from_dict(cls, sender, *a, **k)))
    return seen


def test_every_turn_of_the_bench_visitors_is_served_what_a_read_of_the_database_gives(rasa: Rasa, replays):
    store = rasa.store
    kept_before: Dict[str, DialogueStateTracker] = {}
    checked = served = 0

    def after_turn(sender: str, turn: int) -> None:
        nonlocal checked, served
        known = store._known.get(sender)
        if turn == 0:
            # The first turn starts the session: its action_session_start is older than its
            # session_started, so a read leaves it out (Rasa selects the session by timestamp)
            # and the tracker in hand is not what a read gives: not kept.
            assert known is None or not known.servable
            return
        assert known.servable  # these visitors never start a second session: every other turn is kept
        if turn == 1:
            assert sender in replays  # read from the file
        else:  # given the tracker the previous turn kept, not a replay
            assert known.tracker is kept_before[sender] and sender not in replays
            served += 1
        kept_before[sender] = known.tracker
        assert_same_tracker(known.tracker, rasa.read(sender), rasa.agent.domain)
        replays.clear()
        checked += 1

    turns = rasa.play(14, after_turn)
    assert checked == turns - 14 and served == turns - 28 and turns > 120


@pytest.fixture
def second(rasa: Rasa) -> Iterator[clinic_store.SQLTrackerStore]:
    """Another Rasa server's store on the same file; Rasa saves with the first again afterwards."""
    yield clinic_store.SQLTrackerStore(domain=rasa.store.domain, dialect="sqlite", db=rasa.store.engine.url.database,
                                       password=rasa.stack.database_key)
    rasa.use(rasa.store)


def test_two_servers_taking_turns_on_one_conversation_each_catch_up_with_what_the_other_saved(rasa: Rasa, second, replays):
    first = rasa.store
    stores = [first, second]
    kept: Dict[int, Any] = {}

    def after_turn(sender: str, turn: int) -> None:
        rasa.use(stores[(turn + 1) % 2])  # the next message goes to the other server
        if turn == 0:  # the session's start: not kept (see above)
            return
        known = stores[turn % 2]._known[sender]
        assert known.servable
        if turn <= 2:  # the first turn each server kept: read from the file
            assert sender in replays
        else:  # the other server's turn came in between: its events applied to the kept tracker
            assert known.tracker is kept[turn - 2] and sender not in replays
        kept[turn] = known.tracker
        assert_same_tracker(known.tracker, rasa.read(sender), rasa.agent.domain)
        replays.clear()

    rasa.use(first)
    assert rasa.play(3, after_turn, seed=11) > 15


def new_session(rasa: Rasa, store: clinic_store.SQLTrackerStore, sender: str) -> None:
    """Another server starts a new session of the conversation (as a visitor back after hours)."""
    tracker = rasa.read(sender)
    for event in (ActionExecuted(ACTION_SESSION_START_NAME), SessionStarted(), ActionExecuted(ACTION_LISTEN_NAME),
                  UserUttered("hello again", {"name": "greet", "confidence": 1.0}), BotUttered("Welcome back")):
        tracker.update(event)
    rasa.loop.run_until_complete(store.save(tracker))


def insert_row(rasa: Rasa, sender: str, type_name: str, data: Dict[str, Any]) -> None:
    with encrypted_db.connect(rasa.store.engine.url.database) as conn:
        conn.execute("INSERT INTO events (sender_id, type_name, timestamp, data) VALUES (?, ?, ?, ?)",
                     (sender, type_name, data["timestamp"], json.dumps(data)))


def deleted_then_started_again(rasa: Rasa, store: clinic_store.SQLTrackerStore, sender: str) -> None:
    with encrypted_db.connect(rasa.store.engine.url.database) as conn:  # as the console's delete and purge do
        conn.execute("DELETE FROM events WHERE sender_id = ?", (sender,))
    rasa.use(store)
    last = rasa.say(sender, "say", "hello", [])
    rasa.say(sender, "say", "how much does it cost", last)


def last_row(rasa: Rasa, sender: str) -> Any:
    with rasa.store._cursor() as (_, cursor):
        return rasa.store._last(cursor, clinic_store._params(sender))


CHANGES = {  # what happens to a conversation after the first server's save: (change, caught up?)
    "nothing": (lambda rasa, store, sender: None, True),
    "another server's turn": (lambda rasa, store, sender: (rasa.use(store), rasa.say(sender, "say", "is it safe", [])), True),
    "another server's new session": (new_session, False),
    "a row Rasa's read skips (no event in it)": (
        lambda rasa, store, sender: insert_row(rasa, sender, "slot", {"timestamp": time.time(), "name": "age"}), False),
    "an event older than the session": (
        lambda rasa, store, sender: insert_row(
            rasa, sender, "slot", {"event": "slot", "timestamp": 1.0, "name": "age", "value": "40"}), False),
    "deleted, then started again": (deleted_then_started_again, False),
}


@pytest.mark.parametrize("change", CHANGES)
def test_a_kept_tracker_catches_up_only_when_that_gives_what_a_read_gives(rasa: Rasa, second, replays, change: str):
    sender = uuid.uuid4().hex
    rasa.use(rasa.store)
    last = rasa.say(sender, "say", "hello", [])
    rasa.say(sender, "say", "what are your hours", last)
    kept = rasa.store._known[sender].tracker
    make_change, caught_up = CHANGES[change]
    make_change(rasa, second, sender)
    replays.clear()
    tracker = rasa.loop.run_until_complete(rasa.store._retrieve(sender, False))  # the first server's next read
    assert (tracker is kept and sender not in replays) == caught_up
    assert sender in replays or tracker is kept
    assert_same_tracker(tracker, rasa.read(sender), rasa.agent.domain)
    known = rasa.store._known[sender]
    assert known.tracker is tracker and not known.servable and known.last == last_row(rasa, sender)


def test_a_conversation_deleted_by_the_console_starts_again_from_nothing(rasa: Rasa):
    sender = uuid.uuid4().hex
    last = rasa.say(sender, "say", "hello", [])
    rasa.say(sender, "say", "what are your hours", last)
    assert rasa.store._known[sender].servable
    with encrypted_db.connect(rasa.store.engine.url.database) as conn:  # as the console's delete and purge do
        conn.execute("DELETE FROM events WHERE sender_id = ?", (sender,))
    rasa.say(sender, "say", "how much does it cost", [])  # a new session: not kept
    rasa.say(sender, "say", "do you take insurance", [])
    read = rasa.read(sender)
    texts = [e["text"] for e in read.current_state(EventVerbosity.ALL)["events"] if e["event"] == "user"]
    assert texts == ["how much does it cost", "do you take insurance"]
    assert_same_tracker(rasa.store._known[sender].tracker, read, rasa.agent.domain)
