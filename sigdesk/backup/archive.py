"""The tar stream inside a backup (format 2), written and read without tarfile's extra copies.

Members are plain ustar entries (any tar can list a decrypted stream). The work is a pipeline over
three threads: the caller reads and encrypts (or decrypts), one thread hashes with SHA-256, another
writes (see Pipeline); hashlib, AES-GCM and file I/O all let go of the GIL, so on a machine with two
cores or more the steps overlap, and nothing waits at the end of each file. Memory stays at a few
blocks whatever the size of the files.
"""

from __future__ import annotations

import hashlib
import tarfile
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from typing import BinaryIO

from sigdesk.backup.format import BackupError, DamagedBackup

BLOCK = 512
READ_BLOCK = 4 * 1024 * 1024
INLINE_HASH = 256 * 1024  # smaller files hash on the calling thread: a hand-off costs more than it saves
_ZEROS = bytes(2 * BLOCK)


class Pipeline:
    """Jobs run in order on one thread (a one-worker executor), at most `depth` behind the caller.

    What a job reads must not change afterwards: bytes, or views of bytes."""

    def __init__(self, executor: Executor, depth: int = 4) -> None:
        self.executor = executor
        self.depth = depth
        self._pending: deque[Future] = deque()

    def submit(self, fn: Callable, *args) -> Future:
        future = self.executor.submit(fn, *args)
        self._pending.append(future)
        while len(self._pending) > self.depth:
            self._pending.popleft().result()
        return future

    def wait(self) -> None:
        while self._pending:
            self._pending.popleft().result()


class Pipelined:
    """A file whose writes (and close) happen on a pipeline's thread."""

    def __init__(self, target: BinaryIO, pipeline: Pipeline) -> None:
        self.target = target
        self.pipeline = pipeline

    def write(self, data) -> int:
        self.pipeline.submit(self.target.write, data)
        return len(data)

    def flush(self) -> None:
        self.pipeline.wait()
        self.target.flush()

    def close_later(self, then: Callable[[], None] | None = None) -> None:
        def close() -> None:
            self.target.close()
            if then is not None:
                then()

        self.pipeline.submit(close)


def _done(value) -> Future:
    future: Future = Future()
    future.set_result(value)
    return future


class ArchiveWriter:
    """Appends members to a writable stream (the encrypting writer); close() writes the end marker."""

    def __init__(self, out: BinaryIO, hashing: Pipeline) -> None:
        self.out = out
        self.hashing = hashing

    def _header(self, name: str, size: int) -> None:
        info = tarfile.TarInfo(name)
        info.size = size
        info.mode = 0o600
        try:
            self.out.write(info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "strict"))
        except ValueError as exc:
            raise BackupError(f"Cannot store {name!r} in a backup: {exc}") from exc

    def add_file(self, name: str, source: BinaryIO, size: int, tick: Callable[[int], None]) -> Future:
        """Copy `size` bytes of `source` in; returns a future of their SHA-256 (hashing runs behind)."""
        self._header(name, size)
        digest = hashlib.sha256()
        inline = size <= INLINE_HASH
        remaining = size
        while remaining:
            block = source.read(min(READ_BLOCK, remaining))
            if not block:
                raise BackupError(f"{name} became shorter while it was being backed up")
            if inline:
                digest.update(block)
            else:
                self.hashing.submit(digest.update, block)
            self.out.write(block)
            remaining -= len(block)
            tick(len(block))
        self._pad(size)
        return _done(digest.hexdigest()) if inline else self.hashing.submit(digest.hexdigest)

    def add_bytes(self, name: str, data: bytes) -> None:
        self._header(name, len(data))
        self.out.write(data)
        self._pad(len(data))

    def _pad(self, size: int) -> None:
        if size % BLOCK:
            self.out.write(bytes(BLOCK - size % BLOCK))

    def close(self) -> None:
        self.out.write(_ZEROS)


class _Plain:
    """The decrypted chunks as one stream, handed on as views of the chunks themselves."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._view = memoryview(b"")

    def pieces(self, count: int) -> Iterator[memoryview]:
        while count:
            while not len(self._view):
                chunk = next(self._chunks, None)
                if chunk is None:
                    raise DamagedBackup("The backup's contents end in the middle of an entry; it is incomplete")
                self._view = memoryview(chunk)
            piece = self._view[:count]
            self._view = self._view[len(piece) :]
            count -= len(piece)
            yield piece

    def take(self, count: int) -> bytes:
        return b"".join(self.pieces(count))


class Entry:
    """One member as it streams past: name and size, then read it with copy_to() or read_all()."""

    def __init__(self, name: str, size: int, plain: _Plain) -> None:
        self.name, self.size, self._plain = name, size, plain

    def read_all(self) -> bytes:
        return self._plain.take(self.size)

    def copy_to(self, sink: BinaryIO | None, hashing: Pipeline, count_lines: bool = False) -> Future:
        """Write the member to `sink` (None: only check it); returns a future of (SHA-256, number of newlines)."""
        digest = hashlib.sha256()
        lines = [0]

        def absorb(piece: memoryview) -> None:
            digest.update(piece)
            if count_lines:
                lines[0] += piece.tobytes().count(b"\n")

        inline = self.size <= INLINE_HASH
        for piece in self._plain.pieces(self.size):
            if inline:
                absorb(piece)
            else:
                hashing.submit(absorb, piece)
            if sink is not None:
                sink.write(piece)
        if inline:
            return _done((digest.hexdigest(), lines[0]))
        return hashing.submit(lambda: (digest.hexdigest(), lines[0]))

    def finish(self) -> None:
        for _piece in self._plain.pieces(-self.size % BLOCK):
            pass


def entries(chunks: Iterator[bytes], check_name: Callable[[tarfile.TarInfo], str]) -> Iterator[Entry]:
    """Each member in turn; the caller must consume one (copy_to or read_all) before asking for the next."""
    plain = _Plain(chunks)
    while True:
        header = plain.take(BLOCK)
        if header == _ZEROS[:BLOCK]:
            return
        try:
            info = tarfile.TarInfo.frombuf(header, "utf-8", "strict")
        except (tarfile.HeaderError, UnicodeDecodeError) as exc:
            raise DamagedBackup(f"The backup's contents are damaged: {exc}") from exc
        if info.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
            raise DamagedBackup(f"The backup holds an unexpected entry {info.name!r}; it was not made by SigDesk")
        entry = Entry(check_name(info), info.size, plain)
        yield entry
        entry.finish()
