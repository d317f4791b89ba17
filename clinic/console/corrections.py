"""Corrections: what a visitor message should have been understood as (the console's review loop).

A staff member marks a visitor message on a transcript with what it should have been (an FAQ
topic, another intent, ``crisis``, ``urgent_medical``, ``not_crisis``, or ``new_topic``: no
topic fits yet), and a visitor's pick of a "did you mean" button is proposed the same way
(source ``pick``). A correction waits as ``proposed`` until a clinician or an admin accepts it
(its text, confirmed or edited, is written as training data: ``clinic.nlu.reviewed_data``) or
rejects it. One correction per message (the tracker's ``events.id``). The text is sealed with
the clinic's key (``clinic.storage.crypto``) like every visitor's words in the clinic DB.
"""

import functools
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

import yaml
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.engine import Engine

from clinic.storage.crypto import DecryptionError, Key, decrypt_json, encrypt_json
from clinic.storage.db import corrections, utcnow
from clinic.nlu.reviewed_data import NEW_TOPIC, NOT_CRISIS
from clinic.safety.bank import CRISIS, RISK_INTENTS, URGENT_MEDICAL

PROPOSED, ACCEPTED, REJECTED = "proposed", "accepted", "rejected"
STAFF, PICK = "staff", "pick"
DOMAIN = Path(__file__).resolve().parents[2] / "domain"
# Intents no message is corrected to: the FAQ's retrieval intent (a topic is chosen instead), and
# what Rasa sets itself.
NOT_LABELS = frozenset({"faq", "nlu_fallback", CRISIS, URGENT_MEDICAL})


class CorrectionError(ValueError):
    """A correction that cannot be made (the message says why)."""


@functools.lru_cache(maxsize=4)
def _domain_intents(folder: str) -> Tuple[str, ...]:
    found: List[str] = []
    for path in sorted(Path(folder).glob("*.yml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for intent in doc.get("intents") or []:
            name = intent if isinstance(intent, str) else next(iter(intent))
            if name not in found:
                found.append(name)
    return tuple(found)


def label_choices(topic_titles: Dict[str, str], domain: Path = DOMAIN) -> List[Tuple[str, List[Tuple[str, str]]]]:
    """The labels a message can be given, in groups for a ``<select>``: (group, [(value, title)])."""
    intents = [i for i in _domain_intents(str(domain)) if i not in NOT_LABELS]
    return [
        ("FAQ topic", [(f"faq/{k}", v) for k, v in sorted(topic_titles.items(), key=lambda kv: kv[1].lower())]),
        ("Another intent", [(i, i.replace("_", " ")) for i in sorted(intents)]),
        ("Safety", [(CRISIS, "crisis"), (URGENT_MEDICAL, "urgent medical"), (NOT_CRISIS, "not a crisis")]),
        ("None fits", [(NEW_TOPIC, "new topic needed")]),
    ]


def valid_labels(topic_titles: Dict[str, str], domain: Path = DOMAIN) -> Set[str]:
    return {value for _, options in label_choices(topic_titles, domain) for value, _ in options}


def label_title(label: str, topic_titles: Dict[str, str]) -> str:
    if label.startswith("faq/"):
        return topic_titles.get(label[4:], label[4:])
    return {NOT_CRISIS: "not a crisis", NEW_TOPIC: "new topic needed"}.get(label, label.replace("_", " "))


def took_over(understood: Optional[str]) -> bool:
    """Whether the assistant took the message as a crisis or urgent medical problem."""
    return understood in RISK_INTENTS


def propose(engine: Engine, key: Key, conversation_id: str, event_id: int, message_id: Optional[str], text: str,
            label: str, understood: Optional[str], source: str, username: Optional[str]) -> int:
    """A proposed correction of one message (a new one, or the proposed or rejected one it had,
    relabelled). CorrectionError when its correction was accepted already (it is training data).
    Two proposals of the same message at once (two people opening the review page, a mark during a
    page load): the second one's insert meets the first one's row and relabels it instead."""
    try:
        return _propose(engine, key, conversation_id, event_id, message_id, text, label, understood, source, username)
    except IntegrityError:  # another request inserted this message's correction meanwhile (event_id is unique)
        return _propose(engine, key, conversation_id, event_id, message_id, text, label, understood, source, username)


def _propose(engine: Engine, key: Key, conversation_id: str, event_id: int, message_id: Optional[str], text: str,
             label: str, understood: Optional[str], source: str, username: Optional[str]) -> int:
    now = utcnow()
    sealed = encrypt_json(key, text)
    with engine.begin() as conn:
        row = conn.execute(select(corrections.c.id, corrections.c.status, corrections.c.source)
                           .where(corrections.c.event_id == event_id)).first()
        if row is None:
            result = conn.execute(insert(corrections).values(
                conversation_id=conversation_id, event_id=event_id, message_id=message_id, label=label,
                understood=understood, source=source, status=PROPOSED, text_encrypted=sealed, proposed_by=username,
                proposed_at=now))
            return int(result.inserted_primary_key[0])
        if row.status == ACCEPTED:
            raise CorrectionError("this message's correction was accepted already: it is in the training data")
        if source == PICK and row.source == STAFF:
            return int(row.id)  # a person's mark is not replaced by a visitor's pick
        conn.execute(update(corrections).where(corrections.c.id == row.id).values(
            label=label, source=source, status=PROPOSED, proposed_by=username, proposed_at=now,
            decided_by=None, decided_at=None))
        return int(row.id)


def propose_picks(engine: Engine, key: Key, picks: Iterable[Dict[str, Any]]) -> int:
    """Visitors' "did you mean" picks as proposed corrections (``picks``: conversation_id,
    event_id, message_id, text, topic, understood), for messages that have no correction yet.
    Returns how many were added."""
    picks = list(picks)
    if not picks:
        return 0
    with engine.connect() as conn:
        have = {r[0] for r in conn.execute(select(corrections.c.event_id).where(
            corrections.c.event_id.in_([p["event_id"] for p in picks])))}
    added = 0
    for p in picks:
        if p["event_id"] in have:
            continue
        propose(engine, key, p["conversation_id"], p["event_id"], p.get("message_id"), p["text"],
                f"faq/{p['topic']}", p.get("understood"), PICK, None)
        added += 1
    return added


def _opened(key: Key, row: Any) -> Dict[str, Any]:
    found = dict(row._mapping)
    try:
        found["text"] = decrypt_json(key, found.pop("text_encrypted"))
    except DecryptionError:
        found["text"] = None  # sealed under another key: shown as withheld, never accepted
    return found


def by_status(engine: Engine, key: Key, status: str = PROPOSED, limit: int = 1000) -> List[Dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(corrections).where(corrections.c.status == status)
                            .order_by(corrections.c.proposed_at, corrections.c.id).limit(limit)).fetchall()
    return [_opened(key, r) for r in rows]


def for_conversation(engine: Engine, key: Key, conversation_id: str) -> Dict[int, Dict[str, Any]]:
    """The corrections of one conversation's messages, by event id."""
    with engine.connect() as conn:
        rows = conn.execute(select(corrections).where(corrections.c.conversation_id == conversation_id)).fetchall()
    return {int(r.event_id): _opened(key, r) for r in rows}


def get(engine: Engine, key: Key, ids: Sequence[int]) -> List[Dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(corrections).where(corrections.c.id.in_(list(ids))).order_by(corrections.c.id)).fetchall()
    return [_opened(key, r) for r in rows]


def decided_events(engine: Engine) -> Set[int]:
    """The messages whose correction was accepted or rejected (no longer to review)."""
    with engine.connect() as conn:
        return {int(r[0]) for r in conn.execute(select(corrections.c.event_id).where(
            corrections.c.status.in_([ACCEPTED, REJECTED])))}


class Stale(Exception):
    """Someone decided one of these corrections meanwhile."""


def accept(engine: Engine, key: Key, decisions: Sequence[Tuple[int, str]], label: str, username: str,
           write: Callable[[], str]) -> None:
    """Proposed corrections (``decisions``: id and final text) accepted with ``label``, and their
    training data written by ``write`` (returns the files written, kept in ``written_to``), in one
    transaction: the corrections are marked first, ``write`` runs only when every one of them was
    still proposed, and a ``write`` that raises (a text refused) leaves them proposed. Stale
    (nothing changed, nothing written) when someone decided one of them meanwhile."""
    with engine.begin() as conn:
        now = utcnow()
        for correction_id, text in decisions:
            done = conn.execute(update(corrections).where(
                (corrections.c.id == correction_id) & (corrections.c.status == PROPOSED)).values(
                status=ACCEPTED, label=label, text_encrypted=encrypt_json(key, text), decided_by=username,
                decided_at=now))
            if not done.rowcount:
                raise Stale()
        written_to = write()
        if written_to:
            conn.execute(update(corrections).where(corrections.c.id.in_([i for i, _ in decisions])).values(
                written_to=written_to[:255]))


def mark_rejected(engine: Engine, correction_id: int, username: str) -> bool:
    with engine.begin() as conn:
        done = conn.execute(update(corrections).where(
            (corrections.c.id == correction_id) & (corrections.c.status == PROPOSED)).values(
            status=REJECTED, decided_by=username, decided_at=utcnow()))
    return bool(done.rowcount)
