"""The visitor side of a live handoff: the web app with a fake Rasa and a real clinic DB.

The fake Rasa keeps a tracker like the real one: a paused tracker logs the
visitor's message and answers nothing. "Staff" actions are the console's:
``handoff.change`` then the tracker events, then ``touch`` for a message.
"""

import json
import threading
import time
from typing import Any, Dict, List

import pytest
from sanic import Sanic

from clinic.storage import db
from clinic.rules import handoff
from clinic.rasa_runtime.rasa_client import RasaUnavailable
from clinic.settings import get_settings
from clinic.web import signing
from clinic.web.app import create_app
from clinic.web.live_chat import VISITOR_LEFT_TEXT

Sanic.test_mode = True

CRISIS_REPLY = "If you are thinking about ending your life, call or text 988 now, or call 911 in an emergency."


class TrackerRasa:
    """A Rasa that keeps each conversation's events, pauses and resumes, and records every call."""

    def __init__(self) -> None:
        self.trackers: Dict[str, List[Dict[str, Any]]] = {}
        self.calls: List[tuple] = []
        self.down = False

    def _tracker(self, cid: str) -> List[Dict[str, Any]]:
        return self.trackers.setdefault(cid, [])

    def paused(self, cid: str) -> bool:
        state = [e["event"] for e in self._tracker(cid) if e["event"] in ("pause", "resume")]
        return bool(state) and state[-1] == "pause"

    def _check(self) -> None:
        if self.down:
            raise RasaUnavailable("connection refused")

    async def send(self, cid: str, text: str, metadata: dict = None) -> List[Dict[str, Any]]:
        self._check()
        self.calls.append(("send", text))
        tracker = self._tracker(cid)
        tracker.append({"event": "user", "text": text, "timestamp": time.time(), "metadata": metadata or {}})
        if self.paused(cid):
            return []
        reply = CRISIS_REPLY if "end my life" in text else f"The assistant answers: {text}"
        tracker.append({"event": "bot", "text": reply, "timestamp": time.time(), "metadata": {}, "data": {}})
        return [{"recipient_id": cid, "text": reply}]

    async def events(self, cid: str) -> List[Dict[str, Any]]:
        self._check()
        self.calls.append(("events", cid))
        return list(self._tracker(cid))

    async def parse(self, text: str) -> Dict[str, Any]:
        self._check()
        self.calls.append(("parse", text))
        if "end my life" in text:
            return {"text": text, "intent": {"name": "crisis", "confidence": 1.0}, "safety": {"response": "takeover"}}
        if "nothing helps" in text:  # the safety layer unsure: a check-in, which the person makes
            return {"text": text, "intent": {"name": "crisis", "confidence": 1.0}, "safety": {"response": "check_in"}}
        if "chest" in text:
            return {"text": text, "intent": {"name": "urgent_medical", "confidence": 1.0}, "safety": {}}
        return {"text": text, "intent": {"name": "faq", "confidence": 0.9}}

    async def append_events(self, cid: str, events: List[Dict[str, Any]]) -> None:
        self._check()
        self.calls.append(("append", [e.get("metadata", {}).get("handoff") or e["event"] for e in events]))
        self._tracker(cid).extend(events)

    def staff_appends(self, cid: str, events: List[Dict[str, Any]]) -> None:
        """What the console writes (not one of the web app's calls)."""
        self._tracker(cid).extend(events)


STAFF_ID, STAFF_NAME = 7, "Dana"


@pytest.fixture
def rasa() -> TrackerRasa:
    return TrackerRasa()


@pytest.fixture
def app(clinic_env, rasa):
    app = create_app(get_settings(), rasa=rasa, name=f"web_handoff_{id(rasa)}")
    app.config.UPDATES_WAIT_S = 3.0
    app.config.UPDATES_CHECK_S = 0.05
    app.config.UPDATES_SETTLE_S = 1.0
    return app


@pytest.fixture
def engine(clinic_env):
    return db.get_engine(get_settings().clinic_db_url)


def post(app, path: str, body: Any = None, cookie: str = None):
    return app.test_client.post(
        path, data=json.dumps(body if body is not None else {}),
        headers={"content-type": "application/json"}, cookies={"cid": cookie} if cookie else {},
    )


def poll(app, cookie: str, after: float, version: int, **extra: Any):
    query = "&".join(f"{k}={v}" for k, v in {"after": after, "version": version, **extra}.items())
    _, resp = app.test_client.get(f"/api/updates?{query}", cookies={"cid": cookie}, timeout=15)
    return resp


class Visitor:
    """One conversation: its cookie and id."""

    def __init__(self, app) -> None:
        _, first = post(app, "/api/chat", {"message": "hello"})
        assert first.status == 200
        self.cookie = first.cookies["cid"]
        self.cid = signing.read_conversation_id(get_settings().secret_key, self.cookie)
        self.first = first


def waiting(engine, visitor: Visitor) -> Dict[str, Any]:
    """What the assistant's action does when the visitor says yes to a person."""
    return handoff.request_live(engine, visitor.cid, "visitor_request", urgent=False)


def claim(engine, rasa: TrackerRasa, visitor: Visitor) -> Dict[str, Any]:
    row = handoff.active(engine, visitor.cid)
    row = handoff.change(engine, row["id"], "claim", handoff.WAITING, staff_id=STAFF_ID, staff_name=STAFF_NAME)
    rasa.staff_appends(visitor.cid, handoff.joined_events(STAFF_ID, STAFF_NAME, "Test Clinic"))
    return row


def staff_says(engine, rasa: TrackerRasa, visitor: Visitor, text: str) -> None:
    row = handoff.active(engine, visitor.cid)
    rasa.staff_appends(visitor.cid, [handoff.staff_message_event(STAFF_ID, STAFF_NAME, text)])
    handoff.touch(engine, row["id"])


def later(seconds: float, action) -> threading.Thread:
    """Acts as the console would, from another process, while a request is held open."""
    timer = threading.Timer(seconds, action)
    timer.start()
    return timer


# --- who answers, in every answer ----------------------------------------------------------


def test_chat_and_history_answers_say_who_answers(app, engine, rasa):
    visitor = Visitor(app)
    assert visitor.first.json["handoff"] == {"mode": "assistant", "agent": None, "position": None, "version": 0}
    other = Visitor(app)
    waiting(engine, other)
    waiting(engine, visitor)
    _, resp = post(app, "/api/chat", {"message": "what does it cost"}, visitor.cookie)
    assert resp.json["messages"][0]["text"] == "The assistant answers: what does it cost"  # still answered
    state = resp.json["handoff"]
    assert state["mode"] == "waiting" and state["position"] == 2 and state["agent"] is None
    assert "request" not in state
    claim(engine, rasa, visitor)
    _, history = app.test_client.get("/api/history", cookies={"cid": visitor.cookie})
    assert history.json["handoff"]["mode"] == "person" and history.json["handoff"]["agent"] == STAFF_NAME
    assert history.json["handoff"]["version"] > state["version"]
    joined = history.json["messages"][-1]
    assert joined["role"] == "staff" and joined["agent"] == STAFF_NAME and "has joined the chat" in joined["text"]
    assert [m["role"] for m in history.json["messages"]] == ["visitor", "bot", "visitor", "bot", "staff"]


def test_a_message_in_a_live_chat_goes_to_the_person_and_wakes_the_staff_page(app, engine, rasa):
    visitor = Visitor(app)
    waiting(engine, visitor)
    claim(engine, rasa, visitor)
    rasa.trackers[visitor.cid].insert(-1, {"event": "pause"})  # joined_events pause the tracker
    before = handoff.visitor_state(engine, visitor.cid)["version"]
    rasa.calls.clear()
    _, resp = post(app, "/api/chat", {"message": "my question for you", "id": "m-1"}, visitor.cookie)
    assert resp.status == 200
    assert resp.json["messages"] == []  # nobody answers automatically
    assert resp.json["handoff"]["mode"] == "person" and resp.json["handoff"]["version"] == before + 1
    assert rasa.calls == [("parse", "my question for you"), ("send", "my question for you")]
    assert rasa.trackers[visitor.cid][-1]["text"] == "my question for you"  # in the transcript
    # a retry of the same message is not sent twice
    _, again = post(app, "/api/chat", {"message": "my question for you", "id": "m-1"}, visitor.cookie)
    assert again.status == 200 and [c for c in rasa.calls if c[0] == "send"] == [("send", "my question for you")]


def test_a_button_press_in_a_live_chat_goes_to_the_person_with_its_title(app, engine, rasa):
    visitor = Visitor(app)
    secret = get_settings().secret_key
    waiting(engine, visitor)
    claim(engine, rasa, visitor)
    button = {"payload": "/affirm", "sig": signing.sign_payload(secret, visitor.cid, "/affirm", "Yes"), "title": "Yes"}
    _, resp = post(app, "/api/chat", {"button": button}, visitor.cookie)
    assert resp.status == 200 and resp.json["messages"] == []
    assert rasa.trackers[visitor.cid][-1]["metadata"] == {"display": "Yes"}


def test_a_crisis_in_a_live_chat_gets_the_resources_at_once(app, engine, rasa):
    visitor = Visitor(app)
    waiting(engine, visitor)
    claim(engine, rasa, visitor)
    assert rasa.paused(visitor.cid)
    rasa.calls.clear()
    _, resp = post(app, "/api/chat", {"message": "i want to end my life"}, visitor.cookie)
    assert resp.status == 200
    assert [m["text"] for m in resp.json["messages"]] == [CRISIS_REPLY]
    assert rasa.calls == [
        ("parse", "i want to end my life"),
        ("append", ["resume"]),
        ("send", "i want to end my life"),
        ("append", ["pause"]),
    ]
    assert rasa.paused(visitor.cid)  # the person still holds the chat
    assert resp.json["handoff"]["mode"] == "person"


def test_an_urgent_symptom_in_a_live_chat_gets_the_assistant_too(app, engine, rasa):
    visitor = Visitor(app)
    waiting(engine, visitor)
    claim(engine, rasa, visitor)
    rasa.calls.clear()
    _, resp = post(app, "/api/chat", {"message": "my chest really hurts after the dose"}, visitor.cookie)
    assert resp.status == 200 and resp.json["messages"]
    assert [c[0] for c in rasa.calls] == ["parse", "append", "send", "append"]
    assert rasa.paused(visitor.cid)


def test_where_the_safety_layer_is_unsure_the_person_in_the_chat_asks(app, engine, rasa):
    visitor = Visitor(app)
    waiting(engine, visitor)
    claim(engine, rasa, visitor)
    rasa.calls.clear()
    _, resp = post(app, "/api/chat", {"message": "honestly nothing helps"}, visitor.cookie)
    assert resp.status == 200 and resp.json["messages"] == []
    assert rasa.calls == [("parse", "honestly nothing helps"), ("send", "honestly nothing helps")]
    assert rasa.paused(visitor.cid)


def test_rasa_down_in_a_live_chat_is_a_clear_503(app, engine, rasa):
    visitor = Visitor(app)
    waiting(engine, visitor)
    claim(engine, rasa, visitor)
    rasa.down = True
    _, resp = post(app, "/api/chat", {"message": "hello?"}, visitor.cookie)
    assert resp.status == 503 and resp.json["error"] == "assistant_unavailable"


# --- the long poll ---------------------------------------------------------------------------


def test_the_long_poll_brings_a_staff_message_as_soon_as_it_is_stored(app, engine, rasa):
    visitor = Visitor(app)
    waiting(engine, visitor)
    claim(engine, rasa, visitor)
    seen = handoff.visitor_state(engine, visitor.cid)
    after = time.time()
    later(0.3, lambda: staff_says(engine, rasa, visitor, "Hi, I'm Dana. How can I help?"))
    resp = poll(app, visitor.cookie, after, seen["version"])
    assert resp.status == 200
    assert resp.json["messages"] == [
        {"role": "staff", "agent": STAFF_NAME, "text": "Hi, I'm Dana. How can I help?", "buttons": [],
         "ts": rasa.trackers[visitor.cid][-1]["timestamp"]}
    ]
    assert resp.json["handoff"]["version"] == seen["version"] + 1


def test_the_long_poll_brings_the_claim_with_its_joined_line(app, engine, rasa):
    """The console changes the state before it writes the joined line: the answer waits for the line."""
    visitor = Visitor(app)
    row = waiting(engine, visitor)
    after = time.time()

    def console_claims() -> None:
        handoff.change(engine, row["id"], "claim", handoff.WAITING, staff_id=STAFF_ID, staff_name=STAFF_NAME)
        time.sleep(0.2)  # the console's call to Rasa, in flight
        rasa.staff_appends(visitor.cid, handoff.joined_events(STAFF_ID, STAFF_NAME, "Test Clinic"))

    later(0.2, console_claims)
    resp = poll(app, visitor.cookie, after, row["version"], position=1)
    assert resp.json["handoff"] == {
        "mode": "person", "agent": STAFF_NAME, "position": None, "version": row["version"] + 1
    }
    [joined] = resp.json["messages"]
    assert joined["role"] == "staff"
    assert joined["text"] == f"{STAFF_NAME} from the Test Clinic team has joined the chat."


def test_the_long_poll_brings_the_hand_back(app, engine, rasa):
    visitor = Visitor(app)
    waiting(engine, visitor)
    row = claim(engine, rasa, visitor)
    after = time.time()

    def hand_back() -> None:
        handoff.change(engine, row["id"], "hand_back", handoff.LIVE)
        rasa.staff_appends(visitor.cid, handoff.resumed_events(STAFF_NAME, closed=False))

    later(0.2, hand_back)
    resp = poll(app, visitor.cookie, after, row["version"])
    assert resp.json["handoff"]["mode"] == "assistant"
    assert [m["role"] for m in resp.json["messages"]] == ["bot"]
    assert resp.json["messages"][0]["text"].startswith(f"{STAFF_NAME} has handed the chat back")


def test_the_long_poll_does_not_repeat_the_assistants_answers(app, engine, rasa):
    visitor = Visitor(app)
    after = time.time()
    row = waiting(engine, visitor)
    post(app, "/api/chat", {"message": "is it safe"}, visitor.cookie)  # answered meanwhile, in that answer
    claim(engine, rasa, visitor)
    resp = poll(app, visitor.cookie, after, row["version"])
    assert [m["role"] for m in resp.json["messages"]] == ["staff"]


def test_the_long_poll_wakes_on_a_new_place_in_line(app, engine, rasa):
    ahead, visitor = Visitor(app), Visitor(app)
    first = waiting(engine, ahead)
    row = waiting(engine, visitor)
    later(0.2, lambda: handoff.change(engine, first["id"], "cancel", handoff.WAITING))
    resp = poll(app, visitor.cookie, time.time(), row["version"], position=2)
    assert resp.json["handoff"]["position"] == 1 and resp.json["messages"] == []


def test_without_news_the_long_poll_ends_empty_and_reads_no_transcript(app, engine, rasa):
    app.config.UPDATES_WAIT_S = 0.4
    visitor = Visitor(app)
    row = waiting(engine, visitor)
    rasa.calls.clear()
    started = time.monotonic()
    resp = poll(app, visitor.cookie, time.time(), row["version"], position=1)
    assert resp.status == 200
    assert resp.json == {"handoff": {"mode": "waiting", "agent": None, "position": 1, "version": row["version"]},
                         "messages": []}
    assert time.monotonic() - started >= 0.4  # it waited for news
    assert rasa.calls == []


def test_the_long_poll_without_a_conversation(app):
    _, resp = app.test_client.get("/api/updates?after=0&version=0")
    assert resp.status == 200
    assert resp.json == {
        "handoff": {"mode": "assistant", "agent": None, "position": None, "version": 0}, "messages": []
    }


@pytest.mark.parametrize(
    "query, reason",
    [
        ("", "'after' is missing"),
        ("after=1", "'version' is missing"),
        ("after=yesterday&version=1", "'after' must be a number"),
        ("after=1&version=1.5", "'version' must be a whole number"),
        ("after=-5&version=1", "0 or more"),
        ("after=nan&version=1", "0 or more"),
        ("after=inf&version=1", "0 or more"),
        ("after=1&version=1&position=first", "'position' must be a whole number"),
    ],
)
def test_bad_long_poll_parameters_get_a_400_with_the_reason(app, query, reason):
    visitor = Visitor(app)
    _, resp = app.test_client.get(f"/api/updates?{query}", cookies={"cid": visitor.cookie})
    assert resp.status == 400 and resp.json["error"] == "invalid_parameter"
    assert reason in resp.json["detail"]


def test_the_long_poll_when_rasa_is_down(app, engine, rasa):
    visitor = Visitor(app)
    row = waiting(engine, visitor)
    claim(engine, rasa, visitor)
    rasa.down = True
    resp = poll(app, visitor.cookie, time.time(), row["version"])
    assert resp.status == 503  # the widget asks again: the message is not skipped


def test_the_long_poll_has_cors_for_allowed_sites(clinic_env, monkeypatch, rasa):
    from clinic import settings as settings_module

    monkeypatch.setenv("WIDGET_ALLOWED_ORIGINS", "https://www.clinic.example")
    settings_module.get_settings.cache_clear()
    app = create_app(get_settings(), rasa=rasa, name="web_handoff_cors")
    _, resp = app.test_client.get("/api/updates?after=0&version=0", headers={"origin": "https://www.clinic.example"})
    assert resp.headers["access-control-allow-origin"] == "https://www.clinic.example"
    assert resp.headers["access-control-allow-credentials"] == "true"
    _, pre = app.test_client.options("/api/handoff/cancel", headers={"origin": "https://www.clinic.example"})
    assert pre.status == 204 and pre.headers["access-control-allow-origin"] == "https://www.clinic.example"


# --- leaving the queue, starting over -----------------------------------------------------------


def test_leaving_the_queue(app, engine, rasa):
    visitor = Visitor(app)
    row = waiting(engine, visitor)
    _, resp = post(app, "/api/handoff/cancel", {}, visitor.cookie)
    assert resp.status == 200
    assert [m["text"] for m in resp.json["messages"]] == [handoff.CANCELLED_TEXT]
    assert resp.json["handoff"]["mode"] == "assistant"
    assert handoff.get(engine, row["id"])["status"] == handoff.CANCELLED
    cancelled = rasa.trackers[visitor.cid][-1]
    assert cancelled["metadata"] == {"handoff": "cancelled"}
    assert resp.json["messages"][0]["ts"] == cancelled["timestamp"]  # the same line as in the transcript
    _, again = post(app, "/api/handoff/cancel", {}, visitor.cookie)
    assert again.status == 409 and again.json["error"] == "not_waiting"
    assert "not waiting" in again.json["detail"] and again.json["handoff"]["mode"] == "assistant"


def test_leaving_the_queue_is_refused_once_a_person_has_joined(app, engine, rasa):
    visitor = Visitor(app)
    waiting(engine, visitor)
    row = claim(engine, rasa, visitor)
    _, resp = post(app, "/api/handoff/cancel", {}, visitor.cookie)
    assert resp.status == 409 and "already joined" in resp.json["detail"]
    assert resp.json["handoff"]["mode"] == "person"
    assert handoff.get(engine, row["id"])["status"] == handoff.LIVE
    _, nobody = post(app, "/api/handoff/cancel", {})
    assert nobody.status == 409


def test_starting_over_while_waiting_cancels_the_wait(app, engine, rasa):
    visitor = Visitor(app)
    row = waiting(engine, visitor)
    _, resp = post(app, "/api/reset", {}, visitor.cookie)
    assert resp.status == 200 and resp.json["handoff"]["mode"] == "assistant"
    assert resp.cookies["cid"] != visitor.cookie
    assert handoff.get(engine, row["id"])["status"] == handoff.CANCELLED
    assert handoff.queue(engine) == []


def test_starting_over_in_a_live_chat_closes_it_and_tells_the_staff_member(app, engine, rasa):
    visitor = Visitor(app)
    waiting(engine, visitor)
    row = claim(engine, rasa, visitor)
    rasa.calls.clear()
    _, resp = post(app, "/api/reset", {}, visitor.cookie)
    assert resp.status == 200
    assert handoff.get(engine, row["id"])["status"] == handoff.CLOSED
    assert rasa.calls == [("append", ["resume", "visitor_left"])]
    left = rasa.trackers[visitor.cid][-1]
    assert left["text"] == VISITOR_LEFT_TEXT and left["metadata"] == {"handoff": "visitor_left"}
    assert not rasa.paused(visitor.cid)
    # the new conversation is the assistant's
    _, chat = post(app, "/api/chat", {"message": "hello"}, resp.cookies["cid"])
    assert chat.json["handoff"]["mode"] == "assistant" and chat.json["messages"]


# --- the real stack: Rasa, the action server and the web app ------------------------------------


def updates_in_background(session, stack, after: float, state: Dict[str, Any]) -> Dict[str, Any]:
    """Opens the visitor's long poll in a thread; ``result["resp"]`` once it answers."""
    import requests

    result: Dict[str, Any] = {}
    params = {"after": after, "version": state["version"]}
    if state.get("position"):
        params["position"] = state["position"]
    cookies = requests.utils.dict_from_cookiejar(session.cookies)

    def run() -> None:
        result["resp"] = requests.get(f"{stack.web_url}/api/updates", params=params, cookies=cookies, timeout=60)

    result["thread"] = threading.Thread(target=run)
    result["thread"].start()
    return result


def answered(result: Dict[str, Any]) -> Any:
    result["thread"].join(timeout=40)
    assert not result["thread"].is_alive(), "the long poll never answered"
    return result["resp"]


def test_a_live_handoff_on_the_real_stack(stack):
    import requests

    from tests.stack import conversation_id, say
    from tests.widget_driver import StaffSide

    visitor = requests.Session()
    offer = say(visitor, stack, "can I talk to a person")
    assert offer.status_code == 200 and offer.json()["handoff"]["mode"] == "assistant"  # asked first
    queued = say(visitor, stack, "yes")
    state = queued.json()["handoff"]
    assert state["mode"] == "waiting" and state["position"] >= 1, queued.json()
    cid = conversation_id(visitor, stack)
    staff = StaffSide(stack)
    try:
        poll = updates_in_background(visitor, stack, queued.json()["messages"][-1]["ts"], state)
        staff.claim(cid)
        resp = answered(poll)
        assert resp.status_code == 200
        assert resp.json()["handoff"]["mode"] == "person", (state, resp.json())
        state = resp.json()["handoff"]
        assert state["agent"] == "Dana"
        assert [m["role"] for m in resp.json()["messages"]] == ["staff"]

        after = resp.json()["messages"][-1]["ts"]
        poll = updates_in_background(visitor, stack, after, state)
        staff.say(cid, "Hi, I'm Dana. What can I do for you?")
        resp = answered(poll)
        assert [(m["role"], m["agent"], m["text"]) for m in resp.json()["messages"]] == [
            ("staff", "Dana", "Hi, I'm Dana. What can I do for you?")
        ]
        state = resp.json()["handoff"]

        # the visitor writes: the person gets it, the assistant stays quiet
        mine = say(visitor, stack, "what dose would I start on")
        assert mine.status_code == 200 and mine.json()["messages"] == []
        assert mine.json()["handoff"]["mode"] == "person" and mine.json()["handoff"]["version"] > state["version"]
        # a crisis still gets the resources at once, and the person keeps the chat
        crisis = say(visitor, stack, "i want to end my life")
        assert any("988" in m["text"] for m in crisis.json()["messages"]), crisis.json()
        assert crisis.json()["handoff"]["mode"] == "person"
        assert say(visitor, stack, "sorry, I'm ok now").json()["messages"] == []  # paused again
        history = visitor.get(f"{stack.web_url}/api/history", timeout=30).json()
        assert history["messages"][-1] == {**history["messages"][-1], "role": "visitor", "text": "sorry, I'm ok now"}

        state = history["handoff"]
        poll = updates_in_background(visitor, stack, history["messages"][-1]["ts"], state)
        staff.hand_back(cid)
        resp = answered(poll)
        assert resp.json()["handoff"]["mode"] == "assistant"
        assert resp.json()["messages"][-1]["text"].startswith("Dana has handed the chat back")
    finally:
        staff.end(cid)
    faq = say(visitor, stack, "how much does it cost")
    assert faq.json()["messages"] and faq.json()["handoff"]["mode"] == "assistant"
    assert "all-inclusive" in " ".join(m["text"] for m in faq.json()["messages"])  # the assistant again: utter_faq/pricing


def test_a_stopping_web_app_answers_its_open_long_polls_at_once(stack):
    import requests

    from tests.stack import conversation_id, say
    from tests.widget_driver import StaffSide

    visitor = requests.Session()
    say(visitor, stack, "hello")
    cid = conversation_id(visitor, stack)
    staff = StaffSide(stack)
    row = staff.queue(cid)
    try:
        poll = updates_in_background(visitor, stack, 0, {"version": row["version"]})
        time.sleep(0.5)  # let the poll reach the server (not a measure of anything)
        web = stack.procs["web"]
        stack.stop("web")
        resp = answered(poll)
        assert resp.status_code == 503 and resp.json()["error"] == "restarting"
        assert web.returncode == 0
    finally:
        staff.end(cid)
        if "web" not in stack.procs:
            stack.start("web")
        stack.wait_ready()
