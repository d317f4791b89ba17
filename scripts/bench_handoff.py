"""How fast a staff member's message reaches the visitor in a live chat (prints figures).

Starts the real stack in a temporary folder (Rasa, action server, web app; staffed round the
clock), opens VISITORS conversations that ask for a person and agree, claims each one as a staff
member does (clinic.rules.handoff + the Rasa HTTP API, what the console's claim does), and then, for
each message a staff member sends, measures the time from "stored in the tracker" to "the
visitor's long poll (GET /api/updates, what the widget uses) returned it".

    PYTHONPATH=. .venv/bin/python scripts/bench_handoff.py [--visitors 10] [--messages 5]
"""

import argparse
import random
import asyncio
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, List

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clinic.storage import db  # noqa: E402
from clinic.rules import handoff
from clinic.rasa_runtime.rasa_client import RasaClient  # noqa: E402
from tests.stack import Stack, button, conversation_id, press, say  # noqa: E402


def ask_for_a_person(stack: Stack) -> requests.Session:
    s = requests.Session()
    r = say(s, stack, "can I talk to a real person please")
    r = press(s, stack, button(r, "Yes"))
    assert r.json()["handoff"]["mode"] == "waiting", r.json()
    return s


def poll_until(stack: Stack, s: requests.Session, text: str, after: float, version: int, found: Dict[str, float]) -> None:
    while True:
        r = s.get(f"{stack.web_url}/api/updates", params={"after": after, "version": version}, timeout=60)
        body = r.json()
        version = body["handoff"]["version"]
        for m in body["messages"]:
            after = max(after, m.get("ts") or after)
            if m.get("text") == text:
                found[text] = time.time()
                return


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--visitors", type=int, default=10)
    parser.add_argument("--messages", type=int, default=5)
    args = parser.parse_args()
    stack = Stack(Path(tempfile.mkdtemp(prefix="bench-handoff-")))
    stack.start_all()
    try:
        engine = db.get_engine(stack.clinic_db_url)
        rasa = RasaClient(stack.rasa_url, token=stack.rasa_token)
        loop = asyncio.new_event_loop()
        sessions = [ask_for_a_person(stack) for _ in range(args.visitors)]
        chats: List[Dict[str, Any]] = []
        for n, s in enumerate(sessions):
            cid = conversation_id(s, stack)
            row = handoff.active(engine, cid)
            row = handoff.change(engine, row["id"], "claim", "waiting", staff_id=n + 1, staff_name=f"Staff{n}")
            loop.run_until_complete(rasa.append_events(cid, handoff.joined_events(n + 1, f"Staff{n}", "Clinic")))
            chats.append({"cid": cid, "row": row, "session": s})
        latencies: List[float] = []
        for i in range(args.messages):
            for chat in chats:
                text = f"message {i} to {chat['cid'][:8]}"
                state = chat["session"].get(f"{stack.web_url}/api/history", timeout=30).json()
                after = max([m.get("ts") or 0 for m in state["messages"]] + [0])
                found: Dict[str, float] = {}
                t = threading.Thread(target=poll_until, args=(stack, chat["session"], text, after, state["handoff"]["version"], found))
                t.start()
                time.sleep(random.uniform(0.2, 0.8))  # the poll is waiting; staff write at any moment of it
                sent = time.time()
                event = handoff.staff_message_event(1, "Staff", text)
                loop.run_until_complete(rasa.append_events(chat["cid"], [event]))
                handoff.touch(engine, chat["row"]["id"])
                t.join(timeout=60)
                latencies.append(found[text] - sent)
        loop.run_until_complete(rasa.close())
        latencies.sort()
        pct = lambda p: latencies[min(int(p * len(latencies)), len(latencies) - 1)]  # noqa: E731
        print(f"staff message -> visitor's long poll, {len(latencies)} messages over {len(chats)} live chats:")
        print(f"  median {statistics.median(latencies) * 1000:.0f} ms, p95 {pct(0.95) * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms")
    finally:
        stack.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
