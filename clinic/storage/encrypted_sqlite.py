"""Every SQLite file of the project encrypted whole with SQLCipher, keyed from the clinic's key.

The embedded default keeps three SQLite files under ``var/``: Rasa's tracker store
(``tracker.db``: every message, each pre-screen answer as a slot event), the clinic DB
(``clinic.db``: referrals, the console's conversation index and its search table) and the
conversation lock store (``locks.db``). Each is a SQLCipher database: every page of the file,
of its write-ahead log (``-wal``) and of a rollback journal is AES-256 encrypted and
HMAC-SHA512 authenticated (SQLCipher 4's defaults), so nothing of it reads without the key,
and SQL (search, the dashboard's JSON functions) works on it as before.

The key is derived from ``CLINIC_ENCRYPTION_KEY`` (else ``var/encryption_key``: one key for the
whole clinic, see ``clinic.settings.load_encryption_key``) with HKDF-SHA256, and given to
SQLCipher as a raw 256-bit key (``PRAGMA key = "x'...'"``): no passphrase derivation each time
a connection opens (PBKDF2 would cost ~140 ms a connection here). The driver is ``sqlcipher3``
(``sqlcipher3-binary``: SQLCipher 4 built into the wheel, the DB-API of Python's ``sqlite3``),
which SQLAlchemy 1.4's ``sqlite+pysqlcipher`` dialect loads; ``engine_url`` makes its URL.

A plain SQLite file where an encrypted one is expected is refused with a clear message
(``python -m clinic.storage.encrypt_existing`` converts one); so is a file encrypted with another key.
"""

import base64
from pathlib import Path
from typing import Any, Optional, Union

import sqlalchemy as sa
import sqlcipher3
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

Error = sqlcipher3.Error
DatabaseError = sqlcipher3.DatabaseError
OperationalError = sqlcipher3.OperationalError
PLAIN_HEADER = b"SQLite format 3\x00"  # the first 16 bytes of an unencrypted SQLite file
_HKDF_INFO = b"clinic sqlcipher database key v1"

PathLike = Union[str, Path]


class NotEncrypted(Exception):
    """A plain SQLite file where an encrypted one is expected."""

    def __init__(self, path: PathLike) -> None:
        super().__init__(f"{path} is a plain (unencrypted) SQLite file: run `python -m clinic.storage.encrypt_existing` "
                         "once, with everything stopped, to encrypt it with the clinic's key")


class WrongKey(Exception):
    """An encrypted file that the clinic's key does not open (another key, or damaged)."""

    def __init__(self, path: PathLike) -> None:
        super().__init__(f"{path} cannot be opened with the clinic's key (CLINIC_ENCRYPTION_KEY or "
                         "var/encryption_key): it was encrypted with another key, or it is damaged")


def database_key(encryption_key: Union[bytes, str]) -> str:
    """The raw SQLCipher key (64 hex digits) derived from the clinic's Fernet key."""
    raw = base64.urlsafe_b64decode(encryption_key if isinstance(encryption_key, bytes) else encryption_key.encode())
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(raw)
    return derived.hex()


def key_pragma(hex_key: str) -> str:
    """The statement that keys a connection (the first one it runs)."""
    if len(hex_key) != 64 or any(c not in "0123456789abcdefABCDEF" for c in hex_key):
        raise ValueError("a SQLCipher raw key is 64 hex digits")
    return f"PRAGMA key = \"x'{hex_key}'\""


def clinic_key(var_dir: Optional[PathLike] = None) -> str:
    """The database key of this process's clinic (``CLINIC_ENCRYPTION_KEY``, else the one in
    ``var_dir``, default the settings' ``var/``)."""
    from clinic.settings import get_settings, load_encryption_key

    return database_key(load_encryption_key(Path(var_dir) if var_dir else get_settings().var_dir))


def is_plain(path: PathLike) -> bool:
    """Whether ``path`` is an unencrypted SQLite file (an empty or missing file is not)."""
    try:
        with open(path, "rb") as f:
            return f.read(16) == PLAIN_HEADER
    except FileNotFoundError:
        return False


def connect(path: PathLike, hex_key: Optional[str] = None, check: bool = True, **kwargs: Any) -> Any:
    """A ``sqlcipher3`` connection (Python's ``sqlite3`` API) to the encrypted file ``path``
    (made when missing), keyed; ``check``: read the schema now, so that a plain file or a wrong
    key fails here (``NotEncrypted``, ``WrongKey``) rather than at the first statement."""
    if check and is_plain(_file_of(path)):
        raise NotEncrypted(path)
    conn = sqlcipher3.connect(str(path), **kwargs)
    try:
        conn.execute(key_pragma(hex_key or clinic_key()))
        if check:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except DatabaseError:
        conn.close()
        raise WrongKey(path) from None
    return conn


def _file_of(path: PathLike) -> str:
    """The file of a path or of a ``file:...?...`` URI."""
    text = str(path)
    if text.startswith("file:"):
        text = text[len("file:"):].split("?", 1)[0]
    return text


def engine_url(url: Union[str, sa.engine.URL], hex_key: Optional[str] = None) -> sa.engine.URL:
    """A ``sqlite:///`` URL as SQLAlchemy's ``sqlite+pysqlcipher`` one, with the raw key as its
    password (SQLAlchemy shows it as ``***``; the dialect keys each new connection with it). A
    URL made so already is returned as it is (unless another key is given)."""
    url = sa.engine.make_url(url) if isinstance(url, str) else url
    if url.get_driver_name() == "pysqlcipher" and url.password and hex_key is None:
        return url
    if url.get_backend_name() != "sqlite":
        raise ValueError("not a SQLite URL")
    if url.database in (None, "", ":memory:"):
        raise ValueError("an encrypted SQLite database needs a file")
    return url.set(drivername="sqlite+pysqlcipher", password=f"x'{hex_key or clinic_key()}'")


def refuse_plain(url: sa.engine.URL) -> None:
    """Raise ``NotEncrypted`` when the URL's file is a plain SQLite file."""
    database = url.database or ""
    if url.query.get("uri") in ("true", "1") or database.startswith("file:"):
        database = _file_of(database)
    if database and is_plain(database):
        raise NotEncrypted(database)


def create_engine(url: Union[str, sa.engine.URL], hex_key: Optional[str] = None, **kwargs: Any) -> sa.engine.Engine:
    """SQLAlchemy's engine for a ``sqlite:///`` URL, on the encrypted file (``engine_url``)."""
    encrypted = engine_url(url, hex_key)
    refuse_plain(encrypted)
    if kwargs.get("poolclass") is None:
        kwargs.setdefault("poolclass", sa.pool.QueuePool)  # the dialect's default is one connection per thread
    return sa.create_engine(encrypted, module=sqlcipher3, **kwargs)

