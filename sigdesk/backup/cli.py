"""`sigdesk backup ...`: create, verify and restore encrypted backups from a terminal."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from sigdesk.backup.format import BackupError
from sigdesk.config import ConfigError
from sigdesk.crypto import DataKeyError
from sigdesk.terminal import quiet_unless_verbose

PHASES = {
    "snapshot": "Reading the database",
    "backup": "Encrypting",
    "verify": "Checking",
    "decrypt": "Decrypting",
    "load": "Loading rows",
}


class Bars:
    """One click progress bar per phase, on stderr so stdout stays for results; log lines print above it."""

    def __init__(self) -> None:
        self.phase: str | None = None
        self.bar = None
        self.shown = 0
        self.stack = ExitStack()

    def __call__(self, phase: str, done: int, total: int) -> None:
        from sigdesk.terminal import progress_bar

        if phase != self.phase:
            self.close()
            self.phase, self.shown = phase, 0
            self.bar = self.stack.enter_context(progress_bar(total, PHASES.get(phase, phase)))
        if done > self.shown:
            self.bar.update(done - self.shown)
            self.shown = done

    def close(self) -> None:
        if self.bar is not None:
            self.stack.close()
            self.bar = None


@contextmanager
def _friendly() -> Iterator[Bars]:
    bars = Bars()
    try:
        yield bars
    except (BackupError, ConfigError, DataKeyError) as exc:
        bars.close()
        raise click.ClickException(str(exc)) from exc
    bars.close()


def _passphrase(from_stdin: bool, confirm: bool) -> str:
    """The passphrase typed or piped in; a new one (confirm) is held to the password policy, while one to
    open an existing backup is taken as it is, since that backup was made with it."""
    from sigdesk.settings.specs import SettingError, check_backup_passphrase

    if from_stdin:
        value = sys.stdin.readline().rstrip("\r\n")
    else:
        value = click.prompt("Backup passphrase", hide_input=True, confirmation_prompt=confirm)
    if not value:
        raise click.ClickException("The backup passphrase must not be empty")
    if confirm:
        try:
            check_backup_passphrase(value)
        except SettingError as exc:
            raise click.ClickException(str(exc)) from None
    return value


def _quiet_unless_verbose():
    """The backup service's info lines (file written, restored) repeat the command's own last line."""
    return quiet_unless_verbose("sigdesk.backup")


passphrase_option = click.option(
    "--passphrase-stdin", is_flag=True, help="Read the backup passphrase from standard input instead of a prompt."
)


@click.group()
def backup() -> None:
    """Encrypted backups of the database, media and data key."""


@backup.command("create")
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    help="Backup file to write (default: a dated file in the backup folder of Settings → Backups, else here).",
)
@passphrase_option
@click.pass_obj
def backup_create(obj: Any, out: str | None, passphrase_stdin: bool) -> None:
    """Write an encrypted backup file; keep the passphrase safe, without it the backup cannot be read.
    Without --out it goes into the backup folder, so Settings → Backups lists it (else the current folder)."""
    from sigdesk.actor import Actor
    from sigdesk.backup import services as backups
    from sigdesk.db import Database, upgrade_to_head
    from sigdesk.settings import services as settings
    from sigdesk.settings.services import open_cipher

    obj.require_data_dir()  # a mistyped --data-dir is said at once, not after the passphrase
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    passphrase = _passphrase(passphrase_stdin, confirm=True)
    with _friendly() as bars, _quiet_unless_verbose():
        config = obj.config()
        config.ensure_data_dir()
        database = Database(config.database_url)
        try:
            upgrade_to_head(database, config.migrations_dir)
            if out:
                target, where = Path(out), None
            else:
                with database.session() as session:
                    folder = settings.get(session, open_cipher(session, config.data_key_file), "backup.folder")
                    session.commit()  # a new data dir's key check is stored with its key
                if folder:
                    target, where = Path(folder) / f"sigdesk-{stamp}.sigdesk-backup", "the backup folder"
                else:
                    target, where = (
                        Path.cwd() / f"sigdesk-{stamp}.sigdesk-backup",
                        "this folder; no backup folder is set",
                    )
            manifest = backups.run(database, config, Actor.system("cli"), passphrase, target, progress=bars)
        finally:
            database.dispose()
    rows = sum(entry["rows"] for entry in manifest["tables"].values())
    place = f"{where}; " if where else ""
    click.echo(f"Backup written to {target} ({place}{rows} rows, {manifest['media']['files']} media files).")


@backup.command("verify")
@click.argument("file", type=click.Path(dir_okay=False))
@passphrase_option
def backup_verify(file: str, passphrase_stdin: bool) -> None:
    """Decrypt FILE and check every checksum, without changing anything."""
    from sigdesk.backup import services as backups
    from sigdesk.config import resource_root

    passphrase = _passphrase(passphrase_stdin, confirm=False)
    with _friendly() as bars, _quiet_unless_verbose():
        manifest = backups.verify(Path(file), passphrase, progress=bars)
        bars.close()
        click.echo(
            f"Backup OK: SigDesk {manifest['sigdesk_version']}, schema {manifest['alembic_revision']}, "
            f"made {manifest['created_at']} from {manifest['source_backend']}."
        )
        for name, entry in manifest["tables"].items():
            if entry["rows"]:
                click.echo(f"  {name}: {entry['rows']} rows")
        click.echo(f"  media: {manifest['media']['files']} files, {manifest['media']['bytes']} bytes")
        backups.check_restorable(manifest, resource_root() / "migrations")


@backup.command("restore")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--into-data-dir",
    type=click.Path(file_okay=False),
    help="Restore into this new, empty folder instead of replacing the data dir.",
)
@click.option(
    "--into-database-url",
    envvar="SIGDESK_INTO_DATABASE_URL",
    help="Load the database into this empty database (e.g. MySQL) instead of SQLite "
    "(env SIGDESK_INTO_DATABASE_URL, which keeps its password out of the shell history).",
)
@passphrase_option
@click.pass_obj
def backup_restore(
    obj: Any, file: str, into_data_dir: str | None, into_database_url: str | None, passphrase_stdin: bool
) -> None:
    """Restore FILE. Without --into-data-dir the data dir is replaced, but only once the restore is complete
    and verified; the previous one is kept beside it. Stop SigDesk first."""
    from sigdesk import datadir
    from sigdesk.backup import services as backups
    from sigdesk.db import parse_url
    from sigdesk.terminal import hidden_password, warn_url_password_argument

    if click.get_current_context().get_parameter_source("into_database_url") == click.core.ParameterSource.COMMANDLINE:
        warn_url_password_argument(into_database_url, "--into-database-url", "SIGDESK_INTO_DATABASE_URL")
    # the next start needs the URL; printed without its password, and as the variable, never as an argument
    start_with = f"SIGDESK_DATABASE_URL set to {hidden_password(into_database_url)}" if into_database_url else ""
    if not into_data_dir:
        with _friendly():
            datadir.check_free(obj.config().data_dir, "sigdesk backup restore")
    passphrase = _passphrase(passphrase_stdin, confirm=False)
    with _friendly() as bars, _quiet_unless_verbose():
        if into_data_dir:
            backups.restore(Path(file), passphrase, Path(into_data_dir), into_database_url, progress=bars)
            bars.close()
            hint = f" and {start_with}" if start_with else ""
            click.echo(f"Restored into {into_data_dir}. Start SigDesk with --data-dir {into_data_dir}{hint}.")
            return
        config = obj.config()
        if not into_database_url:
            parsed = parse_url(config.database_url)
            expected = (config.data_dir / "sigdesk.db").absolute()
            if parsed.get_backend_name() != "sqlite" or Path(parsed.database or "").absolute() != expected:
                raise click.ClickException(
                    "Your database is not the SQLite file in the data dir; restore into a new, empty database "
                    "with --into-database-url URL (and optionally --into-data-dir DIR)."
                )
        _manifest, previous = backups.restore_in_place(
            Path(file), passphrase, config.data_dir, into_database_url, progress=bars
        )
        bars.close()
    click.echo(f"Restored into {config.data_dir}.")
    if previous is not None:
        click.echo(f"The previous data is kept in {previous}; delete it once you are happy.")
    if into_database_url:
        click.echo(f"Now start SigDesk with {start_with}.")
