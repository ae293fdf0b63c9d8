"""The `sigdesk` command: start the app, and manage it from a terminal."""

from __future__ import annotations

import errno
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

from sigdesk import __version__
from sigdesk.features import COMMANDS, feature_command
from sigdesk.terminal import configure_logging, warn_url_password_argument

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from sigdesk.crypto import Cipher
    from sigdesk.db import Database

# Named, not imported: `sigdesk relay ...` on the relay's server must load none of the CRM. An error
# can only have been raised if its module was imported, so only those already loaded are looked up.
USER_ERRORS = (
    ("sigdesk.config", "ConfigError"),
    ("sigdesk.crypto", "DataKeyError"),
    ("sigdesk.crypto", "DecryptionError"),
    ("sigdesk.auth.services", "AccountError"),
    ("sigdesk.settings.specs", "SettingError"),
    ("sigdesk.errors", "UserError"),
)


def user_errors() -> tuple[type[Exception], ...]:
    return tuple(getattr(sys.modules[module], name) for module, name in USER_ERRORS if module in sys.modules)


@dataclass
class Context:
    data_dir: str | None
    database_url: str | None

    def config(self, **overrides):
        from sigdesk.config import Config

        return Config.from_env(self.data_dir, self.database_url, **overrides)

    def app(self, **overrides):
        from sigdesk.app import create_app

        return create_app(self.config(**overrides))

    def require_data_dir(self) -> None:
        """Commands that only read must not create an empty data dir (and a new data key) by mistake."""
        config = self.config()
        if not config.data_dir.is_dir():
            raise click.ClickException(
                f"There is no SigDesk data dir at {config.data_dir}: nothing is set up there yet. "
                "Give the data dir SigDesk uses with --data-dir (or SIGDESK_DATA_DIR), or start SigDesk once."
            )

    @contextmanager
    def database(self, existing: bool = False) -> Iterator[Database]:
        """The database, upgraded to head, for commands that open their own sessions; `existing`:
        refuse, rather than create, a data dir that is not there."""
        from sigdesk.db import Database, upgrade_to_head

        if existing:
            self.require_data_dir()
        config = self.config()
        config.ensure_data_dir()
        database = Database(config.database_url)
        try:
            upgrade_to_head(database, config.migrations_dir)
            yield database
        finally:
            database.dispose()

    @contextmanager
    def store(self, existing: bool = False) -> Iterator[tuple[Session, Cipher]]:
        """The database (upgraded to head) and the data key, for commands that change data."""
        from sigdesk.settings.services import open_cipher

        with self.database(existing) as database, database.session() as session:
            yield session, open_cipher(session, self.config().data_key_file)


class FriendlyGroup(click.Group):
    """Turns the errors a user can fix into one line and exit 1, instead of a traceback; imports a
    feature's commands (sigdesk.features.COMMANDS) only when one of them is run."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except Exception as exc:
            if isinstance(exc, user_errors()):
                raise click.ClickException(str(exc)) from exc
            raise

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is None and name in COMMANDS:
            command = feature_command(name)
            self.add_command(command, name)
        return command


pass_context = click.make_pass_decorator(Context)


@click.group(cls=FriendlyGroup, invoke_without_command=True)
@click.option(
    "--data-dir", envvar="SIGDESK_DATA_DIR", type=click.Path(file_okay=False), help="Where SigDesk keeps its data."
)
@click.option("--database-url", envvar="SIGDESK_DATABASE_URL", help="Database URL (default: SQLite in the data dir).")
@click.option("-v", "--verbose", is_flag=True, help="Log more.")
@click.version_option(__version__, prog_name="sigdesk")
@click.pass_context
def main(ctx: click.Context, data_dir: str | None, database_url: str | None, verbose: bool) -> None:
    """SigDesk, the WhatsApp CRM. With no command: a desktop window if a screen is available, else the LAN server."""
    configure_logging(verbose)
    if ctx.get_parameter_source("database_url") == click.core.ParameterSource.COMMANDLINE:
        warn_url_password_argument(database_url, "--database-url", "SIGDESK_DATABASE_URL")
    ctx.obj = Context(data_dir, database_url)
    if ctx.invoked_subcommand is None:
        from sigdesk.desktop import gui_problem

        if gui_problem() is None:
            ctx.invoke(desktop)
        else:
            click.echo(f"No desktop window here ({gui_problem()}); starting the LAN server.")
            ctx.invoke(serve)


@main.command()
@pass_context
def desktop(obj: Context) -> None:
    """Open SigDesk in its own window."""
    from sigdesk import datadir, desktop as window
    from sigdesk.server import settle_heap

    with datadir.hold(obj.config().data_dir, "the SigDesk window") as lock:
        app = obj.app()
        settle_heap()
        code = window.run(app, echo=click.echo, on_listening=lock.listening)
    sys.exit(code)


@main.command()
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535))
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 64))
@click.option(
    "--https",
    "use_https",
    is_flag=True,
    help="Serve over HTTPS (with a self-signed certificate made once, unless --cert/--key).",
)
@click.option("--cert", type=click.Path(dir_okay=False), help="PEM certificate (chain) for HTTPS; implies --https.")
@click.option("--key", type=click.Path(dir_okay=False), help="PEM private key belonging to --cert.")
@pass_context
def serve(obj: Context, host: str, port: int, threads: int, use_https: bool, cert: str | None, key: str | None) -> None:
    """Serve SigDesk to browsers on the office network."""
    from sigdesk import datadir
    from sigdesk.server import bind, https_listener, lan_addresses, serve as run_server, serve_https, stop_https

    if (cert is None) != (key is None):
        raise click.UsageError("Give both --cert and --key, or neither.")
    https = bool(use_https or cert)
    try:
        # held before create_app, which migrates and clears the running server's exports; the port is
        # taken next, so a second start names the first and a busy port leaves no new data dir behind
        with datadir.hold(obj.config().data_dir, "sigdesk serve --https" if https else "sigdesk serve") as lock:
            if https:
                from sigdesk.app import create_app
                from sigdesk.tls import certificate_for

                listener = https_listener(host, port, threads)
                try:
                    config = obj.config(https=True)
                    pair = certificate_for(config, cert, key, lan_addresses())
                    app = create_app(config)
                except BaseException:
                    stop_https(listener)
                    raise
                serve_https(app, host, port, pair, threads, click.echo, listener, lock.listening)
            else:
                sock = bind(host, port)
                try:
                    app = obj.app()
                except BaseException:
                    sock.close()
                    raise
                run_server(app, host, port, threads, click.echo, sock, lock.listening)
    except OSError as exc:
        # cheroot (HTTPS) keeps the errno only in its message
        if exc.errno == errno.EADDRINUSE or f"[Errno {errno.EADDRINUSE}]" in str(exc):
            raise click.ClickException(
                f"Port {port} is already in use on {host} (is SigDesk already running?). "
                # the whole command: a bare `sigdesk` (which fell back to serving) takes no --port itself
                f"Start it on another port: sigdesk serve --port {port + 1 if port < 65535 else port - 1}"
            ) from exc
        raise click.ClickException(f"Cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@pass_context
def db_upgrade(obj: Context) -> None:
    """Bring the database schema up to date (also done on every start)."""
    with obj.store():
        pass
    click.echo("Database is up to date.")
