"""Encryption of health data at rest: JSON values sealed with Fernet.

Contact details and pre-screen answers are stored only as Fernet tokens
(AES-128-CBC with an HMAC-SHA256, timestamped). The key comes from
``Settings.encryption_key``; these functions take it as an argument and hold
no state.
"""

import json
from typing import Any, Union

from cryptography.fernet import Fernet, InvalidToken

Key = Union[bytes, str]


class DecryptionError(ValueError):
    """A token could not be opened: the wrong key, or damaged data."""


def _fernet(key: Key) -> Fernet:
    try:
        return Fernet(key)
    except (ValueError, TypeError):
        raise ValueError("not a valid Fernet key (32 url-safe base64-encoded bytes)") from None


def encrypt_json(key: Key, obj: Any) -> str:
    """``obj`` (anything JSON can hold) as a Fernet token (ASCII text)."""
    plain = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return _fernet(key).encrypt(plain.encode("utf-8")).decode("ascii")


def decrypt_json(key: Key, token: str) -> Any:
    """The value sealed in ``token``; DecryptionError if ``key`` cannot open it."""
    f = _fernet(key)
    try:
        plain = f.decrypt(token.encode("ascii") if isinstance(token, str) else token)
    except (InvalidToken, UnicodeEncodeError):
        raise DecryptionError(
            "cannot decrypt: the encryption key does not match the one the data was stored "
            "with (CLINIC_ENCRYPTION_KEY or var/encryption_key), or the data is damaged"
        ) from None
    return json.loads(plain.decode("utf-8"))
