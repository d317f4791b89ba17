"""The staff console's sign-in: CSRF, wrong passwords, lock-out, session expiry, logout,
cookies, safe redirects, argon2, no default account, the CLI, and the admin pages for
accounts and the audit log (sanic-testing against the real app and a fresh clinic DB)."""

import datetime as dt
import io
import json
import re
import sys
import uuid
from typing import Any, Dict, Optional, Tuple

import pytest
from sanic import Sanic
from sqlalchemy import select, update

from clinic.storage.db import audit_log, staff_sessions, staff_users, utcnow

from tests import encrypted_db

PASSWORD = "correct horse battery staple"
CSRF_FIELD = re.compile(r'<input type="hidden" name="csrf" value="([^"]*)">')


# --- helpers (also used by test_console_roles) -----------------------------------------


# The DDL of Rasa 3.6's SQLTrackerStore.
TRACKER_DDL = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER NOT NULL,
    sender_id VARCHAR(255) NOT NULL,
    type_name VARCHAR(255) NOT NULL,
    timestamp FLOAT,
    intent_name VARCHAR(255),
    action_name VARCHAR(255),
    data TEXT,
    PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS ix_events_sender_id ON events (sender_id);
"""


class FakeRasa:
    """Stands in for ``clinic.rasa_runtime.rasa_client.RasaClient`` in the console: records every
    ``append_events`` call and, like Rasa, writes the events to the tracker store (so the
    console's pages read them back). ``down = True``: Rasa cannot be reached."""

    def __init__(self, tracker_url: Optional[str] = None) -> None:
        self.tracker_url = tracker_url
        self.calls: list = []  # (conversation id, [events])
        self.down = False

    async def append_events(self, conversation_id: str, events: list) -> None:
        from clinic.rasa_runtime.rasa_client import RasaUnavailable

        if self.down:
            raise RasaUnavailable("ClientConnectorError")
        self.calls.append((conversation_id, [dict(e) for e in events]))
        if self.tracker_url:
            write_tracker_events(self.tracker_url, conversation_id, events)

    async def close(self) -> None:
        pass

    def events(self, conversation_id: Optional[str] = None) -> list:
        return [e for cid, events in self.calls if conversation_id in (None, cid) for e in events]


def write_tracker_events(tracker_url: str, conversation_id: str, events: list) -> None:
    """Events stored the way Rasa's SQLTrackerStore stores them."""
    import json
    import sqlite3
    from pathlib import Path

    path = Path(tracker_url[len("sqlite:///"):])
    path.parent.mkdir(parents=True, exist_ok=True)
    with encrypted_db.connect(path) as conn:
        conn.executescript(TRACKER_DDL)
        for e in events:
            intent = ((e.get("parse_data") or {}).get("intent") or {}).get("name") if e["event"] == "user" else None
            conn.execute(
                "INSERT INTO events (sender_id, type_name, timestamp, intent_name, action_name, data) VALUES (?, ?, ?, ?, ?, ?)",
                (conversation_id, e["event"], e.get("timestamp"), intent, e.get("name"), json.dumps(e)),
            )
    conn.close()


def make_app(settings: Any = None, rasa: Any = None) -> Sanic:
    """A console app; Rasa is a FakeRasa on the settings' tracker store unless given."""
    from clinic.console.app import create_console_app
    from clinic.settings import get_settings

    Sanic.test_mode = True
    settings = settings or get_settings()
    rasa = rasa if rasa is not None else FakeRasa(settings.tracker_db_url)
    return create_console_app(settings, name=f"console_{uuid.uuid4().hex[:12]}", rasa=rasa)


def add_user(app: Sanic, username: str, role: str, password: str = PASSWORD) -> int:
    from clinic.console import auth

    return auth.create_user(app.ctx.engine, username, password, role)


def get(app: Sanic, path: str, token: Optional[str] = None, **kwargs: Any) -> Any:
    cookies = {"staff_session": token} if token else {}
    _, response = app.test_client.get(path, cookies=cookies, allow_redirects=False, **kwargs)
    return response


def post(app: Sanic, path: str, data: Dict[str, Any], token: Optional[str] = None, **kwargs: Any) -> Any:
    cookies = {"staff_session": token} if token else {}
    _, response = app.test_client.post(path, data=data, cookies=cookies, allow_redirects=False, **kwargs)
    return response


def login_page(app: Sanic, next_url: Optional[str] = None) -> Tuple[str, str, Any]:
    """GET /login: (pre-session cookie, hidden CSRF token, response)."""
    _, response = app.test_client.get("/login", params={"next": next_url} if next_url else None)
    assert response.status == 200
    match = CSRF_FIELD.search(response.text)
    assert match, "the login form has no hidden csrf field"
    return response.cookies["staff_login_csrf"], match.group(1), response


def try_login(app: Sanic, username: str, password: str, next_url: str = "/", csrf: Optional[str] = "from-form") -> Any:
    cookie, token, _ = login_page(app)
    data = {"username": username, "password": password, "next": next_url}
    if csrf is not None:
        data["csrf"] = token if csrf == "from-form" else csrf
    _, response = app.test_client.post(
        "/login", data=data, cookies={"staff_login_csrf": cookie}, allow_redirects=False
    )
    return response


def login(app: Sanic, username: str, password: str = PASSWORD) -> str:
    """Signs in; returns the session token (the value of the staff_session cookie)."""
    response = try_login(app, username, password)
    assert response.status == 302, response.text
    return response.cookies["staff_session"]


def csrf_for(app: Sanic, token: str) -> str:
    """The CSRF token of a session: read from the page's own forms (the logout form in the header)."""
    response = get(app, "/users", token)  # any page: allowed (a form) or 403 (the header form)
    match = CSRF_FIELD.search(response.text)
    assert match, response.text
    return match.group(1)


def session_rows(app: Sanic) -> list:
    with app.ctx.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(staff_sessions))]


def user_row(app: Sanic, username: str) -> Dict[str, Any]:
    with app.ctx.engine.connect() as conn:
        return dict(conn.execute(select(staff_users).where(staff_users.c.username == username)).first()._mapping)


def audit_rows(app: Sanic, action: Optional[str] = None) -> list:
    query = select(audit_log).order_by(audit_log.c.id)
    if action:
        query = query.where(audit_log.c.action == action)
    with app.ctx.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def signed_in(app: Sanic, token: str) -> bool:
    """True when the session still opens an admin page."""
    response = get(app, "/users", token)
    return response.status == 200


@pytest.fixture
def app(clinic_env: Any) -> Sanic:
    return make_app()


@pytest.fixture
def admin(app: Sanic) -> str:
    add_user(app, "ana", "admin")
    return login(app, "ana")


# --- sign in and CSRF --------------------------------------------------------------------


def test_login_form_sets_a_csrf_cookie_and_a_hidden_token(app: Sanic) -> None:
    cookie, token, response = login_page(app)
    assert cookie and len(token) == 64
    header = [h for h in response.headers.get_list("set-cookie") if h.startswith("staff_login_csrf=")][0]
    assert "HttpOnly" in header and "SameSite=Strict" in header
    assert 'name="password" type="password"' in response.text


def test_login_without_or_with_a_wrong_csrf_token_is_refused(app: Sanic) -> None:
    add_user(app, "ana", "admin")
    for csrf in (None, "", "0" * 64):
        response = try_login(app, "ana", PASSWORD, csrf=csrf)
        assert response.status in (302, 403)
        assert "staff_session" not in response.cookies
        if response.status == 302:
            assert response.headers["location"] == "/login"
    # a token from another pre-session cookie does not fit either
    _, other_token, _ = login_page(app)
    cookie, _, _ = login_page(app)
    _, response = app.test_client.post(
        "/login", data={"username": "ana", "password": PASSWORD, "csrf": other_token},
        cookies={"staff_login_csrf": cookie}, allow_redirects=False,
    )
    assert "staff_session" not in response.cookies
    assert session_rows(app) == []
    # the right token works
    assert try_login(app, "ana", PASSWORD).cookies.get("staff_session")


def test_wrong_password_is_401_and_starts_no_session(app: Sanic) -> None:
    add_user(app, "ana", "admin")
    response = try_login(app, "ana", "not the password at all")
    assert response.status == 401
    assert "staff_session" not in response.cookies
    assert "match" in response.text
    assert session_rows(app) == []
    # an unknown user gets the same answer
    response = try_login(app, "nobody", PASSWORD)
    assert response.status == 401 and "staff_session" not in response.cookies
    assert [r["action"] for r in audit_rows(app)] == ["login_failed", "login_failed"]


def test_five_failures_lock_the_account_for_15_minutes_and_set_password_unlocks(
    app: Sanic, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from clinic.console import users

    add_user(app, "ana", "admin")
    for _ in range(5):
        assert try_login(app, "ana", "wrong password!!").status == 401
    locked_until = user_row(app, "ana")["locked_until"]
    assert locked_until is not None
    assert dt.timedelta(minutes=14) < locked_until - utcnow() <= dt.timedelta(minutes=15)
    # even the right password fails now
    response = try_login(app, "ana", PASSWORD)
    assert response.status == 401 and "staff_session" not in response.cookies

    # an admin's reset from the command line unlocks (the password comes on stdin)
    monkeypatch.setattr(sys, "stdin", io.StringIO("a brand new password\n"))
    assert users.main(["set-password", "ana"]) == 0
    assert "password set for ana" in capsys.readouterr().out
    assert user_row(app, "ana")["locked_until"] is None
    assert try_login(app, "ana", PASSWORD).status == 401  # the old password is gone
    assert try_login(app, "ana", "a brand new password").cookies.get("staff_session")


def test_lock_expires_after_15_minutes(app: Sanic) -> None:
    add_user(app, "ana", "admin")
    for _ in range(5):
        try_login(app, "ana", "wrong password!!")
    with app.ctx.engine.begin() as conn:
        conn.execute(update(staff_users).values(locked_until=utcnow() - dt.timedelta(seconds=1)))
    assert try_login(app, "ana", PASSWORD).cookies.get("staff_session")


def test_four_failures_then_success_resets_the_count(app: Sanic) -> None:
    add_user(app, "ana", "admin")
    for _ in range(4):
        try_login(app, "ana", "wrong password!!")
    login(app, "ana")
    assert user_row(app, "ana")["failed_logins"] == 0
    for _ in range(4):
        try_login(app, "ana", "wrong password!!")
    assert user_row(app, "ana")["locked_until"] is None
    login(app, "ana")


# --- sessions --------------------------------------------------------------------------


def test_session_cookie_is_httponly_and_samesite_strict(app: Sanic) -> None:
    add_user(app, "ana", "admin")
    response = try_login(app, "ana", PASSWORD)
    header = [h for h in response.headers.get_list("set-cookie") if h.startswith("staff_session=")][0]
    assert "HttpOnly" in header
    assert "SameSite=Strict" in header
    assert "Path=/" in header
    # the database keeps only a hash of the token
    token = response.cookies["staff_session"]
    rows = session_rows(app)
    assert len(rows) == 1 and rows[0]["token_hash"] != token and token not in str(rows)


def test_session_expires_after_staff_session_hours(app: Sanic, admin: str) -> None:
    assert signed_in(app, admin)
    row = session_rows(app)[0]
    assert row["expires_at"] - row["created_at"] == dt.timedelta(hours=app.ctx.settings.staff_session_hours)
    with app.ctx.engine.begin() as conn:  # still active (last_seen now), but past the absolute expiry
        conn.execute(update(staff_sessions).values(expires_at=utcnow() - dt.timedelta(seconds=1)))
    response = get(app, "/users", admin)
    assert response.status == 302 and response.headers["location"].startswith("/login")
    assert session_rows(app) == []  # expired sessions are removed


def test_session_hours_come_from_the_setting(clinic_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from clinic.settings import get_settings

    monkeypatch.setenv("STAFF_SESSION_HOURS", "2")
    monkeypatch.setenv("STAFF_IDLE_MINUTES", "5")
    get_settings.cache_clear()
    app = make_app()
    add_user(app, "ana", "admin")
    token = login(app, "ana")
    row = session_rows(app)[0]
    assert row["expires_at"] - row["created_at"] == dt.timedelta(hours=2)
    with app.ctx.engine.begin() as conn:
        conn.execute(update(staff_sessions).values(last_seen=utcnow() - dt.timedelta(minutes=4)))
    assert signed_in(app, token)
    with app.ctx.engine.begin() as conn:
        conn.execute(update(staff_sessions).values(last_seen=utcnow() - dt.timedelta(minutes=6)))
    assert not signed_in(app, token)


def test_session_expires_after_staff_idle_minutes(app: Sanic, admin: str) -> None:
    idle = app.ctx.settings.staff_idle_minutes
    with app.ctx.engine.begin() as conn:  # active a little less than the idle limit ago: still fine
        conn.execute(update(staff_sessions).values(last_seen=utcnow() - dt.timedelta(minutes=idle - 1)))
    assert signed_in(app, admin)
    assert utcnow() - session_rows(app)[0]["last_seen"] < dt.timedelta(minutes=1)  # activity refreshes it
    with app.ctx.engine.begin() as conn:
        conn.execute(update(staff_sessions).values(last_seen=utcnow() - dt.timedelta(minutes=idle + 1)))
    response = get(app, "/users", admin)
    assert response.status == 302 and response.headers["location"].startswith("/login")
    assert not signed_in(app, admin)  # it does not come back


def test_logout_ends_the_session_on_the_server(app: Sanic, admin: str) -> None:
    csrf = csrf_for(app, admin)
    # without the CSRF token, logout is refused (a cross-site form cannot sign staff out)
    assert post(app, "/logout", {}, admin).status == 403
    assert signed_in(app, admin)
    response = post(app, "/logout", {"csrf": csrf}, admin)
    assert response.status == 302 and response.headers["location"] == "/login"
    header = [h for h in response.headers.get_list("set-cookie") if h.startswith("staff_session=")][0]
    assert "Max-Age=0" in header
    assert session_rows(app) == []
    # the old cookie, replayed, opens nothing
    response = get(app, "/users", admin)
    assert response.status == 302 and response.headers["location"].startswith("/login")


def test_signing_in_again_drops_the_previous_session(app: Sanic, admin: str) -> None:
    cookie, token, _ = login_page(app)
    _, response = app.test_client.post(
        "/login", data={"username": "ana", "password": PASSWORD, "csrf": token, "next": "/"},
        cookies={"staff_login_csrf": cookie, "staff_session": admin}, allow_redirects=False,
    )
    new = response.cookies["staff_session"]
    assert new != admin
    assert signed_in(app, new) and not signed_in(app, admin)


def test_deactivated_user_is_signed_out(app: Sanic, admin: str) -> None:
    add_user(app, "bo", "support")
    bo = login(app, "bo")
    with app.ctx.engine.begin() as conn:
        conn.execute(update(staff_users).where(staff_users.c.username == "bo").values(active=False))
    response = get(app, "/", bo)
    assert response.status == 302 and response.headers["location"].startswith("/login")
    assert try_login(app, "bo", PASSWORD).status == 401


# --- redirects after sign-in --------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example", "https://evil.example", "http://evil.example/users", "//evil.example/%2F..",
        "/\\evil.example", "\\\\evil.example", "/\t/evil.example", "javascript:alert(1)", "evil.example",
        "https:/evil.example", " //evil.example",
    ],
)
def test_next_cannot_leave_the_site(app: Sanic, target: str) -> None:
    add_user(app, "ana", "admin")
    response = try_login(app, "ana", PASSWORD, next_url=target)
    assert response.status == 302
    assert response.headers["location"] == "/"
    # nor through the login form's hidden field
    _, _, page = login_page(app, next_url=target)
    assert 'name="next" value="/"' in page.text


def test_next_keeps_a_local_path(app: Sanic) -> None:
    add_user(app, "ana", "admin")
    response = try_login(app, "ana", PASSWORD, next_url="/audit")
    assert response.headers["location"] == "/audit"


def test_a_protected_page_sends_anonymous_visitors_to_login_with_next(app: Sanic) -> None:
    response = get(app, "/users")
    assert response.status == 302
    assert response.headers["location"] == "/login?next=%2Fusers"
    _, _, page = login_page(app, next_url="/users")
    assert 'name="next" value="/users"' in page.text


# --- accounts: storage, defaults, CLI -----------------------------------------------------


def test_passwords_are_stored_as_argon2_hashes(app: Sanic) -> None:
    add_user(app, "ana", "admin")
    stored = user_row(app, "ana")["password_hash"]
    assert stored.startswith("$argon2")
    assert PASSWORD not in stored


def test_no_default_user_exists(app: Sanic) -> None:
    from clinic.console import auth

    assert auth.user_count(app.ctx.engine) == 0
    for username, password in (("admin", "admin"), ("admin", "password"), ("admin", "changeme"), ("root", "root")):
        response = try_login(app, username, password)
        assert response.status == 401 and "staff_session" not in response.cookies


def _run_console_main(monkeypatch: pytest.MonkeyPatch) -> list:
    from clinic.console import __main__ as console_main

    ran = []

    class FakeApp:
        def run(self, **kwargs: Any) -> None:
            ran.append(kwargs)

    monkeypatch.setattr(console_main, "create_console_app", lambda settings: FakeApp())
    console_main.main()
    return ran


def test_first_run_prints_how_to_create_the_first_admin(
    app: Sanic, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    ran = _run_console_main(monkeypatch)
    out = capsys.readouterr().out
    assert "No staff account yet" in out
    assert "make staff-user USERNAME=<name> ROLE=admin" in out
    assert "python -m clinic.console.users create <name> --role admin" in out
    assert ran and ran[0]["host"] == "127.0.0.1"  # loopback by default
    # once an account exists, it says nothing of the sort
    add_user(app, "ana", "admin")
    _run_console_main(monkeypatch)
    assert "No staff account yet" not in capsys.readouterr().out


def test_cli_creates_a_user_with_the_password_from_stdin(
    app: Sanic, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from clinic.console import users

    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    assert users.main(["create", "Cleo", "--role", "clinician"]) == 0
    assert "created Cleo (clinician)" in capsys.readouterr().out
    row = user_row(app, "cleo")
    assert row["role"] == "clinician" and row["password_hash"].startswith("$argon2")
    login(app, "cleo")


def test_cli_refuses_short_passwords(app: Sanic, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    from clinic.console import users

    monkeypatch.setattr(sys, "stdin", io.StringIO("elevenchars\n"))
    assert users.main(["create", "cleo", "--role", "admin"]) == 2
    assert "at least 12 characters" in capsys.readouterr().err
    assert users_count(app) == 0
    add_user(app, "ana", "admin")
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    assert users.main(["set-password", "ana"]) == 2
    login(app, "ana")  # unchanged


def test_cli_refuses_unknown_roles_and_users(
    app: Sanic, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from clinic.console import users

    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    with pytest.raises(SystemExit) as exc:
        users.main(["create", "cleo", "--role", "superuser"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
    assert users_count(app) == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    assert users.main(["set-password", "nobody"]) == 2
    assert "no user" in capsys.readouterr().err


def users_count(app: Sanic) -> int:
    from clinic.console import auth

    return auth.user_count(app.ctx.engine)


# --- /users: accounts managed by an admin ------------------------------------------------


def test_users_page_lists_accounts_without_hashes(app: Sanic, admin: str) -> None:
    add_user(app, "bo", "support")
    response = get(app, "/users", admin)
    assert response.status == 200
    for text in ("ana", "bo", "support", "admin", "Created", "Locked until"):
        assert text in response.text
    assert "$argon2" not in response.text
    assert user_row(app, "bo")["password_hash"] not in response.text


def test_admin_creates_a_user_and_it_is_audited(app: Sanic, admin: str) -> None:
    csrf = csrf_for(app, admin)
    response = post(app, "/users", {"csrf": csrf, "username": "Dee", "role": "clinician", "password": PASSWORD}, admin)
    assert response.status == 302 and response.headers["location"].startswith("/users")
    assert user_row(app, "dee")["role"] == "clinician"
    login(app, "dee")
    entry = audit_rows(app, "user_create")[-1]
    assert entry["username"] == "ana" and entry["target_type"] == "staff_user"
    assert entry["target_id"] == str(user_row(app, "dee")["id"])
    assert PASSWORD not in str(audit_rows(app))
    assert "Account created" in get(app, response.headers["location"], admin).text


@pytest.mark.parametrize(
    "form, message",
    [
        ({"username": "dee", "role": "clinician", "password": "elevenchars"}, "at least 12 characters"),
        ({"username": "dee", "role": "owner", "password": PASSWORD}, "role must be one of"),
        ({"username": "ana", "role": "support", "password": PASSWORD}, "exists already"),
        ({"username": "<script>x</script>", "role": "support", "password": PASSWORD}, "a username is"),
    ],
)
def test_admin_create_refuses_bad_input(app: Sanic, admin: str, form: Dict[str, str], message: str) -> None:
    csrf = csrf_for(app, admin)
    response = post(app, "/users", {"csrf": csrf, **form}, admin)
    assert response.status == 400
    assert message in response.text
    assert "<script>x" not in response.text  # escaped when echoed
    assert form["password"] not in response.text  # never echoed back
    assert audit_rows(app, "user_create") == []
    assert users_count(app) == 1


def test_admin_changes_a_role(app: Sanic, admin: str) -> None:
    bo_id = add_user(app, "bo", "support")
    bo = login(app, "bo")
    assert get(app, "/users", bo).status == 403
    csrf = csrf_for(app, admin)
    assert post(app, f"/users/{bo_id}/role", {"csrf": csrf, "role": "admin"}, admin).status == 302
    assert user_row(app, "bo")["role"] == "admin"
    assert get(app, "/users", bo).status == 200  # effective on bo's next request
    entry = audit_rows(app, "user_role")[-1]
    assert entry["target_id"] == str(bo_id) and "support->admin" in entry["detail"]
    assert post(app, f"/users/{bo_id}/role", {"csrf": csrf, "role": "root"}, admin).status == 400
    assert post(app, "/users/9999/role", {"csrf": csrf, "role": "support"}, admin).status == 404


def test_the_last_admin_cannot_be_demoted_or_deactivated(app: Sanic, admin: str) -> None:
    ana_id = user_row(app, "ana")["id"]
    csrf = csrf_for(app, admin)
    response = post(app, f"/users/{ana_id}/role", {"csrf": csrf, "role": "support"}, admin)
    assert response.status == 409 and "last active admin" in response.text
    assert post(app, f"/users/{ana_id}/active", {"csrf": csrf, "active": "0"}, admin).status == 409
    assert user_row(app, "ana")["role"] == "admin" and user_row(app, "ana")["active"]


def test_admin_deactivates_and_reactivates(app: Sanic, admin: str) -> None:
    bo_id = add_user(app, "bo", "support")
    bo = login(app, "bo")
    csrf = csrf_for(app, admin)
    assert post(app, f"/users/{bo_id}/active", {"csrf": csrf, "active": "0"}, admin).status == 302
    assert not user_row(app, "bo")["active"]
    assert get(app, "/", bo).headers["location"].startswith("/login")  # signed out at once
    assert try_login(app, "bo", PASSWORD).status == 401
    assert post(app, f"/users/{bo_id}/active", {"csrf": csrf, "active": "1"}, admin).status == 302
    login(app, "bo")
    details = [e["detail"] for e in audit_rows(app, "user_active")]
    assert details == ["bo active=no", "bo active=yes"]
    assert post(app, f"/users/{bo_id}/active", {"csrf": csrf, "active": "maybe"}, admin).status == 400


def test_admin_unlocks_a_locked_account(app: Sanic, admin: str) -> None:
    bo_id = add_user(app, "bo", "support")
    for _ in range(5):
        try_login(app, "bo", "wrong password!!")
    assert try_login(app, "bo", PASSWORD).status == 401
    page = get(app, "/users", admin).text
    assert f'action="/users/{bo_id}/unlock"' in page
    csrf = csrf_for(app, admin)
    assert post(app, f"/users/{bo_id}/unlock", {"csrf": csrf}, admin).status == 302
    assert user_row(app, "bo")["locked_until"] is None
    login(app, "bo")
    assert audit_rows(app, "user_unlock")[-1]["target_id"] == str(bo_id)


def test_account_changes_need_the_csrf_token(app: Sanic, admin: str) -> None:
    bo_id = add_user(app, "bo", "support")
    for path, data in (
        ("/users", {"username": "eve", "role": "admin", "password": PASSWORD}),
        (f"/users/{bo_id}/role", {"role": "admin"}),
        (f"/users/{bo_id}/active", {"active": "0"}),
        (f"/users/{bo_id}/unlock", {}),
    ):
        assert post(app, path, data, admin).status == 403
        assert post(app, path, {**data, "csrf": "f" * 64}, admin).status == 403
    row = user_row(app, "bo")
    assert row["role"] == "support" and row["active"] and users_count(app) == 2


# --- /audit --------------------------------------------------------------------------------


def _add_audit(app: Sanic, count: int, **values: Any) -> None:
    from clinic.console import auth

    for _ in range(count):
        auth.audit(app.ctx.engine, values.get("user"), values.get("action", "view_transcript"),
                   values.get("target_type", "conversation"), values.get("target_id", "c1"))


def audit_table(text: str) -> list:
    """(who, what) of each row of the audit page, in page order."""
    return re.findall(r'<tr data-id="\d+">\s*<td>[^<]*</td>\s*<td>(\w+)</td>\s*<td>(\w+)</td>', text)


def test_audit_log_newest_first_and_viewing_is_audited(app: Sanic, admin: str) -> None:
    _add_audit(app, 1, user={"id": 9, "username": "bo"}, action="export", target_id="conv-<b>1</b>")
    response = get(app, "/audit", admin)
    assert response.status == 200
    text = response.text
    assert [what for _, what in audit_table(text)] == ["view_audit", "export", "login"]
    assert "conv-&lt;b&gt;1&lt;/b&gt;" in text  # escaped
    assert 'href="/conversations/conv-%3Cb%3E1%3C%2Fb%3E"' in text
    views = audit_rows(app, "view_audit")
    assert len(views) == 1 and views[0]["username"] == "ana"


def test_audit_log_filters(app: Sanic, admin: str) -> None:
    _add_audit(app, 3, user={"id": 9, "username": "bo"}, action="export")
    _add_audit(app, 2, user={"id": 9, "username": "bo"}, action="delete")
    _add_audit(app, 4, user={"id": 1, "username": "ana"}, action="export")
    old = utcnow() - dt.timedelta(days=10)
    with app.ctx.engine.begin() as conn:
        conn.execute(update(audit_log).where(audit_log.c.action == "delete").values(at=old))

    def who_what(**params: str) -> list:
        return audit_table(get(app, "/audit", admin, params=params).text)

    assert who_what(user="bo", action="export") == [("bo", "export")] * 3
    assert who_what(action="delete") == [("bo", "delete")] * 2
    assert set(who_what(user="ana")) == {("ana", "export"), ("ana", "login"), ("ana", "view_audit")}
    day = old.date()
    assert who_what(**{"from": day.isoformat(), "to": day.isoformat()}) == [("bo", "delete")] * 2
    assert ("bo", "delete") not in who_what(**{"from": (day + dt.timedelta(days=1)).isoformat()})
    assert who_what(**{"to": (day - dt.timedelta(days=1)).isoformat()}) == []
    response = get(app, "/audit", admin, params={"from": "yesterday"})
    assert response.status == 400 and "YYYY-MM-DD" in response.text
    # the filter used is itself in the audit trail
    assert "user=bo action=export" in [e["detail"] for e in audit_rows(app, "view_audit")]


def test_audit_log_pages_by_50_with_keyset(app: Sanic, admin: str) -> None:
    _add_audit(app, 120, user={"id": 9, "username": "bo"}, action="export")
    ids_of = lambda text: [int(i) for i in re.findall(r'<tr data-id="(\d+)">', text)]  # noqa: E731
    first = get(app, "/audit", admin, params={"action": "export"}).text
    page1 = ids_of(first)
    assert len(page1) == 50 and page1 == sorted(page1, reverse=True)
    older = re.search(r'<a href="([^"]+)" rel="next">Older</a>', first).group(1).replace("&amp;", "&")
    assert "before=" in older and "action=export" in older
    second = get(app, older, admin).text
    page2 = ids_of(second)
    assert len(page2) == 50 and max(page2) < min(page1)
    third = get(app, re.search(r'<a href="([^"]+)" rel="next">Older</a>', second).group(1).replace("&amp;", "&"), admin).text
    page3 = ids_of(third)
    assert len(page3) == 20 and 'rel="next"' not in third
    assert sorted(page1 + page2 + page3) == sorted(e["id"] for e in audit_rows(app, "export"))
    newer = re.search(r'<a href="([^"]+)" rel="prev">Newer</a>', third).group(1).replace("&amp;", "&")
    assert ids_of(get(app, newer, admin).text) == page2
    assert 'rel="prev"' not in first
    assert get(app, "/audit", admin, params={"before": "-3"}).status == 400


# --- issue 19: lock-out timing, throttle, password changes, strength, audit, cookies, pages ---------


def counted_verifications(monkeypatch: pytest.MonkeyPatch) -> list:
    """The console's argon2 hasher, its verifications counted (the hashes checked)."""
    from clinic.console import auth

    calls: list = []
    real = auth._hasher

    class Counting:
        def verify(self, password_hash: str, password: str) -> bool:
            calls.append(password_hash)
            return real.verify(password_hash, password)

        def hash(self, password: str) -> str:
            return real.hash(password)

    monkeypatch.setattr(auth, "_hasher", Counting())
    return calls


def test_every_sign_in_costs_one_password_verification_whatever_the_account(app: Sanic, monkeypatch) -> None:
    """A locked account answered at once (6 ms against 240 ms) told that it exists: now an unknown,
    locked, inactive, wrongly or rightly answered account each cost one argon2 verification."""
    from clinic.console import auth

    add_user(app, "ana", "admin")
    add_user(app, "bo", "support")
    add_user(app, "cy", "support")
    with app.ctx.engine.begin() as conn:
        conn.execute(update(staff_users).where(staff_users.c.username == "bo").values(
            locked_until=utcnow() + dt.timedelta(minutes=10)))
        conn.execute(update(staff_users).where(staff_users.c.username == "cy").values(active=False))
    calls = counted_verifications(monkeypatch)
    for username, password, signed_in in (("nobody", PASSWORD, False), ("bo", PASSWORD, False),
                                          ("cy", PASSWORD, False), ("ana", "wrong password!!", False),
                                          ("ana", PASSWORD, True)):
        calls.clear()
        assert (auth.authenticate(app.ctx.engine, username, password) is not None) is signed_in, username
        assert len(calls) == 1, username


def test_sign_ins_are_throttled_per_address_before_any_password_is_checked(clinic_env, monkeypatch) -> None:
    from clinic.console import auth
    from clinic.settings import get_settings

    monkeypatch.setenv("LOGIN_ATTEMPTS", "3/0.001")
    monkeypatch.setenv("TRUSTED_PROXIES", "127.0.0.1")
    get_settings.cache_clear()
    app = make_app()
    add_user(app, "ana", "admin")
    calls = counted_verifications(monkeypatch)

    def attempt(address: str, username: str = "ana", password: str = "wrong password!!") -> Any:
        cookie, token, _ = login_page(app)
        _, response = app.test_client.post(
            "/login", data={"username": username, "password": password, "next": "/", "csrf": token},
            cookies={"staff_login_csrf": cookie}, headers={"x-forwarded-for": address}, allow_redirects=False)
        return response

    assert [attempt("198.51.100.7", name).status for name in ("ana", "bo", "cy")] == [401, 401, 401]
    calls.clear()
    refused = attempt("198.51.100.7", "ana", PASSWORD)
    assert refused.status == 429 and int(refused.headers["retry-after"]) >= 1 and calls == []
    assert user_row(app, "ana")["failed_logins"] == 1  # the throttled tries locked nothing
    assert attempt("198.51.100.8", "ana", PASSWORD).status == 302  # another address signs in


def test_a_new_password_ends_every_session_of_the_account(app: Sanic, monkeypatch) -> None:
    from clinic.console import auth, users

    add_user(app, "ana", "admin")
    add_user(app, "bo", "support")
    other = auth.start_session(app.ctx.engine, user_row(app, "bo")["id"], 8)
    first = login(app, "ana")
    second = auth.start_session(app.ctx.engine, user_row(app, "ana")["id"], 8)  # signed in elsewhere too
    assert get(app, "/conversations", first).status == 200, "first"
    assert get(app, "/conversations", second).status == 200, "second"
    auth.set_password(app.ctx.engine, "ana", "a new and long passphrase")
    assert get(app, "/conversations", first).status == 302 and get(app, "/conversations", second).status == 302
    assert get(app, "/conversations", other).status == 200  # another account's session lives on
    monkeypatch.setattr(sys, "stdin", io.StringIO("yet another long passphrase\n"))
    fresh = login(app, "ana", "a new and long passphrase")
    assert users.main(["set-password", "ana"]) == 0
    assert get(app, "/conversations", fresh).status == 302


@pytest.mark.parametrize("password", ["aaaaaaaaaaaa", "password1234", "qwertyuiop12", "123456789012",
                                      "iloveyou1234", "Password1234!", "anaanaanaana"])
def test_common_and_guessable_passwords_are_refused(app: Sanic, admin: str, password: str) -> None:
    from clinic.console import auth

    with pytest.raises(auth.StaffError, match="too easy to guess"):
        auth.create_user(app.ctx.engine, "ana2", password, "support")
    with pytest.raises(auth.StaffError, match="too easy to guess"):
        auth.set_password(app.ctx.engine, "ana", password)
    response = post(app, "/users", {"csrf": csrf_for(app, admin), "username": "dee", "role": "support",
                                    "password": password}, admin)
    assert response.status == 400 and "too easy to guess" in response.text
    assert try_login(app, "ana", PASSWORD).status == 302  # the old password still stands


def test_a_failed_sign_in_is_audited_with_a_keyed_hash_of_the_name_typed(app: Sanic) -> None:
    from clinic.console import auth
    from clinic.settings import get_settings

    add_user(app, "ana", "admin")
    typed = ["ana", "correct horse battery stapl", "ana"]  # a password typed as a name, now and then
    for name in typed:
        try_login(app, name, "wrong password!!")
    rows = audit_rows(app, "login_failed")
    assert [r["target_id"] for r in rows] == [auth.username_tag(get_settings().secret_key, n) for n in typed]
    assert rows[0]["target_id"] == rows[2]["target_id"] != rows[1]["target_id"]
    for row in rows:
        assert all(name not in json.dumps(row, default=str) for name in ("correct horse", "wrong password"))
        assert row["username"] is None and row["target_id"].startswith("typed:")


def test_in_production_the_session_cookie_is_host_only(clinic_env, monkeypatch) -> None:
    from clinic.settings import get_settings

    monkeypatch.setenv("COOKIE_SECURE", "true")
    get_settings.cache_clear()
    app = make_app()
    add_user(app, "ana", "admin")
    response = try_login(app, "ana", PASSWORD)
    set_cookie = response.headers["set-cookie"]
    assert set_cookie.startswith("__Host-staff_session=") and "Secure" in set_cookie and "Domain" not in set_cookie
    token = response.cookies["__Host-staff_session"]
    _, page = app.test_client.get("/conversations", cookies={"__Host-staff_session": token}, allow_redirects=False)
    assert page.status == 200


def test_a_page_number_past_any_list_is_404_not_500(app: Sanic, admin: str) -> None:
    for path in ("/referrals", "/handoffs"):
        for page, status in (("1", 200), ("abc", 200), ("0", 200), (str(10**20), 404), ("100001", 404)):
            response = get(app, path, admin, params={"page": page})
            assert response.status == status, (path, page)
            assert "Traceback" not in response.text
