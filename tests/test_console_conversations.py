"""The console's conversations: the index, filters and keyset paging, transcripts by role,
tags, notes, reviewed, export (CSV neutralised, JSON valid), deletion and the retention purge.

A small tracker store is seeded with scripts/seed_conversations.py (Rasa 3.6's SQL
tracker store format) in a private var/ folder; the generator's manifest says
what each conversation holds, so the expected results never come from the index."""

import csv
import datetime as dt
import hashlib
import io
import json
import re
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence

import pytest
from sanic import Sanic
from sqlalchemy import func, insert, select

from scripts import seed_conversations as seeder

from tests import encrypted_db

PASSWORD = "correct horse battery staple"
CSRF_FIELD = re.compile(r'<input type="hidden" name="csrf" value="([^"]*)">')
LINK = re.compile(r'href="/conversations/([0-9a-f]{32})"')
PINNED = re.compile(r'<tbody class="pinned".*?</tbody>', re.S)


def list_links(html: str) -> List[str]:
    """The conversations of a list page in their time order (the crisis rows pinned above it, shown
    again in their place, aside)."""
    return LINK.findall(PINNED.sub("", html))


def pinned_links(html: str) -> List[str]:
    found = PINNED.search(html)
    return LINK.findall(found.group(0)) if found else []
OLDER = re.compile(r'<a href="(/conversations\?[^"]*)" rel="next">Older</a>')
NOW = time.time()
XSS = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "<svg onload=alert(1)>", "javascript:alert(1)"]
FORMULAS = ["=cmd|' /C calc'!A0", "+SUM(1,2)", "-2+3", "@SUM(A1:A2)", "\tx=1", "\r=1"]


# --- the world: a seeded tracker store, a clinic DB, staff -----------------------------------------


class World:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.var = tmp / "var"
        self.tracker_path = self.var / "tracker.db"
        self.tracker_url = f"sqlite:///{self.tracker_path}"
        self.clinic_url = f"sqlite:///{self.var / 'clinic.db'}"
        self.manifests: List[seeder.Manifest] = []
        self.app: Any = None
        self.tokens: Dict[str, str] = {}

    # tracker -------------------------------------------------------------
    def seed(self, n: int, seed: int, kinds: Optional[Sequence[str]] = None, now: float = NOW, days: float = 90) -> List[seeder.Manifest]:
        made = seeder.seed(self.tracker_url, n, seed, days=days, now=now, kinds=kinds)
        self.manifests += made
        return made

    def custom(self, texts: Sequence[str], start: float, form_answer: Optional[str] = None, seed: int = 99) -> seeder.Manifest:
        """A conversation whose visitor types ``texts`` (questions the NLU did not understand)."""
        import random

        rng = random.Random(seed)
        c = seeder.Conversation("%032x" % rng.getrandbits(128), start, rng, kind="custom")
        c.session_start()
        for t in texts:
            c.nlu_fallback(t)
        if form_answer is not None:  # typed as the answer to the pre-screen's first question
            c.start_prescreen()
            c.answer("prescreen_form", "age", form_answer, 30, "state")
        rows, manifest = c.done()
        engine = seeder.tracker_engine(self.tracker_url)
        seeder.write_events(engine, rows)
        engine.dispose()
        self.manifests.append(manifest)
        return manifest

    def tracker(self) -> sqlite3.Connection:
        return encrypted_db.connect(self.tracker_path)

    def event_count(self, sender: str) -> int:
        with self.tracker() as conn:
            return conn.execute("SELECT count(*) FROM events WHERE sender_id = ?", (sender,)).fetchone()[0]

    # app ---------------------------------------------------------------------
    def start(self) -> None:
        from clinic.console import auth
        from clinic.console.app import create_console_app
        from clinic.settings import get_settings

        Sanic.test_mode = True
        self.app = create_console_app(get_settings(), name=f"console_conv_{uuid.uuid4().hex[:12]}")
        for role in ("support", "clinician", "admin"):
            user_id = auth.create_user(self.engine, f"{role}1", PASSWORD, role)
            self.tokens[role] = auth.start_session(self.engine, user_id, 8)

    @property
    def engine(self) -> Any:
        from clinic.storage import db

        return db.get_engine(self.clinic_url)

    def csrf(self, role: str) -> str:
        from clinic.console import auth
        from clinic.settings import get_settings

        return auth.csrf_token(get_settings().secret_key, hashlib.sha256(self.tokens[role].encode()).hexdigest())

    def get(self, path: str, role: Optional[str] = "support", **kw: Any) -> Any:
        cookies = {"staff_session": self.tokens[role]} if role else {}
        _, response = self.app.test_client.get(path, cookies=cookies, allow_redirects=False, **kw)
        return response

    def post(self, path: str, data: Dict[str, Any], role: str = "support", csrf: bool = True) -> Any:
        data = dict(data)
        if csrf:
            data["csrf"] = self.csrf(role)
        _, response = self.app.test_client.post(
            path, data=data, cookies={"staff_session": self.tokens[role]}, allow_redirects=False)
        return response

    # the list ------------------------------------------------------------------
    def listed(self, role: str = "support", **params: str) -> List[str]:
        """Every conversation id the list shows for these filters, following the Older links."""
        ids: List[str] = []
        response = self.get("/conversations", role, params=params)
        for _ in range(100):
            assert response.status == 200, response.text
            ids += list_links(response.text)
            older = OLDER.search(response.text)
            if not older:
                return ids
            response = self.get(older.group(1).replace("&amp;", "&"), role)
        raise AssertionError("paging does not end")

    def audit(self, action: str) -> List[Dict[str, Any]]:
        from clinic.storage.db import audit_log

        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(audit_log).where(audit_log.c.action == action).order_by(audit_log.c.id))]

    def by_kind(self, kind: str) -> List[seeder.Manifest]:
        return [m for m in self.manifests if m.kind == kind]

    def newest_first(self, ms: Sequence[seeder.Manifest]) -> List[str]:
        return [m.sender_id for m in sorted(ms, key=lambda m: m.last_ts, reverse=True)]


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    from clinic.storage import db
    from clinic import settings

    w = World(tmp_path)
    monkeypatch.setenv("CLINIC_VAR_DIR", str(w.var))
    monkeypatch.setenv("CLINIC_DB_URL", w.clinic_url)
    monkeypatch.setenv("TRACKER_DB_URL", w.tracker_url)
    monkeypatch.delenv("CLINIC_SECRET_KEY", raising=False)
    settings.get_settings.cache_clear()
    db.get_engine.cache_clear()
    kinds = [k for k, _ in seeder.MIX]
    w.seed(len(kinds) * 10, seed=7, kinds=kinds)  # 130: every kind ten times, over 90 days
    w.start()
    yield w
    settings.get_settings.cache_clear()
    db.get_engine.cache_clear()


# --- the list: filters and paging ------------------------------------------------------------


def test_the_list_shows_every_conversation_newest_first_50_a_page_without_duplicates(world: World) -> None:
    first = world.get("/conversations")
    assert first.status == 200
    assert len(list_links(first.text)) == 50
    ids = world.listed()
    assert len(ids) == len(set(ids)) == 130
    assert ids == world.newest_first(world.manifests)


@pytest.mark.parametrize("outcome", ["referred", "eligible", "clinician_review", "not_eligible", "out_of_area", "crisis", "handoff", "fallback"])
def test_each_outcome_filter_returns_exactly_its_conversations(world: World, outcome: str) -> None:
    truth = {
        "referred": lambda m: bool(m.referral_reference),
        "crisis": lambda m: m.crisis,
        "handoff": lambda m: m.handoff,
        "fallback": lambda m: m.fallback,
    }.get(outcome, lambda m: m.outcome == outcome)
    expected = world.newest_first([m for m in world.manifests if truth(m)])
    assert expected, f"the seed has no {outcome} conversation"
    assert world.listed(outcome=outcome) == expected


def test_the_seeded_mix_has_what_the_filters_need(world: World) -> None:
    # the generator's own truth, checked once: crisis both ways, referrals, fallbacks of both kinds
    assert {m.outcome for m in world.manifests} >= {"eligible", "clinician_review", "not_eligible", "out_of_area", "crisis"}
    assert all(m.crisis and m.outcome == "crisis" for m in world.by_kind("prescreen_crisis"))
    assert all(m.referral_reference for m in world.by_kind("prescreen_referred"))
    assert all(not m.referral_reference for m in world.by_kind("prescreen_declined"))


def test_date_range_filters_on_last_activity(world: World) -> None:
    import datetime as dt

    from clinic.console import clock

    def clinic_day(m: Any) -> dt.date:  # the date the list shows: the clinic's wall clock
        return clock.localize(m.last_ts).date()

    days = sorted({clinic_day(m) for m in world.manifests})
    lo, hi = days[len(days) // 4], days[len(days) // 2]
    expected = world.newest_first([m for m in world.manifests if lo <= clinic_day(m) <= hi])
    assert expected
    assert world.listed(**{"from": lo.isoformat(), "to": hi.isoformat()}) == expected
    only_from = world.newest_first([m for m in world.manifests if clinic_day(m) >= hi])
    assert world.listed(**{"from": hi.isoformat()}) == only_from
    bad = world.get("/conversations", params={"from": "yesterday"})
    assert bad.status == 200 and "YYYY-MM-DD" in bad.text


def test_tag_and_reviewed_filters(world: World) -> None:
    ms = world.manifests
    tagged = [ms[3].sender_id, ms[40].sender_id, ms[77].sender_id]
    for cid in tagged:
        assert world.post(f"/conversations/{cid}/tags", {"tag": "Follow-up", "op": "add"}).status == 303
    world.post(f"/conversations/{ms[5].sender_id}/tags", {"tag": "other", "op": "add"})
    reviewed = [ms[3].sender_id, ms[10].sender_id]
    for cid in reviewed:
        assert world.post(f"/conversations/{cid}/review", {"reviewed": "1"}).status == 303
    by_time = {m.sender_id: m.last_ts for m in ms}
    assert world.listed(tag="follow-up") == sorted(tagged, key=by_time.get, reverse=True)
    assert world.listed(reviewed="yes") == sorted(reviewed, key=by_time.get, reverse=True)
    not_reviewed = world.listed(reviewed="no")
    assert len(not_reviewed) == 128 and not set(reviewed) & set(not_reviewed)
    # combined: tagged and reviewed
    assert world.listed(tag="follow-up", reviewed="yes") == [ms[3].sender_id]
    # removing the tag and the mark
    world.post(f"/conversations/{ms[40].sender_id}/tags", {"tag": "follow-up", "op": "remove"})
    world.post(f"/conversations/{ms[10].sender_id}/review", {"reviewed": "0"})
    assert ms[40].sender_id not in world.listed(tag="follow-up")
    assert world.listed(reviewed="yes") == [ms[3].sender_id]
    assert [a["detail"] for a in world.audit("tag_add")][:1] == ["tag=follow-up"]
    assert len(world.audit("mark_reviewed")) == 2 and len(world.audit("mark_unreviewed")) == 1


def test_text_search_finds_visitor_words_but_not_form_answers(world: World) -> None:
    a = world.custom(["Does the zanzibarquest clinic take insurance?"], NOW - 5000, seed=1)
    b = world.custom(["hello", "ZANZIBARQUEST again, sorry"], NOW - 4000, seed=2)
    # the same word typed as an answer to a pre-screen question: health data, not indexed
    c = world.custom(["hi there"], NOW - 3000, form_answer="zanzibarquest", seed=3)
    assert world.listed(q="zanzibarquest") == [b.sender_id, a.sender_id]
    assert world.listed(q="Zanzibar") == [b.sender_id, a.sender_id]  # words match by prefix
    assert world.listed(q="zanzibarquest insurance") == [a.sender_id]  # every word must match
    assert world.listed(q="insurance zzznotthere") == []
    assert c.sender_id in world.listed()
    # combined with a filter
    assert world.listed(q="zanzibarquest", outcome="fallback") == [b.sender_id, a.sender_id]
    assert world.listed(q="zanzibarquest", outcome="crisis") == []


# answers typed in free text, some of them understood by the NLU as questions of the visitor's own
FREE_TEXT_ANSWERS = [
    ("prescreen_form", "age", "Im nineteen since Quillember is that old enough", "faq", 19),
    ("prescreen_form", "concern", "PTSD from the war in Qandarra", "out_of_scope", "ptsd"),
    ("prescreen_form", "pregnant_or_breastfeeding", "yes Im pregnant with Ottoline can I still take it", "faq", "yes"),
    ("prescreen_form", "substance_misuse", "vodkaflask most nights honestly", "nlu_fallback", None),  # not understood
    ("callback_form", "callback_contact", "call me on 917 555 0142", "inform", "+1 917-555-0142"),
]


def free_text_conversation(world: World, seed: int = 41) -> seeder.Manifest:
    """A pre-screen and a callback request answered in free text, with a crisis message and an
    FAQ between the answers (neither fills a form slot)."""
    import random

    rng = random.Random(seed)
    c = seeder.Conversation("%032x" % rng.getrandbits(128), NOW - 1000, rng, kind="custom")
    c.session_start()
    c.start_prescreen()
    for form, slot, typed, intent, value in FREE_TEXT_ANSWERS:
        if form != c.form:
            c.loop(form)
        c.user(typed, intent, 0.8, raw_slot=slot)  # Rasa's slot extraction: the text, as typed
        c.action(form).slot(slot, value).slot("requested_slot", slot).bot("utter_ask_" + slot).listen()
    c.user("i want to end it all tonight", "crisis", 0.99)  # mid-form: no slot takes it
    c.action("action_crisis_response").bot("utter_crisis").loop(None).listen()
    c.user("how long does a session last xylophonia", "faq", 0.95)  # outside any form
    c.action("utter_faq").bot("utter_faq/session_length").listen()
    rows, manifest = c.done()
    engine = seeder.tracker_engine(world.tracker_url)
    seeder.write_events(engine, rows)
    engine.dispose()
    world.manifests.append(manifest)
    return manifest


def test_answers_typed_in_free_text_are_masked_for_support_in_transcripts_search_and_exports(world: World) -> None:
    m = free_text_conversation(world)
    answers = [typed for *_, typed, _intent, _value in FREE_TEXT_ANSWERS]
    support = world.get(f"/conversations/{m.sender_id}", "support").text
    clinician = world.get(f"/conversations/{m.sender_id}", "clinician").text
    for typed in answers:
        assert typed not in support, typed
        assert typed in clinician, typed
    assert "i want to end it all tonight" in support and "xylophonia" in support  # not answers: shown
    # search: no answer is in the index, for anyone; the visitor's own question is
    for word in ("quillember", "qandarra", "ottoline", "vodkaflask", "917"):
        assert world.listed(q=word) == [] and world.listed("clinician", q=word) == [], word
    assert world.listed(q="xylophonia") == [m.sender_id]
    # exports are for clinicians (with the answers); support gets none
    assert world.get(f"/conversations/{m.sender_id}/export.json", "support").status == 403
    assert world.get("/conversations/export.csv", "support", params={"q": "xylophonia"}).status == 403
    exported = world.get(f"/conversations/{m.sender_id}/export.json", "clinician").text
    assert all(typed in exported for typed in answers)


def test_the_form_slots_come_from_the_domain() -> None:
    from clinic.rules import form_answers

    assert {"age", "pregnant_or_breastfeeding", "contact_email", "waitlist_email", "callback_contact"} <= form_answers.form_slots()
    assert "prescreen_outcome" not in form_answers.form_slots() and "requested_slot" not in form_answers.form_slots()
    events = [{"event": "user", "text": "call me on 917"}, {"event": "action", "name": "callback_form"},
              {"event": "slot", "name": "callback_contact", "value": "call me on 917"},
              {"event": "user", "text": "I want to die"}, {"event": "action", "name": "action_crisis_response"},
              {"event": "slot", "name": "crisis_flagged", "value": True},
              {"event": "user", "text": "what?"}, {"event": "slot", "name": "age", "value": None}]
    assert form_answers.answered_messages(events) == [True, False, False, False, False, False, False, False]
    assert "utter_callback_recorded" in form_answers.responses_quoting_answers()


def test_paging_follows_filters_and_keeps_them_in_the_query_string(world: World) -> None:
    response = world.get("/conversations", params={"outcome": "fallback", "reviewed": "no"})
    expected = world.newest_first([m for m in world.manifests if m.fallback])
    if len(expected) > 50:
        older = OLDER.search(response.text).group(1)
        assert "outcome=fallback" in older and "reviewed=no" in older and "cursor=" in older
    assert world.listed(outcome="fallback", reviewed="no") == expected
    # a cursor that is garbage is the first page, not an error
    assert world.get("/conversations", params={"cursor": "'; drop table x"}).status == 200


def test_the_index_is_incremental_and_drops_conversations_deleted_from_the_tracker(world: World) -> None:
    from clinic.console import conversation_index as index

    assert len(world.listed()) == 130
    mark = index.watermark(world.engine)
    with world.tracker() as conn:
        assert mark == conn.execute("SELECT max(id) FROM events").fetchone()[0]
    assert index.refresh(world.engine, world.app.ctx.tracker) == 0  # nothing new: nothing read
    # new events: a new conversation, and more messages in an old one
    new = world.custom(["brand new question about quokkas"], NOW - 10, seed=11)
    old = world.manifests[0]
    import random

    rng = random.Random(5)
    c = seeder.Conversation(old.sender_id, NOW - 5, rng)
    c.nlu_fallback("a quokka follow-up much later")
    rows, _ = c.done()
    seeder.write_events(seeder.tracker_engine(world.tracker_url), rows)
    ids = world.listed()
    assert ids[:2] == [old.sender_id, new.sender_id] and len(ids) == 131
    assert world.listed(q="quokka") == [old.sender_id, new.sender_id]  # "quokkas" too: words match by prefix
    assert world.listed(q="quokka follow") == [old.sender_id]  # the old conversation's new message
    # events deleted from under the index (not by the console): the conversation drops out
    gone = world.manifests[50].sender_id
    with world.tracker() as conn:
        conn.execute("DELETE FROM events WHERE sender_id = ?", (gone,))
    assert gone not in world.listed()
    with world.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(index.ci).where(index.ci.c.conversation_id == gone)).scalar() == 0


# --- the transcript -----------------------------------------------------------------------------


def _user_events(world: World, sender: str) -> List[Dict[str, Any]]:
    with world.tracker() as conn:
        return [json.loads(r[0]) for r in conn.execute(
            "SELECT data FROM events WHERE sender_id = ? AND type_name = 'user' ORDER BY id", (sender,))]


def test_the_transcript_shows_intents_faq_topics_and_confidences(world: World) -> None:
    m = world.by_kind("faq")[0]
    response = world.get(f"/conversations/{m.sender_id}")
    assert response.status == 200
    page = response.text
    faq_events = [e for e in _user_events(world, m.sender_id) if e["parse_data"]["intent"]["name"] == "faq"]
    assert faq_events
    for e in faq_events:
        key = e["parse_data"]["response_selector"]["faq"]["response"]["intent_response_key"]
        assert key in m.faq_topics
        assert f"topic <code>{key}</code>" in page
        assert f"confidence {e['parse_data']['intent']['confidence']:.2f}" in page
        assert "intent <code>faq</code>" in page
    # each bot answer is there too, and the timeline lists actions and slots
    assert "Assistant" in page and "utter_faq" in page and "action_session_start" in page and "clinic_name" in page
    views = world.audit("view_transcript")
    assert views[-1]["target_id"] == m.sender_id and views[-1]["username"] == "support1"


def test_support_sees_that_a_prescreen_happened_but_not_the_answers(world: World) -> None:
    m = world.by_kind("prescreen_referred")[0]
    email = m.contact["contact_email"]
    support = world.get(f"/conversations/{m.sender_id}", "support").text
    clinician = world.get(f"/conversations/{m.sender_id}", "clinician").text
    assert "A pre-screen took place" in support and "Eligible" in support
    assert "PHQ-2 score" not in support and "Treatments tried" not in support
    assert email not in support and m.contact["contact_name"] not in support
    assert m.referral_reference not in support
    assert "(value shown to clinicians)" in support
    assert "PHQ-2 score" in clinician and "Treatments tried" in clinician and "Age" in clinician
    assert f"<td>{m.answers['age']}</td>" in clinician
    assert email in clinician and m.referral_reference in clinician
    # export is for clinicians and up
    assert world.get(f"/conversations/{m.sender_id}/export.json", "support").status == 403
    assert world.get("/conversations/export.csv", "support").status == 403


def test_visitor_text_is_escaped_in_list_transcript_and_notes(world: World) -> None:
    m = world.custom(XSS, NOW - 1, seed=21)
    world.post(f"/conversations/{m.sender_id}/notes", {"body": "\n".join(XSS)})
    world.post(f"/conversations/{m.sender_id}/tags", {"tag": "xss", "op": "add"})
    listing = world.get("/conversations").text
    transcript = world.get(f"/conversations/{m.sender_id}", "admin").text
    searched = world.get("/conversations", params={"q": XSS[0]}).text
    for page in (listing, transcript, searched):
        for raw in XSS[:3]:
            assert raw not in page
        assert 'href="javascript:' not in page and "<script>" not in page.replace('<script src="', "")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in listing
    for escaped in ("&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;img src=x onerror=alert(1)&gt;", "&lt;svg onload=alert(1)&gt;"):
        assert transcript.count(escaped) >= 2  # the message and the note
    assert "javascript:alert(1)" in transcript  # shown as text, never as a link
    assert 'value="&lt;script&gt;alert(1)&lt;/script&gt;"' in searched  # the search box echoes it escaped


def test_notes_show_author_and_time_and_are_audited_without_their_text(world: World) -> None:
    cid = world.manifests[1].sender_id
    assert world.post(f"/conversations/{cid}/notes", {"body": "Called back, all fine."}, role="clinician").status == 303
    page = world.get(f"/conversations/{cid}").text
    assert "Called back, all fine." in page and "clinician1" in page and " UTC" in page
    audit = world.audit("note_add")
    assert audit and audit[-1]["target_id"] == cid and "Called back" not in (audit[-1]["detail"] or "")
    assert world.post(f"/conversations/{cid}/notes", {"body": "   "}).status == 400
    assert world.post(f"/conversations/{cid}/tags", {"tag": "<b>", "op": "add"}).status == 400


def test_a_post_without_csrf_is_refused(world: World) -> None:
    cid = world.manifests[2].sender_id
    for path, data in ((f"/conversations/{cid}/notes", {"body": "x"}), (f"/conversations/{cid}/tags", {"tag": "x"}),
                       (f"/conversations/{cid}/review", {"reviewed": "1"})):
        assert world.post(path, data, csrf=False).status == 403
        assert world.post(path, {**data, "csrf": "forged"}, csrf=False).status == 403
    assert world.post(f"/conversations/{cid}/delete", {"confirm": "yes"}, role="admin", csrf=False).status == 403
    assert world.event_count(cid) > 0
    assert not world.audit("note_add") and not world.audit("tag_add") and not world.audit("delete")


def test_unknown_ids_are_404_and_signed_out_staff_go_to_login(world: World) -> None:
    missing = "0" * 32
    assert world.get(f"/conversations/{missing}").status == 404
    assert world.get(f"/conversations/{missing}/export.csv", "clinician").status == 404
    assert world.get(f"/conversations/{missing}/delete", "admin").status == 404
    assert world.post(f"/conversations/{missing}/notes", {"body": "x"}).status == 404
    assert world.post(f"/conversations/{missing}/tags", {"tag": "x"}).status == 404
    anonymous = world.get("/conversations", role=None)
    assert anonymous.status == 302 and anonymous.headers["location"].startswith("/login")


def test_login_through_the_form_then_the_list(world: World) -> None:
    from clinic.console import auth

    auth.create_user(world.engine, "ana", PASSWORD, "support")
    _, page = world.app.test_client.get("/login")
    token = CSRF_FIELD.search(page.text).group(1)
    _, signed_in = world.app.test_client.post(
        "/login", data={"username": "ana", "password": PASSWORD, "csrf": token, "next": "/conversations"},
        cookies={"staff_login_csrf": page.cookies["staff_login_csrf"]}, allow_redirects=False)
    assert signed_in.status == 302 and signed_in.headers["location"] == "/conversations"
    _, listing = world.app.test_client.get("/conversations", cookies={"staff_session": signed_in.cookies["staff_session"]})
    assert listing.status == 200 and len(list_links(listing.text)) == 50


# --- export -----------------------------------------------------------------------------------


def test_csv_export_neutralises_formulas_and_is_audited(world: World) -> None:
    m = world.custom(FORMULAS, NOW - 2, seed=31)
    response = world.get(f"/conversations/{m.sender_id}/export.csv", "clinician")
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    visitor = [r["text"] for r in rows if r["speaker"] == "visitor"]
    assert visitor == ["'" + f for f in FORMULAS]
    for r in rows:
        for value in r.values():
            assert not value or value[0] not in "=+-@\t\r"
    audit = world.audit("export")
    assert audit[-1]["target_id"] == m.sender_id and audit[-1]["detail"].startswith("csv 1 conversation")


def test_json_export_of_one_and_of_the_filtered_set(world: World) -> None:
    m = world.by_kind("prescreen_referred")[1]
    one = world.get(f"/conversations/{m.sender_id}/export.json", "clinician")
    assert one.status == 200 and one.headers["content-type"].startswith("application/json")
    data = json.loads(one.text)
    record = data["conversations"][0]
    assert data["count"] == 1 and record["conversation_id"] == m.sender_id
    assert record["referred"] and record["referral_reference"] == m.referral_reference
    assert record["prescreen"]["answers"]["age"] == m.answers["age"]
    assert [x["text"] for x in record["messages"] if x["speaker"] == "visitor" and not x["button"]] == m.visitor_texts
    crisis = world.get("/conversations/export.json", "admin", params={"outcome": "crisis"})
    payload = json.loads(crisis.text)
    expected = world.newest_first([x for x in world.manifests if x.crisis])
    assert [c["conversation_id"] for c in payload["conversations"]] == expected
    assert payload["count"] == len(expected) and payload["filters"] == {"outcome": "crisis"}
    assert world.audit("export")[-1]["detail"] == f"json {len(expected)} conversations outcome=crisis"
    rows = list(csv.DictReader(io.StringIO(world.get("/conversations/export.csv", "clinician", params={"outcome": "crisis"}).text)))
    assert {r["conversation_id"] for r in rows} == set(expected)


# --- deletion and purge ------------------------------------------------------------------------


def _link_everything(world: World, cid: str) -> None:
    from clinic.storage import db, referrals
    from clinic.settings import get_settings

    ref = referrals.create_referral(world.engine, get_settings().encryption_key, cid, "eligible", [], {"age": 30}, {"name": "X"})
    referrals.join_waitlist(world.engine, get_settings().encryption_key, cid, "OR", {"email": "x@example.com"})
    db.record_handoff_request(world.engine, cid, "visitor_request", False)
    db.flag_conversation(world.engine, cid, "crisis")
    world.post(f"/conversations/{cid}/tags", {"tag": "delete-me", "op": "add"})
    world.post(f"/conversations/{cid}/notes", {"body": "a note"})
    if hasattr(db, "referral_notes"):
        with world.engine.begin() as conn:
            conn.execute(insert(db.referral_notes).values(reference=ref, user_id=None, username="x", at=db.utcnow(), text="n"))


def _clinic_rows(world: World, cid: str) -> Dict[str, int]:
    from clinic.storage import db

    with world.engine.connect() as conn:
        return {
            t.name: conn.execute(select(func.count()).select_from(t).where(t.c.conversation_id == cid)).scalar()
            for t in (db.referrals, db.waitlist, db.handoff_requests, db.conversation_flags, db.conversation_tags,
                      db.conversation_notes, db.conversation_index)
        }


def test_an_admin_deletes_a_conversation_with_everything_linked_and_it_is_audited(world: World) -> None:
    victim, bystander = world.manifests[20].sender_id, world.manifests[21].sender_id
    _link_everything(world, victim)
    _link_everything(world, bystander)
    world.get("/conversations")  # indexed
    before = world.event_count(victim)
    assert before > 0
    # only admins, after a confirm page
    assert world.get(f"/conversations/{victim}/delete", "clinician").status == 403
    assert world.post(f"/conversations/{victim}/delete", {"confirm": "yes"}, role="clinician").status == 403
    confirm = world.get(f"/conversations/{victim}/delete", "admin")
    assert confirm.status == 200 and f"{before} events" in confirm.text and 'name="confirm" value="yes"' in confirm.text
    done = world.post(f"/conversations/{victim}/delete", {"confirm": "yes"}, role="admin")
    assert done.status == 303 and done.headers["location"] == "/conversations?done=deleted"
    assert world.event_count(victim) == 0
    assert set(_clinic_rows(world, victim).values()) == {0}
    assert all(_clinic_rows(world, bystander).values()) and world.event_count(bystander) > 0
    from clinic.storage import db

    if hasattr(db, "referral_notes"):
        with world.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(db.referral_notes)).scalar() == 1  # the bystander's
    audit = world.audit("delete")
    assert len(audit) == 1 and audit[0]["target_id"] == victim and audit[0]["username"] == "admin1"
    assert f"events={before}" in audit[0]["detail"] and "referrals=1" in audit[0]["detail"]
    assert world.get(f"/conversations/{victim}").status == 404
    assert victim not in world.listed() and len(world.listed()) == 129


def test_deleting_the_newest_conversation_does_not_lose_events_that_reuse_its_ids(world: World) -> None:
    newest = world.custom(["the newest one"], NOW - 1, seed=41)
    world.get("/conversations")
    world.post(f"/conversations/{newest.sender_id}/delete", {"confirm": "yes"}, role="admin")
    again = world.custom(["arriving after the deletion about wombats"], NOW, seed=42)  # SQLite reuses the freed ids
    assert world.listed(q="wombats") == [again.sender_id]


def test_purge_deletes_only_conversations_past_retention(world: World, capsys: pytest.CaptureFixture) -> None:
    from clinic.console import purge

    old = world.seed(4, seed=51, now=NOW - 400 * 86400, days=20)  # last activity 400-420 days ago
    old_ids = {m.sender_id for m in old}
    for cid in old_ids:
        from clinic.storage import db

        db.record_handoff_request(world.engine, cid, "visitor_request", False)
    assert len(world.listed()) == 134
    world.post(f"/conversations/{old[0].sender_id}/notes", {"body": "old note"})
    assert purge.main(["--days", "365"]) == 0
    out = capsys.readouterr().out
    assert "conversations: 4" in out and "handoff_requests: 4" in out
    assert not any(cid in out for cid in old_ids)  # counts only
    for cid in old_ids:
        assert world.event_count(cid) == 0 and set(_clinic_rows(world, cid).values()) == {0}
    remaining = world.listed()
    assert len(remaining) == 130 and not old_ids & set(remaining)
    entry = world.audit("purge")[-1]
    assert entry["username"] == "system" and entry["user_id"] is None and "conversations=4" in entry["detail"]
    # a second run finds nothing more
    assert purge.main(["--days", "365"]) == 0
    assert "conversations: 0" in capsys.readouterr().out
    # the default is the RETENTION_DAYS setting (365): nothing of the 90-day seed is touched
    assert purge.main([]) == 0 and len(world.listed()) == 130


def test_an_index_built_in_small_batches_matches_the_truth(world: World) -> None:
    """Conversations cut across refresh batches still add up (counts, times, outcome, flags)."""
    from clinic.console import conversation_index as index

    assert index.build(world.engine, world.app.ctx.tracker, batch=53) > 0
    with world.tracker() as conn:
        messages = dict(conn.execute(
            "SELECT sender_id, count(*) FROM events WHERE type_name IN ('user', 'bot') GROUP BY sender_id").fetchall())
    with world.engine.connect() as conn:
        rows = {r.conversation_id: r for r in conn.execute(select(index.ci))}
    assert len(rows) == 130
    for m in world.manifests:
        row = rows[m.sender_id]
        assert (row.first_ts, row.last_ts) == (m.first_ts, m.last_ts)
        assert row.message_count == messages[m.sender_id]
        assert (row.outcome, row.referral_reference, row.referred) == (m.outcome, m.referral_reference, bool(m.referral_reference))
        assert (row.crisis, row.handoff, row.fallback, row.prescreen) == (m.crisis, m.handoff, m.fallback, m.prescreen)
        assert row.last_event_id > 0 and row.active_form is None
    assert index.refresh(world.engine, world.app.ctx.tracker, 53) == 0


def test_an_empty_or_missing_tracker_store_gives_an_empty_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from clinic.storage import db
    from clinic import settings

    w = World(tmp_path)
    monkeypatch.setenv("CLINIC_VAR_DIR", str(w.var))
    monkeypatch.setenv("CLINIC_DB_URL", w.clinic_url)
    monkeypatch.setenv("TRACKER_DB_URL", w.tracker_url)
    settings.get_settings.cache_clear()
    db.get_engine.cache_clear()
    try:
        w.start()  # Rasa has not written anything yet: no events table
        response = w.get("/conversations")
        assert response.status == 200 and "No conversations match." in response.text
        assert w.get(f"/conversations/{'a' * 32}").status == 404
        m = w.custom(["the very first visitor"], NOW - 60, seed=61)  # then Rasa writes
        assert w.listed() == [m.sender_id]
    finally:
        settings.get_settings.cache_clear()
        db.get_engine.cache_clear()


def test_each_list_request_indexes_a_bounded_batch_and_says_when_it_is_behind(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from clinic.console import conversation_index as index

    monkeypatch.setattr(index, "BATCH_EVENTS", 2000)
    with world.tracker() as conn:
        total = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    first = world.get("/conversations")
    assert "Still indexing" in first.text
    assert index.watermark(world.engine) <= 2000 < total
    for _ in range(total // 2000 + 1):
        world.get("/conversations")
    assert "Still indexing" not in world.get("/conversations").text
    assert world.listed() == world.newest_first(world.manifests)


# --- the list as a team triages it: crisis pinned, the first real question, the clinic's time ----------


def test_crisis_conversations_not_reviewed_are_pinned_above_the_first_page(world: World) -> None:
    crisis = world.newest_first([m for m in world.manifests if m.crisis])
    assert len(crisis) >= 3
    first = world.get("/conversations")
    assert pinned_links(first.text) == crisis[:20]
    assert 'data-pinned="crisis"' in first.text and "Pinned: crisis" in first.text
    # reviewed: no longer pinned (still listed in its place)
    assert world.post(f"/conversations/{crisis[0]}/review", {"reviewed": "1"}).status == 303
    again = world.get("/conversations")
    assert pinned_links(again.text) == crisis[1:21]
    assert world.listed() == world.newest_first(world.manifests)  # the list itself is unchanged
    # the filters apply to the pinned rows too; later pages pin nothing
    assert pinned_links(world.get("/conversations", params={"outcome": "referred"}).text) == [
        cid for cid in crisis[1:] if cid in set(world.listed(outcome="referred"))][:20]
    older = OLDER.search(again.text).group(1).replace("&amp;", "&")
    assert pinned_links(world.get(older).text) == []


def test_the_first_question_skips_greetings_buttons_and_form_answers() -> None:
    from clinic.console import conversation_index as index

    def user(text: str, intent: str, display: str = "") -> tuple:
        event = {"event": "user", "text": text, "parse_data": {"intent": {"name": intent}}}
        if display:
            event["metadata"] = {"display": display}
        return ("user", intent, None, json.dumps(event))

    events = [
        user("hi there", "greet"),
        ("action", None, "action_listen", None),
        user("/start_prescreen", "start_prescreen", display="Am I eligible?"),
        ("action", None, "action_listen", None),
        user("yes", "affirm"),
        ("action", None, "action_listen", None),
        user("What does it cost per month?", "faq"),
        ("action", None, "action_listen", None),
        user("and is it safe", "faq"),
        ("action", None, "action_listen", None),
    ]
    row = index.new_row("c")
    for i, (kind, intent, action, data) in enumerate(events, 1):
        index.apply_event(row, i, kind, float(i), intent, action, data)
    assert row["first_message"] == "What does it cost per month?"
    assert "hi there" in row["visitor_text"] and "am i eligible?" in row["visitor_text"]  # all still searchable


def test_list_times_are_in_the_clinics_time_zone(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from clinic.console import clock
    from tests.stack import write_staffing

    staffing_file = tmp_path / "staffing.yml"
    write_staffing(staffing_file, True)  # America/New_York
    monkeypatch.setenv("STAFFING_FILE", str(staffing_file))
    newest = max(world.manifests, key=lambda m: m.last_ts)
    html = world.get("/conversations").text
    local = dt.datetime.fromtimestamp(newest.last_ts, dt.timezone.utc).astimezone(clock.clinic_zone())
    assert local.strftime("%Y-%m-%d %H:%M:%S %Z") in html and local.tzname() in ("EST", "EDT")
    assert "Times are the clinic's (America/New_York)" in html
    assert clock.local(dt.datetime(2026, 7, 1, 16, 30)) == "2026-07-01 12:30 EDT"
    assert clock.local(dt.datetime(2026, 12, 6, 15, 5)) == "2026-12-06 10:05 EST"
    assert clock.local(None) == ""


def test_clinicians_see_a_referred_visitors_name_in_the_list_support_does_not(world: World) -> None:
    from clinic.storage import referrals
    from clinic.settings import get_settings

    referred = world.newest_first(world.by_kind("prescreen_referred"))[0]
    existing = referrals.referral_for_conversation(world.engine, referred)
    if existing is None:
        referrals.create_referral(world.engine, get_settings().encryption_key, referred, "eligible", [], {"age": 30},
                                  {"name": "Zelda <b>Quux</b>", "email": "z@example.com"})
    html = world.get("/conversations", "clinician", params={"outcome": "referred"}).text
    assert "Zelda &lt;b&gt;Quux&lt;/b&gt;" in html and "<b>Quux" not in html
    assert world.audit("view_contact")[-1]["target_type"] == "conversation_list"
    support = world.get("/conversations", "support", params={"outcome": "referred"}).text
    assert "Zelda" not in support and "data-name" not in support
