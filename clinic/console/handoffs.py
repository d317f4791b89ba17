"""Callback requests (support staff and up) and the waitlist (clinicians and up).

A callback request is what a visitor leaves when they ask for a person outside
staffed hours (kind ``callback``: their name, phone or email and a best time to
call, stored encrypted), and what ``action_human_handoff`` recorded before the
live chat existed (kind NULL, no contact details). Support staff call people
back, so they see the contact details; every page that shows any is audited
(``view_contact``, target ``handoff_request``). Urgent requests come first,
then the longest waiting. Status moves ``new -> in_progress -> closed``; the
server refuses anything else. Staff note what they did on each request ("left a
voicemail"): the note is the conversation's (``conversation_notes``, shown on its
transcript too), audited as ``note_add``. Live chat requests (kind ``live``) are not here:
they are on /live (``clinic.console.live_chat``).

The waitlist holds visitors from states not served yet; their email address is
contact data, so the list is for clinicians and admins and every view of it is
audited (``view_contact``, target ``waitlist``).
"""

import datetime as dt
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import urlencode

from sanic import Blueprint, Request
from sanic.exceptions import NotFound
from sanic.response import HTTPResponse, redirect
from sqlalchemy import func, insert, or_, select, true, update
from sqlalchemy.engine import Engine

from clinic.storage import referrals as referral_store
from clinic.console import auth
from clinic.console.pages import page_arg, render
from clinic.console.referrals_queue import path_quote
from clinic.storage.crypto import DecryptionError, decrypt_json
from clinic.storage.db import conversation_notes, handoff_requests, utcnow, waitlist
from clinic.rules.handoff import CALLBACK_KIND

bp = Blueprint("console_handoffs")

STATUSES = ("new", "in_progress", "closed")
STATUS_LABELS = {"new": "New", "in_progress": "In progress", "closed": "Closed"}
TRANSITIONS: Dict[str, Tuple[str, ...]] = {"new": ("in_progress",), "in_progress": ("closed",), "closed": ()}
OPEN_STATUSES = ("new", "in_progress")
FILTERS = ("open", "all") + STATUSES
PAGE_SIZE = 50
WAITLIST_PAGE_SIZE = 200
MAX_NOTE_CHARS = 2000
NOTES_SHOWN = 5  # the latest notes of each request's conversation on the page
# Why a person was asked for (handoff_requests.reason), on this page and the live queue.
REASON_LABELS = {
    "visitor_request": "Visitor asked",
    "crisis": "Crisis",
    "fallback": "The assistant did not understand",
    "clinician_review": "Pre-screen: clinician review",
}
# A callback's contact details, in this order (anything else stored is shown after, by its key).
CONTACT_LABELS = {
    "name": "Name", "phone": "Phone", "email": "Email", "preferred_time": "Best time to call", "best_time": "Best time to call",
}
# The requests on this page: callbacks, and those of before the live chat (no kind).
IS_CALLBACK = or_(handoff_requests.c.kind == CALLBACK_KIND, handoff_requests.c.kind.is_(None))


def allowed(current: str, target: str) -> bool:
    return target in TRANSITIONS.get(current, ())


def waiting(created_at: dt.datetime, now: Optional[dt.datetime] = None) -> str:
    """How long since ``created_at``, e.g. "5 min", "3 h 20 min", "2 d 4 h"."""
    minutes = max(int(((now or utcnow()) - created_at).total_seconds() // 60), 0)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def requests(engine: Engine, status: str = "open", page: int = 1) -> Tuple[List[Dict[str, Any]], int]:
    """Callback requests (contact details still encrypted) of one page, and how many match."""
    if status == "open":
        where = handoff_requests.c.status.in_(OPEN_STATUSES)
    elif status in STATUSES:
        where = handoff_requests.c.status == status
    else:
        where = true()
    where = IS_CALLBACK & where
    query = (
        select(handoff_requests)
        .where(where)
        .order_by(handoff_requests.c.urgent.desc(), handoff_requests.c.created_at, handoff_requests.c.id)
        .limit(PAGE_SIZE)
        .offset((max(page, 1) - 1) * PAGE_SIZE)
    )
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(query)]
        total = conn.execute(select(func.count()).select_from(handoff_requests).where(where)).scalar() or 0
    return rows, int(total)


def contact_fields(contact: Any) -> List[Tuple[str, str]]:
    """A callback's decrypted contact details as (label, value) pairs, the known ones first."""
    if not isinstance(contact, dict):
        return []
    known = [(label, contact[key]) for key, label in CONTACT_LABELS.items() if contact.get(key)]
    other = [(str(key).replace("_", " ").capitalize(), value) for key, value in sorted(contact.items(), key=lambda kv: str(kv[0]))
             if key not in CONTACT_LABELS and value not in (None, "", True, False)]
    return [(label, str(value)) for label, value in known + other]


class TransitionError(ValueError):
    pass


def set_status(engine: Engine, request_id: int, current: str, target: str) -> None:
    if target not in STATUSES or not allowed(current, target):
        raise TransitionError(f"a request cannot go from {STATUS_LABELS.get(current, current)} to {STATUS_LABELS.get(target, 'that status')}")
    with engine.begin() as conn:
        done = conn.execute(
            update(handoff_requests)
            .where(handoff_requests.c.id == request_id, handoff_requests.c.status == current, IS_CALLBACK)
            .values(status=target, updated_at=utcnow())
        )
    if not done.rowcount:
        raise TransitionError("the request changed meanwhile; look at its status again")



def _page(request: Request, status_code: int = 200, error: str = "", message: str = "") -> HTTPResponse:
    status = request.args.get("status", "open")
    if status not in FILTERS:
        status = "open"
    page = page_arg(request.args.get("page"))
    ctx = request.app.ctx
    rows, total = requests(ctx.engine, status, page)
    pages = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    now = utcnow()
    shown = failed = 0
    for row in rows:
        row["waiting"] = waiting(row["created_at"], now) if row["status"] != "closed" else None
        row["next"] = TRANSITIONS.get(row["status"], ())
        sealed = row.pop("contact_encrypted", None)
        row["contact"], row["contact_failed"] = [], False
        if sealed:
            try:
                row["contact"] = contact_fields(decrypt_json(ctx.settings.encryption_key, sealed))
                shown += 1
            except (DecryptionError, ValueError):
                row["contact_failed"] = True
                failed += 1
    notes = notes_for(ctx.engine, [row["conversation_id"] for row in rows])
    for row in rows:
        row["notes"] = notes.get(row["conversation_id"], [])
    if shown or failed:
        detail = f"{shown} callback{'s' if shown != 1 else ''}" + (f", {failed} could not be decrypted" if failed else "")
        auth.audit(ctx.engine, request.ctx.user, "view_contact", "handoff_request", f"page {page}", detail)
    return render(
        request, "handoffs.html", status=status_code, rows=rows, total=total, filter=status, filters=FILTERS,
        labels=STATUS_LABELS, reasons=REASON_LABELS, page=page, pages=pages, q=path_quote, error=error, message=message,
        max_note=MAX_NOTE_CHARS,
        prev_url=f"/handoffs?{urlencode({'status': status, 'page': page - 1})}" if page > 1 else None,
        next_url=f"/handoffs?{urlencode({'status': status, 'page': page + 1})}" if page < pages else None,
    )


def notes_for(engine: Engine, conversation_ids: List[str]) -> Dict[str, List[Dict[str, Any]]]:
    """The latest notes of each conversation, newest first."""
    found: Dict[str, List[Dict[str, Any]]] = {}
    if not conversation_ids:
        return found
    with engine.connect() as conn:
        for r in conn.execute(
            select(conversation_notes).where(conversation_notes.c.conversation_id.in_(set(conversation_ids)))
            .order_by(conversation_notes.c.created_at.desc(), conversation_notes.c.id.desc())
        ):
            kept = found.setdefault(r.conversation_id, [])
            if len(kept) < NOTES_SHOWN:
                kept.append(dict(r._mapping))
    return found


@bp.get("/handoffs")
@auth.require("support")
async def handoff_list(request: Request) -> HTTPResponse:
    done = request.args.get("done")
    message = {"status": "Status changed.", "note": "Note added."}.get(done or "", "")
    return _page(request, message=message)


@bp.post("/handoffs/<request_id:int>/notes")
@auth.require("support")
async def handoff_note(request: Request, request_id: int) -> HTTPResponse:
    engine = request.app.ctx.engine
    with engine.connect() as conn:
        row = conn.execute(select(handoff_requests).where(handoff_requests.c.id == request_id, IS_CALLBACK)).first()
    if row is None:
        raise NotFound("No such callback request")
    body = (request.form.get("body") or "").strip()
    if not body or len(body) > MAX_NOTE_CHARS:
        return _page(request, status_code=400, error=f"Note not added to request {request_id}: a note is 1 to {MAX_NOTE_CHARS} characters.")
    user = request.ctx.user
    with engine.begin() as conn:
        note_id = conn.execute(insert(conversation_notes).values(
            conversation_id=row.conversation_id, author_id=user["id"], author=user["username"], created_at=utcnow(),
            body=body)).inserted_primary_key[0]
    auth.audit(engine, user, "note_add", "conversation", row.conversation_id, f"note={note_id} callback {request_id}")
    back = request.form.get("filter", "open")
    return redirect(f"/handoffs?{urlencode({'status': back if back in FILTERS else 'open', 'done': 'note'})}", status=303)


@bp.post("/handoffs/<request_id:int>/status")
@auth.require("support")
async def handoff_status(request: Request, request_id: int) -> HTTPResponse:
    engine = request.app.ctx.engine
    with engine.connect() as conn:
        row = conn.execute(select(handoff_requests).where(handoff_requests.c.id == request_id, IS_CALLBACK)).first()
    if row is None:
        raise NotFound("No such callback request")
    target = request.form.get("status", "")
    current = request.form.get("from") or row.status
    try:
        if current != row.status:
            raise TransitionError("the request changed meanwhile; look at its status again")
        set_status(engine, request_id, current, target)
    except TransitionError as exc:
        auth.audit(engine, request.ctx.user, "handoff_status_refused", "handoff_request", str(request_id),
                   f"{current}->{target if target in STATUSES else '?'}")
        return _page(request, status_code=409, error=f"Request {request_id} not changed: {exc}.")
    auth.audit(engine, request.ctx.user, "handoff_status", "handoff_request", str(request_id), f"{current}->{target}")
    back = request.form.get("filter", "open")
    return redirect(f"/handoffs?{urlencode({'status': back if back in FILTERS else 'open', 'done': 'status'})}", status=303)


@bp.get("/waitlist")
@auth.require("clinician")
async def waitlist_page(request: Request) -> HTTPResponse:
    ctx = request.app.ctx
    page = page_arg(request.args.get("page"))
    with ctx.engine.connect() as conn:
        by_state = [
            dict(r._mapping)
            for r in conn.execute(
                select(waitlist.c.state, func.count().label("n")).group_by(waitlist.c.state).order_by(func.count().desc(), waitlist.c.state)
            )
        ]
        rows = [
            dict(r._mapping)
            for r in conn.execute(
                select(waitlist).order_by(waitlist.c.created_at.desc(), waitlist.c.id.desc())
                .limit(WAITLIST_PAGE_SIZE).offset((page - 1) * WAITLIST_PAGE_SIZE)
            )
        ]
    total = sum(s["n"] for s in by_state)
    entries = []
    failed = 0
    for row in rows:
        try:
            entries.append(referral_store.decrypt_waitlist_entry(row, ctx.settings.encryption_key))
        except DecryptionError:
            failed += 1
            entries.append({**{k: v for k, v in row.items() if k != "contact_encrypted"}, "contact": None})
    auth.audit(ctx.engine, request.ctx.user, "view_contact", "waitlist", f"page {page}", f"{len(entries)} entries")
    pages = max((total + WAITLIST_PAGE_SIZE - 1) // WAITLIST_PAGE_SIZE, 1)
    return render(
        request, "waitlist.html", entries=entries, by_state=by_state, total=total, failed=failed, q=path_quote,
        page=page, pages=pages,
        prev_url=f"/waitlist?page={page - 1}" if page > 1 else None,
        next_url=f"/waitlist?page={page + 1}" if page < pages else None,
    )
