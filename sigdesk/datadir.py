"""One SigDesk at a time per data dir: an OS lock held by `serve`, `desktop` and a restore.

A restore renames the data dir; a server still running would go on writing into the renamed old
folder and everything it wrote would be lost from the restored one. The lock is the operating
system's own (flock, or LockFileEx through msvcrt on Windows), so it ends with the process that held
it, however that process ended: no stale lock file to delete by hand. The file also says who holds it
(pid, what it is doing and, once it listens, its addresses), so the refusal can say where SigDesk
already runs and which process to stop.

The lock file sits beside the data dir (`<data dir>.lock`), not in it: a restore renames the data dir
while holding the lock, and Windows will not rename a folder with a file open inside it.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from sigdesk.config import ConfigError

LOCK_SUFFIX = ".lock"
_LOCK_OFFSET = 1 << 20  # Windows locks a byte range: one far past the text, so the text stays readable


class DataDirInUse(ConfigError):
    """Another process holds the data dir; the message names it and what to do."""


def _try_lock(handle: IO[str]) -> bool:
    if sys.platform == "win32":
        import msvcrt

        handle.seek(_LOCK_OFFSET)
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _unlock(handle: IO[str]) -> None:
    if sys.platform == "win32":
        import msvcrt

        handle.seek(_LOCK_OFFSET)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
    else:
        import fcntl

        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def lock_file(data_dir: Path) -> Path:
    """The data dir's lock file: beside it, so it survives the data dir being renamed, one per data dir."""
    data_dir = Path(data_dir).resolve()
    return data_dir.with_name(data_dir.name + LOCK_SUFFIX)


class Lock:
    """The held lock (what hold() yields): lets its holder say where it can be opened."""

    def __init__(self, handle: IO[str], what: str) -> None:
        self._handle = handle
        self._what = what

    def write(self, urls: list[str] | None = None) -> None:
        entry: dict = {"pid": os.getpid(), "what": self._what}
        if urls:
            entry["urls"] = list(urls)
        self._handle.seek(0)
        self._handle.write(json.dumps(entry) + "\n")
        self._handle.truncate()
        self._handle.flush()

    def listening(self, urls: list[str]) -> None:
        """Record the addresses this process answers on, once it listens, for a second start to show."""
        self.write(urls)


def holder(data_dir: Path) -> dict | None:
    """Who says they hold the lock ({"pid", "what"} and "urls" once listening), as written by hold();
    None if unknown."""
    try:
        text = lock_file(data_dir).read_text(encoding="utf-8").strip()
        found = json.loads(text) if text else None
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def _refusal(data_dir: Path, what: str) -> DataDirInUse:
    found = holder(data_dir) or {}
    pid = found.get("pid")
    urls = [url for url in found.get("urls") or () if isinstance(url, str)]
    if pid and urls:
        return DataDirInUse(
            f"SigDesk is already running at {' and '.join(urls)} (pid {pid}, {found.get('what') or 'SigDesk'}) "
            f"with the data dir {data_dir}: open it there. To run {what} instead, stop it first "
            f"(close its window or press Ctrl+C where it runs, or: kill {pid}), then try again."
        )
    by = f"{found.get('what') or 'SigDesk'} (process {pid})" if pid else "another SigDesk process"
    return DataDirInUse(
        f"The data dir {data_dir} is in use by {by}, so {what} cannot run now. "
        f"Stop that process first (close its window or press Ctrl+C where it runs"
        f"{f', or: kill {pid}' if pid else ''}), then try again."
    )


def check_free(data_dir: Path, what: str) -> None:
    """Refuse now (DataDirInUse) if another process holds the data dir, before a long task starts;
    the task itself still takes the lock with hold()."""
    if lock_file(data_dir).exists():
        with hold(data_dir, what):
            pass


@contextmanager
def hold(data_dir: Path, what: str) -> Iterator[Lock]:
    """Hold the data dir's lock for the block, or refuse at once (DataDirInUse) when another process holds it.

    `what` is how the refusal names this process to others, e.g. "sigdesk serve"; a server calls
    `listening(urls)` on the yielded Lock once it listens. Take it before anything touches the data dir
    (create_app migrates, makes the data key, clears exports). The data dir itself is not created: its
    parent is, to hold the lock file."""
    data_dir = Path(data_dir)
    path = lock_file(data_dir)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise ConfigError(f"Cannot use the data dir {data_dir}: {exc.strerror or exc}") from exc
    handle = os.fdopen(fd, "r+", encoding="utf-8")
    try:
        if not _try_lock(handle):
            raise _refusal(data_dir, what)
        lock = Lock(handle, what)
        lock.write()
        try:
            yield lock
        finally:
            handle.seek(0)
            handle.truncate()
            handle.flush()
            _unlock(handle)
    finally:
        handle.close()
