"""Console pages for admins: staff accounts (/users) and the audit log (/audit).

Every change to an account is audited (``user_create``, ``user_role``, ``user_active``,
``user_unlock``, ``user_display_name``) and so is every look at the audit log (``view_audit``). Password hashes
never leave the database: the pages select only the columns they show.
"""

import datetime as dt
import functools
from typing import Any, Awaitable, Callable, Dict, List, Optional
from urllib.parse import quote, urlencode

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, redirect
from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.engine import Connection

from clinic.console import auth
from clinic.console.pages import render
from clinic.storage.db import audit_log, staff_sessions, staff_users, utcnow

bp = Blueprint("console_staff_admin")

AUDIT_PAGE = 50

# Messages shown after a change (the query string carries only the key: no reflected text).
NOTICES = {
    "created": "Account created. Give the person their initial password by a safe channel.",
    "role": "Role changed. It applies from their next page.",
    "deactivated": "Account deactivated and signed out everywhere.",
    "reactivated": "Account reactivated.",
    "unlocked": "Account unlocked.",
    "display_name": "Display name changed. Visitors see it from the next chat this person joins.",
}

# Only these columns are ever read for the pages (never password_hash).
USER_COLUMNS = (
    staff_users.c.id, staff_users.c.username, staff_users.c.display_name, staff_users.c.role, staff_users.c.active,
    staff_users.c.failed_logins, staff_users.c.locked_until, staff_users.c.created_at,
)

# a change to one account: (request, the account) -> response
ChangeHandler = Callable[[Request, Dict[str, Any]], Awaitable[HTTPResponse]]


# --- staff accounts ---------------------------------------------------------------


def _users(conn: Connection) -> List[Dict[str, Any]]:
    rows = conn.execute(select(*USER_COLUMNS).order_by(staff_users.c.username)).fetchall()
    now = utcnow()
    users = []
    for row in rows:
        user = dict(row._mapping)
        user["locked"] = bool(user["locked_until"] and user["locked_until"] > now)
        users.append(user)
    return users


def _user(conn: Connection, user_id: int) -> Optional[Dict[str, Any]]:
    row = conn.execute(select(*USER_COLUMNS).where(staff_users.c.id == user_id)).first()
    return dict(row._mapping) if row else None


def _active_admins(conn: Connection) -> int:
    return int(
        conn.execute(
            select(func.count()).select_from(staff_users)
            .where(and_(staff_users.c.role == "admin", staff_users.c.active.is_(True)))
        ).scalar() or 0
    )


def _users_page(request: Request, status: int = 200, error: str = "", form: Optional[Dict[str, str]] = None) -> HTTPResponse:
    with auth.engine_of(request).connect() as conn:
        users = _users(conn)
    notice = NOTICES.get(request.args.get("done", ""), "")
    return render(
        request, "users.html", status=status, users=users, roles=auth.ROLES, error=error,
        notice="" if error else notice, form=form or {}, min_password=auth.MIN_PASSWORD_LENGTH,
    )


@bp.get("/users")
@auth.require("admin")
async def users_list(request: Request) -> HTTPResponse:
    return _users_page(request)


@bp.post("/users")
@auth.require("admin")
async def user_create(request: Request) -> HTTPResponse:
    engine = auth.engine_of(request)
    username = (request.form.get("username") or "").strip().lower()
    role = request.form.get("role") or ""
    password = request.form.get("password") or ""
    display_name = request.form.get("display_name") or ""
    try:
        user_id = auth.create_user(engine, username, password, role, display_name)
    except auth.StaffError as exc:
        # the password is never sent back into the form
        return _users_page(request, status=400, error=str(exc), form={
            "username": username[:64], "role": role, "display_name": display_name[:auth.MAX_DISPLAY_NAME]})
    auth.audit(engine, request.ctx.user, "user_create", "staff_user", str(user_id), f"{username} role={role}")
    return redirect("/users?done=created")


def _account_change(segment: str) -> Callable[[ChangeHandler], auth.Handler]:
    """An admin's POST to /users/<user_id>/<segment>: the handler gets the account (its
    USER_COLUMNS), or the page says there is no such account."""

    def decorate(handler: ChangeHandler) -> auth.Handler:
        @bp.post(f"/users/<user_id:int>/{segment}")
        @auth.require("admin")
        @functools.wraps(handler)
        async def route(request: Request, user_id: int) -> HTTPResponse:
            with auth.engine_of(request).connect() as conn:
                target = _user(conn, user_id)
            if target is None:
                return render(request, "forbidden.html", status=404, reason="There is no such account.")
            return await handler(request, target)

        return route

    return decorate


def _changed(request: Request, target: Dict[str, Any], action: str, detail: str, done: str) -> HTTPResponse:
    """A change made: audited as ``user_<action>`` (the account's username, then ``detail``),
    then back to the list with its notice."""
    auth.audit(auth.engine_of(request), request.ctx.user, f"user_{action}", "staff_user", str(target["id"]),
               f"{target['username']} {detail}".rstrip())
    return redirect(f"/users?done={done}")


@_account_change("role")
async def user_role(request: Request, target: Dict[str, Any]) -> HTTPResponse:
    role = request.form.get("role") or ""
    if role not in auth.ROLES:
        return _users_page(request, status=400, error=f"role must be one of {', '.join(auth.ROLES)}")
    if target["role"] == role:
        return redirect("/users")
    with auth.engine_of(request).begin() as conn:
        if target["role"] == "admin" and target["active"] and _active_admins(conn) <= 1:
            error = "This is the last active admin: make another admin first."
        else:
            error = ""
            conn.execute(update(staff_users).where(staff_users.c.id == target["id"]).values(role=role))
    if error:
        return _users_page(request, status=409, error=error)
    return _changed(request, target, "role", f"{target['role']}->{role}", "role")


@_account_change("active")
async def user_active(request: Request, target: Dict[str, Any]) -> HTTPResponse:
    user_id = target["id"]
    value = request.form.get("active")
    if value not in ("0", "1"):
        return _users_page(request, status=400, error="Choose to deactivate or reactivate the account.")
    active = value == "1"
    if active == bool(target["active"]):
        return redirect("/users")
    error = ""
    with auth.engine_of(request).begin() as conn:
        if not active and user_id == request.ctx.user["id"]:
            error = "You cannot deactivate your own account: ask another admin."
        elif not active and target["role"] == "admin" and _active_admins(conn) <= 1:
            error = "This is the last active admin: make another admin first."
        else:
            conn.execute(update(staff_users).where(staff_users.c.id == user_id).values(active=active))
            if not active:  # signed out everywhere at once
                conn.execute(delete(staff_sessions).where(staff_sessions.c.user_id == user_id))
    if error:
        return _users_page(request, status=409, error=error)
    return _changed(request, target, "active", f"active={'yes' if active else 'no'}",
                    "reactivated" if active else "deactivated")


@_account_change("display_name")
async def user_display_name(request: Request, target: Dict[str, Any]) -> HTTPResponse:
    try:
        stored = auth.set_display_name(auth.engine_of(request), target["username"], request.form.get("display_name") or "")
    except auth.StaffError as exc:
        return _users_page(request, status=400, error=str(exc))
    return _changed(request, target, "display_name", f"display_name={stored or '(none)'}", "display_name")


@_account_change("unlock")
async def user_unlock(request: Request, target: Dict[str, Any]) -> HTTPResponse:
    with auth.engine_of(request).begin() as conn:
        conn.execute(
            update(staff_users).where(staff_users.c.id == target["id"]).values(locked_until=None, failed_logins=0)
        )
    return _changed(request, target, "unlock", "", "unlocked")


# --- audit log --------------------------------------------------------------------


def _date(value: str) -> Optional[dt.date]:
    value = (value or "").strip()
    if not value:
        return None
    return dt.date.fromisoformat(value)  # ValueError on anything else


def _positive_int(value: str) -> Optional[int]:
    value = (value or "").strip()
    if not value:
        return None
    number = int(value)  # ValueError on anything else
    if number < 1:
        raise ValueError(value)
    return number


@bp.get("/audit")
@auth.require("admin")
async def audit_view(request: Request) -> HTTPResponse:
    engine = auth.engine_of(request)
    args = request.args
    filters = {
        "user": (args.get("user") or "").strip()[:64],
        "action": (args.get("action") or "").strip()[:48],
        "from": (args.get("from") or "").strip()[:10],
        "to": (args.get("to") or "").strip()[:10],
    }
    error = ""
    try:
        day_from, day_to = _date(filters["from"]), _date(filters["to"])
        before, after = _positive_int(args.get("before", "")), _positive_int(args.get("after", ""))
    except ValueError:
        error = "Dates are YYYY-MM-DD; page markers are record numbers."
        day_from = day_to = before = after = None
        filters["from"] = filters["to"] = ""

    detail = " ".join(f"{k}={v}" for k, v in filters.items() if v)
    auth.audit(engine, request.ctx.user, "view_audit", "audit_log", "", detail)

    conditions = []
    if filters["user"]:
        conditions.append(audit_log.c.username == filters["user"])
    if filters["action"]:
        conditions.append(audit_log.c.action == filters["action"])
    if day_from:
        conditions.append(audit_log.c.at >= dt.datetime.combine(day_from, dt.time()))
    if day_to:
        conditions.append(audit_log.c.at < dt.datetime.combine(day_to + dt.timedelta(days=1), dt.time()))

    query = select(audit_log).where(*conditions)
    with engine.connect() as conn:
        if after is not None:  # a newer page: read upwards, then show newest first
            rows = conn.execute(
                query.where(audit_log.c.id > after).order_by(audit_log.c.id.asc()).limit(AUDIT_PAGE + 1)
            ).fetchall()
            has_newer = len(rows) > AUDIT_PAGE
            rows = list(reversed(rows[:AUDIT_PAGE]))
            has_older = bool(rows) and conn.execute(
                select(audit_log.c.id).where(*conditions, audit_log.c.id < rows[-1].id).limit(1)
            ).first() is not None
        else:
            if before is not None:
                query = query.where(audit_log.c.id < before)
            rows = conn.execute(query.order_by(audit_log.c.id.desc()).limit(AUDIT_PAGE + 1)).fetchall()
            has_older = len(rows) > AUDIT_PAGE
            rows = rows[:AUDIT_PAGE]
            has_newer = before is not None and bool(rows) and conn.execute(
                select(audit_log.c.id).where(*conditions, audit_log.c.id > rows[0].id).limit(1)
            ).first() is not None
        actions = [r[0] for r in conn.execute(select(audit_log.c.action).distinct().order_by(audit_log.c.action))]
        usernames = [r[0] for r in conn.execute(select(staff_users.c.username).order_by(staff_users.c.username))]

    base = {k: v for k, v in filters.items() if v}
    entries = [dict(r._mapping) for r in rows]
    for entry in entries:
        prefix = TARGET_LINKS.get(entry["target_type"] or "")
        entry["link"] = prefix + quote(entry["target_id"], safe="") if prefix and entry["target_id"] else ""
    return render(
        request, "audit.html", status=400 if error else 200, entries=entries, filters=filters, error=error,
        actions=actions, usernames=usernames,
        older_url=("/audit?" + urlencode({**base, "before": entries[-1]["id"]})) if has_older and entries else "",
        newer_url=("/audit?" + urlencode({**base, "after": entries[0]["id"]})) if has_newer and entries else "",
        newest_url=("/audit?" + urlencode(base)) if (before or after) else "",
    )


# Where a target in the log can be opened (only safe, fixed prefixes; the id is URL-escaped by the template).
TARGET_LINKS = {
    "conversation": "/conversations/",
    "referral": "/referrals/",
}
