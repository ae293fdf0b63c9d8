"""`sigdesk settings`: read and change settings from a terminal (secrets from standard input)."""

from __future__ import annotations

import sys
from typing import Any

import click


@click.group()
def settings() -> None:
    """Read and change settings."""


@settings.command("set")
@click.argument("key")
@click.argument("value", required=False)
@click.option("--stdin", "from_stdin", is_flag=True, help="Read the value from standard input (for secrets).")
@click.pass_obj
def settings_set(obj: Any, key: str, value: str | None, from_stdin: bool) -> None:
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
@click.pass_obj
def settings_get(obj: Any, key: str, reveal: bool) -> None:
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
