"""The backup file format: a short plain header, then AES-256-GCM chunks of a tar stream.

Header (big-endian, HEADER_SIZE bytes):
    magic "SIGDESKB" | format u16 | kdf u8 (1 = scrypt) | log2(n) u8 | r u8 | p u8 |
    chunk size u32 | salt 16 | nonce prefix 8 | passphrase check 32

The key and a check value come from one scrypt derivation of the passphrase; the check lets a
wrong passphrase be told apart from a damaged file. Each chunk is sealed with nonce = prefix +
counter and associated data = header + chunk index + final flag, so a flipped byte, swapped
chunks, a changed header or a file cut at a chunk boundary all fail authentication. Memory stays
at about two chunks whatever the size of the backup.
"""

from __future__ import annotations

import hmac
import io
import os
import struct
from dataclasses import dataclass
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

MAGIC = b"SIGDESKB"
FORMAT_VERSION = 1
KDF_SCRYPT = 1
SALT_BYTES = 16
PREFIX_BYTES = 8
CHECK_BYTES = 32
TAG_BYTES = 16
DEFAULT_CHUNK = 1024 * 1024
MAX_CHUNK = 16 * 1024 * 1024
_FIXED = struct.Struct(">8sHBBBBI")
HEADER_SIZE = _FIXED.size + SALT_BYTES + PREFIX_BYTES + CHECK_BYTES
_AAD = struct.Struct(">QB")


class BackupError(Exception):
    """A backup cannot be written, read or restored; the message says why in the user's words."""


class WrongPassphrase(BackupError):
    pass


class DamagedBackup(BackupError):
    pass


class NewerBackup(BackupError):
    pass


@dataclass(frozen=True)
class KdfParams:
    """scrypt cost; 2**17 takes about half a second and 128 MiB, which is what makes guessing slow."""

    log2_n: int = 17
    r: int = 8
    p: int = 1

    def check(self) -> None:
        # Bounds also stop a crafted header from asking for unbounded memory.
        if not (4 <= self.log2_n <= 20 and 1 <= self.r <= 32 and 1 <= self.p <= 16):
            raise DamagedBackup("The backup header has impossible key-derivation settings; the file is damaged")


def derive(passphrase: str, salt: bytes, params: KdfParams) -> tuple[bytes, bytes]:
    """(key, check) from the passphrase."""
    if not passphrase:
        raise BackupError("The backup passphrase must not be empty")
    params.check()
    n = 2**params.log2_n
    out = Scrypt(salt=salt, length=64, n=n, r=params.r, p=params.p).derive(passphrase.encode("utf-8"))
    return out[:32], out[32:]


@dataclass(frozen=True)
class Header:
    version: int
    kdf: KdfParams
    chunk_size: int
    salt: bytes
    prefix: bytes
    check: bytes

    def pack(self) -> bytes:
        fixed = _FIXED.pack(MAGIC, self.version, KDF_SCRYPT, self.kdf.log2_n, self.kdf.r, self.kdf.p, self.chunk_size)
        return fixed + self.salt + self.prefix + self.check

    @classmethod
    def unpack(cls, raw: bytes) -> "Header":
        if len(raw) < len(MAGIC) or raw[: len(MAGIC)] != MAGIC:
            raise DamagedBackup("This is not a SigDesk backup file")
        if len(raw) < HEADER_SIZE:
            raise DamagedBackup("The backup file is truncated: its header is incomplete")
        magic, version, kdf, log2_n, r, p, chunk = _FIXED.unpack_from(raw)
        if version > FORMAT_VERSION:
            raise NewerBackup(
                f"This backup was made by a newer SigDesk (backup format {version}; this SigDesk reads "
                f"up to {FORMAT_VERSION}). Update SigDesk, then restore it."
            )
        if version < 1 or kdf != KDF_SCRYPT or not (1024 <= chunk <= MAX_CHUNK):
            raise DamagedBackup("The backup header is damaged")
        params = KdfParams(log2_n, r, p)
        params.check()
        at = _FIXED.size
        salt = raw[at : at + SALT_BYTES]
        prefix = raw[at + SALT_BYTES : at + SALT_BYTES + PREFIX_BYTES]
        check = raw[at + SALT_BYTES + PREFIX_BYTES : HEADER_SIZE]
        return cls(version, params, chunk, salt, prefix, check)


def _nonce(prefix: bytes, index: int) -> bytes:
    if index >= 2**32:
        raise BackupError("The backup is too large for this format")
    return prefix + index.to_bytes(4, "big")


class EncryptingWriter(io.RawIOBase):
    """A write-only file object: what is written comes out encrypted on `sink`. close() seals the last chunk."""

    def __init__(self, sink: BinaryIO, passphrase: str, kdf: KdfParams | None = None, chunk_size: int = DEFAULT_CHUNK) -> None:
        super().__init__()
        kdf = kdf or KdfParams()
        salt = os.urandom(SALT_BYTES)
        key, check = derive(passphrase, salt, kdf)
        self.header = Header(FORMAT_VERSION, kdf, chunk_size, salt, os.urandom(PREFIX_BYTES), check)
        self._header_bytes = self.header.pack()
        self._aead = AESGCM(key)
        self._sink = sink
        self._buffer = bytearray()
        self._index = 0
        self.plain_bytes = 0
        sink.write(self._header_bytes)

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if self.closed:
            raise ValueError("write to a closed backup")
        view = memoryview(data).cast("B")
        self._buffer += view
        self.plain_bytes += len(view)
        size = self.header.chunk_size
        # Hold back at least one byte: only close() knows which chunk is the final one.
        start = 0
        while len(self._buffer) - start > size:
            self._seal(bytes(self._buffer[start : start + size]), final=False)
            start += size
        if start:
            del self._buffer[:start]
        return len(view)

    def _seal(self, plain: bytes, final: bool) -> None:
        aad = self._header_bytes + _AAD.pack(self._index, 1 if final else 0)
        self._sink.write(self._aead.encrypt(_nonce(self.header.prefix, self._index), plain, aad))
        self._index += 1

    def close(self) -> None:
        if not self.closed:
            self._seal(bytes(self._buffer), final=True)
            self._buffer.clear()
            self._sink.flush()
        super().close()


class DecryptingReader(io.RawIOBase):
    """A read-only file object over an encrypted backup; every byte it returns has been authenticated."""

    def __init__(self, source: BinaryIO, passphrase: str) -> None:
        super().__init__()
        raw = source.read(HEADER_SIZE)
        self.header = Header.unpack(raw)
        self._header_bytes = raw
        key, check = derive(passphrase, self.header.salt, self.header.kdf)
        if not hmac.compare_digest(check, self.header.check):
            raise WrongPassphrase("Wrong passphrase for this backup")
        self._aead = AESGCM(key)
        self._source = source
        self._block = self.header.chunk_size + TAG_BYTES
        self._next = self._read_block()
        self._index = 0
        self._plain = b""
        self._pos = 0
        self._done = False

    def readable(self) -> bool:
        return True

    def _read_block(self) -> bytes:
        parts = []
        wanted = self._block
        while wanted:
            part = self._source.read(wanted)
            if not part:
                break
            parts.append(part)
            wanted -= len(part)
        return b"".join(parts)

    def _open_next(self) -> bool:
        if self._done:
            return False
        block = self._next
        if not block:
            raise DamagedBackup("The backup file is truncated: it ends before its last part")
        self._next = self._read_block() if len(block) == self._block else b""
        final = not self._next
        nonce = _nonce(self.header.prefix, self._index)
        try:
            self._plain = self._aead.decrypt(nonce, block, self._header_bytes + _AAD.pack(self._index, 1 if final else 0))
        except InvalidTag:
            if final and self._opens_as_middle(nonce, block):
                raise DamagedBackup(f"The backup file is truncated: it ends after part {self._index + 1}") from None
            raise DamagedBackup(f"The backup file is damaged: part {self._index + 1} fails its integrity check") from None
        self._pos = 0
        self._index += 1
        self._done = final
        return True

    def _opens_as_middle(self, nonce: bytes, block: bytes) -> bool:
        try:
            self._aead.decrypt(nonce, block, self._header_bytes + _AAD.pack(self._index, 0))
        except InvalidTag:
            return False
        return True

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        while self._pos >= len(self._plain):
            if not self._open_next():
                return 0
        count = min(len(view), len(self._plain) - self._pos)
        view[:count] = self._plain[self._pos : self._pos + count]
        self._pos += count
        return count

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        buffer = bytearray(size)
        count = self.readinto(buffer)
        return bytes(buffer[:count])

    def drain(self) -> None:
        """Read to the end so truncation after the last tar member is still noticed."""
        while self._open_next():
            pass
