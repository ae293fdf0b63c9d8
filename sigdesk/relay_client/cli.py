"""`sigdesk relay`: the relay service's own commands, plus `pair`, the one that runs on the desktop."""

from __future__ import annotations

from typing import Any

import click

from sigdesk.relay.cli import relay


@click.command("pair")
@click.option("--url", "relay_url", required=True, help="The relay's public address.")
@click.option("--code", required=True, help="The pairing code 'add-install' or 'rotate-token' printed.")
@click.pass_obj
def pair(obj: Any, relay_url: str, code: str) -> None:
    """On the desktop: pair this SigDesk with a relay and switch inbound webhooks to it."""
    from sigdesk.actor import Actor
    from sigdesk.errors import UserError
    from sigdesk.relay_client import client, commands
    from sigdesk.settings.specs import SettingError, parse_http_url

    try:
        url = parse_http_url(relay_url)
        with obj.store() as (session, cipher):
            url = commands.check_relay_address(session, Actor.system("cli"), cipher, url)
    except (SettingError, UserError) as exc:
        raise click.BadParameter(str(exc), param_hint="--url") from exc
    try:
        pairing = client.pair(url, code)
    except client.RelayProblem as exc:
        raise click.ClickException(f"Pairing failed: {exc}") from exc
    with obj.store() as (session, cipher):
        commands.pair(session, Actor.system("cli"), cipher, url, pairing)
    click.echo(f"Paired with the relay as '{pairing.name}'. SigDesk pulls events from it while it runs.")


relay.add_command(pair)
