"""Console pages: the conversation list, a transcript, tags, notes, reviewed, export and deletion.

Roles: support and up see the list and transcripts and can tag, note and mark
reviewed; the pre-screen's answers are health data, so only clinicians and up
see them (support sees that a pre-screen happened and its outcome; every
message that filled a form slot, however it was typed (``clinic.rules.form_answers``:
the tracker's events say so), and the bot's replies that quote those answers,
are withheld from support). Export is for clinicians and
up for the same reason; deletion is for admins. Every transcript view, export
and deletion is audited (never with visitor text in the detail).

A live chat is in the transcript too: a staff member's messages are bot events
with ``metadata.staff`` (speaker ``staff``, with their name), and the steps of
the handoff (joined, handed back, closed...) bot events with
``metadata.handoff`` (speaker ``notice``).
"""

import csv
import datetime as dt
import io
import json
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import quote, urlencode

from sanic import Blueprint, Request
from sanic.exceptions import NotFound
from sanic.response import HTTPResponse, redirect
from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from clinic.rules import form_answers, retried_messages
from clinic.storage import referrals as referral_store
from clinic.console import auth, clock, conversation_index as index
from clinic.console.pages import render
from clinic.storage.crypto import DecryptionError, decrypt_json
from clinic.storage.db import conversation_index, conversation_notes, conversation_tags, referrals, utcnow
from clinic.rules.eligibility import QUESTIONS, is_valid_answer

bp = Blueprint("console_conversations")

EXPORT_MAX = 2000  # conversations in one export of a filtered set
MAX_NOTE_CHARS = 2000
TRANSCRIPT_MAX_EVENTS = 20_000

# Slots whose values anyone on the staff may see (the rest hold answers or contact details).
PUBLIC_SLOTS = frozenset({
    "requested_slot", "prescreen_outcome", "crisis_flagged", "prescreen_misses", "clinic_name", "clinic_phone",
    "clinic_email", "clinic_website", "clinic_hours", "clinic_states", "min_age", "retention_period",
})
# Bot replies that quote a visitor's answers, reasons, state or name, or that are only said after a
# given answer (the follow-ups of a "yes" to thoughts of ending one's life, the support lines).
SENSITIVE_UTTERANCES = frozenset({
    "utter_prescreen_clinician_review", "utter_prescreen_not_eligible", "utter_prescreen_out_of_area",
    "utter_prescreen_urgent_review", "utter_referral_done", "utter_prescreen_thoughts_follow_up",
    "utter_ask_suicide_plan", "utter_ask_suicide_attempt", "utter_prescreen_passive_thoughts",
    "utter_prescreen_safety_first", "utter_prescreen_perinatal_support", "utter_prescreen_substance_support",
}) | form_answers.responses_quoting_answers()
# The pre-screen's progress line ("Question 4 of 18", actions/prescreen_form.py): its total tells
# whether the follow-ups were asked, so support sees the questions without it.
PROGRESS_LINE = re.compile(r"\AQuestion \d+ of \d+\n")
ANSWER_LABELS = {
    "age": "Age",
    "state": "State",
    "concern": "Main concern",
    "treatments_tried": "Treatments tried",
    "phq2_interest": "PHQ-2: little interest or pleasure",
    "phq2_mood": "PHQ-2: down, depressed or hopeless",
    "gad2_nervous": "GAD-2: nervous, anxious or on edge",
    "gad2_worry": "GAD-2: can't stop or control worrying",
    "suicidal_thoughts": "Thoughts of ending their life (past month)",
    "suicide_plan": "A plan or intention to act on them",
    "suicide_attempt": "An attempt in the past year",
    "pregnant_or_breastfeeding": "Pregnant or breastfeeding",
    "psychosis_history": "History of psychosis or mania",
    "cardiovascular": "Blood pressure, heart or vessel condition",
    "medications": "Benzodiazepine, lamotrigine, MAOI, stimulant, opioid or sedative",
    "medical_conditions": "Brain, eye, liver, seizure, thyroid, bladder condition, bipolar II, family psychosis or past ketamine reaction",
    "substance_use": "Alcohol or drug problems (past year) or non-medical dissociative use",
    "support_person": "Sober support person during sessions",
}
# How the answers to substance_use read.
SUBSTANCE_WORDS = {"current": "Yes, still now", "past": "Yes, not now", "no": "No", "unsure": "Not sure"}
FREQUENCY_WORDS = {0: "Not at all (0)", 1: "Several days (1)", 2: "More than half the days (2)", 3: "Nearly every day (3)"}
OUTCOME_LABELS = {
    "eligible": "Eligible", "clinician_review": "Clinician review", "not_eligible": "Not eligible",
    "out_of_area": "Out of area", "crisis": "Crisis",
}
CSV_COLUMNS = (
    "conversation_id", "time_utc", "speaker", "text", "intent", "faq_topic", "confidence",
    "outcome", "referred", "crisis", "handoff", "fallback", "reviewed", "tags", "staff_name",
)


def path_quote(value: str) -> str:
    return quote(str(value), safe="")


def when(ts: Optional[float]) -> str:
    """A tracker time as the console shows it: in the clinic's time zone (clinic.console.clock)."""
    return clock.local(ts, seconds=True)


def iso(ts: Optional[float]) -> Optional[str]:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(float(ts), dt.timezone.utc).isoformat().replace("+00:00", "Z")


def can_see_answers(user: Mapping[str, Any]) -> bool:
    return auth.RANK[user["role"]] >= auth.RANK["clinician"]


# --- a transcript from tracker events ------------------------------------------------


def answer_summary(answers: Dict[str, Any]) -> Tuple[List[Dict[str, Any]], Dict[str, int]]:
    """The pre-screen answers with their labels, and the PHQ-2 / GAD-2 totals."""
    given = {q: v for q, v in answers.items() if v is not None}
    summary = [
        {"name": q, "label": ANSWER_LABELS.get(q, q), "value": _answer_text(q, given[q])}
        for q in QUESTIONS if q in given
    ]
    scores = {}
    if all(k in given for k in ("phq2_interest", "phq2_mood")):
        scores["PHQ-2 score"] = int(given["phq2_interest"]) + int(given["phq2_mood"])
    if all(k in given for k in ("gad2_nervous", "gad2_worry")):
        scores["GAD-2 score"] = int(given["gad2_nervous"]) + int(given["gad2_worry"])
    return summary, scores


def _answer_text(name: str, value: Any) -> str:
    if name.startswith(("phq2_", "gad2_")) and isinstance(value, int) and value in FREQUENCY_WORDS:
        return FREQUENCY_WORDS[value]
    if name == "substance_use" and value in SUBSTANCE_WORDS:
        return SUBSTANCE_WORDS[value]
    if isinstance(value, str):
        return {"yes": "Yes", "no": "No", "unsure": "Not sure"}.get(value, value)
    return str(value)


def speaker_of(metadata: Mapping[str, Any]) -> Tuple[str, Optional[str], Optional[str]]:
    """Who a bot event speaks for: ``("staff", name, None)`` for a staff member's message in a live
    chat (``metadata.staff``), ``("notice", name or None, step)`` for a step of the handoff (joined,
    handed back, closed...; ``metadata.handoff``), else ``("bot", None, None)``."""
    staff = metadata.get("staff") if isinstance(metadata.get("staff"), dict) else {}
    name = staff.get("name") if isinstance(staff.get("name"), str) else None
    step = metadata.get("handoff") if isinstance(metadata.get("handoff"), str) else None
    if step:
        return "notice", name, step
    if staff:
        return "staff", name or "staff", None
    return "bot", None, None


def _steps(events: Sequence[Any], loaded: Sequence[Optional[Dict[str, Any]]]) -> List[retried_messages.Step]:
    """The events as ``clinic.rules.retried_messages`` reads them (visitor messages and replies)."""
    steps: List[retried_messages.Step] = []
    for e, d in zip(events, loaded):
        if e[2] == "user":
            steps.append((retried_messages.USER, retried_messages.message_id_of((d or {}).get("metadata"))))
        elif e[2] == "bot" and ((d or {}).get("text") or ((d or {}).get("data") or {}).get("buttons")):
            steps.append((retried_messages.REPLY, None))
        else:
            steps.append(("", None))
    return steps


def _as_event(row: Sequence[Any]) -> Dict[str, Any]:
    """A tracker row as much of its event as ``clinic.rules.form_answers`` reads."""
    if row[2] == "user":
        d = index._loads(row[6])
        return {"event": "user", "parse_data": {"intent": {"name": index.intent_of(d) or row[4]}}}
    if row[2] in ("slot", "active_loop"):
        d = index._loads(row[6])
        return {"event": row[2], "name": d.get("name", row[5]), "value": d.get("value")}
    return {"event": row[2]}


def build_transcript(events: Sequence[Any], answers_visible: bool) -> Dict[str, Any]:
    """Messages, timeline and pre-screen summary of one conversation's events.

    ``answers_visible`` False (support): messages that filled a form slot
    (``clinic.rules.form_answers``), slot values that hold answers or contact details,
    and bot replies quoting them are withheld (``masked``)."""
    messages: List[Dict[str, Any]] = []
    timeline: List[Dict[str, Any]] = []
    answers: Dict[str, Any] = {}
    outcome: Optional[str] = None
    reference: Optional[str] = None
    prescreen = False
    active_form: Optional[str] = None
    shown_events = events[:TRANSCRIPT_MAX_EVENTS]
    loaded = [index._loads(e[6]) if e[2] in ("user", "bot") else None for e in shown_events]
    retried = retried_messages.superseded(_steps(shown_events, loaded))
    filled = form_answers.answered_messages([_as_event(e) for e in shown_events])
    for position, e in enumerate(shown_events):
        event_id, _sender, type_name, ts, intent_col, action_col, data = e[:7]
        if type_name == "user_featurization":
            continue
        d = loaded[position] if loaded[position] is not None else index._loads(data)
        item: Dict[str, Any] = {"id": event_id, "time": when(ts), "type": type_name, "name": "", "detail": "", "masked": False}
        if type_name == "user" and position in retried:
            # sent again with the same message id once the assistant could answer: shown once, there
            item.update(name=index.intent_of(d) or intent_col or "", detail="unanswered; retried")
        elif type_name == "user":
            parse = d.get("parse_data") or {}
            intent = index.intent_of(d) or intent_col
            confidence = (parse.get("intent") or {}).get("confidence")
            topic = None
            if intent == "faq":
                topic = (((parse.get("response_selector") or {}).get("faq") or {}).get("response") or {}).get("intent_response_key")
            shown = index.visitor_text_of(d)
            # a button's title, or a bare '/intent' payload (a button press too: never a typed question)
            button = bool((d.get("metadata") or {}).get("display")) or str(d.get("text") or "").startswith("/")
            if not shown:
                shown = d.get("text") if isinstance(d.get("text"), str) else ""
            masked = not answers_visible and filled[position]
            messages.append({
                "id": event_id, "speaker": "visitor", "time": when(ts), "ts": ts, "text": "" if masked else shown, "masked": masked,
                "button": button, "intent": intent, "confidence": confidence if isinstance(confidence, (int, float)) else None,
                "topic": topic if isinstance(topic, str) else None, "form": active_form,
                "form_answer": bool(filled[position]),
            })
            item.update(name=intent or "", detail=f"confidence {confidence:.2f}" if isinstance(confidence, (int, float)) else "")
        elif type_name == "bot":
            metadata = d.get("metadata") or {}
            utter = metadata.get("utter_action") or ""
            masked = not answers_visible and utter in SENSITIVE_UTTERANCES
            buttons = [b.get("title") for b in ((d.get("data") or {}).get("buttons") or []) if isinstance(b, dict) and b.get("title")]
            speaker, staff_name, step = speaker_of(metadata)
            text = d.get("text") or ""
            if not answers_visible and utter.startswith("utter_ask_"):
                text = PROGRESS_LINE.sub("", text)
            messages.append({
                "id": event_id, "speaker": speaker, "staff_name": staff_name, "handoff": step,
                "time": when(ts), "ts": ts, "text": "" if masked else text,
                "masked": masked, "utter": utter, "buttons": [] if masked else buttons,
            })
            item.update(name=utter or (f"handoff: {step}" if step else f"staff: {staff_name}" if staff_name else ""))
        elif type_name == "action":
            name = d.get("name") or action_col or ""
            policy, conf = d.get("policy"), d.get("confidence")
            item.update(name=name, detail=" ".join(x for x in (
                policy or "", f"confidence {conf:.2f}" if isinstance(conf, (int, float)) else "") if x))
            if name in ("prescreen_form", "action_prescreen_outcome"):
                prescreen = True
        elif type_name == "slot":
            name = d.get("name") or action_col or ""
            value = d.get("value")
            if name in QUESTIONS and is_valid_answer(name, value):
                answers[name] = value
            if name == "prescreen_outcome" and isinstance(value, str) and value:
                outcome = value
                prescreen = True
            if name == "referral_reference" and isinstance(value, str) and value:
                reference = value
            hidden = not answers_visible and name not in PUBLIC_SLOTS
            item.update(name=name, detail="(value shown to clinicians)" if hidden else json.dumps(value, ensure_ascii=False)[:300], masked=hidden)
        elif type_name == "active_loop":
            name = d.get("name") if "name" in d else action_col
            active_form = name
            if name == "prescreen_form":
                prescreen = True
            item.update(name=name or "(form ended)")
        else:
            item.update(name=d.get("name") or action_col or "")
        timeline.append(item)
    summary, scores = answer_summary(answers)
    return {
        "messages": messages, "timeline": timeline, "prescreen": prescreen or bool(answers), "outcome": outcome,
        "referral_reference": reference, "answers": answers, "summary": summary, "scores": scores,
        "truncated": len(events) > TRANSCRIPT_MAX_EVENTS,
    }


# --- helpers -------------------------------------------------------------------------


def _events_or_404(request: Request, conversation_id: str) -> List[Any]:
    events = index.conversation_events(request.app.ctx.tracker, conversation_id)
    if not events:
        index.drop_rows(request.app.ctx.engine, [conversation_id])
        raise NotFound("No such conversation")
    return events


def _tags(engine: Engine, conversation_id: str) -> List[str]:
    return index.tags_for(engine, [conversation_id]).get(conversation_id, [])


def _notes(engine: Engine, conversation_id: str) -> List[Dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(
            select(conversation_notes).where(conversation_notes.c.conversation_id == conversation_id)
            .order_by(conversation_notes.c.created_at, conversation_notes.c.id)
        )]


def _back(conversation_id: str, done: str = "") -> HTTPResponse:
    return redirect(f"/conversations/{path_quote(conversation_id)}" + (f"?done={done}" if done else ""), status=303)


NOTICES = {
    "tag": "Tag added.", "untag": "Tag removed.", "note": "Note added.",
    "reviewed": "Marked reviewed.", "unreviewed": "Marked not reviewed.",
    "corrected": "Correction proposed: it waits on the Review page for a clinician to accept it.",
    "not_correctable": "Only a visitor's typed question can be corrected (not a form answer or a button).",
    "bad_label": "Choose what the message should have been.",
    "already_accepted": "That message's correction was accepted already: it is in the training data.",
}


def _refresh(request: Request) -> str:
    """Bring the index up to date (a bounded batch); a notice when it is still behind or unreachable."""
    ctx = request.app.ctx
    try:
        read = index.refresh(ctx.engine, ctx.tracker, index.BATCH_EVENTS)
    except SQLAlchemyError as exc:
        return f"The conversation store could not be read just now ({type(exc).__name__}); the list may be out of date."
    if read >= index.BATCH_EVENTS:
        behind = index.pending_events(ctx.engine, ctx.tracker)
        return f"Still indexing: about {behind} newer events are not in the list yet. Reload in a moment."
    return ""


# --- the list ---------------------------------------------------------------------


@bp.get("/conversations")
@auth.require("support")
async def conversation_list(request: Request) -> HTTPResponse:
    ctx = request.app.ctx
    notice = _refresh(request)
    filters = index.Filters.from_args(request.args)
    cursor = index.parse_cursor(request.args.get("cursor"))
    rows, next_cursor = index.list_page(ctx.engine, ctx.tracker, filters, cursor)
    pinned: List[Dict[str, Any]] = []
    if cursor is None:  # the first page: crisis conversations not reviewed yet are pinned above the list
        pinned, _ = index.list_page(ctx.engine, ctx.tracker, filters, None, index.PINNED, index.NOT_REVIEWED_CRISIS)
    for r in pinned + rows:
        r["last"] = when(r["last_ts"])
        r["first"] = when(r["first_ts"])
    if auth.RANK[request.ctx.user["role"]] >= auth.RANK["clinician"]:
        _add_names(request, pinned + rows)
    base = filters.query_args()
    with ctx.engine.connect() as conn:
        known_tags = [r[0] for r in conn.execute(
            select(conversation_tags.c.tag).distinct().order_by(conversation_tags.c.tag).limit(200))]
    return render(
        request, "conversations.html", rows=rows, pinned=pinned, filters=filters, outcomes=index.OUTCOME_FILTERS,
        outcome_labels=OUTCOME_LABELS, known_tags=known_tags, q=path_quote, notice=notice,
        deleted=request.args.get("done") == "deleted",
        older_url=("/conversations?" + urlencode({**base, "cursor": next_cursor})) if next_cursor else "",
        first_url=("/conversations?" + urlencode(base)) if cursor else "",
        export_query=urlencode(base), errors=filters.errors,
    )


def _add_names(request: Request, rows: List[Dict[str, Any]]) -> None:
    """For clinicians: the name a referred visitor gave (``name``; contact data: the view is audited)."""
    ctx = request.app.ctx
    referred = sorted({r["conversation_id"] for r in rows if r.get("referred")})
    if not referred:
        return
    names: Dict[str, str] = {}
    with ctx.engine.connect() as conn:
        found = conn.execute(select(referrals.c.conversation_id, referrals.c.contact_encrypted)
                             .where(referrals.c.conversation_id.in_(referred))).fetchall()
    for cid, sealed in found:
        try:
            name = decrypt_json(ctx.settings.encryption_key, sealed).get("name")
        except (DecryptionError, ValueError, AttributeError):
            continue
        if isinstance(name, str) and name.strip():
            names[cid] = name.strip()[:100]
    for r in rows:
        r["name"] = names.get(r["conversation_id"])
    if names:
        auth.audit(ctx.engine, request.ctx.user, "view_contact", "conversation_list", "names",
                   f"{len(set(names))} names")


# --- a transcript -------------------------------------------------------------------


@bp.get("/conversations/<conversation_id>", unquote=True)
@auth.require("support")
async def transcript(request: Request, conversation_id: str) -> HTTPResponse:
    ctx = request.app.ctx
    user = request.ctx.user
    events = _events_or_404(request, conversation_id)
    row = index.ensure_indexed(ctx.engine, ctx.tracker, conversation_id, events) or {}
    visible = can_see_answers(user)
    t = build_transcript(events, visible)
    referral = None
    if visible:
        found = referral_store.referral_for_conversation(ctx.engine, conversation_id)
        referral = {"reference": found["reference"], "status": found["status"]} if found else None
    auth.audit(ctx.engine, user, "view_transcript", "conversation", conversation_id)
    return render(
        request, "transcript.html", cid=conversation_id, row=row, t=t, answers_visible=visible,
        tags=_tags(ctx.engine, conversation_id), notes=_notes(ctx.engine, conversation_id), referral=referral,
        outcome_labels=OUTCOME_LABELS, q=path_quote, first=when(row.get("first_ts")), last=when(row.get("last_ts")),
        notice=NOTICES.get(request.args.get("done", ""), ""), error="", max_note=MAX_NOTE_CHARS,
        **_correcting(request, conversation_id),
    )


def _correcting(request: Request, conversation_id: str) -> Dict[str, Any]:
    """What the transcript's "should have been" forms need: the labels, and each message's correction."""
    from clinic.console import corrections
    from clinic.console.review import topic_titles

    titles = topic_titles(request)
    return {
        "corrections": corrections.for_conversation(request.app.ctx.engine, request.app.ctx.settings.encryption_key,
                                                    conversation_id),
        "label_choices": corrections.label_choices(titles),
        "label_title": lambda label: corrections.label_title(label or "", titles),
    }


def _transcript_error(request: Request, conversation_id: str, events: List[Any], error: str) -> HTTPResponse:
    ctx = request.app.ctx
    row = index.ensure_indexed(ctx.engine, ctx.tracker, conversation_id, events) or {}
    visible = can_see_answers(request.ctx.user)
    return render(
        request, "transcript.html", status=400, cid=conversation_id, row=row, t=build_transcript(events, visible),
        answers_visible=visible, tags=_tags(ctx.engine, conversation_id), notes=_notes(ctx.engine, conversation_id),
        referral=None, outcome_labels=OUTCOME_LABELS, q=path_quote, first=when(row.get("first_ts")),
        last=when(row.get("last_ts")), notice="", error=error, max_note=MAX_NOTE_CHARS,
        **_correcting(request, conversation_id),
    )


@bp.post("/conversations/<conversation_id>/tags", unquote=True)
@auth.require("support")
async def conversation_tag(request: Request, conversation_id: str) -> HTTPResponse:
    engine = request.app.ctx.engine
    events = _events_or_404(request, conversation_id)
    tag = (request.form.get("tag") or "").strip().lower()
    op = request.form.get("op") or "add"
    if not index.TAG_RE.match(tag) or op not in ("add", "remove"):
        return _transcript_error(request, conversation_id, events,
                                 "A tag is 1-40 lower-case letters, digits, spaces, '-' or '_', starting with a letter or digit.")
    index.ensure_schema(engine)
    with engine.begin() as conn:
        if op == "add":
            exists = conn.execute(select(conversation_tags.c.id).where(
                conversation_tags.c.conversation_id == conversation_id, conversation_tags.c.tag == tag)).first()
            if not exists:
                try:
                    conn.execute(insert(conversation_tags).values(
                        conversation_id=conversation_id, tag=tag, created_at=utcnow(), created_by=request.ctx.user["username"]))
                except IntegrityError:
                    pass
        else:
            conn.execute(delete(conversation_tags).where(
                conversation_tags.c.conversation_id == conversation_id, conversation_tags.c.tag == tag))
    auth.audit(engine, request.ctx.user, "tag_add" if op == "add" else "tag_remove", "conversation", conversation_id, f"tag={tag}")
    return _back(conversation_id, "tag" if op == "add" else "untag")


@bp.post("/conversations/<conversation_id>/notes", unquote=True)
@auth.require("support")
async def conversation_note(request: Request, conversation_id: str) -> HTTPResponse:
    engine = request.app.ctx.engine
    events = _events_or_404(request, conversation_id)
    body = (request.form.get("body") or "").strip()
    if not body:
        return _transcript_error(request, conversation_id, events, "A note cannot be empty.")
    if len(body) > MAX_NOTE_CHARS:
        return _transcript_error(request, conversation_id, events, f"A note is at most {MAX_NOTE_CHARS} characters.")
    index.ensure_schema(engine)
    user = request.ctx.user
    with engine.begin() as conn:
        result = conn.execute(insert(conversation_notes).values(
            conversation_id=conversation_id, author_id=user["id"], author=user["username"], created_at=utcnow(), body=body))
        note_id = result.inserted_primary_key[0]
    auth.audit(engine, user, "note_add", "conversation", conversation_id, f"note={note_id}")
    return _back(conversation_id, "note")


@bp.post("/conversations/<conversation_id>/review", unquote=True)
@auth.require("support")
async def conversation_reviewed(request: Request, conversation_id: str) -> HTTPResponse:
    ctx = request.app.ctx
    events = _events_or_404(request, conversation_id)
    value = request.form.get("reviewed")
    if value not in ("1", "0"):
        return _transcript_error(request, conversation_id, events, "Choose reviewed or not reviewed.")
    index.ensure_indexed(ctx.engine, ctx.tracker, conversation_id, events)
    reviewed = value == "1"
    user = request.ctx.user
    with ctx.engine.begin() as conn:
        conn.execute(
            update(conversation_index).where(conversation_index.c.conversation_id == conversation_id).values(
                reviewed=reviewed, reviewed_at=utcnow() if reviewed else None, reviewed_by=user["username"] if reviewed else None)
        )
    auth.audit(ctx.engine, user, "mark_reviewed" if reviewed else "mark_unreviewed", "conversation", conversation_id)
    return _back(conversation_id, "reviewed" if reviewed else "unreviewed")


# --- export (clinicians and up: transcripts hold health data) -------------------------


def neutralise(value: Any) -> str:
    """A CSV cell that a spreadsheet will not run as a formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    cell = str(value)
    if cell and cell[0] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + cell
    return cell


def _index_rows(engine: Engine, ids: Sequence[str]) -> Dict[str, Dict[str, Any]]:
    found: Dict[str, Dict[str, Any]] = {}
    with engine.connect() as conn:
        for part in index._chunks(list(ids)):
            for r in conn.execute(select(conversation_index).where(conversation_index.c.conversation_id.in_(part))):
                found[r.conversation_id] = dict(r._mapping)
    return found


def _events_of(tracker: Engine, ids: Sequence[str]) -> Dict[str, List[Any]]:
    by_sender: Dict[str, List[Any]] = {}
    for part in index._chunks(list(ids), 200):
        params = {f"s{i}": v for i, v in enumerate(part)}
        rows = index._tracker_rows(
            tracker,
            f"SELECT {index.EVENT_COLUMNS}, data FROM events WHERE sender_id IN ("
            + ", ".join(f":s{i}" for i in range(len(part))) + ") ORDER BY id",
            params,
        )
        for r in rows or []:
            by_sender.setdefault(r[1], []).append(r)
    return by_sender


def export_records(engine: Engine, tracker: Engine, ids: Sequence[str]) -> List[Dict[str, Any]]:
    """What an export holds for each conversation (answers included: clinicians and up only)."""
    events = _events_of(tracker, ids)
    rows = _index_rows(engine, ids)
    tags = index.tags_for(engine, ids)
    notes: Dict[str, List[Dict[str, Any]]] = {}
    with engine.connect() as conn:
        for part in index._chunks(list(ids)):
            for n in conn.execute(select(conversation_notes).where(conversation_notes.c.conversation_id.in_(part))
                                  .order_by(conversation_notes.c.created_at, conversation_notes.c.id)):
                notes.setdefault(n.conversation_id, []).append(
                    {"author": n.author, "created_at": n.created_at.isoformat() + "Z", "body": n.body})
    records = []
    for cid in ids:
        evs = events.get(cid)
        if not evs:
            continue
        t = build_transcript(evs, True)
        row = rows.get(cid) or {}
        records.append({
            "conversation_id": cid,
            "first_activity": iso(evs[0][3]),
            "last_activity": iso(max((e[3] for e in evs if e[3] is not None), default=None)),
            "outcome": t["outcome"] or row.get("outcome"),
            "referred": bool(row.get("referred") or t["referral_reference"]),
            "referral_reference": t["referral_reference"] or row.get("referral_reference"),
            "crisis": bool(row.get("crisis")), "handoff": bool(row.get("handoff")), "fallback": bool(row.get("fallback")),
            "reviewed": bool(row.get("reviewed")),
            "tags": tags.get(cid, []),
            "notes": notes.get(cid, []),
            "prescreen": {"started": t["prescreen"], "outcome": t["outcome"], "answers": t["answers"]},
            "messages": [
                {
                    "time": iso(m["ts"]), "speaker": m["speaker"], "staff_name": m.get("staff_name"), "text": m["text"],
                    "intent": m.get("intent"), "faq_topic": m.get("topic"), "confidence": m.get("confidence"),
                    "button": m.get("button", False),
                }
                for m in t["messages"]
            ],
        })
    return records


def to_csv(records: Sequence[Mapping[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for r in records:
        common = [r["outcome"], r["referred"], r["crisis"], r["handoff"], r["fallback"], r["reviewed"], " ".join(r["tags"])]
        for m in r["messages"] or [{}]:
            conf = m.get("confidence")
            writer.writerow([neutralise(v) for v in [
                r["conversation_id"], m.get("time"), m.get("speaker"), m.get("text"), m.get("intent"), m.get("faq_topic"),
                f"{conf:.4f}" if isinstance(conf, (int, float)) else None, *common, m.get("staff_name"),
            ]])
    return out.getvalue()


def _download(body: str, fmt: str, name: str) -> HTTPResponse:
    content_type = "text/csv; charset=utf-8" if fmt == "csv" else "application/json; charset=utf-8"
    return HTTPResponse(
        body.encode("utf-8"), content_type=content_type,
        headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"', "X-Content-Type-Options": "nosniff"},
    )


def _export(request: Request, ids: Sequence[str], fmt: str, name: str, target: str, extra: Dict[str, Any]) -> HTTPResponse:
    ctx = request.app.ctx
    records = export_records(ctx.engine, ctx.tracker, ids)
    detail = f"{fmt} {len(records)} conversation{'s' if len(records) != 1 else ''}"
    if extra.get("filters_summary"):
        detail += " " + extra.pop("filters_summary")
    auth.audit(ctx.engine, request.ctx.user, "export", "conversation", target, detail)
    if fmt == "csv":
        return _download(to_csv(records), "csv", name)
    payload = {"exported_at": utcnow().isoformat() + "Z", **extra, "count": len(records), "conversations": records}
    return _download(json.dumps(payload, ensure_ascii=False, indent=1), "json", name)


@bp.get("/conversations/export.csv")
@auth.require("clinician")
async def export_set_csv(request: Request) -> HTTPResponse:
    return _export_set(request, "csv")


@bp.get("/conversations/export.json")
@auth.require("clinician")
async def export_set_json(request: Request) -> HTTPResponse:
    return _export_set(request, "json")


def _export_set(request: Request, fmt: str) -> HTTPResponse:
    ctx = request.app.ctx
    _refresh(request)
    filters = index.Filters.from_args(request.args)
    ids = index.matching_ids(ctx.engine, filters, EXPORT_MAX + 1)
    truncated = len(ids) > EXPORT_MAX
    ids = ids[:EXPORT_MAX]
    stamp = utcnow().strftime("%Y%m%d-%H%M")
    return _export(request, ids, fmt, f"conversations-{stamp}", "", {
        "filters": filters.query_args(), "truncated": truncated, "limit": EXPORT_MAX,
        "filters_summary": filters.summary(),
    })


@bp.get("/conversations/<conversation_id>/export.csv", unquote=True)
@auth.require("clinician")
async def export_one_csv(request: Request, conversation_id: str) -> HTTPResponse:
    return _export_one(request, conversation_id, "csv")


@bp.get("/conversations/<conversation_id>/export.json", unquote=True)
@auth.require("clinician")
async def export_one_json(request: Request, conversation_id: str) -> HTTPResponse:
    return _export_one(request, conversation_id, "json")


def _export_one(request: Request, conversation_id: str, fmt: str) -> HTTPResponse:
    _events_or_404(request, conversation_id)
    safe = "".join(c for c in conversation_id if c.isalnum() or c in "-_")[:64] or "conversation"
    return _export(request, [conversation_id], fmt, f"conversation-{safe}", conversation_id, {})


# --- deletion (admins) -----------------------------------------------------------------


@bp.get("/conversations/<conversation_id>/delete", unquote=True)
@auth.require("admin")
async def delete_confirm(request: Request, conversation_id: str) -> HTTPResponse:
    from clinic.console import purge

    events = _events_or_404(request, conversation_id)
    linked = purge.linked_counts(request.app.ctx.engine, conversation_id)
    return render(request, "conversation_delete.html", cid=conversation_id, events=len(events), linked=linked, q=path_quote)


@bp.post("/conversations/<conversation_id>/delete", unquote=True)
@auth.require("admin")
async def delete_conversation(request: Request, conversation_id: str) -> HTTPResponse:
    from clinic.console import purge

    ctx = request.app.ctx
    _events_or_404(request, conversation_id)
    if request.form.get("confirm") not in ("yes", conversation_id):
        return redirect(f"/conversations/{path_quote(conversation_id)}/delete", status=303)
    counts = purge.delete_conversations(ctx.engine, ctx.settings.tracker_db_url, [conversation_id])
    auth.audit(ctx.engine, request.ctx.user, "delete", "conversation", conversation_id, purge.describe(counts))
    return redirect("/conversations?done=deleted", status=303)
