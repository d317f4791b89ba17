"""The live chat, staff side: the queue (/live), taking a chat, replying, handing back, closing.

Support staff and up see the queue and any live chat's transcript; the person
who holds a chat (or an admin) replies, hands it back to the assistant, closes
it or returns it to the queue; anyone on the staff may close a request still
waiting that nobody can take. The state lives in the clinic DB
(``clinic.rules.handoff``: one compare-and-set per change, so of two people taking
one chat at once one wins); what the visitor sees goes into the assistant's
tracker through Rasa's HTTP API (``app.ctx.rasa``):

- take: ``change(claim)`` then ``joined_events`` (the assistant pauses); when
  Rasa cannot be reached the request goes back to the queue (``release``).
- reply: a ``staff_message_event`` then ``touch`` (wakes the visitor's widget).
- hand back, close, return to the queue: first the events (the assistant
  resumes and says so), then the change. Rasa first because the change is
  final: if Rasa cannot be reached the chat stays live and in the same hands,
  never "handed back" on a tracker that stays paused.
- close a waiting request: ``change(close)`` then ``closed_waiting_events``
  (the clinic's phone, email and hours).

The pages refresh themselves (``static/live.js``): the queue from
``/live/queue.json`` every 2 s, a chat from ``/live/<id>/events.json`` every
second (the transcript is read from Rasa's tracker store, as the transcript
page reads it: cheap when nothing changed). Both work without script too.

Every take, reply (never its text), hand back, close and return to the queue is
audited, and so is opening a chat (``view_transcript``); the polls that keep an
open page current are not. Visitor text goes to no log.
"""

import datetime as dt
import logging
from typing import Any, Dict, List, Optional

from sanic import Blueprint, Request
from sanic.exceptions import NotFound
from sanic.response import HTTPResponse, json, redirect
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from clinic.rules import handoff
from clinic.console import auth, canned_replies, conversation_index as index
from clinic.console.conversations import build_transcript, can_see_answers, path_quote
from clinic.console.handoffs import REASON_LABELS, waiting as waited_long
from clinic.console.pages import render, render_fragment
from clinic.storage.db import handoff_requests, utcnow
from clinic.rasa_runtime.rasa_client import RasaUnavailable

log = logging.getLogger(__name__)

bp = Blueprint("console_live_chat")

MAX_REPLY_CHARS = 2000
QUEUE_POLL_MS = 2000
CHAT_POLL_MS = 1000

RASA_DOWN = "the assistant's server (Rasa) could not be reached"
NOTICES = {
    "handed_back": "You handed the chat back to the assistant.",
    "closed": "You closed the chat.",
    "released": "The chat is back in the queue.",
    "closed_waiting": "The request is closed; the visitor was given the clinic's phone number and email address.",
    "closed_unsent": (
        f"The request is closed, but {RASA_DOWN}, so the visitor was not told by a message "
        "(their chat window shows they are no longer waiting)."
    ),
}
CRISIS_STEPS = (
    "If they may be in danger now, ask where they are and tell them to call 911 (or call 911 yourself).",
    "For thoughts of suicide or self-harm: the 988 Suicide & Crisis Lifeline (call or text 988), "
    "or text HOME to 741741. Stay with them in the chat until they have reached help.",
)


# --- reading --------------------------------------------------------------------


def waiting_count(engine: Engine) -> int:
    """Visitors waiting for a person now (the number in the console's menu)."""
    with engine.connect() as conn:
        return int(conn.execute(
            select(func.count()).select_from(handoff_requests)
            .where(handoff_requests.c.kind == handoff.LIVE_KIND, handoff_requests.c.status == handoff.WAITING)
        ).scalar() or 0)


def elapsed(since: Optional[dt.datetime], now: Optional[dt.datetime] = None) -> str:
    """ "40 s", "3 min", "2 h 5 min"...: a wait in a live queue counts in seconds at first."""
    if since is None:
        return ""
    seconds = max(int(((now or utcnow()) - since).total_seconds()), 0)
    return f"{seconds} s" if seconds < 60 else waited_long(since, now)


def queue_view(engine: Engine) -> Dict[str, Any]:
    """The waiting requests (urgent first, then the longest waiting) and the chats held now."""
    now = utcnow()
    waiting = handoff.queue(engine)
    for position, row in enumerate(waiting, 1):
        row["position"] = position
        row["waited"] = elapsed(row["created_at"], now)
    held = handoff.live_chats(engine)
    for row in held:
        row["held_for"] = elapsed(row["claimed_at"], now)
    return {"waiting": waiting, "held": held, "urgent_waiting": any(r["urgent"] for r in waiting)}


def last_event_id(tracker: Engine, conversation_id: str) -> int:
    """The newest tracker event of a conversation (0 when none): one indexed query per poll."""
    try:
        with tracker.connect() as conn:
            found = conn.execute(
                text("SELECT MAX(id) FROM events WHERE sender_id = :cid"), {"cid": conversation_id}
            ).scalar()
    except SQLAlchemyError:  # no events table yet
        return 0
    return int(found or 0)


def may_act(user: Dict[str, Any], row: Dict[str, Any]) -> bool:
    """Whether this staff member may speak in (and end) a live chat: its holder, or an admin."""
    return row["status"] == handoff.LIVE and (row["staff_id"] == user["id"] or user["role"] == "admin")


def _live_row(request: Request, request_id: int) -> Dict[str, Any]:
    row = handoff.get(request.app.ctx.engine, request_id)
    if row is None or row["kind"] != handoff.LIVE_KIND:
        raise NotFound("No such live chat")
    return row


def _wants_json(request: Request) -> bool:
    return "application/json" in (request.headers.get("accept") or "")


def _chat_context(request: Request, row: Dict[str, Any]) -> Dict[str, Any]:
    user = request.ctx.user
    engine = request.app.ctx.engine
    return {
        "r": row, "labels": handoff.STATUS_LABELS, "reasons": REASON_LABELS, "crisis_steps": CRISIS_STEPS,
        "can_reply": may_act(user, row), "is_holder": row["staff_id"] == user["id"],
        "position": handoff.position(engine, row), "held_for": elapsed(row["claimed_at"]),
        "waited": elapsed(row["created_at"]), "ended": row["status"] not in handoff.ACTIVE,
        "my_name": auth.visible_name(user), "q": path_quote,
    }


def _chat_page(request: Request, row: Dict[str, Any], status: int = 200, error: str = "", notice: str = "",
               draft: str = "") -> HTTPResponse:
    ctx = request.app.ctx
    events = index.conversation_events(ctx.tracker, row["conversation_id"])
    t = build_transcript(events, can_see_answers(request.ctx.user))
    after = max((int(e[0]) for e in events), default=0)
    return render(
        request, "live_chat.html", status=status, t=t, after=after, error=error, notice=notice, draft=draft,
        max_reply=MAX_REPLY_CHARS, poll_ms=CHAT_POLL_MS, canned=canned_replies.load(ctx.settings.settings_dir),
        **_chat_context(request, row),
    )


def _queue_page(request: Request, status: int = 200, error: str = "", notice: str = "") -> HTTPResponse:
    return render(
        request, "live_queue.html", status=status, error=error, notice=notice, poll_ms=QUEUE_POLL_MS,
        reasons=REASON_LABELS, crisis_steps=CRISIS_STEPS, **queue_view(request.app.ctx.engine),
    )


def _refused(request: Request, row: Dict[str, Any], status: int, error: str) -> HTTPResponse:
    if _wants_json(request):
        return json({"ok": False, "error": error, "state": row["status"]}, status=status)
    return _chat_page(request, row, status=status, error=error)


def _state_now(row: Dict[str, Any]) -> str:
    return f"the chat is {handoff.STATUS_LABELS.get(row['status'], row['status']).lower()} now"


# --- the queue ------------------------------------------------------------------


@bp.get("/live")
@auth.require("support")
async def live_queue(request: Request) -> HTTPResponse:
    return _queue_page(request, notice=NOTICES.get(request.args.get("done", ""), ""))


@bp.get("/live/queue.json")
@auth.require("support")
async def live_queue_json(request: Request) -> HTTPResponse:
    view = queue_view(request.app.ctx.engine)
    fragment = render_fragment(request, "_live_queue.html", reasons=REASON_LABELS, crisis_steps=CRISIS_STEPS, **view)
    return json({
        "count": len(view["waiting"]),
        "waiting": [{"id": r["id"], "position": r["position"], "urgent": bool(r["urgent"])} for r in view["waiting"]],
        "held": [{"id": r["id"], "staff_name": r["staff_name"]} for r in view["held"]],
        "html": fragment,
    })


@bp.post("/live/<request_id:int>/claim")
@auth.require("support")
async def live_claim(request: Request, request_id: int) -> HTTPResponse:
    ctx = request.app.ctx
    user = request.ctx.user
    row = _live_row(request, request_id)
    name = auth.visible_name(user)
    if row["status"] == handoff.LIVE and row["staff_id"] == user["id"]:
        return redirect(f"/live/{request_id}", status=303)  # a second click on one's own claim
    try:
        row = handoff.change(ctx.engine, request_id, "claim", handoff.WAITING, user["id"], name)
    except handoff.HandoffError:
        row = handoff.get(ctx.engine, request_id) or row
        auth.audit(ctx.engine, user, "live_claim_refused", "handoff_request", str(request_id), row["status"])
        if row["status"] == handoff.LIVE:
            error = f"someone else took this chat just before you: {row['staff_name']} is answering the visitor now."
        else:
            error = f"{_state_now(row)}, nobody can take it."
        return _queue_page(request, status=409, error=f"Chat {request_id} not taken: {error}")
    try:
        await ctx.rasa.append_events(row["conversation_id"], handoff.joined_events(user["id"], name, ctx.settings.clinic.name))
    except RasaUnavailable as exc:
        log.warning("live chat %s: claim not sent to Rasa (%s); back in the queue", request_id, type(exc).__name__)
        try:
            handoff.change(ctx.engine, request_id, "release", handoff.LIVE)
        except handoff.HandoffError:
            pass
        auth.audit(ctx.engine, user, "live_claim_failed", "handoff_request", str(request_id), type(exc).__name__)
        return _queue_page(
            request, status=503,
            error=f"Chat {request_id} not taken: {RASA_DOWN}, so the visitor would not have seen you join. "
                  "The request is back in the queue; try again in a moment.",
        )
    auth.audit(ctx.engine, user, "live_claim", "handoff_request", str(request_id), f"conversation {row['conversation_id']}")
    return redirect(f"/live/{request_id}", status=303)


# --- one chat -------------------------------------------------------------------


@bp.get("/live/<request_id:int>")
@auth.require("support")
async def live_chat(request: Request, request_id: int) -> HTTPResponse:
    row = _live_row(request, request_id)
    auth.audit(request.app.ctx.engine, request.ctx.user, "view_transcript", "conversation", row["conversation_id"],
               f"live chat {request_id}")
    return _chat_page(request, row, notice=NOTICES.get(request.args.get("done", ""), ""))


@bp.get("/live/<request_id:int>/events.json")
@auth.require("support")
async def live_chat_events(request: Request, request_id: int) -> HTTPResponse:
    """What changed since the page's last event (``after``, a tracker event id) and version (``v``)."""
    ctx = request.app.ctx
    row = _live_row(request, request_id)
    try:
        after = max(int(request.args.get("after", "0")), 0)
    except ValueError:
        after = 0
    top = last_event_id(ctx.tracker, row["conversation_id"])
    messages: List[Dict[str, Any]] = []
    if top > after:
        events = index.conversation_events(ctx.tracker, row["conversation_id"])
        t = build_transcript(events, can_see_answers(request.ctx.user))
        messages = [m for m in t["messages"] if m["id"] > after]
    changed = request.args.get("v") != str(row["version"])
    context = _chat_context(request, row)
    return json({
        "state": row["status"], "holder": row["staff_name"], "version": row["version"], "urgent": bool(row["urgent"]),
        "can_reply": context["can_reply"], "after": max(top, after), "count": waiting_count(ctx.engine),
        "messages": [{"id": m["id"], "speaker": m["speaker"]} for m in messages],
        "messages_html": render_fragment(request, "_messages.html", messages=messages, nlu=False) if messages else "",
        "panel_html": render_fragment(request, "_live_panel.html", **context) if changed else None,
    })


@bp.post("/live/<request_id:int>/messages")
@auth.require("support")
async def live_reply(request: Request, request_id: int) -> HTTPResponse:
    ctx = request.app.ctx
    user = request.ctx.user
    row = _live_row(request, request_id)
    reply = (request.form.get("text") or "").strip()
    if row["status"] != handoff.LIVE:
        return _refused(request, row, 409, f"Not sent: {_state_now(row)}.")
    if not may_act(user, row):
        return _refused(request, row, 403, f"Not sent: {row['staff_name']} holds this chat; only they or an admin can reply.")
    if not 1 <= len(reply) <= MAX_REPLY_CHARS:
        error = f"Not sent: a reply is 1 to {MAX_REPLY_CHARS} characters."
        if _wants_json(request):
            return json({"ok": False, "error": error, "state": row["status"]}, status=400)
        return _chat_page(request, row, status=400, error=error, draft=reply[:MAX_REPLY_CHARS * 2])
    try:
        await ctx.rasa.append_events(
            row["conversation_id"], [handoff.staff_message_event(user["id"], auth.visible_name(user), reply)]
        )
    except RasaUnavailable as exc:
        log.warning("live chat %s: reply not sent to Rasa (%s)", request_id, type(exc).__name__)
        error = f"Not sent: {RASA_DOWN}. Try again in a moment."
        if _wants_json(request):
            return json({"ok": False, "error": error, "state": row["status"]}, status=503)
        return _chat_page(request, row, status=503, error=error, draft=reply)
    handoff.touch(ctx.engine, request_id)
    auth.audit(ctx.engine, user, "live_message", "handoff_request", str(request_id), f"conversation {row['conversation_id']}")
    if _wants_json(request):
        return json({"ok": True})
    return redirect(f"/live/{request_id}#reply", status=303)


async def _let_go(request: Request, request_id: int, event: str) -> HTTPResponse:
    """Hand back, close or return to the queue a live chat (the events first, then the change)."""
    ctx = request.app.ctx
    user = request.ctx.user
    row = _live_row(request, request_id)
    what = {"hand_back": "handed back", "close": "closed", "release": "returned to the queue"}[event]
    if row["status"] != handoff.LIVE:
        return _refused(request, row, 409, f"Not {what}: {_state_now(row)}.")
    if not may_act(user, row):
        return _refused(request, row, 403, f"Not {what}: {row['staff_name']} holds this chat; only they or an admin can do that.")
    name = auth.visible_name(user)
    events = handoff.released_events(name) if event == "release" else handoff.resumed_events(name, closed=event == "close")
    try:
        await ctx.rasa.append_events(row["conversation_id"], events)
    except RasaUnavailable as exc:
        log.warning("live chat %s: %s not sent to Rasa (%s)", request_id, event, type(exc).__name__)
        return _refused(request, row, 503, f"Not {what}: {RASA_DOWN}. The chat is still live and still yours; try again in a moment.")
    try:
        handoff.change(ctx.engine, request_id, event, handoff.LIVE)
    except handoff.HandoffError:
        row = handoff.get(ctx.engine, request_id) or row
        return _refused(request, row, 409, f"The chat changed meanwhile: {_state_now(row)}.")
    auth.audit(ctx.engine, user, f"live_{event}", "handoff_request", str(request_id), f"conversation {row['conversation_id']}")
    done = {"hand_back": "handed_back", "close": "closed", "release": "released"}[event]
    return redirect(f"/live?done={done}", status=303)


@bp.post("/live/<request_id:int>/hand_back")
@auth.require("support")
async def live_hand_back(request: Request, request_id: int) -> HTTPResponse:
    return await _let_go(request, request_id, "hand_back")


@bp.post("/live/<request_id:int>/release")
@auth.require("support")
async def live_release(request: Request, request_id: int) -> HTTPResponse:
    return await _let_go(request, request_id, "release")


@bp.post("/live/<request_id:int>/close")
@auth.require("support")
async def live_close(request: Request, request_id: int) -> HTTPResponse:
    ctx = request.app.ctx
    row = _live_row(request, request_id)
    if row["status"] != handoff.WAITING:
        return await _let_go(request, request_id, "close")
    try:  # a request nobody can take: anyone on the staff may close it
        row = handoff.change(ctx.engine, request_id, "close", handoff.WAITING)
    except handoff.HandoffError:
        row = handoff.get(ctx.engine, request_id) or row
        return _refused(request, row, 409, f"Not closed: the request changed meanwhile ({_state_now(row)}).")
    clinic = ctx.settings.clinic
    done = "closed_waiting"
    try:
        await ctx.rasa.append_events(
            row["conversation_id"], handoff.closed_waiting_events(clinic.phone, clinic.email, clinic.support_hours)
        )
    except RasaUnavailable as exc:
        log.warning("live chat %s: close of a waiting request not sent to Rasa (%s)", request_id, type(exc).__name__)
        done = "closed_unsent"
    auth.audit(ctx.engine, request.ctx.user, "live_close", "handoff_request", str(request_id),
               f"conversation {row['conversation_id']} (waiting{'; visitor not told' if done == 'closed_unsent' else ''})")
    return redirect(f"/live?done={done}", status=303)
