"""Role enforcement on EVERY route of the staff console, route by route.

Two sources must agree: the explicit table ``ROUTES`` below (what we expect: each route's
minimum role) and the ``required_role`` that ``auth.require`` leaves on each handler. A route
that is in neither (other than /login, /health and /static) fails, so a route added without a
guard cannot slip through. Then, for every route in the table and every role (anonymous,
support, clinician, admin), real requests check the outcome: anonymous -> /login, too low a
role -> 403 (and nothing changes), enough -> the page or the action (a live chat's replies and
its end: its holder or an admin; other roles get 403, or 409 once it has ended, and nothing
changes); every POST also without and with a wrong CSRF token -> 403 (and nothing changes).
Last, guessing another record's id.
"""

import json
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Tuple

import pytest
from sanic import Sanic
from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, insert, select

from clinic.storage import db
from tests.test_console_auth import add_user, login, make_app

ROLES = ("support", "clinician", "admin")
RANK = {None: -1, "support": 0, "clinician": 1, "admin": 2}
PASSWORD = "correct horse battery staple"

# Routes anyone may open (no guard expected, and none present).
PUBLIC = {
    ("GET", "/login"),
    ("POST", "/login"),
    ("GET", "/health"),
    ("GET", "/static/<__file_uri__:path>"),
    ("HEAD", "/static/<__file_uri__:path>"),
}


@dataclass(frozen=True)
class Spec:
    role: str  # the minimum role
    url: str  # a sample URL; {conversation}, {reference}, {handoff}, {user}, {waiting}, {held}, {flag} are filled from the seed
    form: Dict[str, str] = field(default_factory=dict)  # a valid form for POST
    ok: Tuple[int, ...] = (200,)  # the status of a granted request (first role allowed)
    location: Optional[str] = None  # where a granted redirect goes (a prefix), if it must
    # the person who holds a live chat (the seed's support user) or an admin: other roles that pass
    # the guard are refused by the handler (403, or 409 once the chat has ended) and change nothing
    holder_only: bool = False


POST_OK = (302, 303)

# What we expect, route by route: (method, path as Sanic shows it) -> Spec.
ROUTES: Dict[Tuple[str, str], Spec] = {
    # shared
    ("GET", "/"): Spec("support", "/", ok=(302,), location="/urgent"),
    # the Urgent view and the alerts every page polls
    ("GET", "/urgent"): Spec("support", "/urgent"),
    ("GET", "/urgent/alerts.json"): Spec("support", "/urgent/alerts.json"),
    ("POST", "/urgent/<item_type:str>/<item_id:int>/handled"): Spec(
        "support", "/urgent/flag/{flag}/handled", {"note": "called the visitor; safe, with family"}, POST_OK,
        location="/urgent?done=handled"),
    ("POST", "/logout"): Spec("support", "/logout", ok=(302,), location="/login"),
    ("GET", "/dashboard"): Spec("support", "/dashboard"),
    # conversations (transcripts for support and up; exports carry answers: clinicians and up)
    ("GET", "/conversations"): Spec("support", "/conversations"),
    ("GET", "/conversations/<conversation_id:str>"): Spec("support", "/conversations/{conversation}"),
    ("POST", "/conversations/<conversation_id:str>/tags"): Spec(
        "support", "/conversations/{conversation}/tags", {"tag": "follow-up"}, POST_OK),
    ("POST", "/conversations/<conversation_id:str>/notes"): Spec(
        "support", "/conversations/{conversation}/notes", {"body": "called back"}, POST_OK),
    ("POST", "/conversations/<conversation_id:str>/review"): Spec(
        "support", "/conversations/{conversation}/review", {"reviewed": "1"}, POST_OK),
    # marking what a visitor message should have been (support and up), the review page (support
    # reads it), accepting or rejecting corrections (clinicians and up)
    ("POST", "/conversations/<conversation_id:str>/corrections"): Spec(
        "support", "/conversations/{conversation}/corrections", {"event_id": "{event}", "label": "faq/pricing"}, POST_OK),
    ("GET", "/review"): Spec("support", "/review"),
    ("POST", "/review/decide"): Spec("clinician", "/review/decide", {"action": "reject", "item": "{event}"}, POST_OK),
    ("GET", "/conversations/export.csv"): Spec("clinician", "/conversations/export.csv"),
    ("GET", "/conversations/export.json"): Spec("clinician", "/conversations/export.json"),
    ("GET", "/conversations/<conversation_id:str>/export.csv"): Spec(
        "clinician", "/conversations/{conversation}/export.csv"),
    ("GET", "/conversations/<conversation_id:str>/export.json"): Spec(
        "clinician", "/conversations/{conversation}/export.json"),
    ("GET", "/conversations/<conversation_id:str>/delete"): Spec("admin", "/conversations/{conversation}/delete"),
    ("POST", "/conversations/<conversation_id:str>/delete"): Spec(
        "admin", "/conversations/{conversation}/delete", {"confirm": "yes"}, POST_OK,
        location="/conversations?done=deleted"),
    # referrals
    ("GET", "/referrals"): Spec("clinician", "/referrals"),
    ("GET", "/referrals/<reference:str>"): Spec("clinician", "/referrals/{reference}"),
    ("POST", "/referrals/<reference:str>/status"): Spec(
        "clinician", "/referrals/{reference}/status", {"status": "contacted", "from": "new"}, POST_OK),
    ("POST", "/referrals/<reference:str>/assign"): Spec(
        "clinician", "/referrals/{reference}/assign", {"assignee": ""}, POST_OK),
    ("POST", "/referrals/<reference:str>/notes"): Spec(
        "clinician", "/referrals/{reference}/notes", {"text": "left a voicemail"}, POST_OK),
    # handoff requests and the waitlist
    ("GET", "/handoffs"): Spec("support", "/handoffs"),
    ("POST", "/handoffs/<request_id:int>/status"): Spec(
        "support", "/handoffs/{handoff}/status", {"status": "in_progress", "from": "new"}, POST_OK),
    ("POST", "/handoffs/<request_id:int>/notes"): Spec(
        "support", "/handoffs/{handoff}/notes", {"body": "left a voicemail"}, POST_OK),
    ("GET", "/waitlist"): Spec("clinician", "/waitlist"),
    # the live chat: the queue and any chat for support and up; replies and the end of a chat
    # for its holder (the seed's support user holds {held}) or an admin
    ("GET", "/live"): Spec("support", "/live"),
    ("GET", "/live/queue.json"): Spec("support", "/live/queue.json"),
    ("POST", "/live/<request_id:int>/claim"): Spec(
        "support", "/live/{waiting}/claim", {}, (303,), location="/live/{waiting}"),
    ("GET", "/live/<request_id:int>"): Spec("support", "/live/{held}"),
    ("GET", "/live/<request_id:int>/events.json"): Spec("support", "/live/{held}/events.json"),
    ("POST", "/live/<request_id:int>/messages"): Spec(
        "support", "/live/{held}/messages", {"text": "hello, I'm here"}, (303,), holder_only=True),
    ("POST", "/live/<request_id:int>/hand_back"): Spec(
        "support", "/live/{held}/hand_back", {}, (303,), location="/live?done=handed_back", holder_only=True),
    ("POST", "/live/<request_id:int>/close"): Spec(
        "support", "/live/{held}/close", {}, (303,), location="/live?done=closed", holder_only=True),
    ("POST", "/live/<request_id:int>/release"): Spec(
        "support", "/live/{held}/release", {}, (303,), location="/live?done=released", holder_only=True),
    # admin
    ("GET", "/users"): Spec("admin", "/users"),
    ("POST", "/users"): Spec("admin", "/users", {"username": "newbie", "role": "support", "password": PASSWORD}, POST_OK),
    ("POST", "/users/<user_id:int>/role"): Spec("admin", "/users/{user}/role", {"role": "clinician"}, POST_OK),
    ("POST", "/users/<user_id:int>/active"): Spec("admin", "/users/{user}/active", {"active": "0"}, POST_OK),
    ("POST", "/users/<user_id:int>/unlock"): Spec("admin", "/users/{user}/unlock", {}, POST_OK),
    ("POST", "/users/<user_id:int>/display_name"): Spec(
        "admin", "/users/{user}/display_name", {"display_name": "Tess"}, POST_OK, location="/users?done=display_name"),
    ("GET", "/audit"): Spec("admin", "/audit"),
    ("GET", "/replies"): Spec("admin", "/replies"),
    ("POST", "/replies"): Spec("admin", "/replies", {"title": "Hello", "text": "Hi, I'm here."}, POST_OK,
                               location="/replies?done=saved"),
}

VISITOR_WORDS = "my private visitor words about sleep"
CONTACT_NAME = "Zelda Quuxley"


# --- the app's routes --------------------------------------------------------------------


def _key(path: str) -> str:
    """A route's path as the table writes it ("<x>" and "<x:str>" are the same)."""
    return "/" + re.sub(r"<(\w+)>", r"<\1:str>", path.lstrip("/"))


def app_routes(app: Sanic) -> Dict[Tuple[str, str], Callable]:
    """(method, path) -> handler for every route of the app."""
    if not app.router.finalized:
        app.router.finalize()
    routes = {}
    for route in app.router.routes:
        for method in route.methods:
            routes[(method, _key(route.path))] = route.handler
    return routes


def guard_problems(app: Sanic) -> list:
    """Every way the app's routes and the table disagree (empty when all is well)."""
    problems = []
    table = {(m, _key(p)): spec for (m, p), spec in ROUTES.items()}
    routes = app_routes(app)
    for key, handler in sorted(routes.items()):
        role = getattr(handler, "required_role", None)
        if key in PUBLIC:
            if role is not None:
                problems.append(f"{key}: public route carries a guard ({role})")
        elif key not in table:
            problems.append(
                f"{key}: not in the table" + ("" if role else " and NOT GUARDED (no auth.require)")
            )
        elif role is None:
            problems.append(f"{key}: not guarded (expected {table[key].role})")
        elif role != table[key].role:
            problems.append(f"{key}: guarded for {role}, the table expects {table[key].role}")
    for key in sorted(table):
        if key not in routes:
            problems.append(f"{key}: in the table but the app has no such route")
    return problems


def test_the_table_and_the_guards_agree(clinic_env: Any) -> None:
    assert guard_problems(make_app()) == []


def test_a_route_without_a_guard_is_caught(clinic_env: Any) -> None:
    from clinic.console import auth

    app = make_app()

    @app.get("/sneaky")
    async def sneaky(request: Any) -> Any:  # forgot @auth.require
        from sanic.response import text

        return text("everything")

    @app.post("/users/<user_id:int>/promote")
    @auth.require("support")  # guarded, but not in the table
    async def promote(request: Any, user_id: int) -> Any:
        from sanic.response import text

        return text("done")

    problems = guard_problems(app)
    assert "('GET', '/sneaky'): not in the table and NOT GUARDED (no auth.require)" in problems
    assert "('POST', '/users/<user_id:int>/promote'): not in the table" in problems


def test_a_weaker_guard_than_the_table_is_caught(clinic_env: Any) -> None:
    from clinic.console import auth

    app = make_app()
    # replace the audit page's handler by one guarded for support only
    for route in app.router.routes:
        if route.path == "audit":
            original = route.handler
            route.handler = auth.require("support")(original.__wrapped__)
    assert "('GET', '/audit'): guarded for support, the table expects admin" in guard_problems(app)


# --- a seeded console ------------------------------------------------------------------


def _tracker_events_table(metadata: MetaData) -> Table:
    """Rasa's SQLTrackerStore table, as Rasa creates it."""
    return Table(
        "events", metadata,
        Column("id", Integer, primary_key=True),
        Column("sender_id", String(255), nullable=False, index=True),
        Column("type_name", String(255), nullable=False),
        Column("timestamp", Float),
        Column("intent_name", String(255)),
        Column("action_name", String(255)),
        Column("data", Text),
    )


def seed_conversation(tracker_url: str, sender_id: str, text: str, when: float) -> None:
    """A short conversation written the way Rasa's tracker store writes it."""
    from pathlib import Path

    Path(tracker_url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    from clinic.storage import encrypted_sqlite

    engine = encrypted_sqlite.create_engine(tracker_url)  # the project's SQLite files are encrypted
    metadata = MetaData()
    events = _tracker_events_table(metadata)
    metadata.create_all(engine)
    rows = []

    def add(type_name: str, t: float, intent: Optional[str] = None, action: Optional[str] = None, **data: Any) -> None:
        rows.append({
            "sender_id": sender_id, "type_name": type_name, "timestamp": t, "intent_name": intent,
            "action_name": action, "data": json.dumps({"event": type_name, "timestamp": t, **data}),
        })

    add("action", when, action="action_session_start", name="action_session_start", policy=None, confidence=1.0)
    add("session_started", when + 0.01)
    add("action", when + 0.02, action="action_listen", name="action_listen", policy=None, confidence=None)
    add("user", when + 1, intent="human_handoff", text=text, input_channel="rest", message_id=uuid.uuid4().hex,
        parse_data={"intent": {"name": "human_handoff", "confidence": 0.93}, "entities": [], "text": text,
                    "intent_ranking": [{"name": "human_handoff", "confidence": 0.93}]})
    add("action", when + 1.1, action="action_human_handoff", name="action_human_handoff",
        policy="RulePolicy", confidence=1.0)
    add("bot", when + 1.2, text="I have asked a member of our team to get back to you.", data={}, metadata={})
    add("action", when + 1.3, action="action_listen", name="action_listen", policy="RulePolicy", confidence=1.0)
    with engine.begin() as conn:
        conn.execute(insert(events), rows)
    engine.dispose()


@dataclass
class Console:
    app: Sanic
    ids: Dict[str, str]
    tokens: Dict[Optional[str], Optional[str]]
    user_ids: Dict[str, int]

    def url(self, template: str) -> str:
        return template.format(**self.ids)

    def csrf(self, role: str) -> str:
        from clinic.console import auth

        token = self.tokens[role]
        return auth.csrf_token(self.app.ctx.secret, auth._hash(token))

    def get(self, path: str, role: Optional[str]) -> Any:
        token = self.tokens.get(role)
        _, response = self.app.test_client.get(
            path, cookies={"staff_session": token} if token else {}, allow_redirects=False
        )
        return response

    def post(self, path: str, role: Optional[str], form: Dict[str, str]) -> Any:
        token = self.tokens.get(role)
        _, response = self.app.test_client.post(
            path, data=form, cookies={"staff_session": token} if token else {}, allow_redirects=False
        )
        return response

    def snapshot(self) -> Dict[str, Any]:
        """Everything stored (clinic DB and tracker store) but sessions' last_seen and the audit log."""
        state: Dict[str, Any] = {}
        with self.app.ctx.engine.connect() as conn:
            for name, table in db.metadata.tables.items():
                if name in ("staff_sessions", "audit_log"):
                    continue
                state[name] = sorted(map(repr, conn.execute(select(table)).fetchall()))
            state["sessions"] = sorted(r[0] for r in conn.execute(select(db.staff_sessions.c.token_hash)))
        with self.app.ctx.tracker.connect() as conn:
            state["events"] = sorted(map(repr, conn.execute(select(_tracker_events_table(MetaData())))))
        return state


@pytest.fixture
def console(clinic_env: Any, monkeypatch: pytest.MonkeyPatch) -> Console:
    from clinic.storage import referrals
    from clinic.settings import get_settings

    monkeypatch.setenv("CANNED_REPLIES_FILE", str(clinic_env / "canned_replies.yml"))  # never the repo's

    settings = get_settings()
    now = time.time()
    conversation = uuid.uuid4().hex
    other = uuid.uuid4().hex
    seed_conversation(settings.tracker_db_url, conversation, VISITOR_WORDS, now - 3600)
    seed_conversation(settings.tracker_db_url, other, "what are your opening hours", now - 7200)
    app = make_app(settings)
    engine = app.ctx.engine
    reference = referrals.create_referral(
        engine, settings.encryption_key, conversation, "eligible", [], {"age": 30, "state": "TX"},
        {"name": CONTACT_NAME, "email": "zelda@example.org", "phone": "", "best_time": "mornings",
         "consent": True},
    )
    handoff = db.record_handoff_request(engine, conversation, "visitor_request", urgent=False)
    db.flag_once(engine, other, "crisis")
    flag = db.flags_for(engine, other, "crisis")[0]["id"]
    user_ids = {role: add_user(app, f"{role}1", role) for role in ROLES}
    user_ids["target"] = add_user(app, "target1", "support")
    tokens: Dict[Optional[str], Optional[str]] = {None: None}
    for role in ROLES:
        tokens[role] = login(app, f"{role}1")
    from clinic.rules import handoff as live

    waiting = live.request_live(engine, other, "visitor_request", urgent=False)["id"]
    held = live.request_live(engine, conversation, "visitor_request", urgent=True)["id"]
    live.change(engine, held, "claim", live.WAITING, user_ids["support"], "support1")
    with app.ctx.tracker.connect() as conn:  # the visitor's message of the conversation (what a correction names)
        event = conn.exec_driver_sql("SELECT id FROM events WHERE sender_id = ? AND type_name = 'user'", (conversation,)).scalar()
    ids = {"conversation": conversation, "other": other, "reference": reference, "handoff": str(handoff), "event": str(event),
           "user": str(user_ids["target"]), "waiting": str(waiting), "held": str(held),
           "flag": str(flag)}
    return Console(app, ids, tokens, user_ids)


# --- every route, every role -----------------------------------------------------------------


def _is_login_redirect(response: Any) -> bool:
    return response.status in (302, 303) and response.headers.get("location", "").startswith("/login?next=")


def _is_forbidden(response: Any) -> bool:
    return response.status == 403 and "Not allowed" in response.text


@pytest.mark.parametrize("key", sorted(ROUTES), ids=lambda k: f"{k[0]} {k[1]}")
def test_route_by_role(console: Console, key: Tuple[str, str]) -> None:
    method, path = key
    spec = ROUTES[key]
    routes = app_routes(console.app)
    assert key in routes, f"{method} {path} is in the table but not in the app"
    required = getattr(routes[key], "required_role", None)
    assert required == spec.role, f"{method} {path}: guard {required}, table {spec.role}"
    url = console.url(spec.url)
    form = {k: console.url(v) for k, v in spec.form.items()}

    first_allowed = True
    for role in (None,) + ROLES:  # the weakest first, so that an allowed action never runs before a refusal
        before = console.snapshot()
        if method == "GET":
            response = console.get(url, role)
        else:
            # without a token, and with a token that is not this session's: always refused
            if role is not None:
                for bad in ({}, {"csrf": "0" * 64}, {"csrf": console.csrf(_other_role(role))}):
                    refused = console.post(url, role, {**form, **bad})
                    assert _is_forbidden(refused), (role, bad, refused.status)
                    assert console.snapshot() == before, f"{role}: a POST without a valid CSRF token changed data"
            response = console.post(url, role, {**form, "csrf": console.csrf(role) if role else ""})

        if role is None:
            assert _is_login_redirect(response), (response.status, response.headers.get("location"))
            assert console.snapshot() == before
        elif RANK[role] < RANK[required]:
            assert _is_forbidden(response), (role, response.status)
            assert console.snapshot() == before, f"{role} was refused but data changed"
            assert CONTACT_NAME not in response.text and VISITOR_WORDS not in response.text
        else:
            assert (response.status != 403 or spec.holder_only) and not _is_login_redirect(response), (role, response.status)
            assert response.status < 500, (role, response.status, response.text[:500])
            if first_allowed:  # the first role allowed really gets the page or does the action
                assert response.status in spec.ok, (role, response.status, response.text[:800])
                if spec.location:
                    assert response.headers["location"].startswith(console.url(spec.location))
                first_allowed = False
            elif spec.holder_only and response.status in (403, 409):
                assert console.snapshot() == before, f"{role} was refused by the handler but data changed"
                assert response.status == 409 or "holds this chat" in response.text, (role, response.text[:500])


def _other_role(role: str) -> str:
    return {"support": "clinician", "clinician": "admin", "admin": "support"}[role]


def test_a_session_csrf_token_is_bound_to_its_session(console: Console) -> None:
    """An admin's token stolen from another tab of another admin does not work in this session."""
    from clinic.console import auth

    second = login(console.app, "admin1")
    assert console.csrf("admin") != auth.csrf_token(console.app.ctx.secret, auth._hash(second))
    response = console.post("/users", "admin", {"username": "x1", "role": "support", "password": PASSWORD,
                                                "csrf": auth.csrf_token(console.app.ctx.secret, auth._hash(second))})
    assert _is_forbidden(response)


# --- guessing another record's id ---------------------------------------------------------


def test_guessing_a_referral_reference(console: Console) -> None:
    reference = console.ids["reference"]
    missing = "ZZZ-9Z9" if reference != "ZZZ-9Z9" else "YYY-9Y9"
    # support may not see referrals: an existing reference is 403, and says nothing of it
    response = console.get(f"/referrals/{reference}", "support")
    assert _is_forbidden(response)
    assert CONTACT_NAME not in response.text and reference not in response.text
    for action, form in (("status", {"status": "contacted", "from": "new"}), ("notes", {"text": "x"}),
                         ("assign", {"assignee": str(console.user_ids["clinician"])})):
        before = console.snapshot()
        response = console.post(f"/referrals/{reference}/{action}", "support", {**form, "csrf": console.csrf("support")})
        assert _is_forbidden(response)
        assert console.snapshot() == before
    # a missing one is 403 too for support (nothing to learn by guessing), 404 for a clinician
    assert _is_forbidden(console.get(f"/referrals/{missing}", "support"))
    assert console.get(f"/referrals/{missing}", "clinician").status == 404
    assert console.post(f"/referrals/{missing}/status", "clinician",
                        {"status": "contacted", "from": "new", "csrf": console.csrf("clinician")}).status == 404
    # and the real one opens for a clinician, with the contact details
    response = console.get(f"/referrals/{reference}", "clinician")
    assert response.status == 200 and CONTACT_NAME in response.text


def test_guessing_a_conversation_id(console: Console) -> None:
    conversation, other = console.ids["conversation"], console.ids["other"]
    missing = uuid.uuid4().hex
    # deleting is for admins: an existing conversation is 403 for support and clinicians, and stays
    for role in ("support", "clinician"):
        before = console.snapshot()
        response = console.post(f"/conversations/{other}/delete", role,
                                {"confirm": "yes", "csrf": console.csrf(role)})
        assert _is_forbidden(response)
        assert console.snapshot() == before
    assert console.get(f"/conversations/{other}", "support").status == 200
    # exports hold the pre-screen answers: support may not export a conversation it can open
    for fmt in ("csv", "json"):
        response = console.get(f"/conversations/{conversation}/export.{fmt}", "support")
        assert _is_forbidden(response) and VISITOR_WORDS not in response.text
        assert console.get(f"/conversations/{missing}/export.{fmt}", "clinician").status == 404
        response = console.get(f"/conversations/{conversation}/export.{fmt}", "clinician")
        assert response.status == 200 and VISITOR_WORDS in response.text
    # one that does not exist is 404 (for every role that may look)
    for role in ROLES:
        assert console.get(f"/conversations/{missing}", role).status == 404
    assert console.post(f"/conversations/{missing}/delete", "admin",
                        {"confirm": "yes", "csrf": console.csrf("admin")}).status == 404
    assert console.post(f"/conversations/{missing}/notes", "support",
                        {"body": "x", "csrf": console.csrf("support")}).status == 404
    # the transcript of a referred conversation does not show the contact details to support
    response = console.get(f"/conversations/{conversation}", "support")
    assert response.status == 200 and CONTACT_NAME not in response.text


def test_guessing_a_handoff_request_or_a_user_id(console: Console) -> None:
    assert console.post("/handoffs/999999/status", "support",
                        {"status": "in_progress", "from": "new", "csrf": console.csrf("support")}).status == 404
    target = console.ids["user"]
    for role in ("support", "clinician"):
        before = console.snapshot()
        for action, form in (("role", {"role": "admin"}), ("active", {"active": "0"}), ("unlock", {})):
            assert _is_forbidden(console.post(f"/users/{target}/{action}", role, {**form, "csrf": console.csrf(role)}))
        # a role cannot promote itself either
        own = console.user_ids[role]
        assert _is_forbidden(console.post(f"/users/{own}/role", role, {"role": "admin", "csrf": console.csrf(role)}))
        assert console.snapshot() == before
    assert console.post("/users/999999/role", "admin", {"role": "admin", "csrf": console.csrf("admin")}).status == 404


def test_anonymous_is_sent_to_login_with_the_page_to_come_back_to(console: Console) -> None:
    reference = console.ids["reference"]
    response = console.get(f"/referrals/{reference}", None)
    assert response.headers["location"] == f"/login?next=%2Freferrals%2F{reference}"
    assert CONTACT_NAME not in response.text
