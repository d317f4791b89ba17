"""Referrals and waitlist entries that wait to be stored: a durable spool.

When the clinic DB cannot be written (locked, disk full, down), the action
server writes the sealed referral (``clinic.storage.referrals.seal_referral``: the
row as it will be stored, contact and answers already encrypted) to one file
per conversation and kind, ``var/spool/referrals/<kind>-<sha256 of the
conversation id>.json``, and stores it later (``drain``): at action-server
start and every few seconds while entries wait. A restart, a deploy or a
crash in between loses nothing.

A file holds ``{"version": 1, "kind": ..., "record": <Fernet token>}``: the
whole record is sealed once more with the clinic's encryption key, so that
nothing of the visitor (contact, answers, outcome, conversation id) is
readable in it. It is written atomically (a private temporary file, fsync,
then linked into place and the folder fsynced), mode 0600 in a 0700 folder;
a second write for the same conversation leaves the first (as
``create_referral`` keeps the first referral). Once stored, the file is
removed. A file that cannot be read (damaged, or sealed with another key) is
moved to ``corrupt/`` beside the entries and reported in the log, never
dropped. Several drainers (action-server workers) may run at once: each
entry is locked while it is stored, and storing is idempotent per
conversation. ``discard`` removes what waits for a conversation being deleted.
The notifier worker (``python -m clinic.mail.notifier``) logs how many wait and how
many were set aside, on each pass.

    python -m clinic.storage.referral_spool            # how many entries wait, how many were set aside
    python -m clinic.storage.referral_spool --drain    # store what waits now, and send the clinicians' notices

Logs hold counts, exception class names and file names (a hash) only.
"""

import argparse
import datetime as dt
import errno
import fcntl
import hashlib
import json
import logging
import os
import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from clinic.storage import referrals
from clinic.storage.crypto import Key, decrypt_json, encrypt_json

log = logging.getLogger(__name__)

VERSION = 1
CORRUPT_DIR = "corrupt"
_TMP_PREFIX = ".tmp-"
# A temporary file this old was left by a writer that died; it is drained (or set aside) like an entry.
STALE_TMP_S = 600.0

# kind -> (the fields of its sealed record, the function that stores it)
KINDS: Dict[str, Tuple[frozenset, Callable[[Engine, Mapping[str, Any]], Any]]] = {
    "referral": (referrals.SEALED_REFERRAL_FIELDS, referrals.store_sealed_referral),
    "waitlist": (referrals.SEALED_WAITLIST_FIELDS, referrals.store_sealed_waitlist_entry),
}


class SpoolEntryError(ValueError):
    """A spool file that cannot be read: damaged, of another version, or sealed with another key."""


def spool_dir(var_dir: Path) -> Path:
    """Where the entries of ``var_dir`` wait."""
    return Path(var_dir) / "spool" / "referrals"


def entry_name(kind: str, conversation_id: str) -> str:
    digest = hashlib.sha256(conversation_id.encode("utf-8")).hexdigest()
    return f"{kind}-{digest}.json"


def put(directory: Path, key: Key, kind: str, sealed: Mapping[str, Any]) -> Path:
    """Write ``sealed`` (a record of ``kind``) durably; return its file. Raises OSError if it cannot.

    The first entry of a conversation stands: a second one for the same
    conversation and kind is not written.
    """
    fields, _store = KINDS[kind]
    if set(sealed) != fields:
        raise ValueError(f"not a sealed {kind} record")
    record = dict(sealed, created_at=sealed["created_at"].isoformat())
    body = json.dumps({"version": VERSION, "kind": kind, "record": encrypt_json(key, record)}).encode("ascii")
    _make_dir(directory)
    path = directory / entry_name(kind, sealed["conversation_id"])
    tmp = directory / f"{_TMP_PREFIX}{path.name}.{os.getpid()}.{secrets.token_hex(4)}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(body)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # atomic, and never replaces an entry already there
        except FileExistsError:
            pass
        _fsync_dir(directory)
    finally:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
    return path


def read(path: Path, key: Key) -> Tuple[str, Dict[str, Any]]:
    """The kind and sealed record of a spool file; SpoolEntryError if it cannot be read."""
    try:
        data = json.loads(path.read_bytes().decode("ascii"))
        if not isinstance(data, dict) or data.get("version") != VERSION or data.get("kind") not in KINDS:
            raise SpoolEntryError("not a spool entry of this version")
        kind = data["kind"]
        record = decrypt_json(key, data["record"])
        if not isinstance(record, dict) or set(record) != KINDS[kind][0]:
            raise SpoolEntryError("unexpected or missing fields")
        record["created_at"] = dt.datetime.fromisoformat(record["created_at"])
    except SpoolEntryError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError) as exc:  # JSON, encoding, decryption, dates
        raise SpoolEntryError(type(exc).__name__) from None
    return kind, record


@dataclass
class DrainResult:
    stored: List[Tuple[str, Any]] = field(default_factory=list)  # (kind, reference or waitlist id)
    waiting: int = 0  # entries still in the spool (not stored this time)
    set_aside: int = 0  # unreadable entries moved to corrupt/ this time
    error: Optional[str] = None  # the class name of the database error that stopped the pass


def drain(directory: Path, engine: Engine, key: Key) -> DrainResult:
    """Store every entry waiting in ``directory``, oldest first; remove each once stored.

    The pass stops at the first OperationalError (the database locked, full or
    down: the other entries would wait out the same); what is left waits for
    the next pass. Another error leaves that entry waiting and goes on with the
    next. An entry that cannot be read, or that the store refuses
    (ValueError), is set aside.
    """
    result = DrainResult()
    for path in _entries(directory):
        if result.error is not None:
            result.waiting += 1
            continue
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:  # stored by another drainer meanwhile
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # another drainer has it now
                result.waiting += 1
                continue
            if os.fstat(fd).st_nlink == 0:  # stored and removed by another drainer
                continue
            try:
                kind, record = read(path, key)
                stored = KINDS[kind][1](engine, record)
            except ValueError as exc:  # SpoolEntryError included
                _set_aside(directory, path, type(exc).__name__)
                result.set_aside += 1
                continue
            except OperationalError as exc:  # the database: locked, full, down; the others would wait too
                result.error = type(exc).__name__
                result.waiting += 1
                continue
            except Exception as exc:  # this entry only: it waits, and the others are not held up by it
                log.warning("spool entry %s not stored (%s): it waits", path.name, type(exc).__name__)
                result.waiting += 1
                continue
            path.unlink()
            _fsync_dir(directory)
            result.stored.append((kind, stored))
        finally:
            os.close(fd)
    if result.stored:
        log.info("stored %d spooled referral(s) or waitlist entries", len(result.stored))
    if result.error:
        log.warning("%d spooled referral(s) or waitlist entries wait: the clinic DB refused a write (%s)",
                    result.waiting, result.error)
    return result


def discard(directory: Path, conversation_id: str) -> int:
    """Remove what waits for ``conversation_id`` (a conversation deleted); return how many files went.

    To be called before the conversation's rows are deleted from the clinic DB: an entry that a
    drainer is storing at that moment is waited for, and is then in the database.
    """
    names = [entry_name(kind, conversation_id) for kind in KINDS]
    try:
        found = [directory / n for n in os.listdir(directory)
                 if n in names or any(n.startswith(f"{_TMP_PREFIX}{name}.") for name in names)]
    except FileNotFoundError:
        return 0
    removed = 0
    for path in found:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_nlink:
                path.unlink()
                removed += 1
        finally:
            os.close(fd)
    if removed:
        _fsync_dir(directory)
    return removed


def counts(directory: Path) -> Tuple[int, int]:
    """How many entries wait, and how many were set aside as unreadable."""
    corrupt = directory / CORRUPT_DIR
    return len(_entries(directory)), len(list(corrupt.iterdir())) if corrupt.is_dir() else 0


def _entries(directory: Path) -> List[Path]:
    """The entry files, oldest first, with the temporary files of writers that died long ago."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    now = time.time()
    found = []
    for name in names:
        path = directory / name
        try:
            st = path.lstat()
        except FileNotFoundError:
            continue
        if not os.path.isfile(path) or path.is_symlink():
            continue
        if name.startswith(_TMP_PREFIX):
            if now - st.st_mtime < STALE_TMP_S:
                continue  # being written now
        elif not name.endswith(".json"):
            continue
        found.append((st.st_mtime, name, path))
    return [path for _, _, path in sorted(found)]


def _set_aside(directory: Path, path: Path, reason: str) -> None:
    corrupt = directory / CORRUPT_DIR
    _make_dir(corrupt)
    target = corrupt / f"{path.name.lstrip('.')}.{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    os.rename(path, target)
    _fsync_dir(directory)
    log.error("spool entry %s cannot be stored (%s): set aside in %s, to be looked at", path.name, reason, corrupt)


def _make_dir(directory: Path) -> None:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    if directory.stat().st_mode & 0o077:
        directory.chmod(0o700)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:  # some file systems cannot fsync a folder
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


def main(argv: Optional[List[str]] = None) -> int:
    from clinic.storage import db
    from clinic.mail import notifier
    from clinic.settings import get_settings

    parser = argparse.ArgumentParser(prog="python -m clinic.storage.referral_spool", description=__doc__.split("\n")[0])
    parser.add_argument("--drain", action="store_true", help="store what waits now and send the notices")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    directory = spool_dir(settings.var_dir)
    if args.drain:
        engine = db.get_engine(settings.clinic_db_url)
        result = drain(directory, engine, settings.encryption_key)
        for kind, reference in result.stored:
            if kind == "referral":
                notifier.notify_referral(engine, settings, reference)
        print(f"stored: {len(result.stored)}, set aside: {result.set_aside}")
    waiting, corrupt = counts(directory)
    print(f"waiting: {waiting}, set aside in {directory / CORRUPT_DIR}: {corrupt}")
    return 1 if waiting else 0


if __name__ == "__main__":
    sys.exit(main())
