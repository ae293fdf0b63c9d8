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
@click.option(
    "--role",
    type=click.Choice(["owner", "admin", "agent"]),
    help="Default: owner for the first user (who must be one), agent after that.",
)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.pass_obj
def user_create(obj: Any, email: str, name: str, role: str | None, password_stdin: bool) -> None:
    """Create a user (the password comes from stdin or a hidden prompt, never the command line)."""
    from sigdesk.actor import Actor
    from sigdesk.auth.services import add_user, new_user, user_count

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with obj.store() as (session, _cipher):
        first = user_count(session) == 0
    role = role or ("owner" if first else "agent")
    new = new_user(email, name, role, password)  # bcrypt outside the write
    with obj.store() as (session, _cipher):
        created = add_user(session, Actor.system("cli"), new)
    click.echo(f"Created {role} {created.email}.")


def _when(value: Any) -> str:
    from sigdesk.terminal import shown

    return shown(value and f"{value:%Y-%m-%d %H:%M} UTC")


def _last(value: Any) -> str:
    """When something last happened: a sign-in and a token's use both read NEVER before the first."""
    from sigdesk.terminal import NEVER

    return _when(value) if value else NEVER


@user.command("list")
@click.pass_obj
def user_list(obj: Any) -> None:
    """Print every user: email, role, whether active, two-factor and last sign-in."""
    from sigdesk.auth.services import list_users

    with obj.store(existing=True) as (session, _cipher):
        rows = [
            (u.email, u.name, u.role, "active" if u.is_active else "deactivated", u.totp_enabled, u.last_login_at)
            for u in list_users(session)
        ]
    if not rows:
        click.echo("No users yet: `sigdesk user create --email E --name N` makes the owner.")
        return
    for email, name, role, state, two_factor, last in rows:
        click.echo(f"{email}  {name}  {role}  {state}  2FA {'on' if two_factor else 'off'}  last sign-in {_last(last)}")


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

    with obj.store(existing=True) as (session, _cipher):
        owner = find_user(session, email)
        if owner is None:
            raise click.ClickException(f"No user with the email {email}")
        value = issue_api_token(session, Actor.system("cli"), owner, name)
    click.echo(value)


@token.command("list")
@click.option("--email", help="Only this user's tokens.")
@click.pass_obj
def token_list(obj: Any, email: str | None) -> None:
    """Print API tokens (never their values, which are not stored): id, user, name and dates."""
    from sigdesk.auth.services import find_user, list_api_tokens

    with obj.store(existing=True) as (session, _cipher):
        owner = find_user(session, email) if email else None
        if email and owner is None:
            raise click.ClickException(f"No user with the email {email}")
        rows = [
            (t.id, t.user.email, t.name, t.created_at, t.last_used_at, t.revoked_at)
            for t in list_api_tokens(session, owner)
        ]
    if not rows:
        click.echo("No API tokens.")
        return
    for token_id, user_email, name, created, used, revoked in rows:
        state = f"revoked {_when(revoked)}" if revoked else "live"
        click.echo(f"{token_id}  {user_email}  {name}  {state}  created {_when(created)}  last used {_last(used)}")


@user.command("deactivate")
@click.option("--email", required=True)
@click.pass_obj
def user_deactivate(obj: Any, email: str) -> None:
    """Stop a user from signing in; their sessions and API tokens end at once."""
    from sigdesk.actor import Actor
    from sigdesk.auth.services import find_user, set_active

    with obj.store(existing=True) as (session, _cipher):
        target = find_user(session, email)
        if target is None:
            raise click.ClickException(f"No user with the email {email}")
        live = sum(1 for row in target.api_tokens if row.revoked_at is None)
        set_active(session, Actor.system("cli"), target, False)
    click.echo(f"Deactivated {target.email}; {live} API token(s) revoked.")


@user.command("password")
@click.option("--email", required=True)
@click.option("--password-stdin", is_flag=True, help="Read the new password from standard input.")
@click.pass_obj
def user_password(obj: Any, email: str, password_stdin: bool) -> None:
    """Set a user's password (a forgotten one); their sessions and API tokens end."""
    from sigdesk.actor import Actor
    from sigdesk.auth.services import find_user, reset_password

    obj.require_data_dir()
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    with obj.store(existing=True) as (session, _cipher):
        target = find_user(session, email)
        if target is None:
            raise click.ClickException(f"No user with the email {email}")
        revoked = reset_password(session, Actor.system("cli"), target, password, obj.config().bcrypt_rounds)
    click.echo(f"Password changed for {email}; every session ended and {revoked} API token(s) revoked.")


@user.command("unlock")
@click.option("--email", required=True)
@click.pass_obj
def user_unlock(obj: Any, email: str) -> None:
    """Clear the sign-in lock an address gets after repeated failed sign-ins."""
    from sigdesk.actor import Actor
    from sigdesk.auth import throttle

    with obj.store(existing=True) as (session, _cipher):
        found = throttle.unlock(session, Actor.system("cli"), email)
    click.echo(f"Sign-in lock cleared for {email}." if found else f"{email} was not locked.")
