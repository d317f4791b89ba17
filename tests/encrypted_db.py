"""Opening the project's SQLite files in tests: they are SQLCipher files (clinic.storage.encrypted_sqlite),
keyed from the clinic's key of the var/ folder beside them (a test stack's, a test's own), else of
this process's settings."""

from pathlib import Path
from typing import Any, Optional, Union

from clinic.storage import encrypted_sqlite


def key_for(path: Union[str, Path], var_dir: Optional[Path] = None) -> str:
    """The database key of the var/ folder that holds ``path`` (or ``var_dir``)."""
    folder = var_dir or next((p for p in Path(path).resolve().parents if (p / "encryption_key").exists()), None)
    return encrypted_sqlite.clinic_key(folder)


def connect(path: Union[str, Path], var_dir: Optional[Path] = None, **kwargs: Any) -> Any:
    """A keyed connection to the encrypted file ``path`` (made when missing), sqlite3's API."""
    return encrypted_sqlite.connect(path, key_for(path, var_dir), **kwargs)
