"""The `sigdesk` command: start the app, and manage it from a terminal."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

from sigdesk import __version__

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

    @contextmanager
    def database(self) -> Iterator[Database]:
        """The database, upgraded to head, for commands that open their own sessions."""
        from sigdesk.db import Database, upgrade_to_head

        config = self.config()
        config.ensure_data_dir()
        database = Database(config.database_url)
        try:
            upgrade_to_head(database, config.migrations_dir)
            yield database
        finally:
            database.dispose()

    @contextmanager
    def store(self) -> Iterator[tuple[Session, Cipher]]:
        """The database (upgraded to head) and the data key, for commands that change data."""
        from sigdesk.settings.services import open_cipher

        with self.database() as database, database.session() as session:
            yield session, open_cipher(session, self.config().data_key_file)


class FriendlyGroup(click.Group):
    """Turns the errors a user can fix into one line and exit 1, instead of a traceback; imports the
    command groups of LAZY_COMMANDS only when one of them is run."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except Exception as exc:
            if isinstance(exc, user_errors()):
                raise click.ClickException(str(exc)) from exc
            raise

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is None and name in LAZY_COMMANDS:
            command = LAZY_COMMANDS[name]()
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
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if not verbose:
        for noisy in ("alembic", "httpx", "httpcore"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
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
    from sigdesk import desktop as window

    sys.exit(window.run(obj.app(), echo=click.echo))


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
    from sigdesk.server import lan_addresses, serve as run_server, serve_https

    if (cert is None) != (key is None):
        raise click.UsageError("Give both --cert and --key, or neither.")
    try:
        if use_https or cert:
            from sigdesk.app import create_app
            from sigdesk.tls import certificate_for

            config = obj.config(https=True)
            pair = certificate_for(config, cert, key, lan_addresses())
            serve_https(create_app(config), host, port, pair, threads, echo=click.echo)
        else:
            run_server(obj.app(), host, port, threads, echo=click.echo)
    except OSError as exc:
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


@main.group()
def user() -> None:
    """Manage users."""


@user.command("create")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--role", type=click.Choice(["owner", "admin", "agent"]), default="agent", show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@pass_context
def user_create(obj: Context, email: str, name: str, role: str, password_stdin: bool) -> None:
    """Create a user (the password comes from stdin or a hidden prompt, never the command line)."""
    from sigdesk.actor import Actor
    from sigdesk.auth.services import add_user, new_user

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    new = new_user(email, name, role, password)
    with obj.store() as (session, _cipher):
        created = add_user(session, Actor.system("cli"), new)
    click.echo(f"Created {role} {created.email}.")


@main.group()
def token() -> None:
    """Personal API tokens."""


@token.command("create")
@click.option("--email", required=True)
@click.option("--name", default="CLI token", show_default=True)
@pass_context
def token_create(obj: Context, email: str, name: str) -> None:
    """Print a new API token for a user (shown once)."""
    from sigdesk.actor import Actor
    from sigdesk.auth.services import find_user, issue_api_token

    with obj.store() as (session, _cipher):
        owner = find_user(session, email)
        if owner is None:
            raise click.ClickException(f"No user with the email {email}")
        value = issue_api_token(session, Actor.system("cli"), owner, name)
    click.echo(value)


@main.group()
def settings() -> None:
    """Read and change settings."""


@settings.command("set")
@click.argument("key")
@click.argument("value", required=False)
@click.option("--stdin", "from_stdin", is_flag=True, help="Read the value from standard input (for secrets).")
@pass_context
def settings_set(obj: Context, key: str, value: str | None, from_stdin: bool) -> None:
    """Set KEY to VALUE (or to what stdin holds)."""
    from sigdesk.actor import Actor
    from sigdesk.settings.commands import save
    from sigdesk.settings.specs import spec_for

    if from_stdin == (value is not None):
        raise click.UsageError("Give a VALUE or --stdin, not both and not neither.")
    spec = spec_for(key)
    text = sys.stdin.read().rstrip("\r\n") if from_stdin else value
    with obj.store() as (session, cipher):
        save(session, Actor.system("cli"), cipher, {key: text})
    click.echo(f"{key} saved{' (encrypted)' if spec.secret else ''}.")


@settings.command("get")
@click.argument("key")
@click.option("--reveal", is_flag=True, help="Print secret values instead of masking them.")
@pass_context
def settings_get(obj: Context, key: str, reveal: bool) -> None:
    """Print the value of KEY."""
    from sigdesk.settings import services as store
    from sigdesk.settings.specs import spec_for

    spec = spec_for(key)
    with obj.store() as (session, cipher):
        value = store.get(session, cipher, key)
    if spec.secret and not reveal:
        click.echo("(set; use --reveal to print)" if value else "(not set)")
    else:
        click.echo(spec.to_text(value) if value is not None else "")


def _relay() -> click.Command:
    """The relay service's commands (no CRM), plus the desktop's `pair`, which imports the CRM only when run."""
    from sigdesk.relay.cli import relay
    from sigdesk.relay_client.cli import pair

    relay.add_command(pair)
    return relay


def _backup() -> click.Command:
    from sigdesk.backup.cli import backup

    return backup


def _export() -> click.Command:
    from sigdesk.exports.cli import export

    return export


LAZY_COMMANDS: dict[str, Callable[[], click.Command]] = {"relay": _relay, "backup": _backup, "export": _export}
