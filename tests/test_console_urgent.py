"""Console: the Urgent view (what is on it, in what order, marking handled) and the alerts' feed.

Browser tests of the page and of the alerts on every page: tests/test_console_urgent_browser.py.
"""

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any, List

import pytest
from sanic import Sanic
from sqlalchemy import update

from clinic.storage import db
from clinic.rules import handoff
from clinic.console import urgent
from clinic.storage.db import conversation_flags, handoff_requests, utcnow
from tests.stack import write_staffing
from tests.test_console_referrals import XSS, Console, console  # noqa: F401  (fixture)

Sanic.test_mode = True
ITEM = re.compile(r'<tr data-item="([a-z]+-\d+)"')


def items_on(html: str) -> List[str]:
    return ITEM.findall(html)


def age(engine: Any, table: Any, row_id: int, minutes: float) -> None:
    with engine.begin() as conn:
        conn.execute(update(table).where(table.c.id == row_id).values(created_at=utcnow() - dt.timedelta(minutes=minutes)))


def flag(engine: Any, cid: str, kind: str, minutes_ago: float) -> int:
    assert db.flag_once(engine, cid, kind)
    row_id = db.flags_for(engine, cid, kind)[-1]["id"]
    age(engine, conversation_flags, row_id, minutes_ago)
    return row_id


def callback(engine: Any, cid: str, reason: str, urgent_: bool, minutes_ago: float, status: str = "new") -> int:
    row_id = handoff.request_callback(engine, cid, reason, urgent_, "sealed")
    age(engine, handoff_requests, row_id, minutes_ago)
    if status != "new":
        with engine.begin() as conn:
            conn.execute(update(handoff_requests).where(handoff_requests.c.id == row_id).values(status=status))
    return row_id


@pytest.fixture
def seeded(console: Console) -> dict:
    e = console.engine
    ids = {
        "crisis": flag(e, "c-crisis", "crisis", 50),  # no contact details left: on the list all the same
        "medical": flag(e, "c-medical", "urgent_medical", 10),
        "callback": callback(e, "c-callback", "crisis", True, 30),
        "waiting": handoff.request_live(e, "c-waiting", "visitor_request", urgent=False)["id"],
    }
    age(e, handoff_requests, ids["waiting"], 20)
    # not urgent, or no longer open:
    callback(e, "c-plain", "visitor_request", False, 60)  # an ordinary callback
    callback(e, "c-closed", "crisis", True, 70, status="closed")  # a crisis callback closed
    taken = handoff.request_live(e, "c-taken", "visitor_request", urgent=True)["id"]
    handoff.change(e, taken, "claim", handoff.WAITING, 1, "Sam")  # someone has the chat
    db.flag_once(e, "c-other-flag", "spam")  # not an urgent kind
    with e.begin() as conn:  # a flag reviewed before
        conn.execute(update(conversation_flags).where(conversation_flags.c.id == flag(e, "c-old", "crisis", 90)).values(reviewed=True))
    return ids


def test_the_urgent_items_oldest_first(console: Console, seeded: dict) -> None:
    items = urgent.open_items(console.engine)
    assert [i["key"] for i in items] == [
        f"flag-{seeded['crisis']}", f"callback-{seeded['callback']}", f"waiting-{seeded['waiting']}", f"flag-{seeded['medical']}"]
    assert [i["kind"] for i in items] == ["crisis", "callback", "waiting", "urgent_medical"]
    assert [i["conversation_id"] for i in items] == ["c-crisis", "c-callback", "c-waiting", "c-medical"]
    assert items[0]["waited"] == "50 min"


@pytest.mark.parametrize("role", ["support", "clinician", "admin"])
def test_the_page_lists_them_with_a_way_to_handle_each(console: Console, seeded: dict, role: str) -> None:
    resp = console.get("/urgent", as_=role)
    assert resp.status == 200
    html = resp.text
    assert items_on(html) == [f"flag-{seeded['crisis']}", f"callback-{seeded['callback']}", f"waiting-{seeded['waiting']}",
                              f"flag-{seeded['medical']}"]
    assert f'action="/urgent/flag/{seeded["crisis"]}/handled"' in html
    assert f'action="/urgent/callback/{seeded["callback"]}/handled"' in html
    assert f'action="/urgent/waiting/' not in html  # a waiting visitor is handled by taking the chat
    assert 'href="/conversations/c-crisis"' in html and 'href="/live"' in html
    # the menu: Urgent first, with the count
    nav = re.search(r'<nav aria-label="Console">(.*?)</nav>', html, re.S).group(1)
    assert re.findall(r'<a href="([^"]+)"', nav)[0] == "/urgent"
    assert 'id="urgent-count" class="count waiting" data-count="4"' in nav
    assert '<script src="/static/alerts.js"></script>' in html


def test_the_first_page_is_the_urgent_view(console: Console) -> None:
    resp = console.get("/", as_="support")
    assert resp.status == 302 and resp.headers["location"] == "/urgent"
    empty = console.get("/urgent", as_="support")
    assert "Nothing urgent is open." in empty.text and 'data-count="0"' in empty.text


def test_marking_handled_needs_a_note_and_is_audited(console: Console, seeded: dict) -> None:
    crisis = seeded["crisis"]
    for note, status in (("", 400), ("   ", 400), ("x" * (urgent.MAX_NOTE_CHARS + 1), 400)):
        resp = console.post(f"/urgent/flag/{crisis}/handled", {"note": note}, as_="support")
        assert resp.status == status and "Not marked handled" in resp.text
    assert f"flag-{crisis}" in [i["key"] for i in urgent.open_items(console.engine)]
    assert console.audits("urgent_handled") == []

    resp = console.post(f"/urgent/flag/{crisis}/handled", {"note": XSS[0] + " called, safe with her sister"}, as_="support")
    assert resp.status == 303 and resp.headers["location"] == "/urgent?done=handled"
    assert f"flag-{crisis}" not in [i["key"] for i in urgent.open_items(console.engine)]
    assert db.flags_for(console.engine, "c-crisis", "crisis")[0]["reviewed"] is True
    [entry] = console.audits("urgent_handled")
    assert (entry["username"], entry["target_type"], entry["target_id"], entry["detail"]) == (
        "support", "flag", str(crisis), "conversation c-crisis")
    assert "sister" not in json.dumps(entry, default=str)  # the note is not in the audit log

    page = console.get("/urgent?done=handled", as_="clinician").text
    assert "Marked handled." in page
    handled = re.search(r'<table id="urgent-handled">(.*?)</table>', page, re.S).group(1)
    assert "called, safe with her sister" in handled and XSS[0] not in handled and "&lt;" in handled
    assert ">support<" in handled and ">Crisis<" in handled

    again = console.post(f"/urgent/flag/{crisis}/handled", {"note": "twice"}, as_="admin")
    assert again.status == 409 and "not open any more" in again.text
    assert len(console.audits("urgent_handled")) == 1


def test_a_crisis_callback_handled_and_the_kinds_that_cannot_be(console: Console, seeded: dict) -> None:
    resp = console.post(f"/urgent/callback/{seeded['callback']}/handled", {"note": "called back"}, as_="support")
    assert resp.status == 303
    assert [i["kind"] for i in urgent.open_items(console.engine)] == ["crisis", "waiting", "urgent_medical"]
    assert console.post(f"/urgent/waiting/{seeded['waiting']}/handled", {"note": "n"}, as_="support").status == 404
    plain = [r for r in db.handoff_requests_for(console.engine, "c-plain")][0]["id"]
    assert console.post(f"/urgent/callback/{plain}/handled", {"note": "n"}, as_="support").status == 409


def test_a_visitor_in_danger_again_is_urgent_again(console: Console, seeded: dict) -> None:
    crisis = seeded["crisis"]
    assert not db.flag_once(console.engine, "c-crisis", "crisis")  # said again before anyone looked: one entry
    assert console.post(f"/urgent/flag/{crisis}/handled", {"note": "spoke to them"}, as_="support").status == 303
    assert db.flag_once(console.engine, "c-crisis", "crisis")  # after it was handled: a new entry
    assert [i["conversation_id"] for i in urgent.open_items(console.engine)].count("c-crisis") == 1


def test_the_alerts_feed(console: Console, seeded: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    staffing_file = tmp_path / "staffing.yml"
    monkeypatch.setenv("STAFFING_FILE", str(staffing_file))
    write_staffing(staffing_file, True)
    data = console.get("/urgent/alerts.json", as_="support").json
    assert data["count"] == 4 and data["waiting"] == 1 and data["staffed"] is True
    assert [i["key"] for i in data["items"]] == items_on(console.get("/urgent", as_="support").text)
    assert set(data["items"][0]) == {"key", "kind"}  # no conversation id, no visitor text
    write_staffing(staffing_file, False)
    assert console.get("/urgent/alerts.json", as_="support").json["staffed"] is False
    assert console.get("/urgent/alerts.json").status in (302, 303)  # signed out: no feed


def test_deleting_a_conversation_deletes_its_urgent_notes(console: Console, seeded: dict) -> None:
    from clinic.console import purge

    console.post(f"/urgent/flag/{seeded['medical']}/handled", {"note": "told them to call 911"}, as_="support")
    assert purge.linked_counts(console.engine, "c-medical")["urgent_notes"] == 1
    counts = purge.delete_conversations(console.engine, console.settings.tracker_db_url, ["c-medical"])
    assert counts["urgent_notes"] == 1 and counts["flags"] == 1
    assert purge.linked_counts(console.engine, "c-medical")["urgent_notes"] == 0
    assert urgent.recently_handled(console.engine) == []
