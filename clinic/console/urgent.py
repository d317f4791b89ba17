"""The Urgent view: what a person must look at first (support staff and up), and the alerts.

An item is one of:

- an urgent **flag** of a conversation (``conversation_flags``: ``crisis`` or
  ``urgent_medical``, set by the safety layer's actions), whether or not the visitor left
  contact details;
- a **callback** asked after a crisis (``handoff_requests`` of kind ``callback``, or of before
  the live chat, that is urgent or whose reason is ``crisis``), until it is closed;
- a visitor **waiting** in the live queue (kind ``live``, status ``waiting``): it leaves the
  view when someone takes the chat (or it is closed, or the visitor leaves the queue), on
  the live chat page, where that is audited.

Oldest first. A flag or a callback stays until a staff member marks it handled with a note
(``urgent_handled``; audited as ``urgent_handled``, the note never in the audit log). A flag
marked handled is also marked reviewed, so the same visitor in danger again raises a new one
(``db.flag_once``).

Alerts (``static/alerts.js``, on every signed-in page): ``/urgent/alerts.json`` gives the open
items' keys and counts and whether it is staffed hours now (``clinic.rules.staffing``); a page that
sees a key it has not seen before (kept in the browser's storage, so moving between pages does
not alert again) plays a sound (which can be muted) and shows a desktop notification (the
browser's Notification API, asked once), in staffed hours; the count is in the tab title.
"""

import datetime as dt
from typing import Any, Dict, List, Optional, Tuple

from sanic import Blueprint, Request
from sanic.exceptions import NotFound
from sanic.response import HTTPResponse, json, redirect
from sqlalchemy import and_, insert, not_, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from clinic.rules import handoff, staffing
from clinic.console import auth
from clinic.console.handoffs import waiting as waited
from clinic.console.pages import render
from clinic.console.referrals_queue import path_quote
from clinic.storage.db import conversation_flags, handoff_requests, urgent_handled, utcnow

bp = Blueprint("console_urgent")

URGENT_FLAGS = ("crisis", "urgent_medical")
ITEM_TYPES = ("flag", "callback")
MAX_NOTE_CHARS = 1000
RECENT = 20
ALERT_POLL_MS = 1000
KIND_LABELS = {
    "crisis": "Crisis",
    "urgent_medical": "Urgent medical",
    "callback": "Callback after a crisis",
    "waiting": "Waiting for a person",
}

_handled = select(urgent_handled.c.item_id)
_OPEN_FLAGS = and_(
    conversation_flags.c.flag.in_(URGENT_FLAGS),
    conversation_flags.c.reviewed == False,  # noqa: E712 (SQL)
    not_(conversation_flags.c.id.in_(_handled.where(urgent_handled.c.item_type == "flag"))),
)
_OPEN_CALLBACKS = and_(
    or_(handoff_requests.c.kind == handoff.CALLBACK_KIND, handoff_requests.c.kind.is_(None)),
    or_(handoff_requests.c.urgent == True, handoff_requests.c.reason == "crisis"),  # noqa: E712
    handoff_requests.c.status != "closed",
    not_(handoff_requests.c.id.in_(_handled.where(urgent_handled.c.item_type == "callback"))),
)
_WAITING = and_(handoff_requests.c.kind == handoff.LIVE_KIND, handoff_requests.c.status == handoff.WAITING)


def open_items(engine: Engine, now: Optional[dt.datetime] = None) -> List[Dict[str, Any]]:
    """Every open item, oldest first: ``key`` (stable: "flag-3", "callback-7", "waiting-9"),
    ``type``, ``id``, ``kind``, ``conversation_id``, ``created_at``, ``urgent``, ``waited``."""
    now = now or utcnow()
    items: List[Dict[str, Any]] = []
    with engine.connect() as conn:
        for r in conn.execute(select(conversation_flags).where(_OPEN_FLAGS)):
            items.append({"type": "flag", "id": r.id, "kind": r.flag, "conversation_id": r.conversation_id,
                          "created_at": r.created_at, "urgent": True})
        for r in conn.execute(select(handoff_requests).where(_OPEN_CALLBACKS)):
            items.append({"type": "callback", "id": r.id, "kind": "callback", "conversation_id": r.conversation_id,
                          "created_at": r.created_at, "urgent": True, "status": r.status})
        for r in conn.execute(select(handoff_requests).where(_WAITING)):
            items.append({"type": "waiting", "id": r.id, "kind": "waiting", "conversation_id": r.conversation_id,
                          "created_at": r.created_at, "urgent": bool(r.urgent), "reason": r.reason})
    for item in items:
        item["key"] = f"{item['type']}-{item['id']}"
        item["waited"] = waited(item["created_at"], now)
    items.sort(key=lambda i: (i["created_at"], i["key"]))
    return items


class HandleError(ValueError):
    pass


def mark_handled(engine: Engine, item_type: str, item_id: int, user: Dict[str, Any], note: str) -> str:
    """Record that a flag or a callback was handled, with the staff member's note; returns its
    conversation. HandleError when the note is empty or too long, or the item is not open."""
    note = (note or "").strip()
    if not note:
        raise HandleError("a note saying what was done is needed")
    if len(note) > MAX_NOTE_CHARS:
        raise HandleError(f"a note is at most {MAX_NOTE_CHARS} characters")
    if item_type not in ITEM_TYPES:
        raise HandleError("no such item")
    table, where = (conversation_flags, _OPEN_FLAGS) if item_type == "flag" else (handoff_requests, _OPEN_CALLBACKS)
    try:
        with engine.begin() as conn:
            row = conn.execute(select(table.c.conversation_id).where(table.c.id == item_id, where)).first()
            if row is None:
                raise HandleError("it is not open any more (someone may have handled it just now)")
            conn.execute(insert(urgent_handled).values(
                item_type=item_type, item_id=item_id, conversation_id=row.conversation_id, handled_at=utcnow(),
                user_id=user.get("id"), username=user.get("username"), note=note,
            ))
            if item_type == "flag":
                conn.execute(update(conversation_flags).where(conversation_flags.c.id == item_id).values(reviewed=True))
    except IntegrityError:  # two people at once: the first one's note stands
        raise HandleError("it is not open any more (someone may have handled it just now)") from None
    return str(row.conversation_id)


def recently_handled(engine: Engine, limit: int = RECENT) -> List[Dict[str, Any]]:
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(
            select(urgent_handled).order_by(urgent_handled.c.handled_at.desc(), urgent_handled.c.id.desc()).limit(limit))]
        flag_ids = [r["item_id"] for r in rows if r["item_type"] == "flag"]
        kinds = {r.id: r.flag for r in conn.execute(
            select(conversation_flags.c.id, conversation_flags.c.flag).where(conversation_flags.c.id.in_(flag_ids)))}
    for r in rows:
        r["kind"] = kinds.get(r["item_id"], "crisis") if r["item_type"] == "flag" else "callback"
    return rows


def staffed_now() -> bool:
    try:
        return staffing.is_staffed(staffing.load_staffing())
    except (OSError, staffing.StaffingError):
        return False


def counts(items: List[Dict[str, Any]]) -> Tuple[int, int]:
    """(open items, of which visitors waiting for a person)."""
    return len(items), sum(1 for i in items if i["type"] == "waiting")


# --- pages ------------------------------------------------------------------------------


def _page(request: Request, status: int = 200, error: str = "", notice: str = "") -> HTTPResponse:
    engine = request.app.ctx.engine
    items = open_items(engine)
    return render(
        request, "urgent.html", status=status, items=items, handled=recently_handled(engine), labels=KIND_LABELS,
        q=path_quote, error=error, notice=notice, max_note=MAX_NOTE_CHARS, staffed=staffed_now(),
    )


@bp.get("/urgent")
@auth.require("support")
async def urgent_page(request: Request) -> HTTPResponse:
    return _page(request, notice="Marked handled." if request.args.get("done") == "handled" else "")


@bp.get("/urgent/alerts.json")
@auth.require("support")
async def urgent_alerts(request: Request) -> HTTPResponse:
    items = open_items(request.app.ctx.engine)
    total, waiting = counts(items)
    return json({
        "count": total, "waiting": waiting, "staffed": staffed_now(),
        "items": [{"key": i["key"], "kind": i["kind"]} for i in items],
    })


@bp.post("/urgent/<item_type:str>/<item_id:int>/handled")
@auth.require("support")
async def urgent_handled_post(request: Request, item_type: str, item_id: int) -> HTTPResponse:
    if item_type not in ITEM_TYPES:
        raise NotFound("No such urgent item")
    engine = request.app.ctx.engine
    user = request.ctx.user
    try:
        conversation_id = mark_handled(engine, item_type, item_id, user, request.form.get("note", ""))
    except HandleError as exc:
        return _page(request, status=409 if "not open" in str(exc) else 400,
                     error=f"Not marked handled: {exc}.")
    auth.audit(engine, user, "urgent_handled", item_type, str(item_id), f"conversation {conversation_id}")
    return redirect("/urgent?done=handled", status=303)
