"""`sigdesk settings`: read and change settings from a terminal (secrets from standard input)."""

from __future__ import annotations

import sys
from typing import Any

import click


@click.group()
def settings() -> None:
    """Read and change settings."""


# Negative numbers are values here, not options: `settings set retention.audit_days -5` gets a range error.
@settings.command("set", context_settings={"ignore_unknown_options": True})
@click.argument("key")
@click.argument("value", required=False)
@click.option("--stdin", "from_stdin", is_flag=True, help="Read the value from standard input (for secrets).")
@click.pass_obj
def settings_set(obj: Any, key: str, value: str | None, from_stdin: bool) -> None:
    """Set KEY to VALUE (or to what stdin holds)."""
    from sigdesk.actor import Actor
    from sigdesk.errors import UserError
    from sigdesk.settings.commands import save
    from sigdesk.settings.specs import SettingError, spec_for
    from sigdesk.terminal import warn_secret_argument

    if from_stdin == (value is not None):
        raise click.UsageError("Give a VALUE or --stdin, not both and not neither.")
    spec = spec_for(key)
    if spec.secret and not from_stdin:
        warn_secret_argument(f"the secret {key}")
    text = sys.stdin.read().rstrip("\r\n") if from_stdin else value
    try:
        spec.parse(text)  # refused before the data dir or database is touched
        with obj.store() as (session, cipher):
            save(session, Actor.system("cli"), cipher, {key: text})
    except (SettingError, UserError) as exc:
        raise click.ClickException(f"{key}: {exc}") from exc
    click.echo(f"{key} saved{' (encrypted)' if spec.secret else ''}.")


def _text(spec: Any, value: Any, reveal: bool) -> str:
    from sigdesk.terminal import shown

    if value is None or value == "":
        return shown(None)
    if spec.secret and not reveal:
        return "(set; use --reveal to print)"
    return spec.to_text(value)


@settings.command("get")
@click.argument("key")
@click.option("--reveal", is_flag=True, help="Print secret values instead of masking them.")
@click.pass_obj
def settings_get(obj: Any, key: str, reveal: bool) -> None:
    """Print the value of KEY ("(not set)" when it has none)."""
    from sigdesk.settings import services as store
    from sigdesk.settings.specs import spec_for

    spec = spec_for(key)
    with obj.store(existing=True) as (session, cipher):
        value = store.get(session, cipher, key)
    click.echo(_text(spec, value, reveal))


@settings.command("list")
@click.option("--reveal", is_flag=True, help="Print secret values instead of masking them.")
@click.pass_obj
def settings_list(obj: Any, reveal: bool) -> None:
    """Print every setting and its value ("(not set)" when it has none)."""
    from sigdesk.settings import services as store
    from sigdesk.settings.specs import SPECS

    with obj.store(existing=True) as (session, cipher):
        values = {key: store.get(session, cipher, key) for key in sorted(SPECS)}
    width = max(len(key) for key in values)
    for key, value in values.items():
        click.echo(f"{key.ljust(width)}  {_text(SPECS[key], value, reveal)}")
