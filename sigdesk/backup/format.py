"""The backup file format: a short plain header, then AES-256-GCM chunks of a tar stream.

The format number in the header says what the tar stream holds: 1 = a logical dump of every
table (written by SigDesk before the SQLite file snapshot existed); 2 = the same, or the SQLite
database file itself. The container around it is the same for both, so both are read here.

Header (big-endian, HEADER_SIZE bytes):
    magic "SIGDESKB" | format u16 | kdf u8 (1 = scrypt) | log2(n) u8 | r u8 | p u8 |
    chunk size u32 | salt 16 | nonce prefix 8 | passphrase check 32

The key and a check value come from one scrypt derivation of the passphrase; the check lets a
wrong passphrase be told apart from a damaged file. Each chunk is sealed with nonce = prefix +
counter and associated data = header + chunk index + final flag, so a flipped byte, swapped
chunks, a changed header or a file cut at a chunk boundary all fail authentication. Memory stays
at a few chunks whatever the size of the backup.
"""

from __future__ import annotations

import hmac
import io
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

MAGIC = b"SIGDESKB"
FORMAT_VERSION = 2
OLDEST_FORMAT = 1
KDF_SCRYPT = 1
SALT_BYTES = 16
PREFIX_BYTES = 8
CHECK_BYTES = 32
TAG_BYTES = 16
DEFAULT_CHUNK = 4 * 1024 * 1024  # few enough chunks that per-chunk work is lost in the noise
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


class TruncatedBackup(DamagedBackup):
    """The file ends early (an interrupted copy or download): a fresh copy helps, unlike real damage."""


CUT_SHORT = "The backup file is cut short (truncated)"


@dataclass(frozen=True)
class KdfParams:
    """scrypt cost; 2**17 takes about half a second and 128 MiB, which is what makes guessing slow.

    The defaults are also the ceiling: SigDesk never writes more, so a header asking for more
    (a crafted file demanding gigabytes and minutes) is refused before anything is derived."""

    log2_n: int = 17
    r: int = 8
    p: int = 1

    def check(self) -> None:
        top = KdfParams.__dataclass_fields__
        ceiling = (top["log2_n"].default, top["r"].default, top["p"].default)
        if not (4 <= self.log2_n and 1 <= self.r and 1 <= self.p):
            raise DamagedBackup("The backup header has impossible key-derivation settings; the file is damaged")
        if self.log2_n > ceiling[0] or self.r > ceiling[1] or self.p > ceiling[2]:
            raise DamagedBackup(
                f"The backup header asks for key-derivation settings (n=2^{self.log2_n}, r={self.r}, p={self.p}) "
                f"beyond what SigDesk writes (at most n=2^{ceiling[0]}, r={ceiling[1]}, p={ceiling[2]}); "
                "it was not made by SigDesk or is damaged, so it was not opened"
            )


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
        if len(raw) < len(MAGIC) and MAGIC.startswith(raw):
            raise TruncatedBackup(f"{CUT_SHORT}: it ends before its header; copy it again from where it came from")
        if len(raw) < len(MAGIC) or raw[: len(MAGIC)] != MAGIC:
            raise DamagedBackup("This is not a SigDesk backup file")
        if len(raw) < HEADER_SIZE:
            raise TruncatedBackup(f"{CUT_SHORT}: its header is incomplete; copy it again from where it came from")
        magic, version, kdf, log2_n, r, p, chunk = _FIXED.unpack_from(raw)
        if version > FORMAT_VERSION:
            raise NewerBackup(
                f"This backup was made by a newer SigDesk (backup format {version}; this SigDesk reads "
                f"up to {FORMAT_VERSION}). Update SigDesk, then restore it."
            )
        if version < OLDEST_FORMAT or kdf != KDF_SCRYPT or not (1024 <= chunk <= MAX_CHUNK):
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


@dataclass(frozen=True)
class SealingKey:
    """A header and its key, derived ahead of time so the slow KDF can run while other work goes on."""

    header: Header
    key: bytes


def sealing_key(passphrase: str, kdf: KdfParams | None = None, chunk_size: int = DEFAULT_CHUNK) -> SealingKey:
    if not 1024 <= chunk_size <= MAX_CHUNK:
        raise BackupError(f"Chunk size {chunk_size} is outside 1 KiB..16 MiB")
    kdf = kdf or KdfParams()
    salt = os.urandom(SALT_BYTES)
    key, check = derive(passphrase, salt, kdf)
    return SealingKey(Header(FORMAT_VERSION, kdf, chunk_size, salt, os.urandom(PREFIX_BYTES), check), key)


class EncryptingWriter(io.RawIOBase):
    """A write-only file object: what is written comes out encrypted on `sink`. close() seals the last chunk.

    Whole chunks are sealed straight from the caller's buffer; only a partial chunk is copied and held."""

    def __init__(
        self,
        sink: BinaryIO,
        passphrase: str | SealingKey,
        kdf: KdfParams | None = None,
        chunk_size: int = DEFAULT_CHUNK,
    ) -> None:
        super().__init__()
        sealed = passphrase if isinstance(passphrase, SealingKey) else sealing_key(passphrase, kdf, chunk_size)
        self.header = sealed.header
        self._header_bytes = self.header.pack()
        self._aead = AESGCM(sealed.key)
        self._sink = sink
        self._size = self.header.chunk_size
        self._buffer = bytearray(self._size)  # reused: encrypt() copies out of it before it changes
        self._held = 0
        self._index = 0
        self.plain_bytes = 0
        sink.write(self._header_bytes)

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if self.closed:
            raise ValueError("write to a closed backup")
        view = memoryview(data).cast("B")
        length = len(view)
        self.plain_bytes += length
        size = self._size
        # Hold back at least one byte: only close() knows which chunk is the final one.
        if self._held:
            take = min(size - self._held, length)
            self._buffer[self._held : self._held + take] = view[:take]
            self._held += take
            view = view[take:]
            if not view:
                return length
            self._seal(self._buffer, final=False)
            self._held = 0
        start = 0
        while len(view) - start > size:
            self._seal(view[start : start + size], final=False)
            start += size
        rest = len(view) - start
        self._buffer[:rest] = view[start:]
        self._held = rest
        return length

    def _seal(self, plain, final: bool) -> None:
        aad = self._header_bytes + _AAD.pack(self._index, 1 if final else 0)
        self._sink.write(self._aead.encrypt(_nonce(self.header.prefix, self._index), plain, aad))
        self._index += 1

    def close(self) -> None:
        if not self.closed:
            self._seal(memoryview(self._buffer)[: self._held], final=True)
            self._held = 0
            self._sink.flush()
        super().close()


class DecryptingReader(io.RawIOBase):
    """A read-only file object over an encrypted backup; every byte it returns has been authenticated."""

    def __init__(self, source: BinaryIO, passphrase: str, record: int = 1) -> None:
        """`record`: the plaintext is a whole number of records (512 for a tar stream), which tells a
        file cut inside its last part from one whose last part was changed."""
        super().__init__()
        self._record = record
        self._plain_bytes = 0
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
            raise TruncatedBackup(f"{CUT_SHORT}: it ends before its last part; copy it again from where it came from")
        self._next = self._read_block() if len(block) == self._block else b""
        final = not self._next
        nonce = _nonce(self.header.prefix, self._index)
        try:
            self._plain = self._aead.decrypt(
                nonce, block, self._header_bytes + _AAD.pack(self._index, 1 if final else 0)
            )
        except InvalidTag:
            if final and (self._opens_as_middle(nonce, block) or self._ends_inside(block)):
                raise TruncatedBackup(
                    f"{CUT_SHORT}: it ends in or after part {self._index + 1}; copy it again from where it came from"
                ) from None
            raise DamagedBackup(
                f"The backup file is damaged: part {self._index + 1} fails its integrity check"
            ) from None
        self._pos = 0
        self._index += 1
        self._done = final
        self._plain_bytes += len(self._plain)
        return True

    def _ends_inside(self, block: bytes) -> bool:
        """The last part is too short to be whole: cut inside it rather than changed."""
        plain = len(block) - TAG_BYTES
        return plain < 0 or (self._plain_bytes + plain) % self._record != 0

    def _opens_as_middle(self, nonce: bytes, block: bytes) -> bool:
        try:
            self._aead.decrypt(nonce, block, self._header_bytes + _AAD.pack(self._index, 0))
        except InvalidTag:
            return False
        return True

    def chunks(self) -> Iterator[bytes]:
        """The rest of the plaintext, one authenticated chunk at a time, without copying it again."""
        if self._pos < len(self._plain):
            yield self._plain[self._pos :]
            self._pos = len(self._plain)
        while self._open_next():
            self._pos = len(self._plain)
            yield self._plain

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
