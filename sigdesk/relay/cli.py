"""`sigdesk relay ...` on the relay's server: run it and manage its installs.

Imports nothing of the CRM (the VPS has none of its dependencies); the desktop's `sigdesk relay pair`
lives in sigdesk.relay_client.cli and is added to this group by sigdesk.cli.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import click
from sqlalchemy.orm import Session

from sigdesk.relay.installs import DEFAULT_MAX_BYTES, DEFAULT_MAX_EVENTS, Credentials, RelayError

MB = 1024 * 1024


def _db_option(command):
    return click.option(
        "--db",
        "db_url",
        envvar="SIGDESK_RELAY_DATABASE_URL",
        help="Relay database URL (default: SQLite relay.db in the data dir; any SQLAlchemy URL).",
    )(command)


def _database_url(obj: Any, db_url: str | None) -> str:
    if db_url:
        return db_url
    config = obj.config()
    config.ensure_data_dir()
    return f"sqlite:///{config.data_dir / 'relay.db'}"


@contextmanager
def _session(obj: Any, db_url: str | None) -> Iterator[Session]:
    from sigdesk.relay.schema import open_relay_database

    database = open_relay_database(_database_url(obj, db_url))
    try:
        with database.session() as session:
            yield session
    except RelayError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        database.dispose()


def _public_url(text: str) -> str:
    cleaned = text.strip().rstrip("/")
    parts = urlsplit(cleaned)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise click.BadParameter(
            f"'{text}' is not an http(s) address like https://relay.example.com", param_hint="--public-url"
        )
    return cleaned


def _show(credentials: Credentials, public_url: str, as_json: bool, heading: str) -> None:
    hook_url = f"{public_url}/hook/{credentials.hook_path}"
    if as_json:
        click.echo(
            json.dumps(
                {
                    "name": credentials.install.name,
                    "install": credentials.install.uid,
                    "webhook_url": hook_url,
                    "relay_url": public_url,
                    "verify_token": credentials.verify_token,
                    "pairing_code": credentials.pairing_code,
                }
            )
        )
        return
    click.echo(heading)
    click.echo("")
    click.echo("In Meta's dashboard (WhatsApp > Configuration > Webhook):")
    click.echo(f"  Callback URL:  {hook_url}")
    if credentials.verify_token:
        click.echo(f"  Verify token:  {credentials.verify_token}")
    click.echo(f"In SigDesk (Settings > Inbound), with relay address {public_url}:")
    click.echo(f"  Pairing code:  {credentials.pairing_code}  (one use, valid 7 days)")
    click.echo("")
    click.echo("These secrets are shown only now; the relay keeps only their hashes.")


@click.group()
def relay() -> None:
    """The relay tunnel: a public server that keeps Meta's webhooks until SigDesk pulls them."""


@relay.command("serve")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (put Caddy or nginx in front for HTTPS).",
)
@click.option("--port", default=8780, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--threads",
    default=16,
    show_default=True,
    type=click.IntRange(6, 256),
    help="Worker threads; each paired desktop's long-poll holds one.",
)
@click.option(
    "--max-body-mb",
    default=4,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Largest webhook body accepted (413 above).",
)
@click.option(
    "--keep-acked-days",
    default=7.0,
    show_default=True,
    type=click.FloatRange(0, 365),
    help="How long acknowledged events stay available for replay.",
)
@click.option(
    "--keep-unacked-days",
    default=30.0,
    show_default=True,
    type=click.FloatRange(1, 30),
    help="How long events nobody pulled are kept.",
)
@click.option(
    "--durable",
    is_flag=True,
    help="SQLite: sync every commit to disk, so answered events survive a power cut too (slower).",
)
@_db_option
@click.pass_obj
def serve(
    obj: Any,
    host: str,
    port: int,
    threads: int,
    max_body_mb: int,
    keep_acked_days: float,
    keep_unacked_days: float,
    durable: bool,
    db_url: str | None,
) -> None:
    """Run the relay (plain HTTP; TLS belongs to the reverse proxy)."""
    from datetime import timedelta

    from sigdesk.relay.server import create_relay_app, serve as run_relay

    app = create_relay_app(
        _database_url(obj, db_url),
        threads=threads,
        max_body_bytes=max_body_mb * MB,
        keep_acked=timedelta(days=keep_acked_days),
        keep_unacked=timedelta(days=keep_unacked_days),
        durable=durable,
    )
    try:
        run_relay(app, host, port, threads, echo=click.echo)
    except OSError as exc:
        raise click.ClickException(f"Cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


@relay.command("add-install")
@click.option("--name", required=True, help="Whose SigDesk this is, e.g. the business's name.")
@click.option(
    "--public-url",
    envvar="SIGDESK_RELAY_PUBLIC_URL",
    required=True,
    help="The relay's public HTTPS address (env SIGDESK_RELAY_PUBLIC_URL).",
)
@click.option(
    "--max-events",
    default=DEFAULT_MAX_EVENTS,
    show_default=True,
    type=click.IntRange(1),
    help="Quota: events kept for this install.",
)
@click.option(
    "--max-mb",
    default=DEFAULT_MAX_BYTES // MB,
    show_default=True,
    type=click.IntRange(1),
    help="Quota: megabytes kept for this install.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (for scripts).")
@_db_option
@click.pass_obj
def add_install(
    obj: Any, name: str, public_url: str, max_events: int, max_mb: int, as_json: bool, db_url: str | None
) -> None:
    """Add an install: prints its webhook URL, verify token and one-time pairing code."""
    from sigdesk.relay.installs import create_install

    public_url = _public_url(public_url)
    with _session(obj, db_url) as session:
        credentials = create_install(session, name, max_events, max_mb * MB)
    _show(credentials, public_url, as_json, f"Added install '{credentials.install.name}'.")


@relay.command("list-installs")
@click.option("--public-url", envvar="SIGDESK_RELAY_PUBLIC_URL", help="Print full webhook URLs with this base.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (for scripts).")
@_db_option
@click.pass_obj
def list_installs(obj: Any, public_url: str | None, as_json: bool, db_url: str | None) -> None:
    """List installs with their webhook address, pairing state and stored events."""
    from sigdesk.relay.installs import list_installs as all_installs

    base = _public_url(public_url) if public_url else ""
    with _session(obj, db_url) as session:
        rows = [
            {
                "name": item.name,
                "install": item.uid,
                "webhook_url": f"{base}/hook/{item.hook_path}",
                "state": "revoked" if item.revoked_at else ("paired" if item.token_hash else "waiting for pairing"),
                "stored_events": item.stored_events,
                "stored_mb": round(item.stored_bytes / MB, 1),
                "last_delivery_at": item.last_delivery_at.isoformat() if item.last_delivery_at else None,
                "last_poll_at": item.last_poll_at.isoformat() if item.last_poll_at else None,
            }
            for item in all_installs(session)
        ]
    if as_json:
        click.echo(json.dumps(rows))
        return
    if not rows:
        click.echo("No installs yet; add one with 'sigdesk relay add-install --name NAME'.")
    for row in rows:
        click.echo(f"{row['name']}  [{row['state']}]  {row['stored_events']} events ({row['stored_mb']} MB)")
        click.echo(f"  webhook: {row['webhook_url']}")
        click.echo(
            f"  last delivery: {row['last_delivery_at'] or 'never'}, last poll: {row['last_poll_at'] or 'never'}"
        )


@relay.command("revoke-install")
@click.option("--name", required=True)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_db_option
@click.pass_obj
def revoke_install(obj: Any, name: str, yes: bool, db_url: str | None) -> None:
    """Stop accepting and serving an install's events, and delete those stored."""
    from sigdesk.relay.installs import revoke_install as revoke

    if not yes:
        click.confirm(f"Revoke '{name}' and delete its stored events?", abort=True)
    with _session(obj, db_url) as session:
        install = revoke(session, name)
    click.echo(f"Revoked '{install.name}'. Its webhook address now answers 404 and its token no longer works.")


@relay.command("rotate-token")
@click.option("--name", required=True)
@click.option("--verify-token", "new_verify_token", is_flag=True, help="Also make a new verify token for Meta.")
@click.option(
    "--public-url",
    envvar="SIGDESK_RELAY_PUBLIC_URL",
    required=True,
    help="The relay's public HTTPS address (env SIGDESK_RELAY_PUBLIC_URL).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (for scripts).")
@_db_option
@click.pass_obj
def rotate_token(
    obj: Any, name: str, new_verify_token: bool, public_url: str, as_json: bool, db_url: str | None
) -> None:
    """End the desktop's current token and print a new pairing code (and verify token, if asked)."""
    from sigdesk.relay.installs import rotate_tokens

    public_url = _public_url(public_url)
    with _session(obj, db_url) as session:
        credentials = rotate_tokens(session, name, new_verify_token)
    _show(
        credentials,
        public_url,
        as_json,
        f"New credentials for '{credentials.install.name}'. The desktop must pair again; stored events wait for it.",
    )
