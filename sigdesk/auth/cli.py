"""`sigdesk user` and `sigdesk token`: team members and their API tokens from a terminal."""

from __future__ import annotations

import sys
from typing import Any

import click


@click.group()
def user() -> None:
    """Manage users."""


@user.command("create")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--role", type=click.Choice(["owner", "admin", "agent"]), default="agent", show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.pass_obj
def user_create(obj: Any, email: str, name: str, role: str, password_stdin: bool) -> None:
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


@click.group()
def token() -> None:
    """Personal API tokens."""


@token.command("create")
@click.option("--email", required=True)
@click.option("--name", default="CLI token", show_default=True)
@click.pass_obj
def token_create(obj: Any, email: str, name: str) -> None:
    """Print a new API token for a user (shown once)."""
    from sigdesk.actor import Actor
    from sigdesk.auth.services import find_user, issue_api_token

    with obj.store() as (session, _cipher):
        owner = find_user(session, email)
        if owner is None:
            raise click.ClickException(f"No user with the email {email}")
        value = issue_api_token(session, Actor.system("cli"), owner, name)
    click.echo(value)
