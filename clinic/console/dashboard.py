"""The dashboard: what the assistant has been doing lately (support staff and up).

Figures cover the last ``days`` days (30 by default; 7 or 90 on request),
whole days in UTC, today included, and are computed from Rasa's tracker store
(read-only) and the clinic DB:

- A *conversation* is a tracker (``sender_id``) whose first event falls in the
  window and in which the visitor wrote at least one message; it counts on the
  day of its first event.
- Each visitor message is read with what answered it (``clinic.console.visitor_turns``).
  A *question* is a message the visitor typed that was no form answer: a pre-screen
  answer the NLU could not place ("42") and a button press are never a fallback nor an
  FAQ topic.
- *Fallback*: the conversation has a question answered by a "did you mean" (*unsure*)
  or by a plain fallback. *Handoff*: it ran ``action_human_handoff``. *Contained*:
  neither of the two happened. Containment rate and fallback rate are shares of
  conversations; the share of questions unsure of or fallen back on is given too.
- *Top FAQ topics*: questions asked in the window and answered with an FAQ answer, by
  the topic answered (``faq/pricing`` -> "pricing").
- *Did you mean*: the questions answered with likely topics, how many of them the visitor
  then picked a topic for, and how many "Something else".
- *Unanswered questions*: the 20 latest questions in the window answered by a "did you
  mean" or a plain fallback (never a form answer). Support staff may read transcripts, so they
  see these too; the page escapes them like every visitor text, links each to
  its transcript, and the view is written to the audit log
  (``view_unanswered``, only a count in the detail).
- *Satisfaction*: the visitors' thumbs up and down (``clinic.storage.ratings``) given in the window, per
  topic of the answer rated (the FAQ topic; "did you mean", "fallback", or what else answered the
  message), and the latest answers rated down with what was wrong, linked to their transcripts (the
  visitor's message shown only when it was a question: never a form answer).
- *Referral funnel*: conversations of the window in which the pre-screen form
  ran -> those with a referral (clinic DB) -> referrals ``scheduled`` or
  ``closed`` (a referral is closed only after being scheduled).
- *Crisis*: conversations in which the crisis response ran or the
  ``crisis_flagged`` slot was set.

Speed on a large tracker store: the ``events`` table has no index on
``timestamp``, but its ``id`` grows with time, so the first event of the window
is found by a binary search over ``id`` (about 25 indexed look-ups), and the
events are read only from there on (a range of the primary key), with the few JSON
fields needed extracted by the database. A margin of one day before the window absorbs events written slightly out
of time order.
"""

import asyncio
import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from sanic import Blueprint, Request
from sanic.response import HTTPResponse
from sqlalchemy import bindparam, select, text
from sqlalchemy.engine import Connection, Engine

from clinic.storage import ratings
from clinic.console import auth, charts, visitor_turns
from clinic.console.pages import render
from clinic.console.referrals_queue import path_quote
from clinic.storage.db import referrals, utcnow

bp = Blueprint("console_dashboard")

WINDOWS = (7, 30, 90)
DEFAULT_DAYS = 30
MARGIN_S = 86400.0
TOP_TOPICS = 10
UNANSWERED = 20
UNANSWERED_CHARS = 300
WORST = 10
SCHEDULED = ("scheduled", "closed")
_CHUNK = 500


@dataclass
class Day:
    day: dt.date
    conversations: int = 0
    contained: int = 0
    fell_back: int = 0
    handoff: int = 0
    prescreen: int = 0
    crisis: int = 0
    questions: int = 0  # typed visitor messages that were no form answer
    unsure_questions: int = 0  # answered by "did you mean"
    fallback_questions: int = 0  # answered by a plain fallback

    @property
    def containment_rate(self) -> Optional[float]:
        return self.contained / self.conversations if self.conversations else None

    @property
    def fallback_rate(self) -> Optional[float]:
        return self.fell_back / self.conversations if self.conversations else None


@dataclass
class Stats:
    start: dt.datetime
    days: List[Day]
    topics: List[Tuple[str, int]] = field(default_factory=list)
    unanswered: List[Dict[str, Any]] = field(default_factory=list)
    did_you_mean: List[Tuple[str, int]] = field(default_factory=list)
    satisfaction: List[Dict[str, Any]] = field(default_factory=list)  # per topic: up, down, share
    worst: List[Dict[str, Any]] = field(default_factory=list)  # answers rated down, latest first
    referrals: int = 0
    scheduled: int = 0

    def total(self, attr: str) -> int:
        return sum(getattr(d, attr) for d in self.days)

    @property
    def conversations(self) -> int:
        return self.total("conversations")

    @property
    def containment_rate(self) -> Optional[float]:
        n = self.conversations
        return self.total("contained") / n if n else None

    @property
    def fallback_rate(self) -> Optional[float]:
        n = self.conversations
        return self.total("fell_back") / n if n else None

    @property
    def unanswered_question_rate(self) -> Optional[float]:
        n = self.total("questions")
        return (self.total("unsure_questions") + self.total("fallback_questions")) / n if n else None

    @property
    def crisis(self) -> int:
        return self.total("crisis")

    @property
    def funnel(self) -> List[Tuple[str, int]]:
        return [
            ("Pre-screen started", self.total("prescreen")),
            ("Referral made", self.referrals),
            ("Scheduled", self.scheduled),
        ]


# --- tracker queries --------------------------------------------------------------


def _epoch(moment: dt.datetime) -> float:
    return moment.replace(tzinfo=dt.timezone.utc).timestamp()


def first_id_from(conn: Connection, timestamp: float) -> Optional[int]:
    """The smallest event id from which on events are at ``timestamp`` or later (None: no events).

    A binary search over the primary key; ids grow with time.
    """
    low, high = conn.execute(text("SELECT MIN(id), MAX(id) FROM events")).one()
    if low is None:
        return None
    probe = text("SELECT timestamp FROM events WHERE id >= :id ORDER BY id LIMIT 1")
    high += 1
    while low < high:
        mid = (low + high) // 2
        ts = conn.execute(probe, {"id": mid}).scalar()
        if ts is None or ts >= timestamp:
            high = mid
        else:
            low = mid + 1
    return low


def _unanswered_row(message: visitor_turns.Message) -> Dict[str, Any]:
    body = message.text
    return {
        "conversation_id": message.conversation_id,
        "at": dt.datetime.fromtimestamp(message.ts, dt.timezone.utc).replace(tzinfo=None) if message.ts else None,
        "text": body if len(body) <= UNANSWERED_CHARS else body[: UNANSWERED_CHARS - 1] + "…",
        "outcome": message.outcome,
        "picked": message.picked,
    }


def _aggregate(stats: Stats, conversations: Dict[str, visitor_turns.Conversation], start: float) -> None:
    """The figures of ``stats`` from the conversations read (module docstring)."""
    days = len(stats.days)
    for conversation in conversations.values():
        if conversation.started is None or conversation.started < start or not conversation.messages:
            continue
        index = int((conversation.started - start) // 86400)
        if not 0 <= index < days:
            continue
        day = stats.days[index]
        asked = [m for m in conversation.messages if m.question]
        unsure = sum(1 for m in asked if m.outcome == "unsure")
        fallback = sum(1 for m in asked if m.outcome == "fallback")
        day.conversations += 1
        day.fell_back += bool(unsure or fallback)
        day.handoff += conversation.handoff
        day.contained += not (unsure or fallback or conversation.handoff)
        day.prescreen += conversation.prescreen
        day.crisis += conversation.crisis
        day.questions += len(asked)
        day.unsure_questions += unsure
        day.fallback_questions += fallback
    asked = visitor_turns.questions(conversations.values(), start)
    topics = Counter(m.topic or "(topic not recorded)" for m in asked if m.outcome == "faq")
    stats.topics = sorted(topics.items(), key=lambda item: (-item[1], item[0]))[:TOP_TOPICS]
    offered = [m for m in asked if m.outcome == "unsure"]
    stats.did_you_mean = [
        ("Offered", len(offered)),
        ("A topic picked", sum(1 for m in offered if m.picked and m.picked != visitor_turns.SOMETHING_ELSE)),
        ("Something else", sum(1 for m in offered if m.picked == visitor_turns.SOMETHING_ELSE)),
    ]
    stats.unanswered = [_unanswered_row(m) for m in reversed([m for m in asked if m.unanswered])][:UNANSWERED]


def answer_topic(message: visitor_turns.Message) -> str:
    """What a rated answer was about: its FAQ topic, "did you mean", "fallback", or what answered it."""
    outcome = message.outcome
    if outcome == "faq":
        return message.topic or "(topic not recorded)"
    if outcome == "unsure":
        return "did you mean"
    if outcome == "fallback":
        return "fallback"
    name = message.answered_by or "other"
    for prefix in ("action_", "utter_"):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def _satisfaction(stats: Stats, conversations: Dict[str, visitor_turns.Conversation],
                  rated: Sequence[Dict[str, Any]]) -> None:
    by_id = {(c.conversation_id, m.widget_id): m for c in conversations.values() for m in c.messages if m.widget_id}
    per_topic: Dict[str, List[int]] = {}
    worst = []
    for r in rated:
        message = by_id.get((r["conversation_id"], r["message_id"]))
        if message is None:  # its conversation is gone, or the id names no message of it
            continue
        topic = answer_topic(message)
        counts = per_topic.setdefault(topic, [0, 0])
        counts[0 if r["rating"] > 0 else 1] += 1
        if r["rating"] < 0:
            worst.append({
                "conversation_id": r["conversation_id"], "topic": topic, "at": r["updated_at"],
                "asked": message.text[:UNANSWERED_CHARS] if message.question else "",
                "comment": (r["comment"] or "")[:UNANSWERED_CHARS],
            })
    stats.satisfaction = sorted(
        ({"topic": t, "up": up, "down": down, "share": up / (up + down)} for t, (up, down) in per_topic.items()),
        key=lambda s: (s["share"], -(s["up"] + s["down"]), s["topic"]),
    )
    stats.worst = sorted(worst, key=lambda w: w["at"], reverse=True)[:WORST]


def _started_in_window(tracker: Engine, conversation_ids: Sequence[str], start: float) -> set:
    """Which of ``conversation_ids`` began at ``start`` or later (uses the sender_id index)."""
    found: set = set()
    query = text(
        "SELECT sender_id FROM events WHERE sender_id IN :ids GROUP BY sender_id HAVING MIN(timestamp) >= :start"
    ).bindparams(bindparam("ids", expanding=True))
    ids = list(conversation_ids)
    with tracker.connect() as conn:
        for i in range(0, len(ids), _CHUNK):
            found.update(r.sender_id for r in conn.execute(query, {"ids": ids[i:i + _CHUNK], "start": start}))
    return found


def compute(clinic: Engine, tracker: Engine, days: int = DEFAULT_DAYS, now: Optional[dt.datetime] = None) -> Stats:
    """The dashboard's figures for the ``days`` days up to ``now`` (UTC, naive)."""
    now = now or utcnow()
    first_day = now.date() - dt.timedelta(days=days - 1)
    start_dt = dt.datetime.combine(first_day, dt.time.min)
    start = _epoch(start_dt)
    stats = Stats(start=start_dt, days=[Day(first_day + dt.timedelta(days=i)) for i in range(days)])
    with tracker.connect() as conn:
        lo = first_id_from(conn, start - MARGIN_S)
        if lo is None:
            return stats
        conversations = visitor_turns.read(conn, lo)
        _aggregate(stats, conversations, start)
    _satisfaction(stats, conversations, ratings.ratings_since(clinic, start_dt))
    with clinic.connect() as conn:
        made = [
            (r.conversation_id, r.status)
            for r in conn.execute(select(referrals.c.conversation_id, referrals.c.status).where(referrals.c.created_at >= start_dt))
        ]
    in_window = _started_in_window(tracker, [cid for cid, _ in made], start)
    stats.referrals = sum(1 for cid, _ in made if cid in in_window)
    stats.scheduled = sum(1 for cid, status in made if cid in in_window and status in SCHEDULED)
    return stats


# --- page -------------------------------------------------------------------------


def _rate(value: Optional[float]) -> str:
    return "—" if value is None else charts.percent(value)


def build_charts(stats: Stats) -> Dict[str, Any]:
    n = len(stats.days)
    every = 1 if n <= 10 else (5 if n <= 45 else 15)
    labels = [d.day.strftime("%m-%d") for d in stats.days]
    return {
        "per_day": charts.bar_chart(
            list(zip(labels, [d.conversations for d in stats.days])),
            label=f"Conversations per day, last {n} days: {stats.conversations} in all",
            x_label="Day (UTC)", y_label="Conversations", every=every,
        ),
        "rates": charts.line_chart(
            labels,
            [("Containment rate", [d.containment_rate for d in stats.days]),
             ("Fallback rate", [d.fallback_rate for d in stats.days])],
            label=(f"Containment and fallback rates per day, last {n} days: containment {_rate(stats.containment_rate)}, "
                   f"fallback {_rate(stats.fallback_rate)}"),
            x_label="Day (UTC)", y_label="Share of conversations", value_format=charts.percent, y_max=1.0, every=every,
        ),
        "topics": charts.hbar_chart(
            stats.topics, label=f"Top FAQ topics, last {n} days", x_label="Questions",
        ),
        "funnel": charts.hbar_chart(
            stats.funnel, label=f"Referral funnel, last {n} days: " + ", ".join(f"{k} {v}" for k, v in stats.funnel),
            x_label="Conversations",
        ),
    }


@bp.get("/dashboard")
@auth.require("support")
async def dashboard(request: Request) -> HTTPResponse:
    ctx = request.app.ctx
    try:
        days = int(request.args.get("days", DEFAULT_DAYS))
    except ValueError:
        days = DEFAULT_DAYS
    if days not in WINDOWS:
        days = DEFAULT_DAYS
    # Seconds of SQL on a large store must not stall the other staff's requests.
    stats = await asyncio.get_running_loop().run_in_executor(None, compute, ctx.engine, ctx.tracker, days)
    if stats.unanswered or stats.worst:  # visitors' words on the page
        auth.audit(ctx.engine, request.ctx.user, "view_unanswered", "dashboard", f"last {days} days",
                   f"{len(stats.unanswered)} questions" + (f", {len(stats.worst)} rated down" if stats.worst else ""))
    return render(
        request, "dashboard.html", stats=stats, charts=build_charts(stats), days=days, windows=WINDOWS,
        rate=_rate, q=path_quote,
    )
