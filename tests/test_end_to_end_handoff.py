"""The assistant's side of a live handoff through the real Rasa server and action server:
consent, the live queue, a callback request out of hours, and the tracker events a
person's joining, messages and hand-back leave (appended over Rasa's HTTP API as the
console does), after which the assistant answers again and a crisis still wins."""

import asyncio
from typing import Any, Awaitable, Callable, List

import requests

from clinic.storage import db
from clinic.rules import handoff
from clinic.storage.crypto import decrypt_json
from clinic.rasa_runtime.rasa_client import RasaClient
from clinic.settings import get_settings, load_encryption_key, public_facts
from tests.stack import Stack, button, conversation_id, press, say
from tests.test_end_to_end import faq_answer


def faq_text(key: str) -> str:
    """The FAQ answer as the visitor sees it (the clinic's facts filled in)."""
    return faq_answer(key).format(**public_facts(get_settings()))


def texts(response: requests.Response) -> str:
    assert response.status_code == 200, response.text
    return " ".join(m["text"] for m in response.json()["messages"])


def rasa(stack: Stack, call: Callable[[RasaClient], Awaitable[Any]]) -> Any:
    async def go() -> Any:
        client = RasaClient(stack.rasa_url, token=stack.rasa_token)
        try:
            return await call(client)
        finally:
            await client.close()

    return asyncio.run(go())


def replies(stack: Stack, cid: str, text: str) -> List[str]:
    """What the assistant answers when a message reaches Rasa's webhook directly."""
    return [m.get("text", "") for m in rasa(stack, lambda c: c.send(cid, text))]


def in_the_queue(stack: Stack) -> tuple:
    """A visitor who asked for a person and said yes: (session, conversation id, request row)."""
    s = requests.Session()
    offer = say(s, stack, "can i talk to a person please")
    assert "They'll see our conversation so far" in texts(offer)
    queued = texts(press(s, stack, button(offer, "Yes")))
    assert "in line" in queued and "988" in queued
    cid = conversation_id(s, stack)
    row = handoff.active(stack.clinic_engine(), cid)
    assert row is not None and (row["status"], row["reason"], row["urgent"]) == ("waiting", "visitor_request", False)
    return s, cid, row


def claimed(stack: Stack, cid: str, row: dict) -> None:
    """A staff member claims the chat and says hello, as the console does."""
    handoff.change(stack.clinic_engine(), row["id"], "claim", handoff.WAITING, staff_id=7, staff_name="Ana")
    rasa(stack, lambda c: c.append_events(cid, handoff.joined_events(7, "Ana", "Daytryp RX")))
    assert replies(stack, cid, "hello? is someone there") == []  # paused: the assistant stays quiet
    rasa(stack, lambda c: c.append_events(cid, [handoff.staff_message_event(7, "Ana", "Hi, I'm Ana. How can I help?")]))


def test_a_second_request_while_waiting_gives_the_place_in_line(stack):
    s, cid, _ = in_the_queue(stack)
    again = texts(say(s, stack, "i want to talk to a human"))
    assert "already in line" in again
    assert len(db.handoff_requests_for(stack.clinic_engine(), cid)) == 1


def test_no_to_a_person_and_the_assistant_goes_on(stack):
    s = requests.Session()
    offer = say(s, stack, "can i speak with someone")
    declined = texts(press(s, stack, button(offer, "No")))
    assert "no problem" in declined
    assert db.handoff_requests_for(stack.clinic_engine(), conversation_id(s, stack)) == []


def test_after_the_person_hands_back_the_assistant_answers_an_faq(stack):
    _, cid, row = in_the_queue(stack)
    claimed(stack, cid, row)
    handoff.change(stack.clinic_engine(), row["id"], "hand_back", handoff.LIVE)
    rasa(stack, lambda c: c.append_events(cid, handoff.resumed_events("Ana", closed=False)))
    assert replies(stack, cid, "how much does it cost per month") == [faq_text("pricing")]


def test_a_crisis_in_a_live_chat_gets_the_resources_and_the_person_is_told(stack):
    _, cid, row = in_the_queue(stack)
    claimed(stack, cid, row)
    rasa(stack, lambda c: c.append_events(cid, [{"event": "resume"}]))  # what the web app does for a crisis
    answer = " ".join(replies(stack, cid, "i don't want to live anymore"))
    assert "988" in answer and "911" in answer and "741741" in answer
    assert "I've let Ana know" in answer
    engine = stack.clinic_engine()
    assert (handoff.get(engine, row["id"])["urgent"], handoff.get(engine, row["id"])["reason"]) == (True, "crisis")
    assert [f["flag"] for f in db.flags_for(engine, cid)] == ["crisis"]


def test_a_crisis_while_waiting_moves_the_visitor_to_the_front(stack):
    s, cid, row = in_the_queue(stack)
    answer = texts(say(s, stack, "i want to end my life"))
    assert "988" in answer and "front of the line" in answer
    queue = handoff.queue(stack.clinic_engine())
    ids = [r["id"] for r in queue]
    ahead = queue[: ids.index(row["id"])]
    assert all(r["urgent"] for r in ahead)  # only other urgent requests (older ones) stay ahead
    assert (queue[len(ahead)]["urgent"], queue[len(ahead)]["reason"]) == (True, "crisis")


def test_outside_staffed_hours_a_callback_request_with_what_happens_next(stack):
    stack.set_staffed(False)
    try:
        s = requests.Session()
        offer = say(s, stack, "can someone call me back")
        assert "isn't in right now" in texts(offer)
        r = press(s, stack, button(offer, "Yes"))
        assert "callback request" in texts(r) and "What name" in texts(r)
        r = say(s, stack, "Jane Example")
        assert "phone number or email" in texts(r)
        r = say(s, stack, "jane at example")  # neither a phone number nor an email: asked again
        assert "doesn't look like" in texts(r)
        r = say(s, stack, "(212) 555-0199")
        r = press(s, stack, button(r, "Evenings"))
        done = texts(r)
        assert "Thank you, Jane Example" in done and "call you at +1 212-555-0199" in done and "988" in done
    finally:
        stack.set_staffed(True)
    cid = conversation_id(s, stack)
    [row] = db.handoff_requests_for(stack.clinic_engine(), cid)
    assert (row["kind"], row["status"], row["reason"]) == ("callback", "new", "visitor_request")
    assert "Jane Example" not in row["contact_encrypted"] and "212-555-0199" not in row["contact_encrypted"]
    contact = decrypt_json(load_encryption_key(stack.var_dir), row["contact_encrypted"])
    assert contact == {"name": "Jane Example", "email": None, "phone": "+1 212-555-0199", "preferred_time": "Evenings"}


def test_outside_staffed_hours_stop_ends_the_callback_request(stack):
    stack.set_staffed(False)
    try:
        s = requests.Session()
        offer = say(s, stack, "talk to a person")
        press(s, stack, button(offer, "Yes"))
        say(s, stack, "Sam")
        stopped = texts(say(s, stack, "stop"))
        assert "stopped the callback request" in stopped
        assert texts(say(s, stack, "is ketamine therapy safe")) == faq_text("safety")
    finally:
        stack.set_staffed(True)
    assert db.handoff_requests_for(stack.clinic_engine(), conversation_id(s, stack)) == []


def test_restarting_rasa_and_the_action_server_mid_handoff_loses_nothing(stack):
    """The pause, the person's messages and the queue's state outlive the processes: a visitor message
    sent while Rasa is down gets an honest 503 and, sent again, reaches the person, not the assistant."""
    s, cid, row = in_the_queue(stack)
    claimed(stack, cid, row)
    engine = stack.clinic_engine()
    stack.stop("rasa")
    stack.stop("actions")
    down = say(s, stack, "are you still there?")
    assert down.status_code == 503 and "988" in down.json()["detail"]
    stack.start("actions")
    stack.start("rasa")
    stack.wait_ready()
    again = say(s, stack, "are you still there?")
    assert again.status_code == 200 and again.json()["messages"] == []  # the person has the chat, not the assistant
    assert again.json()["handoff"]["mode"] == "person" and again.json()["handoff"]["agent"] == "Ana"
    events = rasa(stack, lambda c: c.events(cid))
    visitor = [e["text"] for e in events if e["event"] == "user"]
    assert visitor.count("are you still there?") == 1
    staff = [e["text"] for e in events if e["event"] == "bot" and (e.get("metadata") or {}).get("staff")]
    assert staff == ["Ana from the Daytryp RX team has joined the chat.", "Hi, I'm Ana. How can I help?"]
    # the person hands back after the restart: the assistant answers again
    handoff.change(engine, row["id"], "hand_back", handoff.LIVE)
    rasa(stack, lambda c: c.append_events(cid, handoff.resumed_events("Ana", closed=False)))
    assert texts(say(s, stack, "how much does it cost per month")) == faq_text("pricing")
