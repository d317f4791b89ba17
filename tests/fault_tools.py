"""Tools of the hardening tests (tests/test_bad_input.py, tests/test_faults.py): a visitor
that remembers the bot's last answer, the eligible pre-screen as steps, SIGKILL and restart of
one process of the test stack, another process holding the clinic DB's write lock, and what
the stores hold about a conversation."""

import json
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import requests

from tests import encrypted_db
from tests.prescreen_walk import CONTACT, ELIGIBLE, Step  # noqa: F401  (CONTACT: for the tests)
from tests.stack import Stack, conversation_id


class Visitor:
    """One browser's side of the chat: its cookie and the bot's last answer (for its buttons)."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.session = requests.Session()
        self.last: Optional[requests.Response] = None
        self.sent: List[str] = []  # what reached the assistant, as the tracker should hold it
        self._ids = 0

    def post(self, body: Dict[str, Any], timeout: float = 60) -> requests.Response:
        return self.session.post(f"{self.stack.web_url}/api/chat", json=body, timeout=timeout)

    def next_id(self) -> str:
        self._ids += 1
        return f"m-{self._ids}"

    def say(self, text: str, message_id: Optional[str] = None) -> requests.Response:
        body: Dict[str, Any] = {"message": text, "id": message_id or self.next_id()}
        response = self.post(body)
        if response.status_code == 200:
            self.last = response
        return response

    def button(self, title: str) -> Dict[str, str]:
        assert self.last is not None, "no answer yet"
        for message in self.last.json()["messages"]:
            for b in message["buttons"]:
                if b["title"] == title:
                    return b
        raise AssertionError(f"no button {title!r} in {self.last.json()}")

    def press(self, title: str, message_id: Optional[str] = None) -> requests.Response:
        b = self.button(title)
        body = {"button": {"payload": b["payload"], "sig": b["sig"], "title": b["title"]}, "id": message_id or self.next_id()}
        response = self.post(body)
        if response.status_code == 200:
            self.last = response
        return response

    def step(self, step: "Step", message_id: Optional[str] = None) -> requests.Response:
        kind, value, _ = step
        return self.say(value, message_id) if kind == "say" else self.press(value, message_id)

    @property
    def cid(self) -> str:
        return conversation_id(self.session, self.stack)

    def text(self) -> str:
        assert self.last is not None
        return " ".join(m["text"] for m in self.last.json()["messages"])


# An eligible visitor's pre-screen, from the first question to the referral (tests/prescreen_walk.py).
PRESCREEN: List[Step] = ELIGIBLE


def run_steps(visitor: Visitor, steps: List[Step]) -> None:
    for step in steps:
        response = visitor.step(step)
        assert response.status_code == 200, (step, response.status_code, response.text)
        assert step[2] in visitor.text(), (step, visitor.text())


# --- processes ------------------------------------------------------------------------


def kill(stack: Stack, name: str) -> None:
    """SIGKILL: no shutdown of any kind, as a crash or the OOM killer leaves it."""
    proc = stack.procs.pop(name)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def restart(stack: Stack, name: str) -> float:
    """Starts the process again; the seconds until every process of the stack answers."""
    started = time.monotonic()
    if name not in stack.procs:
        stack.start(name)
    stack.wait_ready()
    return time.monotonic() - started


def ensure_running(stack: Stack) -> None:
    """Whatever a failed test left down is started again (the stack is shared by the session)."""
    for name in ("actions", "rasa", "web"):
        proc = stack.procs.get(name)
        if proc is None or proc.poll() is not None:
            stack.procs.pop(name, None)
            stack.start(name)
    stack.wait_ready()


# --- what the stores hold ---------------------------------------------------------------


def tracker_events(stack: Stack, cid: str) -> List[Dict[str, Any]]:
    with encrypted_db.connect(stack.var_dir / "tracker.db") as conn:
        rows = conn.execute("select data from events where sender_id = ? order by id", (cid,)).fetchall()
    return [json.loads(r[0]) for r in rows]


def user_texts(stack: Stack, cid: str) -> List[str]:
    """What the visitor said, in order, as Rasa stored it (a button as its payload)."""
    return [e.get("text") for e in tracker_events(stack, cid) if e.get("event") == "user"]


def referral_rows(stack: Stack, cid: str) -> List[Tuple[str, str]]:
    with encrypted_db.connect(stack.var_dir / "clinic.db") as conn:
        return conn.execute(
            "select reference, outcome from referrals where conversation_id = ?", (cid,)
        ).fetchall()


def integrity_check(path: Path) -> str:
    with encrypted_db.connect(path) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


# --- another process holding the clinic DB's write lock -----------------------------------

_HOLDER = r"""
import sys
from tests import encrypted_db
conn = encrypted_db.connect(sys.argv[1], timeout=30, isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()  # until the test closes our stdin
conn.execute("ROLLBACK")
conn.close()
"""


@contextmanager
def write_lock_held(db_path: Path) -> Iterator[subprocess.Popen]:
    """Another process holds an exclusive lock on the SQLite file until the block ends."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(db_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.strip() == "locked", "the lock holder did not get the lock"
        yield proc
    finally:
        if proc.stdin:
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
