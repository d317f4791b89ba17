"""Console: the referral queue and page, handoff requests and the waitlist.

Route by route and role by role: clinicians and admins see referrals and
contact details (every view audited), support staff get 403 everywhere on
referrals (POSTs included), a made-up reference is a 404, status moves only
along the workflow, and whatever visitors or staff typed comes back escaped.
"""

import datetime as dt
import hashlib
import re
import sqlite3
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
from sanic import Sanic
from sqlalchemy import select, update

from clinic.storage import referrals as referral_store
from clinic.console import auth, clock
from clinic.console.app import create_console_app
from clinic.console.referrals_queue import TRANSITIONS
from clinic.storage.db import audit_log, get_engine, handoff_requests, referral_notes, referrals, utcnow
from clinic.settings import get_settings

from tests import encrypted_db

Sanic.test_mode = True

PASSWORD = "correct horse battery staple"
REF_LINK = re.compile(r'href="/referrals/([0-9A-Z]{3}-[0-9A-Z]{3})"')
XSS = [
    "<script>alert('x')</script>",
    '<img src=x onerror="alert(1)">',
    '<svg onload="alert(1)"></svg>',
    '<a href="javascript:alert(1)">click me</a>',
]
CONTACT = {
    "name": "Rosalind Quimby",
    "email": "rosalind.quimby@example.org",
    "phone": "+1 512 555 0187",
    "preferred_time": "weekday mornings",
}
ANSWERS = {"age": 37, "state": "TX", "concern": "ptsd", "treatments_tried": "sertraline and talk therapy"}

# The DDL of Rasa 3.6's SQLTrackerStore (copied from a tracker.db the stack tests make).
TRACKER_DDL = """
CREATE TABLE events (
    id INTEGER NOT NULL,
    sender_id VARCHAR(255) NOT NULL,
    type_name VARCHAR(255) NOT NULL,
    timestamp FLOAT,
    intent_name VARCHAR(255),
    action_name VARCHAR(255),
    data TEXT,
    PRIMARY KEY (id)
);
CREATE INDEX ix_events_sender_id ON events (sender_id);
"""


class Console:
    """A console app on a private clinic DB and tracker store, with one user per role."""

    def __init__(self, root: Path) -> None:
        self.settings = get_settings()
        self.tracker_path = root / "var" / "tracker.db"
        if not self.tracker_path.exists():
            self.tracker_path.parent.mkdir(parents=True, exist_ok=True)
            with encrypted_db.connect(self.tracker_path) as conn:
                conn.executescript(TRACKER_DDL)
        self.engine = get_engine(self.settings.clinic_db_url)
        self.key = self.settings.encryption_key
        self.app = create_console_app(self.settings, name=f"console_{id(self)}")
        self.users: Dict[str, Dict[str, Any]] = {}
        for role in auth.ROLES:
            self.add_user(role, role)

    def add_user(self, username: str, role: str) -> Dict[str, Any]:
        user_id = auth.create_user(self.engine, username, PASSWORD, role)
        token = auth.start_session(self.engine, user_id, 1)
        session_hash = hashlib.sha256(token.encode()).hexdigest()
        self.users[username] = {
            "id": user_id, "token": token, "role": role,
            "csrf": auth.csrf_token(self.app.ctx.secret, session_hash),
        }
        return self.users[username]

    def get(self, path: str, as_: Optional[str] = None, timeout: float = 5.0):
        """The page as ``as_`` sees it; ``timeout``: the test client's deadline (httpx's 5 s)."""
        cookies = {auth.SESSION_COOKIE: self.users[as_]["token"]} if as_ else {}
        _, resp = self.app.test_client.get(path, cookies=cookies, allow_redirects=False, timeout=timeout)
        return resp

    def post(self, path: str, data: Dict[str, Any], as_: Optional[str] = None, csrf: bool = True):
        cookies = {auth.SESSION_COOKIE: self.users[as_]["token"]} if as_ else {}
        form = dict(data)
        if csrf and as_:
            form["csrf"] = self.users[as_]["csrf"]
        _, resp = self.app.test_client.post(path, data=form, cookies=cookies, allow_redirects=False)
        return resp

    def referral(self, conversation_id: str, outcome: str = "eligible", urgent: bool = False,
                 created_at: Optional[dt.datetime] = None, status: str = "new",
                 contact: Optional[Dict[str, Any]] = None) -> str:
        ref = referral_store.create_referral(
            self.engine, self.key, conversation_id, outcome, ["reported uncontrolled hypertension"],
            ANSWERS, contact or CONTACT, urgent=urgent,
        )
        values: Dict[str, Any] = {"status": status}
        if created_at:
            values["created_at"] = created_at
        with self.engine.begin() as conn:
            conn.execute(update(referrals).where(referrals.c.reference == ref).values(**values))
        return ref

    def status_of(self, reference: str) -> str:
        with self.engine.connect() as conn:
            return conn.execute(select(referrals.c.status).where(referrals.c.reference == reference)).scalar()

    def audits(self, action: Optional[str] = None) -> List[Dict[str, Any]]:
        query = select(audit_log).order_by(audit_log.c.id)
        if action:
            query = query.where(audit_log.c.action == action)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]


@pytest.fixture
def console(clinic_env: Path, monkeypatch: pytest.MonkeyPatch) -> Console:
    monkeypatch.delenv("CLINIC_ENCRYPTION_KEY", raising=False)
    monkeypatch.delenv("TRACKER_DB_URL", raising=False)
    get_settings.cache_clear()
    return Console(clinic_env)


def queue_refs(html: str) -> List[str]:
    return REF_LINK.findall(html)


# --- the queue ------------------------------------------------------------------------


def test_queue_order_urgent_then_clinician_review_then_the_rest_oldest_first(console: Console) -> None:
    now = utcnow()
    ago = lambda hours: now - dt.timedelta(hours=hours)  # noqa: E731
    plain_old = console.referral("c-plain-old", "eligible", created_at=ago(50))
    review_new = console.referral("c-review-new", "clinician_review", created_at=ago(2))
    urgent_new = console.referral("c-urgent-new", "eligible", urgent=True, created_at=ago(1))
    review_old = console.referral("c-review-old", "clinician_review", created_at=ago(30))
    urgent_review_old = console.referral("c-urgent-review", "clinician_review", urgent=True, created_at=ago(10))
    plain_new = console.referral("c-plain-new", "eligible", created_at=ago(3))

    resp = console.get("/referrals", as_="clinician")
    assert resp.status == 200
    assert queue_refs(resp.text) == [urgent_review_old, urgent_new, review_old, review_new, plain_old, plain_new]
    for cid in ("c-plain-old", "c-review-new", "c-urgent-new"):
        assert f'href="/conversations/{cid}"' in resp.text


def test_queue_shows_columns_and_filters_by_status(console: Console) -> None:
    new = console.referral("c-new", created_at=utcnow() - dt.timedelta(hours=5))
    contacted = console.referral("c-contacted", "clinician_review", status="contacted")
    closed = console.referral("c-closed", status="closed")
    gone = console.referral("c-gone", status="not_reachable")

    default = console.get("/referrals", as_="admin").text  # open ones only
    assert set(queue_refs(default)) == {new, contacted}
    for header in ("Reference", "Outcome", "Urgent", "Status", "Assignee", "Created"):
        assert f">{header}" in default
    assert "Clinician review" in default and "Contacted" in default

    assert queue_refs(console.get("/referrals?status=closed", as_="admin").text) == [closed]
    assert queue_refs(console.get("/referrals?status=not_reachable", as_="admin").text) == [gone]
    assert queue_refs(console.get("/referrals?status=contacted", as_="admin").text) == [contacted]
    assert set(queue_refs(console.get("/referrals?status=all", as_="admin").text)) == {new, contacted, closed, gone}
    # nonsense filter falls back to the open queue
    assert set(queue_refs(console.get("/referrals?status=%3Cscript%3E", as_="admin").text)) == {new, contacted}


def test_queue_date_filter_and_reference_search(console: Console) -> None:
    yesterday = utcnow() - dt.timedelta(days=1)
    old = console.referral("c-old", created_at=utcnow() - dt.timedelta(days=10))
    recent = console.referral("c-recent", created_at=yesterday)
    day = clock.localize(yesterday).date().isoformat()  # the date the queue shows
    assert queue_refs(console.get(f"/referrals?status=all&from={day}&to={day}", as_="clinician").text) == [recent]

    found = console.get(f"/referrals?ref={old.lower().replace('-', '')}", as_="clinician")
    assert found.status == 302 and found.headers["location"] == f"/referrals/{old}"
    missing = console.get("/referrals?ref=ZZZ-ZZZ", as_="clinician")
    assert missing.status == 200 and "No referral has that reference" in missing.text


def test_the_date_filter_takes_the_clinics_days_as_the_queue_shows_them(console: Console) -> None:
    """00:27 UTC on 7 December is 19:27 on the 6th in New York (settings/staffing.yml): the queue
    shows "2026-12-06 19:27 EST", so a filter on the 6th holds it and one on the 7th does not."""
    assert clock.zone_name() == "America/New_York"
    evening = console.referral("c-evening", created_at=dt.datetime(2026, 12, 7, 0, 27))
    morning = console.referral("c-morning", created_at=dt.datetime(2026, 12, 7, 5, 0))  # 00:00 EST
    just_before = console.referral("c-before", created_at=dt.datetime(2026, 12, 6, 4, 59))  # the 5th
    on = lambda lo, hi: queue_refs(console.get(f"/referrals?status=all&from={lo}&to={hi}", as_="clinician").text)  # noqa: E731
    page = console.get("/referrals?status=all&from=2026-12-06&to=2026-12-06", as_="clinician").text
    assert "2026-12-06 19:27 EST" in page
    assert on("2026-12-06", "2026-12-06") == [evening]
    assert on("2026-12-07", "2026-12-07") == [morning]
    assert on("2026-12-05", "2026-12-05") == [just_before]
    # summer: New York is UTC-4, the day starts at 04:00 UTC
    july = console.referral("c-july", created_at=dt.datetime(2026, 7, 2, 3, 59))
    assert on("2026-07-01", "2026-07-01") == [july]
    assert on("2026-07-02", "2026-07-02") == []


# --- status workflow ------------------------------------------------------------------

ALL_STATUSES = ("new", "contacted", "scheduled", "closed", "not_reachable")
ALLOWED = {
    ("new", "contacted"), ("contacted", "scheduled"), ("scheduled", "closed"),
    ("new", "not_reachable"), ("contacted", "not_reachable"),
}


def test_the_workflow_table_is_the_one_specified() -> None:
    assert {(a, b) for a, targets in TRANSITIONS.items() for b in targets} == ALLOWED


@pytest.mark.parametrize("current,target", [(a, b) for a in ALL_STATUSES for b in ALL_STATUSES if a != b])
def test_status_transitions(console: Console, current: str, target: str) -> None:
    ref = console.referral("c-1", status=current)
    resp = console.post(f"/referrals/{ref}/status", {"status": target, "from": current}, as_="clinician")
    if (current, target) in ALLOWED:
        assert resp.status == 303
        assert console.status_of(ref) == target
        [entry] = console.audits("referral_status")
        assert (entry["target_id"], entry["detail"], entry["username"]) == (ref, f"{current}->{target}", "clinician")
    else:
        assert resp.status == 409
        assert "Not changed" in resp.text
        assert console.status_of(ref) == current
        assert console.audits("referral_status") == []


def test_status_change_full_path_and_stale_form(console: Console) -> None:
    ref = console.referral("c-1")
    for step in ("contacted", "scheduled", "closed"):
        assert console.post(f"/referrals/{ref}/status", {"status": step}, as_="admin").status == 303
    assert console.status_of(ref) == "closed"

    other = console.referral("c-2")
    assert console.post(f"/referrals/{other}/status", {"status": "contacted", "from": "new"}, as_="clinician").status == 303
    # a second tab still showing "new" cannot move it again from "new"
    stale = console.post(f"/referrals/{other}/status", {"status": "not_reachable", "from": "new"}, as_="clinician")
    assert stale.status == 409 and console.status_of(other) == "contacted"
    bogus = console.post(f"/referrals/{other}/status", {"status": "deleted"}, as_="clinician")
    assert bogus.status == 409 and console.status_of(other) == "contacted"


def test_the_page_offers_only_allowed_moves(console: Console) -> None:
    ref = console.referral("c-1", status="contacted")
    html = console.get(f"/referrals/{ref}", as_="clinician").text
    form = html.split(f'action="/referrals/{ref}/status"')[1].split("</form>")[0]
    assert re.findall(r'<option value="([a-z_]+)"', form) == ["scheduled", "not_reachable"]
    closed = console.referral("c-2", status="closed")
    assert f'action="/referrals/{closed}/status"' not in console.get(f"/referrals/{closed}", as_="clinician").text


# --- contact details, roles, audit -----------------------------------------------------


@pytest.mark.parametrize("role", ["clinician", "admin"])
def test_contact_details_visible_to_clinician_and_admin_and_every_view_audited(console: Console, role: str) -> None:
    ref = console.referral("c-1", "clinician_review")
    for _ in range(2):
        resp = console.get(f"/referrals/{ref}", as_=role)
        assert resp.status == 200
        for value in CONTACT.values():
            assert value in resp.text
        assert "reported uncontrolled hypertension" in resp.text  # reasons
        assert "sertraline and talk therapy" in resp.text  # answers
        assert 'href="/conversations/c-1"' in resp.text
    views = console.audits("view_contact")
    assert len(views) == 2
    assert all((v["target_type"], v["target_id"], v["username"]) == ("referral", ref, role) for v in views)
    for value in CONTACT.values():  # the log says who and what, never the details
        assert all(value not in str(v) for v in console.audits())


def test_support_gets_403_on_every_referral_route(console: Console) -> None:
    ref = console.referral("c-1")
    console.post(f"/referrals/{ref}/notes", {"text": "first note"}, as_="clinician")
    before = console.audits()
    checks = [
        console.get("/referrals", as_="support"),
        console.get("/referrals?ref=" + ref, as_="support"),
        console.get(f"/referrals/{ref}", as_="support"),
        console.get("/referrals/ZZZ-ZZZ", as_="support"),  # guessing: no hint whether it exists
        console.get("/waitlist", as_="support"),
        console.post(f"/referrals/{ref}/status", {"status": "contacted"}, as_="support"),
        console.post(f"/referrals/{ref}/assign", {"assignee": str(console.users["support"]["id"])}, as_="support"),
        console.post(f"/referrals/{ref}/notes", {"text": "support was here"}, as_="support"),
    ]
    for resp in checks:
        assert resp.status == 403
        for value in CONTACT.values():
            assert value not in resp.text
        assert "first note" not in resp.text
    assert console.status_of(ref) == "new"
    with console.engine.connect() as conn:
        assert [n.text for n in conn.execute(select(referral_notes))] == ["first note"]
    assert console.audits() == before
    assert 'href="/referrals"' not in console.get("/handoffs", as_="support").text  # no menu entry either


def test_signed_out_visitors_are_sent_to_login(console: Console) -> None:
    ref = console.referral("c-1")
    for path in ("/referrals", f"/referrals/{ref}", "/handoffs", "/dashboard", "/waitlist"):
        resp = console.get(path)
        assert resp.status == 302 and resp.headers["location"].startswith("/login")
    for path in (f"/referrals/{ref}/status", f"/referrals/{ref}/assign", f"/referrals/{ref}/notes", "/handoffs/1/status"):
        resp = console.post(path, {"status": "contacted", "text": "x"})
        assert resp.status == 302 and resp.headers["location"].startswith("/login")
    assert console.status_of(ref) == "new"


def test_made_up_reference_is_404(console: Console) -> None:
    console.referral("c-1")
    for path in ("/referrals/ZZZ-ZZZ", "/referrals/zzzzzz", "/referrals/not-a-code", "/referrals/%3Cscript%3E"):
        assert console.get(path, as_="clinician").status == 404
    for action, form in (("status", {"status": "contacted"}), ("assign", {"assignee": ""}), ("notes", {"text": "hi"})):
        assert console.post(f"/referrals/ZZZ-ZZZ/{action}", form, as_="admin").status == 404
    assert console.audits("view_contact") == []


def test_posts_without_csrf_are_refused(console: Console) -> None:
    ref = console.referral("c-1")
    assert console.post(f"/referrals/{ref}/status", {"status": "contacted"}, as_="clinician", csrf=False).status == 403
    assert console.post(f"/referrals/{ref}/status", {"status": "contacted", "csrf": console.users["admin"]["csrf"]},
                        as_="clinician", csrf=False).status == 403  # another session's token
    assert console.post(f"/referrals/{ref}/notes", {"text": "x"}, as_="clinician", csrf=False).status == 403
    assert console.status_of(ref) == "new"


def test_every_form_carries_the_csrf_token(console: Console) -> None:
    ref = console.referral("c-1")
    html = console.get(f"/referrals/{ref}", as_="clinician").text
    forms = re.findall(r'<form method="post".*?</form>', html, re.S)
    assert len(forms) == 4  # sign out, status, assignee, note
    assert all(f'name="csrf" value="{console.users["clinician"]["csrf"]}"' in f for f in forms)


# --- assignee and notes ---------------------------------------------------------------


def test_assign_among_clinicians_and_admins(console: Console) -> None:
    ref = console.referral("c-1")
    console.add_user("dr.ada", "clinician")
    html = console.get(f"/referrals/{ref}", as_="clinician").text
    select_html = html.split('name="assignee"')[1].split("</select>")[0]
    assert "dr.ada" in select_html and "clinician (clinician)" in select_html and "admin (admin)" in select_html
    assert "support" not in select_html

    support_id = str(console.users["support"]["id"])
    assert console.post(f"/referrals/{ref}/assign", {"assignee": support_id}, as_="clinician").status == 400
    assert console.post(f"/referrals/{ref}/assign", {"assignee": "99999"}, as_="clinician").status == 400

    ada = str(console.users["dr.ada"]["id"])
    assert console.post(f"/referrals/{ref}/assign", {"assignee": ada}, as_="clinician").status == 303
    queue = console.get("/referrals", as_="clinician").text
    assert "<td>dr.ada</td>" in queue
    [entry] = console.audits("referral_assign")
    assert (entry["target_id"], entry["detail"]) == (ref, "assignee=dr.ada")

    assert console.post(f"/referrals/{ref}/assign", {"assignee": ""}, as_="admin").status == 303
    assert "<td>dr.ada</td>" not in console.get("/referrals", as_="clinician").text


def test_notes_have_author_and_time_and_are_escaped(console: Console) -> None:
    ref = console.referral("c-1")
    for payload in XSS:
        assert console.post(f"/referrals/{ref}/notes", {"text": payload}, as_="clinician").status == 303
    html = console.get(f"/referrals/{ref}", as_="admin").text
    for payload in XSS:
        assert payload not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html
    assert "&lt;svg onload=&#34;alert(1)&#34;&gt;&lt;/svg&gt;" in html
    assert "&lt;a href=&#34;javascript:alert(1)&#34;&gt;click me&lt;/a&gt;" in html
    assert "<script>" not in html and "onerror=" not in html.replace("onerror=&#34;", "")
    assert html.count("clinician, ") >= len(XSS)  # author shown with each note
    assert utcnow().strftime("%Y-%m-%d") in html
    notes = console.audits("referral_note")
    assert len(notes) == len(XSS)
    assert all(n["detail"].startswith("note=") and "<" not in n["detail"] for n in notes)


def test_empty_or_huge_notes_are_refused(console: Console) -> None:
    ref = console.referral("c-1")
    assert console.post(f"/referrals/{ref}/notes", {"text": "   "}, as_="clinician").status == 400
    assert console.post(f"/referrals/{ref}/notes", {"text": "x" * 2001}, as_="clinician").status == 400
    with console.engine.connect() as conn:
        assert conn.execute(select(referral_notes)).fetchall() == []


def test_visitor_typed_contact_details_are_escaped(console: Console) -> None:
    contact = {"name": XSS[0], "email": "a@example.org", "phone": None, "preferred_time": XSS[3]}
    ref = console.referral("c-1", contact=contact)
    html = console.get(f"/referrals/{ref}", as_="clinician").text
    assert XSS[0] not in html and XSS[3] not in html
    assert "&lt;script&gt;" in html and "not given" in html


def test_a_referral_under_another_key_is_shown_without_its_contact(console: Console) -> None:
    from cryptography.fernet import Fernet

    ref = referral_store.create_referral(console.engine, Fernet.generate_key(), "c-x", "eligible", [], ANSWERS, CONTACT)
    resp = console.get(f"/referrals/{ref}", as_="clinician")
    assert resp.status == 200 and "could not be decrypted" in resp.text
    assert CONTACT["email"] not in resp.text
    [entry] = console.audits("view_contact")
    assert entry["detail"] == "decryption failed"


# --- handoff requests and the waitlist -------------------------------------------------


def handoff(console: Console, cid: str, urgent: bool = False, hours_ago: float = 0, status: str = "new") -> int:
    from sqlalchemy import insert

    with console.engine.begin() as conn:
        return int(conn.execute(insert(handoff_requests).values(
            conversation_id=cid, reason="crisis" if urgent else "visitor_request", urgent=urgent, status=status,
            created_at=utcnow() - dt.timedelta(hours=hours_ago),
        )).inserted_primary_key[0])


def handoff_ids(html: str) -> List[int]:
    return [int(i) for i in re.findall(r'action="/handoffs/(\d+)/status"', html)]


def test_handoffs_urgent_first_then_longest_waiting(console: Console) -> None:
    recent = handoff(console, "h-recent", hours_ago=1)
    old = handoff(console, "h-old", hours_ago=26)
    urgent = handoff(console, "h-urgent", urgent=True, hours_ago=0.2)
    closed = handoff(console, "h-closed", hours_ago=40, status="closed")
    html = console.get("/handoffs", as_="support").text
    rows = re.findall(r"<tr>\s*<td>(\d+)</td>", html)
    assert [int(r) for r in rows] == [urgent, old, recent]
    assert "1 d 2 h" in html and "1 h 0 min" in html and "12 min" in html
    assert 'href="/conversations/h-urgent"' in html and "Crisis" in html
    all_rows = [int(r) for r in re.findall(r"<tr>\s*<td>(\d+)</td>", console.get("/handoffs?status=all", as_="support").text)]
    assert all_rows == [urgent, closed, old, recent]


@pytest.mark.parametrize("role", ["support", "clinician", "admin"])
def test_handoff_status_moves_new_in_progress_closed(console: Console, role: str) -> None:
    hid = handoff(console, "h-1")

    def status() -> str:
        with console.engine.connect() as conn:
            return conn.execute(select(handoff_requests.c.status).where(handoff_requests.c.id == hid)).scalar()

    assert console.post(f"/handoffs/{hid}/status", {"status": "closed", "from": "new"}, as_=role).status == 409
    assert status() == "new"
    assert console.post(f"/handoffs/{hid}/status", {"status": "in_progress", "from": "new"}, as_=role).status == 303
    assert status() == "in_progress"
    assert console.post(f"/handoffs/{hid}/status", {"status": "new", "from": "in_progress"}, as_=role).status == 409
    assert console.post(f"/handoffs/{hid}/status", {"status": "closed", "from": "new"}, as_=role).status == 409
    assert console.post(f"/handoffs/{hid}/status", {"status": "closed", "from": "in_progress"}, as_=role).status == 303
    assert status() == "closed"
    assert console.post(f"/handoffs/{hid}/status", {"status": "in_progress", "from": "closed"}, as_=role).status == 409
    assert [a["detail"] for a in console.audits("handoff_status")] == ["new->in_progress", "in_progress->closed"]
    assert all(a["target_id"] == str(hid) and a["username"] == role for a in console.audits("handoff_status"))
    assert console.post("/handoffs/99999/status", {"status": "in_progress"}, as_=role).status == 404
    assert console.post(f"/handoffs/{hid}/status", {"status": "closed"}, as_=role, csrf=False).status == 403


def test_handoff_conversation_ids_are_escaped(console: Console) -> None:
    handoff(console, '"><script>alert(1)</script>')
    html = console.get("/handoffs", as_="support").text
    assert "<script>alert(1)</script>" not in html
    assert 'href="/conversations/%22%3E%3Cscript%3Ealert%281%29%3C%2Fscript%3E"' in html


def test_waitlist_for_clinicians_with_audit(console: Console) -> None:
    referral_store.join_waitlist(console.engine, console.key, "w-1", "OR", {"email": "wait@example.org"})
    referral_store.join_waitlist(console.engine, console.key, "w-2", "OR", {"email": XSS[1]})
    html = console.get("/waitlist", as_="clinician").text
    assert "wait@example.org" in html and "<td>OR</td><td>2</td>" in html
    assert XSS[1] not in html and "&lt;img" in html
    [entry] = console.audits("view_contact")
    assert (entry["target_type"], entry["detail"]) == ("waitlist", "2 entries")
    assert console.get("/waitlist", as_="support").status == 403


def test_a_clinic_db_made_before_the_console_tables_keeps_working(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy import inspect

    from clinic.storage import db, encrypted_sqlite

    url = f"sqlite:///{tmp_path / 'var' / 'clinic.db'}"
    (tmp_path / "var").mkdir()
    monkeypatch.delenv("CLINIC_ENCRYPTION_KEY", raising=False)
    old = encrypted_sqlite.create_engine(url, encrypted_sqlite.clinic_key(tmp_path / "var"))
    db.metadata.create_all(old, tables=[t for t in db.metadata.sorted_tables
                                        if t.name not in ("referral_workflow", "referral_notes")])
    assert "referral_notes" not in inspect(old).get_table_names()
    old.dispose()
    monkeypatch.setenv("CLINIC_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("CLINIC_DB_URL", url)
    monkeypatch.delenv("CLINIC_ENCRYPTION_KEY", raising=False)
    get_settings.cache_clear()
    db.get_engine.cache_clear()
    try:
        console = Console(tmp_path)
        ref = console.referral("c-1")
        assert console.post(f"/referrals/{ref}/notes", {"text": "still works"}, as_="clinician").status == 303
        assert console.post(f"/referrals/{ref}/assign", {"assignee": str(console.users["admin"]["id"])}, as_="clinician").status == 303
        assert "still works" in console.get(f"/referrals/{ref}", as_="clinician").text
    finally:
        get_settings.cache_clear()
        db.get_engine.cache_clear()


# --- one tap to call or write; how long a referral has waited ------------------------------------


def test_contact_details_are_tel_and_mailto_links_and_nothing_else_is(console: Console) -> None:
    from clinic.console.contact_links import contact_href

    assert contact_href("(212) 555-0199") == "tel:+12125550199"
    assert contact_href("+1 212.555.0199") == "tel:+12125550199"
    assert contact_href("jane.example@example.com") == "mailto:jane.example@example.com"
    for not_one in ("call me maybe", "555-0199", "javascript:alert(1)", 'a"@b.com', "x@y", "<b>@x.com", "", None,
                    "1 2 3 4 5 6 7 8 9 0 1 2"):
        assert contact_href(not_one) is None, not_one

    ref = console.referral("c-links", contact={"name": "Jane", "email": "jane.example@example.com",
                                               "phone": "(212) 555-0199", "preferred_time": "evenings", "consent": True})
    html = console.get(f"/referrals/{ref}", as_="clinician").text
    assert '<a href="mailto:jane.example@example.com">jane.example@example.com</a>' in html
    assert '<a href="tel:+12125550199">(212) 555-0199</a>' in html
    odd = console.referral("c-odd", contact={"name": "X", "email": XSS[0], "phone": "javascript:alert(1)",
                                             "preferred_time": "", "consent": True})
    page = console.get(f"/referrals/{odd}", as_="clinician").text
    assert 'href="javascript' not in page and XSS[0] not in page


def test_new_referrals_show_how_long_they_have_waited(console: Console) -> None:
    old = console.referral("c-waited", created_at=utcnow() - dt.timedelta(hours=3, minutes=5))
    done = console.referral("c-contacted", created_at=utcnow() - dt.timedelta(days=2), status="contacted")
    html = console.get("/referrals?status=all", as_="clinician").text
    assert 'data-waiting="3 h 5 min"' in html or 'data-waiting="3 h 4 min"' in html
    row = re.search(rf'{done}</a>.*?</tr>', html, re.S).group(0)
    assert 'data-waiting=""' in row and old != done


def test_a_callbacks_phone_is_a_tel_link(console: Console) -> None:
    from clinic.rules import handoff
    from clinic.storage.crypto import encrypt_json

    sealed = encrypt_json(console.key, {"name": "Sam", "phone": "(646) 555-0123", "best_time": "mornings"})
    handoff.request_callback(console.engine, "c-callback-link", "visitor_request", False, sealed)
    html = console.get("/handoffs", as_="support").text
    assert '<a href="tel:+16465550123">(646) 555-0123</a>' in html and ">mornings<" in html


def test_notes_on_a_callback_request(console: Console) -> None:
    from clinic.rules import handoff
    from clinic.storage.crypto import encrypt_json

    sealed = encrypt_json(console.key, {"name": "Sam", "phone": "(646) 555-0123", "best_time": "mornings"})
    request_id = handoff.request_callback(console.engine, "c-noted", "visitor_request", False, sealed)
    for body in ("", " ", "x" * 2001):
        resp = console.post(f"/handoffs/{request_id}/notes", {"body": body}, as_="support")
        assert resp.status == 400 and "a note is 1 to 2000 characters" in resp.text
    resp = console.post(f"/handoffs/{request_id}/notes", {"body": XSS[0] + " left a voicemail", "filter": "open"}, as_="support")
    assert resp.status == 303 and resp.headers["location"] == "/handoffs?status=open&done=note"
    console.post(f"/handoffs/{request_id}/notes", {"body": "called back, booked"}, as_="clinician")
    html = console.get("/handoffs?done=note", as_="support").text
    assert "Note added." in html and XSS[0] not in html and "left a voicemail" in html
    assert html.index("called back, booked") < html.index("left a voicemail")  # newest first
    # the conversation's own notes: on its transcript too; audited without the text
    assert [e["detail"].split(" callback ")[1] for e in console.audits("note_add")] == [str(request_id)] * 2
    assert all("voicemail" not in str(e) for e in console.audits("note_add"))
    assert console.post("/handoffs/999999/notes", {"body": "x"}, as_="support").status == 404
