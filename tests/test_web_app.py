"""The web app: the clinic page and the visitor API, with Rasa replaced by a recorder."""

import json
import time
from typing import Any, Dict, List

import pytest
from sanic import Sanic

from clinic.settings import get_settings
from clinic.web import signing, starters
from clinic.web.app import create_app
from clinic.rasa_runtime.rasa_client import RasaUnavailable

Sanic.test_mode = True


class FakeRasa:
    """Records what the web app forwards and answers like Rasa's REST channel."""

    def __init__(self, replies: List[Dict[str, Any]] = None, down: bool = False, events=None) -> None:
        self.sent: List[tuple] = []
        self.metadata: List[dict] = []
        self.replies = replies if replies is not None else [{"recipient_id": "x", "text": "Hello!"}]
        self.down = down
        self.tracker_events = events or []

    async def send(self, conversation_id: str, text: str, metadata: dict = None) -> List[Dict[str, Any]]:
        if self.down:
            raise RasaUnavailable("connection refused")
        self.sent.append((conversation_id, text))
        self.metadata.append(metadata or {})
        return self.replies

    async def events(self, conversation_id: str) -> List[Dict[str, Any]]:
        if self.down:
            raise RasaUnavailable("connection refused")
        return self.tracker_events


@pytest.fixture
def rasa():
    return FakeRasa(
        replies=[
            {"recipient_id": "x", "text": "Hi, I'm the assistant.",
             "buttons": [{"title": "Talk to a person", "payload": "/human_handoff"}]},
            {"recipient_id": "x", "image": "https://elsewhere.example/x.png"},
        ]
    )


@pytest.fixture
def app(clinic_env, rasa):
    return create_app(get_settings(), rasa=rasa, name=f"web_{id(rasa)}")


def post(app, body: Any, cookies: Dict[str, str] = None, content_type="application/json"):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return app.test_client.post(
        "/api/chat", data=data, headers={"content-type": content_type} if content_type else {}, cookies=cookies or {}
    )


def test_the_page_shows_the_clinic_and_the_chat(app):
    _, resp = app.test_client.get("/")
    assert resp.status == 200
    clinic = get_settings().clinic
    assert clinic.name in resp.text and clinic.phone in resp.text
    assert resp.text.count("<script") == 1 and '<script src="/widget.js"' in resp.text  # the chat widget
    assert "Not for emergencies" in resp.text and "988" in resp.text
    assert "unsafe-inline" not in resp.headers["content-security-policy"]
    _, js = app.test_client.get("/widget.js")
    assert js.status == 200 and "/api/chat" in js.text and '"role", "log"' in js.text
    _, css = app.test_client.get("/widget.css")
    assert css.status == 200 and "prefers-reduced-motion" in css.text


def test_the_page_gives_the_widget_the_privacy_figures_from_the_settings(clinic_env, monkeypatch, rasa):
    """The widget's privacy line quotes RETENTION_DAYS (the purge's own setting) and clinic.yml's
    privacy page, passed on the script tag: no second copy of either in the widget."""
    monkeypatch.setenv("RETENTION_DAYS", "30")
    get_settings.cache_clear()
    app = create_app(get_settings(), rasa=rasa, name="web_privacy")
    _, resp = app.test_client.get("/")
    assert 'data-retention-days="30"' in resp.text
    assert f'data-privacy-url="{get_settings().clinic.privacy_url}"' in resp.text
    _, js = app.test_client.get("/widget.js")
    assert "data-retention-days" in js.text and "365" not in js.text


def test_health(app):
    _, resp = app.test_client.get("/health")
    assert resp.status == 200 and resp.json == {"status": "ok"}


def test_first_message_opens_a_conversation_in_a_signed_httponly_cookie(app, rasa):
    _, resp = post(app, {"message": "hello"})
    assert resp.status == 200
    set_cookie = resp.headers["set-cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie
    cookie = resp.cookies["cid"]
    cid = signing.read_conversation_id(get_settings().secret_key, cookie)
    assert cid is not None
    assert rasa.sent == [(cid, "hello")]
    # only text and buttons reach the browser, buttons signed for this conversation
    [message] = resp.json["messages"]
    assert message["text"] == "Hi, I'm the assistant."
    assert message["buttons"] == [
        {"title": "Talk to a person", "payload": "/human_handoff",
         "sig": signing.sign_payload(get_settings().secret_key, cid, "/human_handoff", "Talk to a person")}
    ]
    assert abs(message["ts"] - time.time()) < 60


def test_the_cookie_keeps_the_conversation(app, rasa):
    _, first = post(app, {"message": "hello"})
    cookie = first.cookies["cid"]
    _, second = post(app, {"message": "what does it cost"}, cookies={"cid": cookie})
    assert second.status == 200
    assert rasa.sent[0][0] == rasa.sent[1][0]
    # issued anew with each answer (its idle time starts again), for the same conversation
    assert signing.read_conversation_id(get_settings().secret_key, second.cookies["cid"]) == rasa.sent[0][0]


def test_a_forged_cookie_gets_a_new_conversation(app, rasa):
    victim = "a" * 32
    _, resp = post(app, {"message": "hello"}, cookies={"cid": victim + ".forged"})
    assert resp.status == 200
    assert rasa.sent[0][0] != victim
    _, resp = post(app, {"message": "hello"}, cookies={"cid": victim})
    assert rasa.sent[1][0] != victim


def test_a_signed_button_is_forwarded_as_its_payload(app, rasa):
    _, first = post(app, {"message": "hello"})
    button = first.json["messages"][0]["buttons"][0]
    _, resp = post(app, {"button": button}, cookies={"cid": first.cookies["cid"]})
    assert resp.status == 200
    assert rasa.sent[-1][1] == "/human_handoff"


def test_a_genuine_payload_with_a_title_it_was_not_offered_under_is_refused(app, rasa):
    """The title is what staff see the visitor press: "Yes, I'm pregnant" on the payload of "No"
    would put words in the visitor's mouth."""
    _, first = post(app, {"message": "hello"})
    button = first.json["messages"][0]["buttons"][0]
    for title in ("I want to stop my medication", "", "Talk to a person!"):
        _, resp = post(app, {"button": dict(button, title=title)}, cookies={"cid": first.cookies["cid"]})
        assert resp.status == 403 and resp.json["error"] == "unknown_button", title
    assert [t for _, t in rasa.sent] == ["hello"]


def test_a_forged_button_is_refused(app, rasa):
    _, first = post(app, {"message": "hello"})
    button = first.json["messages"][0]["buttons"][0]
    _, resp = post(app, {"button": {"payload": '/inform{"age":"99"}', "sig": button["sig"], "title": button["title"]}},
                   cookies={"cid": first.cookies["cid"]})
    assert resp.status == 403 and resp.json["error"] == "unknown_button"
    # a button signed for another conversation is refused too
    _, other = post(app, {"message": "hello"})
    _, resp = post(app, {"button": button}, cookies={"cid": other.cookies["cid"]})
    assert resp.status == 403
    assert [t for _, t in rasa.sent] == ["hello", "hello"]


@pytest.mark.parametrize(
    "body, status, code",
    [
        ({"message": ""}, 422, "empty_message"),
        ({"message": "   "}, 422, "empty_message"),
        ({"message": "/affirm"}, 422, "slash_command"),
        ({"message": '/inform{"age":"99"}'}, 422, "slash_command"),
        ({"message": "x" * 5000}, 413, "message_too_long"),
        (b"{not json", 400, "invalid_json"),
        ({"text": "hi"}, 400, "invalid_body"),
    ],
)
def test_bad_input_gets_a_clear_refusal_and_nothing_reaches_rasa(app, rasa, body, status, code):
    _, resp = post(app, body)
    assert resp.status == status
    assert resp.json["error"] == code and resp.json["detail"]
    assert rasa.sent == []


def test_a_50_kb_message_is_refused_with_a_reason(app, rasa):
    _, resp = post(app, {"message": "x" * 50_000})
    assert resp.status == 413
    assert resp.json["error"] == "message_too_long"
    assert rasa.sent == []
    _, ok = post(app, {"message": "still here?"})
    assert ok.status == 200


def test_wrong_content_type_is_refused(app, rasa):
    _, resp = post(app, "message=hi", content_type="application/x-www-form-urlencoded")
    assert resp.status == 415 and rasa.sent == []


def test_rasa_down_gives_a_clear_503(clinic_env):
    app = create_app(get_settings(), rasa=FakeRasa(down=True), name="web_down")
    _, resp = post(app, {"message": "hello"})
    assert resp.status == 503
    assert resp.json["error"] == "assistant_unavailable"
    assert "988" in resp.json["detail"]


def test_emoji_only_reaches_the_assistant(app, rasa):
    _, resp = post(app, {"message": "🙂"})
    assert resp.status == 200 and rasa.sent[-1][1] == "🙂"


def test_a_button_press_is_forwarded_with_its_title_for_the_transcript(app, rasa):
    _, first = post(app, {"message": "hello"})
    b = first.json["messages"][0]["buttons"][0]
    post(app, {"button": {"payload": b["payload"], "sig": b["sig"], "title": b["title"]}},
         cookies={"cid": first.cookies["cid"]})
    assert rasa.metadata[-1] == {"display": "Talk to a person"}


def test_a_retried_message_id_is_answered_once(app, rasa):
    _, first = post(app, {"message": "hello", "id": "m-1"})
    cookie = {"cid": first.cookies["cid"]}
    _, again = post(app, {"message": "hello", "id": "m-1"}, cookies=cookie)
    assert again.status == 200
    _, other = post(app, {"message": "hello", "id": "m-2"}, cookies=cookie)
    assert [t for _, t in rasa.sent] == ["hello", "hello"]  # m-1 once, m-2 once
    assert again.json["messages"][0]["text"] == other.json["messages"][0]["text"]


@pytest.mark.parametrize("bad_id", ["", "x" * 65, "a b", "<script>", 5])
def test_a_bad_message_id_is_refused(app, rasa, bad_id):
    _, resp = post(app, {"message": "hello", "id": bad_id})
    assert resp.status == 400 and resp.json["error"] == "invalid_id"
    assert rasa.sent == []


def test_history_restores_what_the_visitor_saw(clinic_env):
    events = [
        {"event": "action", "name": "action_listen"},
        {"event": "user", "text": "am i eligible", "timestamp": 1.0},
        {"event": "bot", "text": "Shall we start?", "timestamp": 2.0,
         "data": {"buttons": [{"title": "Yes, let's start", "payload": "/affirm"}]}},
        {"event": "user", "text": "/affirm", "metadata": {"display": "Yes, let's start"}, "timestamp": 3.0},
        {"event": "user", "text": "/greet", "timestamp": 3.5},  # no title: not shown
        {"event": "bot", "text": "How old are you?", "timestamp": 4.0, "data": {}},
    ]
    rasa = FakeRasa(events=events)
    app = create_app(get_settings(), rasa=rasa, name="web_history")
    _, empty_history = app.test_client.get("/api/history")
    assert empty_history.json == {
        "messages": [], "handoff": {"mode": "assistant", "agent": None, "position": None, "version": 0},
        "starters": starters.for_browser(),
    }
    _, first = post(app, {"message": "hello"})
    cookie = first.cookies["cid"]
    cid = signing.read_conversation_id(get_settings().secret_key, cookie)
    _, resp = app.test_client.get("/api/history", cookies={"cid": cookie})
    assert resp.status == 200
    assert [(m["role"], m["text"]) for m in resp.json["messages"]] == [
        ("visitor", "am i eligible"),
        ("bot", "Shall we start?"),
        ("visitor", "Yes, let's start"),
        ("bot", "How old are you?"),
    ]
    button = resp.json["messages"][1]["buttons"][0]
    assert signing.payload_is_genuine(get_settings().secret_key, cid, "/affirm", button["title"], button["sig"])
    assert resp.json["messages"][3]["ts"] == 4.0


def test_history_when_rasa_is_down(clinic_env):
    app = create_app(get_settings(), rasa=FakeRasa(down=True), name="web_history_down")
    _, first = post(create_app(get_settings(), rasa=FakeRasa(), name="web_history_up"), {"message": "hi"})
    _, resp = app.test_client.get("/api/history", cookies={"cid": first.cookies["cid"]})
    assert resp.status == 503 and resp.json["error"] == "assistant_unavailable"


def test_start_over_gives_a_new_conversation(app, rasa):
    _, first = post(app, {"message": "hello"})
    _, resp = app.test_client.post("/api/reset", cookies={"cid": first.cookies["cid"]})
    assert resp.status == 200 and resp.json["messages"] == [] and resp.json["handoff"]["mode"] == "assistant"
    new_cookie = resp.cookies["cid"]
    assert new_cookie != first.cookies["cid"]
    post(app, {"message": "hello again"}, cookies={"cid": new_cookie})
    assert rasa.sent[0][0] != rasa.sent[1][0]


def test_cors_only_for_allowed_origins(clinic_env, monkeypatch, rasa):
    from clinic import settings as settings_module

    monkeypatch.setenv("WIDGET_ALLOWED_ORIGINS", "https://www.clinic.example, http://localhost:9000/")
    settings_module.get_settings.cache_clear()
    app = create_app(get_settings(), rasa=rasa, name="web_cors")
    _, pre = app.test_client.options(
        "/api/chat", headers={"origin": "http://localhost:9000", "access-control-request-method": "POST"}
    )
    assert pre.status == 204
    assert pre.headers["access-control-allow-origin"] == "http://localhost:9000"
    assert pre.headers["access-control-allow-credentials"] == "true"
    _, ok = app.test_client.post(
        "/api/chat", data=json.dumps({"message": "hi"}),
        headers={"content-type": "application/json", "origin": "https://www.clinic.example"},
    )
    assert ok.headers["access-control-allow-origin"] == "https://www.clinic.example"
    _, other = app.test_client.post(
        "/api/chat", data=json.dumps({"message": "hi"}),
        headers={"content-type": "application/json", "origin": "https://evil.example"},
    )
    assert "access-control-allow-origin" not in other.headers


def test_fifty_messages_a_second_from_one_visitor_get_429_and_others_are_unaffected(app, rasa):
    _, first = post(app, {"message": "hello"})
    cookie = {"cid": first.cookies["cid"]}
    statuses = [post(app, {"message": f"message {i}"}, cookies=cookie)[1] for i in range(50)]
    refused = [r for r in statuses if r.status == 429]
    assert refused, "a visitor sending 50 messages at once must be slowed down"
    assert refused[0].json["error"] == "rate_limited" and "wait" in refused[0].json["detail"]
    assert int(refused[0].headers["retry-after"]) >= 1
    assert len(rasa.sent) < 51  # refused messages never reach the assistant
    _, other = post(app, {"message": "hello from someone else"})
    assert other.status == 200


def test_many_new_visitors_from_one_address_get_429(app, rasa):
    results = [post(app, {"message": "hi"})[1].status for _ in range(70)]
    assert results[:60] == [200] * 60
    assert 429 in results[60:]


# --- the starter buttons: shown before anything is typed, sent by number ---------------------


def test_the_starters_are_the_greetings_buttons_without_their_payloads(app):
    from clinic.rules.answers import domain_responses

    greeting = domain_responses()["utter_greet"].variations[0].buttons
    _, resp = app.test_client.get("/api/history")
    assert resp.json["starters"] == [{"id": i, "title": title} for i, (title, _) in enumerate(greeting)]
    shown = json.dumps(resp.json["starters"])
    assert "/start_prescreen" in [payload for _, payload in greeting] and "/start_prescreen" not in shown


def test_a_starter_opens_a_conversation_with_its_payload_and_its_title(app, rasa):
    titles = [s["title"] for s in starters.for_browser()]
    eligible = titles.index("Am I eligible?")
    _, resp = post(app, {"starter": eligible, "id": "s-1"})
    assert resp.status == 200 and resp.cookies.get("cid")
    assert rasa.sent[-1][1] == "/start_prescreen"
    assert rasa.metadata[-1] == {"display": "Am I eligible?", "message_id": "s-1"}
    _, again = post(app, {"starter": titles.index("Is it safe?")}, cookies={"cid": resp.cookies["cid"]})
    assert again.status == 200 and rasa.sent[-1] == (rasa.sent[0][0], "Is ketamine therapy safe?")


@pytest.mark.parametrize("number, status, code", [
    (100, 400, "invalid_starter"), (99, 400, "unknown_starter"), (5, 400, "unknown_starter"), (-1, 400, "invalid_starter"), ("1", 400, "invalid_starter"),
    (True, 400, "invalid_starter"), (1.0, 400, "invalid_starter"), (None, 400, "invalid_starter"),
])
def test_anything_but_a_starters_number_is_refused(app, rasa, number, status, code):
    assert len(starters.starters()) == 5
    _, resp = post(app, {"starter": number})
    assert resp.status == status and resp.json["error"] == code
    assert rasa.sent == []


# --- ratings of the assistant's answers ---------------------------------------------------------


def test_a_rating_names_the_visitors_message_and_can_change(app, rasa):
    from sqlalchemy import select

    from clinic.storage import db

    _, first = post(app, {"message": "how much is it", "id": "m-1"})
    cookie = {"cid": first.cookies["cid"]}
    cid = signing.read_conversation_id(get_settings().secret_key, first.cookies["cid"])

    def rate(body, cookies=cookie):
        _, resp = app.test_client.post("/api/rating", data=json.dumps(body), headers={"content-type": "application/json"},
                                       cookies=cookies)
        return resp

    assert rate({"message_id": "m-1", "rating": "down", "comment": "  too vague\u202e  "}).json == {"ok": True}
    assert rate({"message_id": "m-1", "rating": "down", "comment": "x" * 900}).status == 200
    engine = db.get_engine(get_settings().clinic_db_url)
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(db.answer_ratings))]
    assert [(r["conversation_id"], r["message_id"], r["rating"], len(r["comment"])) for r in rows] == [(cid, "m-1", -1, 500)]
    assert rate({"message_id": "m-1", "rating": "up"}).status == 200
    with engine.connect() as conn:
        [row] = [dict(r._mapping) for r in conn.execute(select(db.answer_ratings))]
    assert (row["rating"], row["comment"]) == (1, None)
    for bad in ({"message_id": "m-1", "rating": "meh"}, {"message_id": "<x>", "rating": "up"}, {"rating": "up"},
                {"message_id": "m-1", "rating": "down", "comment": 5}, ["m-1"]):
        assert rate(bad).status == 400, bad
    assert rate({"message_id": "m-1", "rating": "up"}, cookies={}).status == 409  # no conversation yet
