"""Deleting conversations with everything linked to them, one at a time (an admin) or by age.

    python -m clinic.console.purge [--days N]

deletes every conversation whose last activity is older than ``N`` days
(default: the ``RETENTION_DAYS`` setting, 365): its events in Rasa's tracker
store, its row in the conversation index, its tags and notes, its referral
(with the referral's workflow and notes), its waitlist entry, its handoff
requests and its flags. Clinic rows whose conversation has no events left and
that are older than the cut-off go too. It prints counts only, and writes one
audit entry as the system (action ``purge``).

The console reads the tracker store through a read-only engine; deleting is the
one thing that writes to it, through a short-lived writable engine made here
from ``TRACKER_DB_URL`` and used for nothing else. Deletes go in small batches,
each its own short transaction, so Rasa is never blocked for long.
"""

import argparse
import datetime as dt
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence

from sqlalchemy import create_engine, delete, event, func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.pool import NullPool

from clinic.storage import db, encrypted_sqlite, referral_spool
from clinic.console import auth, conversation_index as index

SYSTEM = {"id": None, "username": "system"}
BATCH = 200  # conversations per delete transaction

COUNT_NAMES = (
    "conversations", "events", "index_rows", "tags", "notes", "referrals", "referral_notes", "waitlist",
    "handoff_requests", "flags", "topic_picks", "urgent_notes", "ratings", "corrections", "spooled",
)


def tracker_writer(url: str) -> Engine:
    """A writable engine on the tracker store, for deletion only (no pool: closed after use)."""
    if url.startswith("sqlite:///"):
        engine = encrypted_sqlite.create_engine(url, poolclass=NullPool, connect_args={"timeout": 15})

        @event.listens_for(engine, "connect")
        def _busy(dbapi_connection: Any, _record: Any) -> None:
            cur = dbapi_connection.cursor()
            cur.execute("PRAGMA busy_timeout=15000")
            cur.close()

        return engine
    return create_engine(url, poolclass=NullPool)


def _chunks(items: Sequence[str], size: int = BATCH) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _linked_tables() -> List[Any]:
    return [
        ("index_rows", db.conversation_index), ("tags", db.conversation_tags), ("notes", db.conversation_notes),
        ("waitlist", db.waitlist), ("handoff_requests", db.handoff_requests), ("flags", db.conversation_flags),
        ("topic_picks", db.topic_picks), ("urgent_notes", db.urgent_handled), ("ratings", db.answer_ratings),
        ("corrections", db.corrections),
    ]


def linked_counts(engine: Engine, conversation_id: str) -> Dict[str, int]:
    """What the clinic DB holds for one conversation (for the confirm page)."""
    index.ensure_schema(engine)
    counts: Dict[str, int] = {}
    with engine.connect() as conn:
        for name, table in _linked_tables() + [("referrals", db.referrals)]:
            counts[name] = int(conn.execute(
                select(func.count()).select_from(table).where(table.c.conversation_id == conversation_id)).scalar() or 0)
    return counts


def _delete_clinic_rows(engine: Engine, ids: Sequence[str], counts: Dict[str, int]) -> None:
    referral_workflow = getattr(db, "referral_workflow", None)
    referral_notes = getattr(db, "referral_notes", None)
    with engine.begin() as conn:
        references = [r[0] for r in conn.execute(select(db.referrals.c.reference).where(db.referrals.c.conversation_id.in_(ids)))]
        if references:
            if referral_notes is not None:
                counts["referral_notes"] += conn.execute(
                    delete(referral_notes).where(referral_notes.c.reference.in_(references))).rowcount or 0
            if referral_workflow is not None:
                conn.execute(delete(referral_workflow).where(referral_workflow.c.reference.in_(references)))
        counts["referrals"] += conn.execute(delete(db.referrals).where(db.referrals.c.conversation_id.in_(ids))).rowcount or 0
        for name, table in _linked_tables():
            counts[name] += conn.execute(delete(table).where(table.c.conversation_id.in_(ids))).rowcount or 0


def delete_conversations(
    engine: Engine, tracker_url: str, conversation_ids: Sequence[str], spool: Optional[Path] = None
) -> Dict[str, int]:
    """Delete conversations and everything linked to them; returns counts of what went.

    ``spool`` is where referrals the clinic DB refused wait (clinic/storage/referral_spool.py; by default the
    one under the settings' var/): what waits there for these conversations goes first, or it would
    bring a deleted referral back once stored.
    """
    index.ensure_schema(engine)
    counts = {name: 0 for name in COUNT_NAMES}
    ids = list(dict.fromkeys(conversation_ids))
    if not ids:
        return counts
    counts["conversations"] = len(ids)
    if spool is None:
        from clinic.settings import get_settings

        spool = referral_spool.spool_dir(get_settings().var_dir)
    for conversation_id in ids:
        counts["spooled"] += referral_spool.discard(spool, conversation_id)
    writer = tracker_writer(tracker_url)
    try:
        for part in _chunks(ids):
            params = {f"s{i}": v for i, v in enumerate(part)}
            placeholders = ", ".join(f":s{i}" for i in range(len(part)))
            try:
                with writer.begin() as conn:
                    counts["events"] += conn.execute(text(f"DELETE FROM events WHERE sender_id IN ({placeholders})"), params).rowcount or 0
                    top = conn.execute(text("SELECT max(id) FROM events")).scalar()
            except (OperationalError, ProgrammingError) as exc:
                if "no such table" not in str(exc).lower() and "does not exist" not in str(exc).lower():
                    raise
                top = 0
            # SQLite hands out the ids of deleted newest rows again: the index must read them.
            index.lower_watermark(engine, int(top or 0))
            _delete_clinic_rows(engine, list(part), counts)
    finally:
        writer.dispose()
    return counts


def describe(counts: Dict[str, int]) -> str:
    """Counts for the audit log and the console (no ids, no text)."""
    return " ".join(f"{name}={counts.get(name, 0)}" for name in COUNT_NAMES)


def _tracker_rows(reader: Engine, sql: str, params: Dict[str, Any]) -> List[Any]:
    try:
        with reader.connect() as conn:
            return conn.execute(text(sql), params).fetchall()
    except (OperationalError, ProgrammingError):
        return []


def purge(engine: Engine, tracker_url: str, days: int, now: Optional[float] = None, reader: Optional[Engine] = None) -> Dict[str, int]:
    """Delete every conversation whose last activity is more than ``days`` days ago."""
    if days < 1:
        raise ValueError("days must be at least 1")
    from clinic.console.app import tracker_reader

    index.ensure_schema(engine)
    now = time.time() if now is None else now
    cutoff = now - days * 86400.0
    cutoff_dt = dt.datetime.utcfromtimestamp(cutoff)
    own_reader = reader is None
    reader = reader or tracker_reader(tracker_url)
    try:
        old = [r[0] for r in _tracker_rows(
            reader, "SELECT sender_id FROM events GROUP BY sender_id HAVING max(timestamp) < :cutoff", {"cutoff": cutoff})]
        present = {r[0] for r in _tracker_rows(reader, "SELECT DISTINCT sender_id FROM events", {})}
    finally:
        if own_reader:
            reader.dispose()
    # Clinic rows left without a conversation (its events gone some other way), past the cut-off too.
    orphans: set = set()
    with engine.connect() as conn:
        for table in (db.referrals, db.waitlist, db.handoff_requests, db.conversation_flags, db.conversation_notes,
                      db.conversation_tags):
            for (cid,) in conn.execute(select(table.c.conversation_id).where(table.c.created_at < cutoff_dt).distinct()):
                if cid not in present:
                    orphans.add(cid)
        for (cid,) in conn.execute(select(db.conversation_index.c.conversation_id).where(db.conversation_index.c.last_ts < cutoff)):
            if cid not in present:
                orphans.add(cid)
    counts = delete_conversations(engine, tracker_url, old + sorted(orphans - set(old)))
    counts["conversations"] = len(old)
    counts["orphans"] = len(orphans - set(old))
    # Index rows of conversations whose events went some other way (their clinic rows, if recent, stay).
    with engine.connect() as conn:
        stale = [cid for (cid,) in conn.execute(select(db.conversation_index.c.conversation_id)) if cid not in present]
    counts["index_rows"] += index.drop_rows(engine, stale) if stale else 0
    detail = f"older than {days} days: " + describe(counts) + f" orphans={counts['orphans']}"
    auth.audit(engine, SYSTEM, "purge", "conversation", "", detail)
    return counts


def main(argv: Optional[List[str]] = None) -> int:
    from clinic.settings import get_settings

    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m clinic.console.purge", description="Delete conversations past the retention period.")
    parser.add_argument("--days", type=int, default=settings.retention_days,
                        help=f"delete conversations with no activity for this many days (default RETENTION_DAYS: {settings.retention_days})")
    args = parser.parse_args(argv)
    if args.days < 1:
        parser.error("--days must be at least 1")
    engine = db.get_engine(settings.clinic_db_url)
    counts = purge(engine, settings.tracker_db_url, args.days)
    print(f"purge: conversations with no activity for {args.days} days")
    for name in COUNT_NAMES + ("orphans",):
        print(f"  {name}: {counts.get(name, 0)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
