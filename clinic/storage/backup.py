"""Backup and restore of the embedded store (the SQLite files under ``var/``).

    python -m clinic.storage.backup create [FOLDER]     # safe while the assistant runs
    python -m clinic.storage.backup restore FOLDER      # with the assistant stopped
    python -m clinic.storage.backup verify FOLDER

``create`` copies Rasa's tracker store (``TRACKER_DB_URL``) and the clinic DB
(``CLINIC_DB_URL``) with SQLite's online backup API: a consistent snapshot
taken page by page while Rasa, the action server, the web app and the console
go on writing (WAL mode), never a half-written file. Each copy is checked
(``PRAGMA integrity_check``) and listed with its size and SHA-256 in
``manifest.json``. The default folder is ``var/backups/<UTC time>``; the files
are created readable by their owner only, as they hold health data.

``restore`` checks every file of the backup against its manifest and for
integrity, refuses while another process holds a database (the assistant must
be stopped), keeps the current files as ``*.before-restore``, then puts the
backup in place (a copy renamed over the old file, so a crash mid-restore never
leaves half a database).

The files are SQLCipher databases (``clinic.storage.encrypted_sqlite``) and so are their copies: SQLite's
backup API copies them page by page into a file keyed with the same key, so a backup is as
unreadable without the clinic's key as the live files; ``verify`` opens each with the key (a file
that the key does not open, or a plain one, fails) besides the checksums and integrity.

Not in the backup: the encryption key (``CLINIC_ENCRYPTION_KEY`` or
``var/encryption_key``), which must be kept apart from the data it protects.
A PostgreSQL deployment backs up with ``pg_dump`` instead (docs/DEPLOYMENT.md).
"""

import argparse
import datetime as dt
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Dict, List, Optional

from clinic.storage import encrypted_sqlite
from clinic.settings import get_settings

MANIFEST = "manifest.json"


class BackupError(Exception):
    pass


def sqlite_path(url: str) -> Path:
    if not url.startswith("sqlite:///"):
        raise BackupError(f"not an embedded (SQLite) store: {url.split(':', 1)[0]}; back up PostgreSQL with pg_dump")
    return Path(url[len("sqlite:///"):])


def stores() -> Dict[str, Path]:
    """The embedded databases: name in the backup -> the live file."""
    settings = get_settings()
    return {"tracker.db": sqlite_path(settings.tracker_db_url), "clinic.db": sqlite_path(settings.clinic_db_url)}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _integrity(path: Path) -> None:
    """The file opens with the clinic's key (so it is encrypted, with that key) and is whole."""
    try:
        conn = encrypted_sqlite.connect(f"file:{path}?mode=ro", uri=True)
    except (encrypted_sqlite.NotEncrypted, encrypted_sqlite.WrongKey) as exc:
        raise BackupError(f"{path.name}: {exc}") from None
    try:
        result = conn.execute("PRAGMA integrity_check").fetchone()[0]
        errors = conn.execute("PRAGMA cipher_integrity_check").fetchall()  # each page's HMAC
    finally:
        conn.close()
    if result != "ok" or errors:
        raise BackupError(f"{path.name}: integrity check failed")


def _private_file(path: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(fd)


def create(folder: Optional[Path] = None) -> Path:
    """A consistent copy of every embedded store into ``folder``; returns the folder."""
    if folder is None:
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        folder = get_settings().var_dir / "backups" / stamp
    folder.mkdir(parents=True, exist_ok=False, mode=0o700)
    manifest: Dict[str, Dict[str, object]] = {}
    for name, live in stores().items():
        if not live.exists():
            continue
        target = folder / name
        _private_file(target)
        source = encrypted_sqlite.connect(f"file:{live}?mode=ro", uri=True, timeout=30)
        copy = encrypted_sqlite.connect(target, check=False)
        try:
            source.backup(copy, pages=1024)  # in steps, so writers are never held up for long
        finally:
            copy.close()
            source.close()
        _integrity(target)
        manifest[name] = {"bytes": target.stat().st_size, "sha256": _sha256(target)}
    if not manifest:
        raise BackupError("nothing to back up: no database file exists yet")
    (folder / MANIFEST).write_text(
        json.dumps({"created": dt.datetime.now(dt.timezone.utc).isoformat(), "files": manifest}, indent=2)
    )
    return folder


def verify(folder: Path) -> Dict[str, Dict[str, object]]:
    """The backup's manifest, after checking every file against it and for integrity."""
    try:
        files = json.loads((folder / MANIFEST).read_text())["files"]
    except (OSError, ValueError, KeyError):
        raise BackupError(f"{folder}: no readable {MANIFEST}; not a backup made by this tool") from None
    for name, facts in files.items():
        path = folder / name
        if name not in ("tracker.db", "clinic.db") or not path.is_file():
            raise BackupError(f"{folder}: {name} is missing")
        if _sha256(path) != facts["sha256"]:
            raise BackupError(f"{name}: changed since the backup was made (checksum differs)")
        _integrity(path)
    return files


def _in_use(live: Path) -> bool:
    """Whether another process has the database open (refused at once). Rasa's tracker store and
    the web app keep WAL connections open between turns, holding no lock then; in WAL mode an
    exclusive locking mode is granted only to a connection that is the database's only one."""
    if not live.exists():
        return False
    conn = encrypted_sqlite.connect(live, check=False, timeout=0, isolation_level=None)
    try:
        conn.execute("PRAGMA locking_mode=EXCLUSIVE")
        conn.execute("BEGIN EXCLUSIVE")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        conn.execute("ROLLBACK")
        return False
    except encrypted_sqlite.OperationalError:
        return True
    finally:
        conn.close()


def restore(folder: Path) -> List[str]:
    """Put a verified backup in place of the live files; returns the names restored."""
    files = verify(folder)
    live = stores()
    busy = [name for name in files if _in_use(live[name])]
    if busy:
        raise BackupError(f"{', '.join(busy)} in use: stop the assistant (make run) before restoring")
    restored = []
    for name in files:
        target = live[name]
        target.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("-wal", "-shm"):
            side = Path(f"{target}{suffix}")
            if side.exists():
                side.unlink()
        if target.exists():
            os.replace(target, Path(f"{target}.before-restore"))
        incoming = Path(f"{target}.restoring")
        shutil.copyfile(folder / name, incoming)
        os.chmod(incoming, 0o600)
        os.replace(incoming, target)
        restored.append(name)
    return restored


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clinic.storage.backup", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("create", help="back up the embedded store (safe while running)").add_argument("folder", nargs="?")
    sub.add_parser("restore", help="restore a backup (with the assistant stopped)").add_argument("folder")
    sub.add_parser("verify", help="check a backup").add_argument("folder")
    args = parser.parse_args(argv)
    try:
        if args.command == "create":
            folder = create(Path(args.folder) if args.folder else None)
            print(f"backup written to {folder}")
            print("the encryption key is not in it: keep CLINIC_ENCRYPTION_KEY / var/encryption_key apart")
        elif args.command == "verify":
            files = verify(Path(args.folder))
            print("backup ok: " + ", ".join(f"{n} ({f['bytes']} bytes)" for n, f in files.items()))
        else:
            names = restore(Path(args.folder))
            print(f"restored {', '.join(names)}; the previous files are kept as *.before-restore")
    except (BackupError, FileExistsError, encrypted_sqlite.Error, encrypted_sqlite.NotEncrypted,
            encrypted_sqlite.WrongKey) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
