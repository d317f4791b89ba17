"""Learning from transcripts: marking what a visitor message should have been, and the review page.

- **Marking** (support and up, on a transcript): a visitor's typed question (never a form
  answer: those hold health data or contact details, nor a button press) gets the label it should
  have had: an FAQ topic, another intent, ``crisis``, ``urgent_medical``, "not a crisis", or
  "new topic needed". The correction is *proposed* (``clinic.console.corrections``).
- **Review** (``/review``; support and up read it, clinicians and admins decide): the questions
  of the last ``REVIEW_DAYS`` days the assistant fell back on, offered "did you mean" for, or
  answered with a confidence under ``LOW_CONFIDENCE``, and every proposed correction (staff
  marks, and visitors' "did you mean" picks from ``topic_picks``, proposed on the way), grouped
  by meaning (sentence embeddings: ``clinic.console.similar``), each group with a suggested label
  (a person's mark first, then visitors' picks; with neither, what the NLU thought likeliest,
  shown as its guess and not chosen). A person
  selects messages (all of a group by default), edits each text if needed (personal data is
  refused: ``clinic.nlu.reviewed_data``), picks one label, and accepts or rejects them at once.
- **Accepting** marks the corrections accepted and writes the texts as training data
  (``clinic.nlu.reviewed_data``: ``data/reviewed/``, the safety banks' reviewed files) in one step
  (``clinic.console.corrections.accept``: only what this request accepted is written; a refused
  text accepts nothing), in an executor (the writer reads every training file and may wait on its
  lock); a batch someone decided meanwhile is shown again with the person's edits and a message;
  "new topic needed" is recorded and writes nothing. Every proposal, acceptance and rejection is in the audit log
  (the label and the message's event id, never the text).
"""

import asyncio
import datetime as dt
from collections import Counter
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple
from urllib.parse import urlencode

import numpy as np
from sanic import Blueprint, Request
from sanic.response import HTTPResponse, redirect
from sqlalchemy import bindparam, select, text as sql

from clinic.console import corrections as store
from clinic.console import auth, similar, visitor_turns
from clinic.console.dashboard import first_id_from
from clinic.console.pages import render
from clinic.console.referrals_queue import path_quote
from clinic.storage.db import corrections as corrections_table, topic_picks, utcnow
from clinic.nlu.reviewed_data import NEW_TOPIC, RefusedExample, ReviewedData, Written, clean_text, evaluation_files
from clinic.safety.bank import RISK_INTENTS
from clinic.settings import load_yaml

bp = Blueprint("console_review")

REVIEW_DAYS = 30
LOW_CONFIDENCE = 0.8  # an answer given under this is reviewed too (the fallback threshold is 0.7)
MAX_ITEMS = 300  # messages on the page (the latest)
MAX_DECIDE = 500  # messages in one accept or reject


def topic_titles(request: Request) -> Dict[str, str]:
    """settings/faq_titles.yml: topic -> its short title."""
    return {str(k): str(v) for k, v in (load_yaml(request.app.ctx.settings.settings_dir / "faq_titles.yml") or {}).items()}


def default_embed(texts: Sequence[str]) -> np.ndarray:
    """The sentence embeddings the NLU uses (loaded on first use: ~2 s, ~90 MB)."""
    from clinic.nlu.sentence_embeddings import encoder

    return encoder().encode(list(texts))


def embedder(request: Request) -> Callable[[Sequence[str]], np.ndarray]:
    return getattr(request.app.ctx, "embed", None) or default_embed


def writer(request: Request) -> ReviewedData:
    return ReviewedData(request.app.ctx.settings.training_data_dir, evaluation=evaluation_files())


# --- marking a message on a transcript ---------------------------------------------------


def correctable(message: visitor_turns.Message) -> bool:
    """A visitor's typed question: never a form answer, a button press or an empty text."""
    return message.question


@bp.post("/conversations/<conversation_id>/corrections", unquote=True)
@auth.require("support")
async def mark(request: Request, conversation_id: str) -> HTTPResponse:
    ctx = request.app.ctx
    user = request.ctx.user
    back = f"/conversations/{path_quote(conversation_id)}"
    try:
        event_id = int(request.form.get("event_id") or "")
    except ValueError:
        event_id = -1
    label = request.form.get("label") or ""
    with ctx.tracker.connect() as conn:
        conversation = visitor_turns.read_conversations(conn, [conversation_id]).get(conversation_id)
    if conversation is None:
        return render(request, "not_found.html", status=404)
    message = next((m for m in conversation.messages if m.event_id == event_id), None)
    if message is None or not correctable(message):
        return redirect(back + "?" + urlencode({"done": "not_correctable"}), status=303)
    if label not in store.valid_labels(topic_titles(request)):
        return redirect(back + "?" + urlencode({"done": "bad_label"}), status=303)
    try:
        correction_id = store.propose(ctx.engine, ctx.settings.encryption_key, conversation_id, event_id,
                                      message.message_id, message.text, label, message.understood, store.STAFF,
                                      user["username"])
    except store.CorrectionError:
        return redirect(back + "?" + urlencode({"done": "already_accepted"}), status=303)
    auth.audit(ctx.engine, user, "correction_propose", "correction", str(correction_id),
               f"event={event_id} label={label}")
    return redirect(back + "?done=corrected#event-" + str(event_id), status=303)


# --- the review page ---------------------------------------------------------------------


def _reason(m: visitor_turns.Message) -> str:
    if m.outcome == "fallback":
        return "fallback"
    if m.outcome == "unsure":
        return "did you mean"
    if m.confidence is not None and m.confidence < LOW_CONFIDENCE:
        return "low confidence"
    return ""


def _picks(engine: Any, since: dt.datetime) -> Dict[Tuple[str, str], str]:
    """Visitors' "did you mean" picks since ``since``: (conversation, message id) -> topic."""
    with engine.connect() as conn:
        rows = conn.execute(select(topic_picks.c.conversation_id, topic_picks.c.message_id, topic_picks.c.picked)
                            .where(topic_picks.c.created_at >= since).order_by(topic_picks.c.id)).fetchall()
    return {(r.conversation_id, r.message_id): r.picked for r in rows
            if r.message_id and r.picked != visitor_turns.SOMETHING_ELSE}


def review_items(request: Request, now: Optional[dt.datetime] = None) -> List[Dict[str, Any]]:
    """The messages to review, latest first (module docstring); proposes visitors' picks on the way."""
    ctx = request.app.ctx
    key = ctx.settings.encryption_key
    now = now or utcnow()
    since = now - dt.timedelta(days=REVIEW_DAYS)
    start = since.replace(tzinfo=dt.timezone.utc).timestamp()
    with ctx.tracker.connect() as conn:
        lo = first_id_from(conn, start - 86400.0)
        conversations = visitor_turns.read(conn, lo) if lo is not None else {}
    decided = store.decided_events(ctx.engine)
    picks = _picks(ctx.engine, since)
    candidates: Dict[int, Dict[str, Any]] = {}
    new_picks = []
    for m in visitor_turns.questions(conversations.values(), start):
        if m.event_id in decided:
            continue
        picked = picks.get((m.conversation_id, m.message_id)) if m.message_id else None
        if picked:
            new_picks.append({"conversation_id": m.conversation_id, "event_id": m.event_id, "message_id": m.message_id,
                              "text": m.text, "topic": picked, "understood": m.understood})
        reason = _reason(m)
        if reason or picked:
            candidates[m.event_id] = {
                "event_id": m.event_id, "conversation_id": m.conversation_id, "ts": m.ts, "text": m.text,
                "understood": m.understood, "confidence": m.confidence, "reason": reason or "did you mean",
                "guess": f"faq/{m.topic}" if m.topic else (m.intent if m.intent not in (None, "nlu_fallback") else None),
                "correction": None,
            }
    store.propose_picks(ctx.engine, key, new_picks)
    for c in store.by_status(ctx.engine, key, store.PROPOSED):
        if c["text"] is None:
            continue  # sealed under another key
        item = candidates.setdefault(int(c["event_id"]), {
            "event_id": int(c["event_id"]), "conversation_id": c["conversation_id"],
            "ts": c["proposed_at"].replace(tzinfo=dt.timezone.utc).timestamp(), "text": c["text"],
            "understood": c["understood"], "confidence": None, "reason": "marked", "guess": None,
        })
        item["correction"] = c
    items = sorted(candidates.values(), key=lambda i: -i["ts"])[:MAX_ITEMS]
    for item in items:
        item["time"] = dt.datetime.fromtimestamp(item["ts"], dt.timezone.utc).replace(tzinfo=None)
    return items


def suggestion(items: Sequence[Dict[str, Any]]) -> Optional[str]:
    """A group's likeliest label: people's marks count 3, visitors' picks 2, the NLU's guess 1."""
    votes: Counter = Counter()
    for item in items:
        c = item.get("correction")
        if c is not None:
            votes[c["label"]] += 3 if c["source"] == store.STAFF else 2
        elif item.get("guess"):
            votes[item["guess"]] += 1
    if not votes:
        return None
    return sorted(votes.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]


def grouped(items: List[Dict[str, Any]], embed: Callable[[Sequence[str]], np.ndarray]) -> List[Dict[str, Any]]:
    """The items in groups of like meaning, each with its suggestion; ``by_people``: the suggestion
    comes from a person's mark or a visitor's pick (it is then chosen in the group's form; the NLU's
    own guess is only shown: it is what the assistant got wrong or was unsure of)."""
    groups = []
    for g in similar.group_texts([i["text"] for i in items], embed):
        members = [items[i] for i in g]
        suggested = suggestion(members)
        by_people = any(i.get("correction") is not None for i in members)
        for item in members:
            item["as_not_crisis"] = as_not_crisis(item, suggested if by_people else None)
        groups.append({"items": members, "suggested": suggested, "by_people": by_people})
    return groups


def as_not_crisis(item: Dict[str, Any], chosen: Optional[str]) -> bool:
    """Whether accepting ``item`` under the group's chosen label would teach the safety layer that a
    message it took over as a crisis or urgent problem was none (a hard negative): shown on its row,
    and the row is not selected at first (the person ticks it knowingly)."""
    return bool(chosen) and store.took_over(item.get("understood")) and chosen not in RISK_INTENTS and chosen != NEW_TOPIC


NOTICES = {"accepted": "Accepted.", "rejected": "Rejected."}


async def _page(request: Request, status: int = 200, error: str = "", edited: Optional[Dict[int, str]] = None) -> HTTPResponse:
    ctx = request.app.ctx
    loop = asyncio.get_running_loop()
    items = await loop.run_in_executor(None, review_items, request)
    groups = await loop.run_in_executor(None, grouped, items, embedder(request))
    counts = await loop.run_in_executor(None, writer(request).count)  # reads the files: off the event loop
    titles = topic_titles(request)
    if items:
        auth.audit(ctx.engine, request.ctx.user, "view_review", "review", "", f"{len(items)} messages")
    notice = NOTICES.get(request.args.get("done", ""), "")
    written, skipped = request.args.get("written"), request.args.get("skipped", "0")
    if notice and written is not None and written.isdigit() and skipped.isdigit():
        notice += (f" {written} example{'' if written == '1' else 's'} written to the training data, "
                   f"{skipped} already there.")
    return render(
        request, "review.html", status=status, groups=groups, choices=store.label_choices(titles),
        title=lambda label: store.label_title(label or "", titles), q=path_quote, error=error, notice=notice,
        edited=edited or {}, counts=counts, days=REVIEW_DAYS, low=LOW_CONFIDENCE,
    )


@bp.get("/review")
@auth.require("support")
async def review_page(request: Request) -> HTTPResponse:
    return await _page(request)


def _selected(request: Request) -> List[int]:
    found = []
    for value in request.form.getlist("item") or []:
        try:
            found.append(int(value))
        except ValueError:
            continue
    return list(dict.fromkeys(found))


def _messages_of(request: Request, event_ids: Sequence[int]) -> Dict[int, visitor_turns.Message]:
    """The visitor questions with these event ids (read from the tracker store)."""
    ctx = request.app.ctx
    with ctx.tracker.connect() as conn:
        senders = [r[0] for r in conn.execute(sql("SELECT DISTINCT sender_id FROM events WHERE id IN :ids")
                                              .bindparams(bindparam("ids", expanding=True)), {"ids": list(event_ids)})]
        conversations = visitor_turns.read_conversations(conn, senders) if senders else {}
    wanted = set(event_ids)
    return {m.event_id: m for c in conversations.values() for m in c.messages if m.event_id in wanted}


@bp.post("/review/decide")
@auth.require("clinician")
async def decide(request: Request) -> HTTPResponse:
    ctx = request.app.ctx
    user = request.ctx.user
    key = ctx.settings.encryption_key
    action = request.form.get("action")
    label = request.form.get("label") or ""
    chosen = _selected(request)
    edited = {e: request.form.get(f"text_{e}") or "" for e in chosen}
    if action not in ("accept", "reject"):
        return await _page(request, 400, "Choose accept or reject.", edited)
    if not chosen:
        return await _page(request, 400, "Select at least one message.", edited)
    if len(chosen) > MAX_DECIDE:
        return await _page(request, 400, f"At most {MAX_DECIDE} messages at once.", edited)
    if action == "accept" and label not in store.valid_labels(topic_titles(request)):
        return await _page(request, 400, "Choose what these messages should have been.", edited)
    existing = {}
    table = corrections_table
    with ctx.engine.connect() as conn:
        for r in conn.execute(select(table.c.id, table.c.event_id, table.c.status, table.c.understood)
                              .where(table.c.event_id.in_(chosen))):
            existing[int(r.event_id)] = dict(r._mapping)
    missing = [e for e in chosen if e not in existing]
    messages = _messages_of(request, missing) if missing else {}
    if any(e not in messages or not correctable(messages[e]) for e in missing):
        return await _page(request, 400, "A message selected is no visitor question (or is gone): nothing changed.", edited)
    if any(existing[e]["status"] != store.PROPOSED for e in existing):
        return await _page(request, 409, STALE, edited)
    understood = {e: existing[e]["understood"] if e in existing else messages[e].understood for e in chosen}
    data = writer(request)
    loop = asyncio.get_running_loop()
    if action == "accept" and label != NEW_TOPIC:
        try:  # a refused text before anything is proposed (accepting checks again, under the lock)
            await loop.run_in_executor(None, data.check, label, [edited[e] for e in chosen],
                                       [store.took_over(understood[e]) for e in chosen])
        except RefusedExample as exc:
            return await _page(request, 400, f"Nothing accepted: {exc}.", edited)
    ids: Dict[int, int] = {e: int(existing[e]["id"]) for e in existing}
    try:
        for e in missing:
            m = messages[e]
            ids[e] = store.propose(ctx.engine, key, m.conversation_id, e, m.message_id, m.text,
                                   label if action == "accept" else (m.understood or "nlu_fallback"),
                                   m.understood, store.STAFF, user["username"])
    except store.CorrectionError:  # someone accepted it meanwhile
        return await _page(request, 409, STALE, edited)
    if action == "reject":
        for e in chosen:
            if store.mark_rejected(ctx.engine, ids[e], user["username"]):  # not decided meanwhile by someone else
                auth.audit(ctx.engine, user, "correction_reject", "correction", str(ids[e]), f"event={e}")
        return redirect("/review?done=rejected", status=303)
    try:
        result = await loop.run_in_executor(
            None, _accept, ctx.engine, key, data, label, chosen, edited, understood, ids, user["username"])
    except RefusedExample as exc:
        return await _page(request, 400, f"Nothing accepted: {exc}.", edited)
    except store.Stale:
        return await _page(request, 409, STALE, edited)
    for e in chosen:
        auth.audit(ctx.engine, user, "correction_accept", "correction", str(ids[e]), f"event={e} label={label}")
    args = {"done": "accepted"}
    if result is not None:
        args.update(written=str(len(result.written)), skipped=str(len(result.duplicates)))
    return redirect("/review?" + urlencode(args), status=303)


STALE = ("Someone decided some of these messages meanwhile: nothing was accepted or written. "
         "The messages still to decide are below, with your edits.")


def _accept(engine: Any, key: Any, data: ReviewedData, label: str, chosen: Sequence[int], edited: Dict[int, str],
            understood: Dict[int, Optional[str]], ids: Dict[int, int], username: str) -> Optional[Written]:
    """Marks the corrections accepted and writes their texts as training data, in one step
    (``store.accept``: written only when every one was still proposed; a refused text marks none).
    Runs in an executor: the writer parses every training file and may wait on the file lock."""
    if label == NEW_TOPIC:
        store.accept(engine, key, [(ids[e], " ".join(edited[e].split()) or "(new topic)") for e in chosen], label,
                     username, lambda: "")
        return None
    finals = [clean_text(edited[e]) for e in chosen]  # RefusedExample before anything is marked
    done: List[Written] = []

    def write() -> str:
        done.append(data.add(label, finals, also_negative=[store.took_over(understood[e]) for e in chosen]))
        return " ".join(done[0].files)

    store.accept(engine, key, [(ids[e], t) for e, t in zip(chosen, finals)], label, username, write)
    return done[0]
