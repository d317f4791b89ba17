"""Staff accounts, sessions, roles and CSRF for the console.

Passwords are argon2 hashes (argon2-cffi), at least 12 characters and not easy to guess:
zxcvbn (pinned) rates each one against its lists of common passwords, words, names, keyboard
patterns, dates and repeats (and the username), and one rated under ``MIN_PASSWORD_SCORE`` is
refused ("aaaaaaaaaaaa", "password1234"). A session is a random token in an HttpOnly cookie
(``__Host-staff_session`` with ``COOKIE_SECURE``); the database keeps only its SHA-256, with an
absolute expiry (STAFF_SESSION_HOURS) and an idle timeout (STAFF_IDLE_MINUTES); a new password
ends every session of the account. Five failed logins in a row lock an account for 15 minutes;
a sign-in costs one argon2 verification whatever the account (unknown, locked, inactive or
real), so its timing tells nothing; and each address gets ``LOGIN_ATTEMPTS`` tries (the pages'
limiter), so nobody can lock every account from one place. A failed sign-in is audited with a
keyed hash of the name typed (``username_tag``), never the name itself (it is sometimes the
password). Every POST carries a CSRF token bound to the session (or, on the login form, to a
signed pre-session cookie). Roles: support < clinician < admin; ``require("clinician")`` lets
clinicians and admins in.
"""

import datetime as dt
import functools
import hashlib
import hmac
import secrets
from typing import Any, Awaitable, Callable, Dict, Optional
from urllib.parse import urlencode

import zxcvbn
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sanic import Request
from sanic.response import HTTPResponse, redirect
from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine

from clinic.storage import db
from clinic.storage.db import audit_log, staff_sessions, staff_users, utcnow

ROLES = ("support", "clinician", "admin")
RANK = {role: i for i, role in enumerate(ROLES)}
SESSION_COOKIE = "staff_session"
SECURE_SESSION_COOKIE = "__Host-staff_session"  # with COOKIE_SECURE: Secure, Path=/, no Domain
LOGIN_CSRF_COOKIE = "staff_login_csrf"
MAX_FAILED_LOGINS = 5
LOCKOUT = dt.timedelta(minutes=15)
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
MIN_PASSWORD_SCORE = 3  # zxcvbn's 0-4: 3 is "safely unguessable", about 10^8 guesses or more
MAX_DISPLAY_NAME = 64

_hasher = PasswordHasher()


@functools.lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """A hash to verify against when there is no account to check (same work as a real one)."""
    return _hasher.hash(secrets.token_urlsafe(16))


def session_cookie(settings: Any) -> str:
    return SECURE_SESSION_COOKIE if settings.cookie_secure else SESSION_COOKIE


def username_tag(secret: bytes, username: str) -> str:
    """What the audit log keeps of a name typed in a failed sign-in: a keyed hash (the same name
    gives the same tag, so repeated tries show; the name itself, sometimes a password, never)."""
    typed = (username or "").strip().lower()
    return "typed:" + hmac.new(secret, f"login-name\x00{typed}".encode(), hashlib.sha256).hexdigest()[:16]


def check_password(password: str, username: str = "") -> None:
    """StaffError when ``password`` is too short, too long or too easy to guess."""
    password = password or ""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise StaffError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise StaffError(f"a password has at most {MAX_PASSWORD_LENGTH} characters")
    rating = zxcvbn.zxcvbn(password[:100], user_inputs=[u for u in (username, "clinic", "ketamine", "console") if u])
    if rating["score"] < MIN_PASSWORD_SCORE:
        raise StaffError("that password is too easy to guess (a common password, a pattern, or a word with a few "
                         "changes): use several unrelated words, or a password manager's")


class StaffError(ValueError):
    """A staff account request that cannot be done (the message says why)."""


# --- accounts -------------------------------------------------------------------


def clean_display_name(value: Optional[str]) -> Optional[str]:
    """The name visitors see in a live chat ("Dana"): 1-64 printable characters, spaces
    collapsed; empty means none (the username is shown instead)."""
    name = " ".join((value or "").split())
    if not name:
        return None
    if len(name) > MAX_DISPLAY_NAME or not all(c.isprintable() for c in name):
        raise StaffError(f"a display name is 1-{MAX_DISPLAY_NAME} printable characters")
    return name


def visible_name(user: Dict[str, Any]) -> str:
    """What visitors see of a staff member: the display name, else the username."""
    return user.get("display_name") or user["username"]


def create_user(engine: Engine, username: str, password: str, role: str, display_name: Optional[str] = None) -> int:
    username = (username or "").strip().lower()
    if not username or len(username) > 64 or not all(c.isalnum() or c in "._-" for c in username):
        raise StaffError("a username is 1-64 letters, digits, '.', '_' or '-'")
    if role not in ROLES:
        raise StaffError(f"role must be one of {', '.join(ROLES)}")
    check_password(password, username)
    display_name = clean_display_name(display_name)
    with engine.begin() as conn:
        if conn.execute(select(staff_users.c.id).where(staff_users.c.username == username)).first():
            raise StaffError(f"user {username!r} exists already")
        result = conn.execute(
            insert(staff_users).values(
                username=username, password_hash=_hasher.hash(password), role=role, display_name=display_name,
                active=True, failed_logins=0, created_at=utcnow(),
            )
        )
        return int(result.inserted_primary_key[0])


def set_display_name(engine: Engine, username: str, display_name: Optional[str]) -> Optional[str]:
    """Set (or, with an empty value, clear) an account's display name; returns the name stored."""
    name = clean_display_name(display_name)
    with engine.begin() as conn:
        done = conn.execute(
            update(staff_users).where(staff_users.c.username == (username or "").strip().lower()).values(display_name=name)
        )
        if not done.rowcount:
            raise StaffError(f"no user {username!r}")
    return name


def set_password(engine: Engine, username: str, password: str) -> None:
    """A new password (and unlocked); every session of the account ends (one signed in with the old
    password, perhaps by someone else, does not live on)."""
    username = (username or "").strip().lower()
    check_password(password, username)
    with engine.begin() as conn:
        row = conn.execute(select(staff_users.c.id).where(staff_users.c.username == username)).first()
        if row is None:
            raise StaffError(f"no user {username!r}")
        conn.execute(
            update(staff_users)
            .where(staff_users.c.id == row.id)
            .values(password_hash=_hasher.hash(password), failed_logins=0, locked_until=None)
        )
        conn.execute(delete(staff_sessions).where(staff_sessions.c.user_id == row.id))


def user_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return len(conn.execute(select(staff_users.c.id)).fetchall())


def _verifies(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def authenticate(engine: Engine, username: str, password: str) -> Optional[Dict[str, Any]]:
    """The user, or None (wrong name or password, locked, inactive). Counts failures. One argon2
    verification whatever the account: an unknown, locked or inactive one costs what a real one
    does, so the time of the answer tells nothing."""
    username = (username or "").strip().lower()
    password = (password or "")[:MAX_PASSWORD_LENGTH]
    with engine.begin() as conn:
        row = conn.execute(select(staff_users).where(staff_users.c.username == username)).first()
        user = dict(row._mapping) if row is not None else None
        matches = _verifies(user["password_hash"] if user else _dummy_hash(), password)
        if user is None:
            return None
        now = utcnow()
        if not user["active"] or (user["locked_until"] and user["locked_until"] > now):
            return None
        if not matches:
            failed = user["failed_logins"] + 1
            values: Dict[str, Any] = {"failed_logins": failed}
            if failed >= MAX_FAILED_LOGINS:
                values = {"failed_logins": 0, "locked_until": now + LOCKOUT}
            conn.execute(update(staff_users).where(staff_users.c.id == user["id"]).values(**values))
            return None
        conn.execute(
            update(staff_users).where(staff_users.c.id == user["id"]).values(failed_logins=0, locked_until=None)
        )
        return user


# --- sessions -------------------------------------------------------------------


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(engine: Engine, user_id: int, hours: float) -> str:
    token = secrets.token_urlsafe(32)
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            insert(staff_sessions).values(
                token_hash=_hash(token), user_id=user_id, created_at=now, last_seen=now,
                expires_at=now + dt.timedelta(hours=hours),
            )
        )
    return token


def end_session(engine: Engine, token: Optional[str]) -> None:
    if token:
        with engine.begin() as conn:
            conn.execute(delete(staff_sessions).where(staff_sessions.c.token_hash == _hash(token)))


def session_user(engine: Engine, token: Optional[str], idle_minutes: float) -> Optional[Dict[str, Any]]:
    """The signed-in user of a session token, or None when missing, expired or idle too long."""
    if not token:
        return None
    now = utcnow()
    with engine.begin() as conn:
        row = conn.execute(
            select(staff_sessions, staff_users.c.username, staff_users.c.role, staff_users.c.active,
                   staff_users.c.display_name)
            .join(staff_users, staff_users.c.id == staff_sessions.c.user_id)
            .where(staff_sessions.c.token_hash == _hash(token))
        ).first()
        if row is None:
            return None
        s = dict(row._mapping)
        if not s["active"] or s["expires_at"] <= now or now - s["last_seen"] > dt.timedelta(minutes=idle_minutes):
            conn.execute(delete(staff_sessions).where(staff_sessions.c.token_hash == s["token_hash"]))
            return None
        conn.execute(update(staff_sessions).where(staff_sessions.c.token_hash == s["token_hash"]).values(last_seen=now))
    return {
        "id": s["user_id"], "username": s["username"], "role": s["role"], "display_name": s["display_name"],
        "session": s["token_hash"],
    }


# --- CSRF -----------------------------------------------------------------------


def csrf_token(secret: bytes, bound_to: str) -> str:
    return hmac.new(secret, f"csrf\x00{bound_to}".encode(), hashlib.sha256).hexdigest()


def csrf_ok(secret: bytes, bound_to: Optional[str], given: Optional[str]) -> bool:
    return bool(bound_to) and hmac.compare_digest(csrf_token(secret, bound_to or ""), given or "")


# --- audit ----------------------------------------------------------------------


def audit(
    engine: Engine, user: Optional[Dict[str, Any]], action: str, target_type: str = "", target_id: str = "", detail: str = ""
) -> None:
    """Who did what, when. Never visitor text in ``detail``."""
    with engine.begin() as conn:
        conn.execute(
            insert(audit_log).values(
                at=utcnow(), user_id=(user or {}).get("id"), username=(user or {}).get("username"),
                action=action, target_type=target_type or None, target_id=target_id or None,
                detail=(detail or None) and detail[:255],
            )
        )


# --- route guard ----------------------------------------------------------------

Handler = Callable[..., Awaitable[HTTPResponse]]


def require(role: str) -> Callable[[Handler], Handler]:
    """Only signed-in staff of at least ``role``; POSTs need the session's CSRF token."""
    if role not in ROLES:
        raise ValueError(role)

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def wrapped(request: Request, *args: Any, **kwargs: Any) -> HTTPResponse:
            ctx = request.app.ctx
            user = session_user(ctx.engine, request.cookies.get(session_cookie(ctx.settings)),
                                ctx.settings.staff_idle_minutes)
            if user is None:
                return redirect("/login?" + urlencode({"next": request.path}))
            request.ctx.user = user
            if RANK[user["role"]] < RANK[role]:
                from clinic.console.pages import render

                return render(request, "forbidden.html", status=403)
            if request.method == "POST" and not csrf_ok(ctx.secret, user["session"], request.form.get("csrf")):
                from clinic.console.pages import render

                return render(request, "forbidden.html", status=403, reason="The form expired. Please go back and try again.")
            return await handler(request, *args, **kwargs)

        wrapped.required_role = role  # type: ignore[attr-defined]
        return wrapped

    return decorate


def engine_of(request: Request) -> Engine:
    return request.app.ctx.engine


__all__ = ["ROLES", "require", "audit", "create_user", "authenticate", "db"]
