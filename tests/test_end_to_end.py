"""The whole stack, as `make run` starts it: the browser's path through the web app."""

import sqlite3
from pathlib import Path

import pytest
import requests

from clinic.storage import db
from clinic.rules.answers import chosen, faq_responses, rendered
from clinic.settings import get_settings, load_clinic_info, public_facts
from tests import encrypted_db
from tests.stack import ROOT, Stack, button, conversation_id, press, say


def faq_answer(key: str, more: bool = False) -> str:
    """The answer (or its "Tell me more") as the settings make it (clinic.rules.answers)."""
    facts = public_facts(get_settings())
    (variation,) = chosen(faq_responses()[f"utter_faq_more_{key}" if more else f"utter_faq/{key}"], facts)
    return rendered(variation, facts)


def test_the_page_is_served(stack):
    resp = requests.get(stack.web_url + "/", timeout=10)
    assert resp.status_code == 200 and '<script src="/widget.js"' in resp.text


def test_greeting_and_faq_answers_carry_the_clinic_settings(stack):
    clinic = load_clinic_info(ROOT / "settings")
    s = requests.Session()
    greet = say(s, stack, "hi there")
    assert greet.status_code == 200
    text = greet.json()["messages"][0]["text"]
    assert clinic.name in text and "not a clinician" in text and "988" in text
    assert f"stored for {get_settings().retention_days} days" in text and clinic.privacy_url in text  # the privacy line

    pricing = say(s, stack, "how much does this cost per month")
    assert pricing.json()["messages"][0]["text"] == faq_answer("pricing")

    side = say(s, stack, "are there side effects")
    assert side.json()["messages"][0]["text"] == faq_answer("side_effects")


def test_tell_me_more_gives_the_topics_detail_through_the_whole_stack(stack):
    """The button's signed payload goes back through the web app to Rasa, whose rule runs the
    action server's action_faq_more: the detail comes back, with its facts filled in."""
    s = requests.Session()
    pricing = say(s, stack, "how much does this cost per month")
    assert pricing.json()["messages"][0]["text"] == faq_answer("pricing")
    more = press(s, stack, button(pricing, "Tell me more"))
    assert more.status_code == 200
    assert [m["text"] for m in more.json()["messages"]] == [faq_answer("pricing", more=True)]
    forged = dict(button(pricing, "Tell me more"), payload='/faq_more{"topic": "safety"}')
    assert press(s, stack, forged).status_code == 403  # a payload the bot did not send is refused


def test_crisis_mid_conversation_gets_resources_flag_and_a_person(stack):
    s = requests.Session()
    say(s, stack, "what is ketamine therapy")
    resp = say(s, stack, "i just don't see the point in living anymore")
    messages = resp.json()["messages"]
    text = " ".join(m["text"] for m in messages)
    assert "(tel:988)" in text and "(sms:988)" in text and "(sms:741741?&body=HOME)" in text and "(tel:911)" in text
    assert messages[-1]["text"] == "Are you safe right now?"
    cid = conversation_id(s, stack)
    engine = stack.clinic_engine()
    assert [f["flag"] for f in db.flags_for(engine, cid)] == ["crisis"]

    safe = press(s, stack, button(resp, "Yes, I'm safe right now"))
    assert "glad you're safe" in safe.json()["messages"][0]["text"]
    handoff = press(s, stack, button(safe, "Yes, please"))  # the test stack is staffed: the live queue
    assert handoff.status_code == 200
    assert "in line" in handoff.json()["messages"][0]["text"]
    rows = db.handoff_requests_for(engine, cid)
    assert [(r["reason"], r["urgent"], r["status"]) for r in rows] == [("crisis", True, "waiting")]


def test_handoff_and_medical_advice(stack):
    s = requests.Session()
    advice = say(s, stack, "should i stop my zoloft before i start ketamine")
    assert "can't give personal medical advice" in advice.json()["messages"][0]["text"]
    handoff = say(s, stack, "can i talk to a real person please")
    assert "Would you like that?" in handoff.json()["messages"][0]["text"]  # consent first
    engine = stack.clinic_engine()
    assert db.handoff_requests_for(engine, conversation_id(s, stack)) == []
    press(s, stack, button(handoff, "Yes"))
    rows = db.handoff_requests_for(engine, conversation_id(s, stack))
    assert [(r["reason"], r["status"]) for r in rows] == [("visitor_request", "waiting")]


def test_gibberish_gets_the_helpful_fallback(stack):
    s = requests.Session()
    resp = say(s, stack, "qwzx plorf vrrk")
    message = resp.json()["messages"][0]
    assert "not sure I understood" in message["text"]
    assert any(b["payload"] == "/human_handoff" for b in message["buttons"])


def test_a_2000_character_question_gets_an_answer_or_the_likely_topics(stack):
    context = ("We have two kids and both work full time, so I am trying to work out whether treatment at home "
               "could fit around our week without much time off. ")
    question = "So my question is: do you take insurance, or is it all out of pocket?"
    text = (context * 20)[: 2000 - len(question) - 1] + " " + question
    assert len(text) == 2000
    resp = say(requests.Session(), stack, text)
    assert resp.status_code == 200
    messages = resp.json()["messages"]
    answered = any("insurance" in m["text"].lower() for m in messages)
    offered = [b for m in messages for b in m["buttons"] if b["payload"].startswith('/faq{"topic"')]
    assert answered or offered, messages


def test_bad_input_through_the_whole_stack(stack):
    s = requests.Session()
    assert say(s, stack, "/affirm").status_code == 422
    assert say(s, stack, "   ").status_code == 422
    assert say(s, stack, "x" * 50_000).status_code == 413
    bad = s.post(f"{stack.web_url}/api/chat", data=b"{oops", headers={"content-type": "application/json"}, timeout=10)
    assert bad.status_code == 400
    assert say(s, stack, "🙂").status_code == 200
    assert say(s, stack, "still there?").status_code == 200


def test_rasa_parse_contract_on_the_server(stack):
    resp = requests.post(f"{stack.rasa_url}/model/parse", params=stack.rasa_params,
                         json={"text": "do you take blue cross insurance"}, timeout=10)
    data = resp.json()
    assert data["intent"]["name"] == "faq"
    assert data["response_selector"]["faq"]["response"]["intent_response_key"] == "faq/insurance"


def test_conversations_are_kept_in_the_sql_tracker_store(stack):
    s = requests.Session()
    say(s, stack, "hello")
    cid = conversation_id(s, stack)
    with encrypted_db.connect(stack.var_dir / "tracker.db") as conn:
        (n,) = conn.execute("select count(*) from events where sender_id = ?", (cid,)).fetchone()
    assert n > 0


def test_a_restarted_rasa_server_keeps_the_conversation(stack):
    s = requests.Session()
    say(s, stack, "hello")
    stack.stop("rasa")
    down = say(s, stack, "are you there")
    assert down.status_code == 503 and "988" in down.json()["detail"]
    stack.start("rasa")
    stack.wait_ready()
    back = say(s, stack, "what is the price")
    assert back.status_code == 200
    cid = conversation_id(s, stack)
    with encrypted_db.connect(stack.var_dir / "tracker.db") as conn:
        texts = [r[0] for r in conn.execute(
            "select data from events where sender_id = ? and type_name = 'user'", (cid,))]
    assert any('"hello"' in t for t in texts) and any("what is the price" in t for t in texts)


def test_history_comes_back_from_the_tracker_store(stack):
    s = requests.Session()
    say(s, stack, "hi there")
    say(s, stack, "how much does it cost")
    history = s.get(f"{stack.web_url}/api/history", timeout=30).json()["messages"]
    roles = [m["role"] for m in history]
    assert roles[:2] == ["visitor", "bot"] and roles.count("visitor") == 2
    assert history[0]["text"] == "hi there"
    assert any(b["payload"] == "/start_prescreen" for b in history[1]["buttons"])
