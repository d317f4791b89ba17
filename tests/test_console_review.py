"""Console: marking what a visitor message should have been, and the review page (grouped by
meaning, suggestions, accept and reject, the training data written, roles, audit).

The writer and the grouping alone: tests/test_reviewed_data.py; the loop through training:
tests/test_review_loop_training.py; in a browser: tests/test_console_review_browser.py."""

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any, Dict, List

import pytest
import yaml
from sanic import Sanic
from sqlalchemy import select

from clinic.console import corrections
from clinic.storage import db
from clinic.console import purge
from clinic.storage.db import corrections as table
from clinic.storage.db import utcnow
from clinic.safety import bank
from tests.test_console_dashboard import Tracker, did_you_mean, epoch
from tests.test_console_referrals import Console

Sanic.test_mode = True
GROUP = re.compile(r'<section class="card review-group".*?</section>', re.S)
ROW = re.compile(r'<tr data-event-id="(\d+)">')

PRICE = ["how much does it cost", "what's the price per month", "how much is it per month"]
DRIVING = ["can i drive home after my session", "am i allowed to drive after a dose"]


@pytest.fixture(scope="module", autouse=True)
def encoder_loaded() -> None:
    """The sentence encoder loaded before the first request (the console loads it on first use, ~2 s
    on a quiet machine: more than the test client waits on a busy one)."""
    from clinic.nlu.sentence_embeddings import encoder

    encoder()


@pytest.fixture
def console(clinic_env: Path, monkeypatch: pytest.MonkeyPatch) -> Console:
    from clinic.settings import get_settings

    monkeypatch.setenv("TRAINING_DATA_DIR", str(clinic_env / "data"))
    monkeypatch.delenv("CLINIC_ENCRYPTION_KEY", raising=False)
    monkeypatch.delenv("TRACKER_DB_URL", raising=False)
    get_settings.cache_clear()
    return Console(clinic_env)


def event_ids(console: Console, cid: str) -> List[int]:
    with console.app.ctx.tracker.connect() as conn:
        return [r[0] for r in conn.exec_driver_sql(
            "SELECT id FROM events WHERE sender_id = ? AND type_name = 'user' ORDER BY id", (cid,))]


def seed(console: Console) -> Dict[str, Any]:
    """Price questions fallen back on, driving questions answered with "did you mean", one answered
    well, one a pre-screen answer the NLU could not place; a visitor's pick of "did you mean"."""
    t = Tracker()
    ts = epoch(utcnow() - dt.timedelta(hours=5))
    for i, text in enumerate(PRICE):
        ts = t.start(f"p{i}", ts)
        ts = did_you_mean(t, f"p{i}", ts, text, topics=False)
    for i, text in enumerate(DRIVING):
        ts = t.start(f"d{i}", ts)
        ts = did_you_mean(t, f"d{i}", ts, text)
    ts = t.start("ok", ts)
    ts = t.user("ok", ts, "is it legal", "faq", topic="legal_status")
    ts = t.action("ok", ts, "action_answer_faq")
    ts = t.start("form", ts)
    ts = t.loop("form", ts, "prescreen_form")
    ts = t.slot("form", ts, "requested_slot", "age")
    ts = t.user("form", ts, "forty-ish, my email is kim@example.com", "nlu_fallback")
    ts = t.action("form", ts, "action_did_you_mean")
    ts = t.bot("form", ts, "utter_did_you_mean")
    t.write(console.tracker_path)
    d0 = event_ids(console, "d0")[0]
    # the visitor picked "after_session" for the first driving question: a pick names Rasa's id of the message
    with console.app.ctx.tracker.connect() as conn:
        message_id = json.loads(conn.exec_driver_sql("SELECT data FROM events WHERE id = ?", (d0,)).scalar())["message_id"]
    db.record_topic_pick(console.engine, "d0", message_id, ["after_session", "session_experience"], "after_session")
    return {"price": [event_ids(console, f"p{i}")[0] for i in range(3)], "driving": [d0, event_ids(console, "d1")[0]],
            "ok": event_ids(console, "ok")[0], "form": event_ids(console, "form")[0]}


def groups_on(html: str) -> List[List[int]]:
    return [sorted(int(e) for e in ROW.findall(g)) for g in GROUP.findall(html)]


def rows(console: Console) -> List[Dict[str, Any]]:
    with console.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(table).order_by(table.c.id))]


def test_the_review_page_groups_fallbacks_and_unsure_questions_with_suggestions(console: Console) -> None:
    ids = seed(console)
    response = console.get("/review", "support")
    assert response.status == 200
    found = groups_on(response.text)
    assert sorted(found) == sorted([sorted(ids["price"]), sorted(ids["driving"])])  # not the good answer, not the form answer
    assert "kim@example.com" not in response.text
    driving = next(g for g in GROUP.findall(response.text) if f'data-event-id="{ids["driving"][0]}"' in g)
    assert 'data-suggested="faq/after_session"' in driving  # the visitor's pick
    assert "suggested:" in driving
    # support reads, but has no forms to decide with
    assert 'action="/review/decide"' not in response.text
    # the pick became a proposed correction (source "pick", nobody's mark)
    picked = [r for r in rows(console) if r["event_id"] == ids["driving"][0]]
    assert [(r["source"], r["label"], r["status"], r["proposed_by"]) for r in picked] == [
        ("pick", "faq/after_session", "proposed", None)]
    assert console.audits("view_review")[-1]["detail"] == "5 messages"
    clinician = console.get("/review", "clinician").text
    assert clinician.count('action="/review/decide"') == 2


def test_marking_a_message_on_a_transcript(console: Console) -> None:
    ids = seed(console)
    event = ids["ok"]  # answered confidently, but wrongly in the staff's view
    response = console.post("/conversations/ok/corrections", {"event_id": str(event), "label": "faq/pricing"}, as_="support")
    assert response.status == 303 and response.headers["location"] == f"/conversations/ok?done=corrected#event-{event}"
    [row] = rows(console)
    assert (row["event_id"], row["label"], row["understood"], row["status"], row["proposed_by"], row["source"]) == (
        event, "faq/pricing", "faq/legal_status", "proposed", "support", "staff")
    assert "is it legal" not in row["text_encrypted"]  # sealed at rest
    assert corrections.get(console.engine, console.key, [row["id"]])[0]["text"] == "is it legal"
    audit = console.audits("correction_propose")[-1]
    assert (audit["username"], audit["target_id"], audit["detail"]) == ("support", str(row["id"]), f"event={event} label=faq/pricing")
    page = console.get("/conversations/ok", "support").text
    assert '<p class="correction" data-status="proposed">Should have been <strong>Cost</strong>' in page
    # it is on the review page, though the assistant was sure of it, with its mark as the suggestion
    review = console.get("/review", "clinician").text
    assert any(event in g for g in groups_on(review))
    group = next(g for g in GROUP.findall(review) if f'data-event-id="{event}"' in g)
    assert 'data-suggested="faq/pricing"' in group and "marked by support" in group


def test_a_bare_intent_payload_is_a_button_press_and_not_offered_for_correction(console: Console) -> None:
    t = Tracker()
    ts = t.start("payload", epoch(utcnow() - dt.timedelta(hours=1)))
    ts = t.user("payload", ts, "/start_prescreen", "start_prescreen")  # no display title: a bare payload
    ts = t.action("payload", ts, "utter_greet")
    t.user("payload", ts, "is it legal where i live", "faq", topic="legal_status")
    t.write(console.tracker_path)
    payload, typed = event_ids(console, "payload")
    page = console.get("/conversations/payload", "support").text
    assert f'id="event-{typed}"' in page  # the typed question is offered
    assert f'id="event-{payload}"' not in page  # the payload is not
    response = console.post("/conversations/payload/corrections", {"event_id": str(payload), "label": "greet"}, as_="support")
    assert "not_correctable" in response.headers["location"] and rows(console) == []


@pytest.mark.parametrize("case", ["form_answer", "bad_label", "not_a_message"])
def test_what_cannot_be_marked(console: Console, case: str) -> None:
    ids = seed(console)
    cid, event, label = {"form_answer": ("form", ids["form"], "faq/pricing"), "bad_label": ("ok", ids["ok"], "faq/nope"),
                         "not_a_message": ("ok", 999999, "greet")}[case]
    response = console.post(f"/conversations/{cid}/corrections", {"event_id": str(event), "label": label}, as_="clinician")
    assert response.status == 303 and "corrected" not in response.headers["location"]
    assert rows(console) == []
    assert console.post("/conversations/nobody/corrections", {"event_id": "1", "label": "greet"}, as_="clinician").status == 404


def decide(console: Console, action: str, events: List[int], label: str = "", texts: Dict[int, str] = None, as_: str = "clinician"):
    form: Dict[str, Any] = {"action": action, "label": label, "item": [str(e) for e in events]}
    for e, text in (texts or {}).items():
        form[f"text_{e}"] = text
    return console.post("/review/decide", form, as_=as_)


def test_accepting_a_group_writes_training_data_once(console: Console, clinic_env: Path) -> None:
    ids = seed(console)
    texts = dict(zip(ids["price"], PRICE))
    texts[ids["price"][0]] = "how much does it cost"  # confirmed as it is
    response = decide(console, "accept", ids["price"], "faq/pricing", texts)
    assert response.status == 303 and response.headers["location"] == "/review?done=accepted&written=3&skipped=0"
    written = yaml.safe_load((clinic_env / "data" / "reviewed" / "faq_pricing.yml").read_text())
    assert written["version"] == "3.1"
    assert written["nlu"] == [{"intent": "faq/pricing", "examples": "".join(f"- {t}\n" for t in PRICE)}]
    accepted = [r for r in rows(console) if r["status"] == "accepted"]
    assert sorted(r["event_id"] for r in accepted) == sorted(ids["price"])
    assert {(r["label"], r["decided_by"], r["written_to"]) for r in accepted} == {("faq/pricing", "clinician", "reviewed/faq_pricing.yml")}
    audits = console.audits("correction_accept")
    assert len(audits) == 3 and all(a["detail"].endswith("label=faq/pricing") for a in audits)
    assert all("per month" not in (a["detail"] or "") for a in console.audits())
    # decided: off the review page; the page says what was written
    page = console.get("/review?done=accepted&written=3&skipped=0", "clinician").text
    assert groups_on(page) == [sorted(ids["driving"])]
    assert "3 examples written to the training data, 0 already there" in page and "data/reviewed/faq_pricing.yml</code> 3" in page
    # accepting them again changes nothing, and says so
    again = decide(console, "accept", ids["price"], "faq/pricing", texts)
    assert again.status == 409 and "Someone decided some of these messages meanwhile" in again.text
    assert yaml.safe_load((clinic_env / "data" / "reviewed" / "faq_pricing.yml").read_text()) == written


def test_the_training_data_is_written_and_counted_off_the_event_loop(console: Console, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from clinic.nlu.reviewed_data import ReviewedData

    on_loop = []
    for name in ("add", "count"):
        original = getattr(ReviewedData, name)

        def checked(self, *args, _original=original, **kwargs):
            try:
                asyncio.get_running_loop()
                on_loop.append(_original.__name__)  # the console's loop would wait on the files and the lock
            except RuntimeError:
                pass  # a thread of the executor
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(ReviewedData, name, checked)
    ids = seed(console)
    assert decide(console, "accept", ids["price"], "faq/pricing", dict(zip(ids["price"], PRICE))).status == 303
    assert console.get("/review", "clinician").status == 200
    assert on_loop == []


def test_a_stale_batch_keeps_the_edits_and_writes_nothing(console: Console, clinic_env: Path) -> None:
    ids = seed(console)
    assert decide(console, "accept", ids["price"][:1], "faq/pricing", {ids["price"][0]: PRICE[0]}).status == 303
    batch = ids["price"]  # the first one was accepted by someone else while this page was open
    edits = {e: f"what is the monthly fee, version {i}" for i, e in enumerate(batch)}
    response = decide(console, "accept", batch, "faq/pricing", edits)
    assert response.status == 409 and "nothing was accepted or written" in response.text
    assert all(edits[e] in response.text for e in batch[1:])  # the edits are on the page again: nothing lost
    assert yaml.safe_load((clinic_env / "data" / "reviewed" / "faq_pricing.yml").read_text())["nlu"][0]["examples"] == (
        f"- {PRICE[0]}\n")
    assert sorted(r["event_id"] for r in rows(console) if r["status"] == "accepted") == [ids["price"][0]]


def test_a_message_accepted_by_someone_else_meanwhile_is_no_error(console: Console, clinic_env: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from clinic.console import review

    ids = seed(console)
    event = ids["price"][1]  # no correction yet: the decision proposes one for it
    read = review._messages_of

    def someone_else_accepts_first(request, event_ids):
        found = read(request, event_ids)
        m = found[event]
        cid = corrections.propose(console.engine, console.key, m.conversation_id, event, m.message_id, m.text,
                                  "faq/pricing", m.understood, corrections.STAFF, "admin")
        corrections.accept(console.engine, console.key, [(cid, m.text)], "faq/pricing", "admin", lambda: "")
        return found

    monkeypatch.setattr(review, "_messages_of", someone_else_accepts_first)
    response = decide(console, "accept", [event, ids["price"][2]], "faq/pricing",
                      {event: "price question", ids["price"][2]: "monthly price question kept"})
    assert response.status == 409 and "monthly price question kept" in response.text
    assert not (clinic_env / "data" / "reviewed").exists()  # nothing written for what this request did not accept
    assert {r["event_id"]: r["status"] for r in rows(console) if r["event_id"] in ids["price"]} == {event: "accepted"}


def test_two_proposals_of_one_message_at_once_make_one_correction(console: Console, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy import event as sa_event, insert

    ids = seed(console)
    message = ids["price"][0]
    sneaked = []

    def another_request_inserts_first(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("INSERT INTO CORRECTIONS") and not sneaked:
            sneaked.append(True)  # between this request's read and its insert, another one inserts the row
            with console.engine.begin() as other:
                other.execute(insert(table).values(
                    conversation_id="p0", event_id=message, message_id=None, label="faq/insurance", understood=None,
                    source=corrections.PICK, status=corrections.PROPOSED, text_encrypted="x", proposed_by=None,
                    proposed_at=utcnow()))

    sa_event.listen(console.engine, "before_cursor_execute", another_request_inserts_first)
    try:
        response = console.post("/conversations/p0/corrections", {"event_id": str(message), "label": "faq/pricing"},
                                as_="support")
    finally:
        sa_event.remove(console.engine, "before_cursor_execute", another_request_inserts_first)
    assert sneaked and response.status == 303 and "corrected" in response.headers["location"]
    assert [(r["event_id"], r["label"], r["source"]) for r in rows(console) if r["event_id"] == message] == [
        (message, "faq/pricing", "staff")]


def test_an_edited_text_is_what_is_written_and_personal_data_is_refused(console: Console, clinic_env: Path) -> None:
    ids = seed(console)
    event = ids["driving"][0]
    response = decide(console, "accept", [event], "faq/after_session", {event: "i'm Dana, can i drive after? dana@example.com"})
    assert response.status == 400 and "e-mail address" in response.text
    assert "dana@example.com" in response.text  # the edit is kept in the form, nothing lost
    assert not (clinic_env / "data" / "reviewed").exists()
    assert [r["status"] for r in rows(console) if r["event_id"] == event] == ["proposed"]
    response = decide(console, "accept", [event], "faq/after_session", {event: "i'm Dana, can i drive after?"})
    assert response.status == 400 and "a name" in response.text
    response = decide(console, "accept", [event], "faq/after_session", {event: "Can I drive after?"})
    assert response.status == 400 and "in an evaluation set (tests/nlu/" in response.text  # held out of training
    assert not (clinic_env / "data" / "reviewed").exists()
    response = decide(console, "accept", [event], "faq/after_session", {event: "can i drive home once it wears off"})
    assert response.status == 303
    doc = yaml.safe_load((clinic_env / "data" / "reviewed" / "faq_after_session.yml").read_text())
    assert doc["nlu"][0]["examples"] == "- can i drive home once it wears off\n"
    [row] = [r for r in rows(console) if r["event_id"] == event]
    assert corrections.get(console.engine, console.key, [row["id"]])[0]["text"] == "can i drive home once it wears off"


def test_rejecting_and_new_topics_write_nothing(console: Console, clinic_env: Path) -> None:
    ids = seed(console)
    assert decide(console, "reject", ids["driving"]).status == 303
    assert {r["status"] for r in rows(console)} == {"rejected"}
    assert len(console.audits("correction_reject")) == 2
    assert decide(console, "accept", ids["price"][:1], "new_topic", {ids["price"][0]: PRICE[0]}).status == 303
    assert not (clinic_env / "data").exists() or not any((clinic_env / "data").rglob("*.yml"))
    assert groups_on(console.get("/review", "clinician").text) == [sorted(ids["price"][1:])]


def test_safety_corrections_feed_the_safety_banks(console: Console, clinic_env: Path) -> None:
    ids = seed(console)
    t = Tracker()  # a message the assistant took over as a crisis that was none
    ts = t.start("taken", epoch(utcnow() - dt.timedelta(hours=1)))
    ts = t.user("taken", ts, "this price is killing me honestly", "crisis")
    t.action("taken", ts, "action_crisis_response")
    t.write(console.tracker_path)
    taken = event_ids(console, "taken")[0]
    assert console.post("/conversations/taken/corrections", {"event_id": str(taken), "label": "faq/pricing"},
                        as_="support").status == 303
    assert decide(console, "accept", [taken], "faq/pricing", {taken: "this price is killing me honestly"}).status == 303
    negatives = bank.load_training_negatives(clinic_env / "data" / "safety")
    assert [(e.text, e.group) for e in negatives] == [("this price is killing me honestly", "staff_reviewed")]
    event = ids["price"][2]
    assert decide(console, "accept", [event], "crisis", {event: "how expensive is it to just end it all"}).status == 303
    risks = bank.load_risk_examples(clinic_env / "data" / "safety" / "reviewed.yml")
    assert [(e.text, e.outcome) for e in risks] == [("how expensive is it to just end it all", "crisis")]


def test_a_message_taken_over_as_a_crisis_is_shown_as_taught_not_a_crisis_and_not_selected(console: Console) -> None:
    ids = seed(console)
    t = Tracker()
    ts = t.start("taken", epoch(utcnow() - dt.timedelta(hours=1)))
    ts = t.user("taken", ts, "how much does it cost, this price is killing me", "crisis")
    t.action("taken", ts, "action_crisis_response")
    t.write(console.tracker_path)
    taken = event_ids(console, "taken")[0]
    # a person marks it as a price question (it is on the review page by that mark)
    console.post("/conversations/taken/corrections", {"event_id": str(taken), "label": "faq/pricing"}, as_="support")
    page = console.get("/review", "clinician").text
    group = next(g for g in GROUP.findall(page) if f'data-event-id="{taken}"' in g)
    assert 'data-suggested="faq/pricing"' in group and 'value="faq/pricing" selected' in group  # chosen for the group
    row = group[group.index(f'data-event-id="{taken}"'):]
    row = row[:row.index("</tr>")]
    assert "will be taught as not a crisis" in row
    assert re.search(rf'name="item" value="{taken}" aria-label', row)  # not ticked
    assert len(groups_on(group)[0]) > 1 and all(f'value="{e}" checked' in group for e in groups_on(group)[0] if e != taken)
    assert page.count("will be taught as not a crisis") == 1
    # chosen as a crisis, nothing is taught as not a crisis
    console.post("/conversations/taken/corrections", {"event_id": str(taken), "label": "crisis"}, as_="support")
    assert "will be taught as not a crisis" not in console.get("/review", "clinician").text


def test_a_crisis_example_is_not_accepted_as_not_a_crisis_and_the_page_says_why(console: Console, clinic_env: Path) -> None:
    ids = seed(console)
    (clinic_env / "data" / "safety").mkdir(parents=True)
    (clinic_env / "data" / "safety" / "crisis.yml").write_text(
        'version: "3.1"\nnlu:\n- intent: crisis\n  metadata:\n    category: plan\n  examples: |\n'
        '    - the price does not matter, i wont be here next month\n')
    event = ids["price"][0]
    response = decide(console, "accept", [event], "not_crisis", {event: "The price does not matter, I wont be here next month!"})
    assert response.status == 400 and "cannot be taught as not a crisis" in response.text
    assert not (clinic_env / "data" / "safety" / "hard_negatives_reviewed.yml").exists()
    assert [r["status"] for r in rows(console)] == ["proposed"]  # the visitor's pick only; nothing accepted


def test_support_may_mark_but_not_decide(console: Console, clinic_env: Path) -> None:
    ids = seed(console)
    response = decide(console, "accept", ids["price"], "faq/pricing", dict(zip(ids["price"], PRICE)), as_="support")
    assert response.status == 403
    assert rows(console) == [] and not (clinic_env / "data" / "reviewed").exists()
    assert console.get("/review", None).status in (302, 303)


def test_bad_decisions_are_refused_with_a_reason(console: Console) -> None:
    ids = seed(console)
    assert "Choose what these messages" in decide(console, "accept", ids["price"], "").text
    assert "Select at least one" in decide(console, "accept", [], "faq/pricing").text
    assert "no visitor question" in decide(console, "accept", [ids["form"]], "faq/pricing", {ids["form"]: "forty"}).text
    assert "Choose accept or reject" in decide(console, "maybe", ids["price"], "faq/pricing").text
    # nothing decided (the page shown again proposed the visitor's pick, as any view of it does)
    assert [(r["source"], r["status"]) for r in rows(console)] == [("pick", "proposed")]


def test_deleting_a_conversation_deletes_its_corrections(console: Console) -> None:
    ids = seed(console)
    console.post("/conversations/ok/corrections", {"event_id": str(ids["ok"]), "label": "greet"}, as_="support")
    assert purge.linked_counts(console.engine, "ok")["corrections"] == 1
    purge.delete_conversations(console.engine, console.settings.tracker_db_url, ["ok"])
    assert purge.linked_counts(console.engine, "ok")["corrections"] == 0


def test_an_answer_given_with_low_confidence_is_reviewed_too(console: Console) -> None:
    t = Tracker()
    ts = epoch(utcnow() - dt.timedelta(hours=2))
    for cid, confidence in (("unsure", 0.74), ("sure", 0.81)):
        ts = t.start(cid, ts)
        ts = t.user(cid, ts, f"does insurance pay for it ({cid})", "faq", topic="insurance")
        user_row = next(r for r in reversed(t.rows) if r[1] == "user")
        user_row[5]["parse_data"]["intent"]["confidence"] = confidence
        ts = t.action(cid, ts, "action_answer_faq")
    t.write(console.tracker_path)
    page = console.get("/review", "clinician").text
    assert groups_on(page) == [event_ids(console, "unsure")]
    assert "low confidence" in page and "(0.74)" in page
    # the NLU's own topic is shown as its guess, not chosen for the person
    assert "the assistant&#39;s guess:</span> <span class=\"tag\" data-suggested=\"faq/insurance\"" in page
    assert '<option value="faq/insurance" selected>' not in page
