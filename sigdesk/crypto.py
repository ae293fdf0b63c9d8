"""Encryption at rest for secrets stored in the database.

The data key lives in a file in the data dir (owner-only), never in the database, so a stolen
database file alone reveals no secret. The database keeps a check value so that a missing or
wrong key is noticed at start instead of silently replaced.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12
PREFIX = "v1:"
CHECK_PLAINTEXT = b"sigdesk-data-key-check"


class DataKeyError(Exception):
    """The data key is missing, unreadable or does not match the database."""


class DecryptionError(Exception):
    """A stored value could not be decrypted with the data key."""


class Cipher:
    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise DataKeyError("The data key has the wrong length")
        self._aead = AESGCM(key)

    def encrypt(self, plaintext: bytes, context: bytes = b"") -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext, context)
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def decrypt(self, token: str, context: bytes = b"") -> bytes:
        if not token.startswith(PREFIX):
            raise DecryptionError("Unknown ciphertext format")
        try:
            raw = base64.urlsafe_b64decode(token[len(PREFIX) :].encode("ascii"))
            return self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context)
        except (InvalidTag, ValueError) as exc:
            raise DecryptionError("Stored value does not decrypt with this data key") from exc

    def encrypt_str(self, plaintext: str, context: str = "") -> str:
        return self.encrypt(plaintext.encode("utf-8"), context.encode("utf-8"))

    def decrypt_str(self, token: str, context: str = "") -> str:
        return self.decrypt(token, context.encode("utf-8")).decode("utf-8")

    def make_check(self) -> str:
        return self.encrypt(CHECK_PLAINTEXT, b"check")

    def matches_check(self, check: str) -> bool:
        try:
            return self.decrypt(check, b"check") == CHECK_PLAINTEXT
        except DecryptionError:
            return False


def read_key(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise DataKeyError(
            f"The data key file {path} is missing. The database holds secrets encrypted with it; "
            "restore the file from your backup. SigDesk will not create a new key over encrypted data."
        ) from exc
    except OSError as exc:
        raise DataKeyError(f"Cannot read the data key file {path}: {exc.strerror}") from exc
    try:
        key = base64.urlsafe_b64decode(raw.strip())
    except ValueError as exc:
        raise DataKeyError(f"The data key file {path} is corrupted") from exc
    if len(key) != KEY_BYTES:
        raise DataKeyError(f"The data key file {path} is corrupted")
    return key


def create_key(path: Path) -> bytes:
    """Write a new key readable by the owner only; refuses to overwrite an existing file."""
    key = AESGCM.generate_key(bit_length=KEY_BYTES * 8)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(base64.urlsafe_b64encode(key) + b"\n")
    return key
