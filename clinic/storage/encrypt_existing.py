"""Encrypt the plain SQLite files an earlier version left under ``var/``, in place.

    python -m clinic.storage.encrypt_existing            # with the assistant stopped
    python -m clinic.storage.encrypt_existing --check    # only list what is still plain (exit 1 if any)

Earlier versions kept Rasa's tracker store, the clinic DB and the lock store as plain SQLite
files, which the assistant now refuses to open (``clinic.storage.encrypted_sqlite``). This converts
each plain one (and each plain database of ``var/backups/``) with SQLCipher's own
``sqlcipher_export``: the whole database, schema and search table included, is written into a
new file encrypted with the key derived from the clinic's key, checked (it opens with the key,
``integrity_check``, the same tables with the same row counts), then renamed over the plain file;
the plain file's WAL and SHM go with it. Files already encrypted are left alone, so running it
twice is harmless. A database another process holds open is refused: stop the assistant first.

The plain files are unlinked, not overwritten: their blocks may stay on the disk until reused.
Where that matters, the disk itself must be encrypted (SECURITY.md).
"""

import argparse
import os
import sqlite3
import sys
from pathlib import Path
from typing import Dict, List, Optional

from clinic.storage import encrypted_sqlite
from clinic.settings import get_settings


class EncryptError(Exception):
    pass


def candidates(var_dir: Optional[Path] = None) -> List[Path]:
    """Every SQLite file of the embedded store: the tracker store, the clinic DB, the lock store
    and the databases of each backup."""
    settings = get_settings()
    var_dir = var_dir or settings.var_dir
    paths = [var_dir / "tracker.db", var_dir / "clinic.db", var_dir / "locks.db"]
    for url in (settings.tracker_db_url, settings.clinic_db_url):
        if url.startswith("sqlite:///"):
            paths.append(Path(url[len("sqlite:///"):]))
    paths.extend(sorted((var_dir / "backups").glob("*/*.db")))
    unique: Dict[str, Path] = {}
    for path in paths:
        unique.setdefault(str(path.resolve()), path)
    return [p for p in unique.values() if p.is_file()]


def plain_files(var_dir: Optional[Path] = None) -> List[Path]:
    return [p for p in candidates(var_dir) if encrypted_sqlite.is_plain(p)]


def _counts(conn: sqlite3.Connection) -> Dict[str, int]:
    names = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "AND sql NOT LIKE 'CREATE VIRTUAL TABLE%'")]
    return {name: conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in names}


def encrypt_file(path: Path, hex_key: Optional[str] = None) -> None:
    """Encrypt the plain SQLite file ``path`` in place (see the module's docstring)."""
    hex_key = hex_key or encrypted_sqlite.clinic_key()
    if not encrypted_sqlite.is_plain(path):
        return
    plain = sqlite3.connect(str(path), timeout=0, isolation_level=None)
    try:
        try:  # nobody else may hold it: an exclusive lock, granted only to the only connection
            plain.execute("PRAGMA locking_mode=EXCLUSIVE")
            plain.execute("BEGIN EXCLUSIVE")
            plain.execute("ROLLBACK")
        except sqlite3.OperationalError:
            raise EncryptError(f"{path} is in use: stop the assistant (make run) first") from None
        plain.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        if plain.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise EncryptError(f"{path}: integrity check failed; restore it from a backup first")
        expected = _counts(plain)
        journal = plain.execute("PRAGMA journal_mode").fetchone()[0]
        user_version = plain.execute("PRAGMA user_version").fetchone()[0]
    finally:
        plain.close()
    target = path.with_name(f".{path.name}.encrypting")
    for leftover in (target, Path(f"{target}-wal"), Path(f"{target}-shm"), Path(f"{target}-journal")):
        if leftover.exists():
            leftover.unlink()
    conn = encrypted_sqlite.sqlcipher3.connect(str(path), isolation_level=None)  # no key: the plain file
    try:
        conn.execute(f"ATTACH DATABASE ? AS encrypted KEY \"x'{hex_key}'\"", (str(target),))
        conn.execute("SELECT sqlcipher_export('encrypted')")
        conn.execute(f"PRAGMA encrypted.user_version = {int(user_version)}")
        conn.execute("DETACH DATABASE encrypted")
    finally:
        conn.close()
    check = encrypted_sqlite.connect(target, hex_key, isolation_level=None)
    try:
        if check.execute("PRAGMA integrity_check").fetchone()[0] != "ok" or _counts(check) != expected:
            raise EncryptError(f"{path}: the encrypted copy differs from the plain file; nothing was changed")
        if journal == "wal":
            check.execute("PRAGMA journal_mode=WAL")
    finally:
        check.close()
    os.chmod(target, 0o600)
    os.replace(target, path)
    for side in (Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{target}-wal"), Path(f"{target}-shm")):
        if side.exists():
            side.unlink()


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clinic.storage.encrypt_existing", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only list the plain files (exit 1 when there are any)")
    args = parser.parse_args(argv)
    plain = plain_files()
    if args.check:
        for path in plain:
            print(f"plain: {path}")
        print("every SQLite file is encrypted" if not plain else f"{len(plain)} plain file(s)")
        return 1 if plain else 0
    if not plain:
        print("nothing to do: every SQLite file under var/ is encrypted")
        return 0
    for path in plain:
        try:
            encrypt_file(path)
        except (EncryptError, sqlite3.Error, encrypted_sqlite.Error) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"encrypted {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
