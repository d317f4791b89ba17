"""The safety layer through the whole stack, as a visitor meets it (issue 16): the crisis reply and
what follows it, urgent symptoms, the 988 footer, "did you mean", and bad input (a risk sentence
inside a long message, the same crisis said again, a crisis mid-form or mid-callback request,
messages of only punctuation or emoji)."""

import requests

from clinic.storage import db
from tests.stack import button, conversation_id, press, say

LONG_PADDING = (
    "I have a few questions about the program before I decide. My schedule is busy because I work "
    "early shifts at a bakery and I take care of my mother on weekends, so I would need evening "
    "sessions if that is possible. I also wonder whether the troches are mailed in plain packaging "
    "and whether a friend on a video call counts as a support person. "
)


def texts(response: requests.Response) -> str:
    assert response.status_code == 200, response.text
    return "\n".join(m["text"] for m in response.json()["messages"])


def flags(stack, cid: str) -> list:
    return [f["flag"] for f in db.flags_for(stack.clinic_engine(), cid)]


def test_the_same_crisis_said_again_gets_the_resources_again_and_one_flag(stack):
    s = requests.Session()
    first = say(s, stack, "i want to end my life")
    again = say(s, stack, "i really want to end my life")
    for reply in (first, again):
        assert "(tel:988)" in texts(reply) and "(tel:911)" in texts(reply)
    assert flags(stack, conversation_id(s, stack)) == ["crisis"]


def test_a_risk_sentence_in_a_long_message_is_found_first_middle_or_last(stack):
    risk = "I have the pills counted out on my nightstand and I am going to take them all tonight."
    for text in (risk + " " + LONG_PADDING * 3, LONG_PADDING * 2 + risk + " " + LONG_PADDING, LONG_PADDING * 3 + risk):
        assert 1000 <= len(text) <= 2000
        s = requests.Session()
        reply = say(s, stack, text)
        assert "988" in texts(reply), text[:80]
        assert flags(stack, conversation_id(s, stack)) == ["crisis"]


def test_danger_from_a_person_puts_911_first_and_the_hotline(stack):
    s = requests.Session()
    reply = texts(say(s, stack, "my boyfriend is choking me and he says he will kill me tonight"))
    assert reply.index("tel:911") < reply.index("tel:988")
    assert "1-800-799-7233" in reply


def test_after_a_crisis_nothing_helps_gets_support_and_never_an_faq(stack):
    s = requests.Session()
    crisis = say(s, stack, "i don't want to be alive anymore")
    not_safe = press(s, stack, button(crisis, "No, I'm not safe"))
    assert "call 911 now" in texts(not_safe)
    declined = press(s, stack, button(not_safe, "No, thanks"))
    assert "988" in texts(declined)
    support = texts(say(s, stack, "no i just feel like nothing helps"))
    assert "you don't have to carry it alone" in support
    moved_on = texts(say(s, stack, "ok. how much does the monthly plan cost?"))
    assert "988" in moved_on and "month" in moved_on  # answered, with the line that stays


def test_a_crisis_mid_pre_screen_stops_the_form(stack):
    s = requests.Session()
    intro = say(s, stack, "am i eligible?")
    first = press(s, stack, button(intro, "Yes, let's start"))
    assert "How old are you?" in texts(first)
    crisis = texts(say(s, stack, "honestly i just want to die"))
    assert "988" in crisis and "How old are you?" not in crisis
    assert "How old are you?" not in texts(say(s, stack, "25"))


def test_a_crisis_while_leaving_a_callback_request_stops_it(stack):
    stack.set_staffed(False)
    try:
        s = requests.Session()
        offer = say(s, stack, "can i talk to a person")
        start = press(s, stack, button(offer, "Yes"))
        assert "name" in texts(start).lower()
        crisis = texts(say(s, stack, "i'm going to kill myself"))
        assert "988" in crisis
        assert flags(stack, conversation_id(s, stack)) == ["crisis"]
    finally:
        stack.set_staffed(True)


def test_an_urgent_symptom_gets_911_or_poison_control_and_a_flag(stack):
    s = requests.Session()
    reply = texts(say(s, stack, "my 3 year old just swallowed one of my troches"))
    assert "1-800-222-1222" in reply and "free evaluation" not in reply
    assert flags(stack, conversation_id(s, stack)) == ["urgent_medical"]
    s = requests.Session()
    reply = texts(say(s, stack, "chest pain and my left arm is numb since my session"))
    assert "(tel:911)" in reply


def test_an_informational_overdose_question_is_answered_with_the_footer(stack):
    s = requests.Session()
    reply = texts(say(s, stack, "can you overdose on ketamine?"))
    assert "call or text 988" in reply and "Are you safe" not in reply
    assert flags(stack, conversation_id(s, stack)) == []


def test_spanish_crisis_gets_988_with_its_spanish_option(stack):
    s = requests.Session()
    reply = texts(say(s, stack, "me quiero morir, ya no puedo más"))
    assert "988" in reply and "Spanish" in reply


def test_punctuation_and_emoji_only_are_answered_calmly(stack):
    for text in ("...", "!!!", "😀😀😀", "??"):
        s = requests.Session()
        reply = say(s, stack, text)
        assert reply.status_code == 200 and reply.json()["messages"], text
        assert "tel:988" not in texts(reply) and flags(stack, conversation_id(s, stack)) == [], text


def test_did_you_mean_offers_topics_and_a_pick_is_answered_and_recorded(stack):
    s = requests.Session()
    unsure = say(s, stack, "how long")
    offered = [b for m in unsure.json()["messages"] for b in m["buttons"] if b["payload"].startswith('/faq{"topic"')]
    assert 1 <= len(offered) <= 3 and button(unsure, "Something else")
    picked = press(s, stack, offered[0])
    assert picked.status_code == 200 and picked.json()["messages"][0]["text"]
    picks = db.topic_picks_for(stack.clinic_engine(), conversation_id(s, stack))
    assert [p["picked"] for p in picks] == [offered[0]["payload"].split('"')[3]]
    assert picks[0]["message_id"]
