"""The referral queue and a referral's page (clinicians and admins only).

Queue order: urgent referrals first, then those for clinician review, then the
rest; oldest first within each group. Status moves ``new -> contacted ->
scheduled -> closed``, or to ``not_reachable`` from ``new`` or ``contacted``;
the server refuses any other move (and a move from a status the referral is no
longer in, so two staff acting at once cannot skip a step).

Contact details and answers are decrypted only on a referral's page, and every
view of that page is written to the audit log (``view_contact``). Status
changes, assignments and notes are audited too; the log never holds the text
of a note or anything the visitor wrote.
"""

import datetime as dt
import functools
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple
from urllib.parse import quote, urlencode

from sanic import Blueprint, Request
from sanic.exceptions import NotFound
from sanic.response import HTTPResponse, redirect
from sqlalchemy import and_, case, func, insert, select, true, update
from sqlalchemy.engine import Engine

from clinic.storage import referrals as referral_store
from clinic.console import auth, clock
from clinic.console.conversations import answer_summary
from clinic.console.pages import page_arg, render
from clinic.storage.crypto import DecryptionError
from clinic.storage.db import referral_notes, referral_workflow, referrals, staff_users, utcnow

bp = Blueprint("console_referrals_queue")

STATUSES = ("new", "contacted", "scheduled", "closed", "not_reachable")
STATUS_LABELS = {
    "new": "New",
    "contacted": "Contacted",
    "scheduled": "Scheduled",
    "closed": "Closed",
    "not_reachable": "Not reachable",
}
TRANSITIONS: Dict[str, Tuple[str, ...]] = {
    "new": ("contacted", "not_reachable"),
    "contacted": ("scheduled", "not_reachable"),
    "scheduled": ("closed",),
    "closed": (),
    "not_reachable": (),
}
OPEN_STATUSES = ("new", "contacted", "scheduled")
FILTERS = ("open", "all") + STATUSES
PAGE_SIZE = 50
MAX_NOTE_CHARS = 2000
ASSIGNABLE_ROLES = ("clinician", "admin")

# a change to one referral: (request, its stored row) -> response
ChangeHandler = Callable[[Request, Dict[str, Any]], Awaitable[HTTPResponse]]


class TransitionError(ValueError):
    """A status change the workflow does not allow (the message says why)."""


def allowed(current: str, target: str) -> bool:
    return target in TRANSITIONS.get(current, ())


def path_quote(value: str) -> str:
    """``value`` as one URL path segment."""
    return quote(str(value), safe="")


# --- data -------------------------------------------------------------------------


def _queue_order() -> List[Any]:
    group = case(
        (referrals.c.urgent.is_(True), 0),
        (referrals.c.outcome == "clinician_review", 1),
        else_=2,
    )
    return [group, referrals.c.created_at, referrals.c.id]


def queue(
    engine: Engine,
    status: str = "open",
    created_from: Optional[dt.date] = None,
    created_to: Optional[dt.date] = None,
    page: int = 1,
    page_size: int = PAGE_SIZE,
) -> Tuple[List[Dict[str, Any]], int]:
    """One page of the queue (no encrypted columns) and the number of referrals matching."""
    assignee = staff_users.alias("assignee")
    conditions = []
    if status == "open":
        conditions.append(referrals.c.status.in_(OPEN_STATUSES))
    elif status in STATUSES:
        conditions.append(referrals.c.status == status)
    if created_from:
        conditions.append(referrals.c.created_at >= clock.day_start(created_from))
    if created_to:
        conditions.append(referrals.c.created_at < clock.day_start(created_to + dt.timedelta(days=1)))
    where = and_(*conditions) if conditions else true()
    query = (
        select(
            referrals.c.reference, referrals.c.conversation_id, referrals.c.outcome, referrals.c.urgent,
            referrals.c.status, referrals.c.created_at, assignee.c.username.label("assignee"),
        )
        .select_from(
            referrals.outerjoin(referral_workflow, referral_workflow.c.reference == referrals.c.reference)
            .outerjoin(assignee, assignee.c.id == referral_workflow.c.assignee_id)
        )
        .where(where)
        .order_by(*_queue_order())
        .limit(page_size)
        .offset((max(page, 1) - 1) * page_size)
    )
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(query)]
        total = conn.execute(select(func.count()).select_from(referrals).where(where)).scalar() or 0
    return rows, int(total)


def set_status(engine: Engine, reference: str, current: str, target: str) -> None:
    """Move ``reference`` from ``current`` to ``target``, or raise TransitionError.

    The update is conditional on the stored status still being ``current``.
    """
    if target not in STATUSES:
        raise TransitionError("unknown status")
    if not allowed(current, target):
        raise TransitionError(f"a referral cannot go from {STATUS_LABELS.get(current, current)} to {STATUS_LABELS[target]}")
    with engine.begin() as conn:
        done = conn.execute(
            update(referrals)
            .where(referrals.c.reference == reference, referrals.c.status == current)
            .values(status=target)
        )
        if not done.rowcount:
            raise TransitionError("the referral changed meanwhile; look at its status again")
        _touch(conn, reference)


def _touch(conn: Any, reference: str, **values: Any) -> None:
    values["updated_at"] = utcnow()
    found = conn.execute(
        update(referral_workflow).where(referral_workflow.c.reference == reference).values(**values)
    ).rowcount
    if not found:
        conn.execute(insert(referral_workflow).values(reference=reference, **values))


def assignable_staff(engine: Engine) -> List[Dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(staff_users.c.id, staff_users.c.username, staff_users.c.role)
            .where(staff_users.c.role.in_(ASSIGNABLE_ROLES), staff_users.c.active.is_(True))
            .order_by(staff_users.c.username)
        )
        return [dict(r._mapping) for r in rows]


def set_assignee(engine: Engine, reference: str, assignee_id: Optional[int]) -> None:
    with engine.begin() as conn:
        _touch(conn, reference, assignee_id=assignee_id)


def workflow(engine: Engine, reference: str) -> Dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(
            select(referral_workflow.c.assignee_id, referral_workflow.c.updated_at, staff_users.c.username)
            .select_from(referral_workflow.outerjoin(staff_users, staff_users.c.id == referral_workflow.c.assignee_id))
            .where(referral_workflow.c.reference == reference)
        ).first()
    if row is None:
        return {"assignee_id": None, "assignee": None, "updated_at": None}
    return {"assignee_id": row.assignee_id, "assignee": row.username, "updated_at": row.updated_at}


def add_note(engine: Engine, reference: str, user: Dict[str, Any], text: str) -> int:
    with engine.begin() as conn:
        result = conn.execute(
            insert(referral_notes).values(
                reference=reference, user_id=user.get("id"), username=user.get("username"), at=utcnow(), text=text
            )
        )
        _touch(conn, reference)
        return int(result.inserted_primary_key[0])


def notes(engine: Engine, reference: str) -> List[Dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(referral_notes).where(referral_notes.c.reference == reference).order_by(referral_notes.c.at, referral_notes.c.id)
        )
        return [dict(r._mapping) for r in rows]


def forget(conn: Any, reference: str) -> None:
    """Delete the console's workflow and notes of a referral (for deleting a conversation)."""
    from sqlalchemy import delete

    conn.execute(delete(referral_notes).where(referral_notes.c.reference == reference))
    conn.execute(delete(referral_workflow).where(referral_workflow.c.reference == reference))


# --- pages ------------------------------------------------------------------------


def _date_arg(value: Optional[str]) -> Optional[dt.date]:
    try:
        return dt.date.fromisoformat((value or "").strip()) if value else None
    except ValueError:
        return None



def _referral_or_404(engine: Engine, reference: str) -> Dict[str, Any]:
    normal = referral_store.normalize_reference(reference)
    row = referral_store.get_referral(engine, normal) if normal else None
    if row is None:
        raise NotFound("No such referral")
    return row


@bp.get("/referrals")
@auth.require("clinician")
async def referral_queue(request: Request) -> HTTPResponse:
    engine = request.app.ctx.engine
    wanted = request.args.get("ref")
    if wanted is not None:  # "find the referral a visitor quotes"
        normal = referral_store.normalize_reference(wanted)
        if normal and referral_store.get_referral(engine, normal):
            return redirect(f"/referrals/{path_quote(normal)}")
        status, created_from, created_to, page = "all", None, None, 1
        not_found = True
    else:
        not_found = False
        status = request.args.get("status", "open")
        if status not in FILTERS:
            status = "open"
        created_from = _date_arg(request.args.get("from"))
        created_to = _date_arg(request.args.get("to"))
        page = page_arg(request.args.get("page"))
    rows, total = queue(engine, status, created_from, created_to, page)
    from clinic.console.handoffs import waiting  # (handoffs imports this module)

    now = utcnow()
    for r in rows:  # how long a new referral has waited for a first contact
        r["waiting"] = waiting(r["created_at"], now) if r["status"] == "new" else None
    pages = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    base = {"status": status}
    if created_from:
        base["from"] = created_from.isoformat()
    if created_to:
        base["to"] = created_to.isoformat()
    return render(
        request, "referrals.html", rows=rows, total=total, current_filter=status, filters=FILTERS,
        labels=STATUS_LABELS, created_from=created_from, created_to=created_to, page=page, pages=pages,
        prev_url=f"/referrals?{urlencode({**base, 'page': page - 1})}" if page > 1 else None,
        next_url=f"/referrals?{urlencode({**base, 'page': page + 1})}" if page < pages else None,
        q=path_quote, not_found=not_found,
    )


def _detail(request: Request, row: Dict[str, Any], status: int = 200, error: str = "", message: str = "") -> HTTPResponse:
    ctx = request.app.ctx
    user = request.ctx.user
    reference = row["reference"]
    decrypted: Optional[Dict[str, Any]] = None
    try:
        decrypted = referral_store.decrypt_referral(row, ctx.settings.encryption_key)
        detail = ""
    except DecryptionError:
        detail = "decryption failed"
    auth.audit(ctx.engine, user, "view_contact", "referral", reference, detail)
    summary, scores = answer_summary((decrypted or {}).get("answers") or {})
    return render(
        request, "referral.html", status=status, referral=row, plain=decrypted, labels=STATUS_LABELS,
        summary=summary, scores=scores,
        next_statuses=TRANSITIONS.get(row["status"], ()), workflow=workflow(ctx.engine, reference),
        staff=assignable_staff(ctx.engine), notes=notes(ctx.engine, reference), error=error, message=message,
        q=path_quote, max_note=MAX_NOTE_CHARS,
    )


@bp.get("/referrals/<reference>")
@auth.require("clinician")
async def referral_page(request: Request, reference: str) -> HTTPResponse:
    row = _referral_or_404(request.app.ctx.engine, reference)
    if row["reference"] != reference:
        return redirect(f"/referrals/{path_quote(row['reference'])}")
    message = {"status": "Status changed.", "assign": "Assignee saved.", "note": "Note added."}.get(
        request.args.get("done", ""), ""
    )
    return _detail(request, row, message=message)


def _referral_change(segment: str) -> Callable[[ChangeHandler], auth.Handler]:
    """A clinician's POST to /referrals/<reference>/<segment>: the handler gets the stored
    referral (404 when there is none)."""

    def decorate(handler: ChangeHandler) -> auth.Handler:
        @bp.post(f"/referrals/<reference>/{segment}")
        @auth.require("clinician")
        @functools.wraps(handler)
        async def route(request: Request, reference: str) -> HTTPResponse:
            return await handler(request, _referral_or_404(request.app.ctx.engine, reference))

        return route

    return decorate


def _changed(request: Request, row: Dict[str, Any], action: str, detail: str, done: str) -> HTTPResponse:
    """A change made: audited as ``referral_<action>``, then back to the referral with its notice."""
    auth.audit(request.app.ctx.engine, request.ctx.user, f"referral_{action}", "referral", row["reference"], detail)
    return redirect(f"/referrals/{path_quote(row['reference'])}?done={done}", status=303)


@_referral_change("status")
async def referral_status(request: Request, row: Dict[str, Any]) -> HTTPResponse:
    engine = request.app.ctx.engine
    target = request.form.get("status", "")
    # The form says which status it was shown with: a stale form cannot skip a step.
    current = request.form.get("from") or row["status"]
    if current != row["status"]:
        return _detail(request, row, status=409, error="The referral changed meanwhile; look at its status again.")
    try:
        set_status(engine, row["reference"], current, target)
    except TransitionError as exc:
        auth.audit(engine, request.ctx.user, "referral_status_refused", "referral", row["reference"],
                   f"{current}->{target if target in STATUSES else '?'}")
        return _detail(request, row, status=409, error=f"Not changed: {exc}.")
    return _changed(request, row, "status", f"{current}->{target}", "status")


@_referral_change("assign")
async def referral_assign(request: Request, row: Dict[str, Any]) -> HTTPResponse:
    engine = request.app.ctx.engine
    raw = (request.form.get("assignee") or "").strip()
    assignee: Optional[Dict[str, Any]] = None
    if raw:
        assignee = next((s for s in assignable_staff(engine) if str(s["id"]) == raw), None)
        if assignee is None:
            return _detail(request, row, status=400, error="Choose a clinician or an admin.")
    set_assignee(engine, row["reference"], assignee["id"] if assignee else None)
    return _changed(request, row, "assign", f"assignee={assignee['username'] if assignee else '-'}", "assign")


@_referral_change("notes")
async def referral_note(request: Request, row: Dict[str, Any]) -> HTTPResponse:
    text = (request.form.get("text") or "").strip()
    if not text:
        return _detail(request, row, status=400, error="A note cannot be empty.")
    if len(text) > MAX_NOTE_CHARS:
        return _detail(request, row, status=400, error=f"A note is at most {MAX_NOTE_CHARS} characters.")
    note_id = add_note(request.app.ctx.engine, row["reference"], request.ctx.user, text)
    return _changed(request, row, "note", f"note={note_id}", "note")
