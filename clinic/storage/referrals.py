"""Referrals and the waitlist: storing what a pre-screen ends with.

A referral (outcome ``eligible`` or ``clinician_review``) holds the visitor's
contact details and answers encrypted, under a short reference code that
staff and the visitor can quote ("K7Q-4M2"). A visitor outside the states
served may join the waitlist instead. Both are one per conversation: calling
again for the same conversation returns what is already stored.

Plain functions over a SQLAlchemy engine and the encryption key; nothing here
logs contact details or answers.
"""

import datetime as dt
import re
import secrets
from typing import Any, Dict, List, Mapping, Optional, Sequence

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from clinic.storage.crypto import Key, decrypt_json, encrypt_json
from clinic.storage.db import referrals, utcnow, waitlist

# No 0/O, 1/I/L: a code read aloud or copied by hand stays unambiguous.
REFERENCE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
REFERENCE_RE = re.compile(rf"^[{REFERENCE_ALPHABET}]{{3}}-[{REFERENCE_ALPHABET}]{{3}}$")
REFERRAL_OUTCOMES = ("eligible", "clinician_review")
_STATE_RE = re.compile(r"^[A-Z]{2}$")
_MAX_TRIES = 8


def new_reference() -> str:
    """A random reference code: six characters and a dash, e.g. "K7Q-4M2"."""
    chars = "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(6))
    return f"{chars[:3]}-{chars[3:]}"


def normalize_reference(text: str) -> Optional[str]:
    """``text`` as a reference code ("k7q4m2 " -> "K7Q-4M2"), or None if it is not one."""
    compact = re.sub(r"[\s-]", "", text or "").upper()
    if len(compact) != 6:
        return None
    candidate = f"{compact[:3]}-{compact[3:]}"
    return candidate if REFERENCE_RE.match(candidate) else None


def create_referral(
    engine: Engine,
    key: Key,
    conversation_id: str,
    outcome: str,
    reasons: Sequence[str],
    answers: Mapping[str, Any],
    contact: Mapping[str, Any],
    urgent: bool = False,
) -> str:
    """Store a referral (status "new", not yet notified) and return its reference.

    Idempotent per conversation: if ``conversation_id`` already has a
    referral, its reference is returned and nothing is written (the first
    referral's data stands).
    """
    sealed = seal_referral(key, conversation_id, outcome, reasons, answers, contact, urgent=urgent)
    return store_sealed_referral(engine, sealed)


SEALED_REFERRAL_FIELDS = frozenset(
    ("conversation_id", "outcome", "urgent", "contact_encrypted", "answers_encrypted", "created_at")
)


def seal_referral(
    key: Key,
    conversation_id: str,
    outcome: str,
    reasons: Sequence[str],
    answers: Mapping[str, Any],
    contact: Mapping[str, Any],
    urgent: bool = False,
) -> Dict[str, Any]:
    """The referral's row as it is stored, contact and answers encrypted, less its reference code.

    What ``store_sealed_referral`` stores, now or later (``clinic.storage.referral_spool``
    keeps it while the database cannot be written).
    """
    if outcome not in REFERRAL_OUTCOMES:
        raise ValueError(f"outcome must be one of {REFERRAL_OUTCOMES}, not {outcome!r}")
    if not conversation_id:
        raise ValueError("conversation_id is required")
    return {
        "conversation_id": conversation_id,
        "outcome": outcome,
        "urgent": bool(urgent),
        "contact_encrypted": encrypt_json(key, dict(contact)),
        "answers_encrypted": encrypt_json(key, {"answers": dict(answers), "reasons": list(reasons)}),
        "created_at": utcnow(),
    }


def store_sealed_referral(engine: Engine, sealed: Mapping[str, Any]) -> str:
    """Store a referral made by ``seal_referral``; return its reference. Idempotent per conversation."""
    _check_sealed(sealed, SEALED_REFERRAL_FIELDS)
    if sealed["outcome"] not in REFERRAL_OUTCOMES:
        raise ValueError(f"outcome must be one of {REFERRAL_OUTCOMES}")
    conversation_id = sealed["conversation_id"]
    existing = _referral_reference_for(engine, conversation_id)
    if existing:
        return existing
    for _ in range(_MAX_TRIES):
        reference = new_reference()
        try:
            with engine.begin() as conn:
                conn.execute(
                    insert(referrals).values(
                        reference=reference,
                        status="new",
                        notified_at=None,
                        notify_attempts=0,
                        last_notify_error=None,
                        **sealed,
                    )
                )
            return reference
        except IntegrityError:
            # Either another request made this conversation's referral at the
            # same moment (return that one) or the code was taken (try another).
            existing = _referral_reference_for(engine, conversation_id)
            if existing:
                return existing
    raise RuntimeError(f"no free reference code after {_MAX_TRIES} tries")


def _check_sealed(sealed: Mapping[str, Any], fields: frozenset) -> None:
    """ValueError unless ``sealed`` has exactly ``fields``, a conversation id and a creation time."""
    if set(sealed) != fields:
        raise ValueError("not a sealed record: unexpected or missing fields")
    if not isinstance(sealed["conversation_id"], str) or not sealed["conversation_id"]:
        raise ValueError("conversation_id is required")
    if not isinstance(sealed["created_at"], dt.datetime):
        raise ValueError("created_at must be a datetime")


def _referral_reference_for(engine: Engine, conversation_id: str) -> Optional[str]:
    with engine.connect() as conn:
        return conn.execute(
            select(referrals.c.reference).where(referrals.c.conversation_id == conversation_id)
        ).scalar()


def get_referral(engine: Engine, reference: str) -> Optional[Dict[str, Any]]:
    """The stored row for ``reference`` (encrypted columns as stored), or None."""
    with engine.connect() as conn:
        row = conn.execute(select(referrals).where(referrals.c.reference == reference)).first()
    return dict(row._mapping) if row else None


def referral_for_conversation(engine: Engine, conversation_id: str) -> Optional[Dict[str, Any]]:
    """The stored row of this conversation's referral, or None."""
    with engine.connect() as conn:
        row = conn.execute(
            select(referrals).where(referrals.c.conversation_id == conversation_id)
        ).first()
    return dict(row._mapping) if row else None


def decrypt_referral(row: Mapping[str, Any], key: Key) -> Dict[str, Any]:
    """A referral row with ``contact``, ``answers`` and ``reasons`` in clear.

    The ``*_encrypted`` columns are left out. Raises
    ``clinic.storage.crypto.DecryptionError`` if ``key`` is not the one used to store it.
    """
    plain = {k: v for k, v in dict(row).items() if not k.endswith("_encrypted")}
    sealed = decrypt_json(key, row["answers_encrypted"])
    plain["contact"] = decrypt_json(key, row["contact_encrypted"])
    plain["answers"] = sealed.get("answers", {})
    plain["reasons"] = sealed.get("reasons", [])
    return plain


def pending_notifications(engine: Engine) -> List[Dict[str, Any]]:
    """Referrals whose clinician notice has not been sent yet, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(referrals).where(referrals.c.notified_at.is_(None)).order_by(referrals.c.id)
        )
        return [dict(r._mapping) for r in rows]


def mark_notified(engine: Engine, reference: str) -> None:
    """Record that the clinician notice for ``reference`` was sent now."""
    with engine.begin() as conn:
        conn.execute(
            update(referrals)
            .where(referrals.c.reference == reference)
            .values(notified_at=utcnow(), last_notify_error=None)
        )


def record_notify_failure(engine: Engine, reference: str, error_name: str) -> None:
    """Count a failed notice; ``error_name`` is an exception class name, never a message."""
    with engine.begin() as conn:
        conn.execute(
            update(referrals)
            .where(referrals.c.reference == reference)
            .values(
                notify_attempts=referrals.c.notify_attempts + 1,
                last_notify_error=error_name[:64],
            )
        )


def join_waitlist(
    engine: Engine, key: Key, conversation_id: str, state: str, contact: Mapping[str, Any]
) -> int:
    """Add a visitor from ``state`` (a two-letter code) to the waitlist; return the entry id.

    Idempotent per conversation: an existing entry's id is returned unchanged.
    """
    return store_sealed_waitlist_entry(engine, seal_waitlist_entry(key, conversation_id, state, contact))


SEALED_WAITLIST_FIELDS = frozenset(("conversation_id", "state", "contact_encrypted", "created_at"))


def seal_waitlist_entry(key: Key, conversation_id: str, state: str, contact: Mapping[str, Any]) -> Dict[str, Any]:
    """The waitlist row as it is stored (contact encrypted): what ``store_sealed_waitlist_entry`` takes."""
    state = (state or "").strip().upper()
    if not _STATE_RE.match(state):
        raise ValueError("state must be a two-letter US state code")
    if not conversation_id:
        raise ValueError("conversation_id is required")
    return {
        "conversation_id": conversation_id,
        "state": state,
        "contact_encrypted": encrypt_json(key, dict(contact)),
        "created_at": utcnow(),
    }


def store_sealed_waitlist_entry(engine: Engine, sealed: Mapping[str, Any]) -> int:
    """Store an entry made by ``seal_waitlist_entry``; return its id. Idempotent per conversation."""
    _check_sealed(sealed, SEALED_WAITLIST_FIELDS)
    if not isinstance(sealed["state"], str) or not _STATE_RE.match(sealed["state"]):
        raise ValueError("state must be a two-letter US state code")
    conversation_id = sealed["conversation_id"]
    existing = _waitlist_id_for(engine, conversation_id)
    if existing is not None:
        return existing
    try:
        with engine.begin() as conn:
            result = conn.execute(insert(waitlist).values(**sealed))
            return int(result.inserted_primary_key[0])
    except IntegrityError:
        existing = _waitlist_id_for(engine, conversation_id)
        if existing is None:
            raise
        return existing


def _waitlist_id_for(engine: Engine, conversation_id: str) -> Optional[int]:
    with engine.connect() as conn:
        return conn.execute(
            select(waitlist.c.id).where(waitlist.c.conversation_id == conversation_id)
        ).scalar()


def waitlist_entry_for(engine: Engine, conversation_id: str) -> Optional[Dict[str, Any]]:
    """The stored waitlist row of this conversation (contact still encrypted), or None."""
    with engine.connect() as conn:
        row = conn.execute(
            select(waitlist).where(waitlist.c.conversation_id == conversation_id)
        ).first()
    return dict(row._mapping) if row else None


def decrypt_waitlist_entry(row: Mapping[str, Any], key: Key) -> Dict[str, Any]:
    """A waitlist row with ``contact`` in clear and the encrypted column left out."""
    plain = {k: v for k, v in dict(row).items() if k != "contact_encrypted"}
    plain["contact"] = decrypt_json(key, row["contact_encrypted"])
    return plain
