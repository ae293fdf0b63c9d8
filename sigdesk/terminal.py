"""What every `sigdesk` command shares on the terminal: how unset values read, warnings about secrets
typed as arguments, and progress bars that log lines do not break. Imports nothing of SigDesk, so any
feature's cli.py can use it."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

# How every command prints a value that is not there (settings, a token's creation or revocation date).
UNSET = "(not set)"
# How every command prints when something last happened that has not happened yet (a sign-in, a token's use).
NEVER = "never"


def shown(value: Any) -> str:
    """A value as every command prints it: missing and empty values all read UNSET."""
    if value is None or value == "":
        return UNSET
    return str(value)


def warn_secret_argument(what: str, instead: str = "--stdin") -> None:
    """A secret typed on the command line stays in the shell's history and shows in `ps` to other users."""
    click.echo(
        f"Warning: {what} was given on the command line, where the shell history and other users "
        f"(ps) can see it; next time use {instead}.",
        err=True,
    )


def _database_url(url: str) -> Any:
    """The URL parsed, or None for one that cannot be (left to the command to refuse)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url)
    except (ArgumentError, ValueError):
        return None


def hidden_password(url: str) -> str:
    """A database URL as a command may print it: its password, if any, as ***."""
    parsed = _database_url(url)
    return parsed.render_as_string(hide_password=True) if parsed is not None else "(an unreadable database URL)"


def warn_url_password_argument(url: str | None, option: str, instead: str) -> None:
    """A database URL given as an argument shows its password to the shell history and `ps`: say so."""
    parsed = _database_url(url) if url else None
    if parsed is not None and parsed.password:
        warn_secret_argument(f"the database password in {option}", instead)


_bars: list[Any] = []


@contextmanager
def progress_bar(length: int, label: str) -> Iterator[Any]:
    """A click progress bar on stderr that log lines print above instead of in the middle of it."""
    with click.progressbar(length=max(length, 1), label=label, file=sys.stderr) as bar:
        _bars.append(bar)
        try:
            yield bar
        finally:
            _bars.remove(bar)


class BarSafeHandler(logging.StreamHandler):
    """Logs to stderr; while a progress bar is drawn there, clears its line, writes the log line and
    draws the bar again below it, so the two never run together."""

    def emit(self, record: logging.LogRecord) -> None:
        bar = _bars[-1] if _bars else None
        if bar is None or bar.file is not self.stream or not getattr(bar, "_is_atty", False):
            super().emit(record)
            return
        try:
            line = self.format(record)
            with self.lock:
                self.stream.write("\r\033[K" + line + "\n")
                self.stream.flush()
                bar._last_line = None  # click draws only a changed line: make it draw again
                bar.render_progress()
        except Exception:  # noqa: BLE001 - logging must never break the command (logging's own rule)
            self.handleError(record)


@contextmanager
def quiet_unless_verbose(logger_name: str) -> Iterator[None]:
    """A command's service logs its result at info level, which repeats the command's own last line: those
    lines show only with --verbose (as `sigdesk -v ...`); warnings and errors always do."""
    root = click.get_current_context().find_root()
    if root.params.get("verbose"):
        yield
        return
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=[BarSafeHandler()],
    )
    if not verbose:
        for noisy in ("alembic", "httpx", "httpcore"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
