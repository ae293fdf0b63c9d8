"""`sigdesk broadcasts ...`: follow and steer campaigns from the command line (a server without a browser).

The same commands as the pages and the API (sigdesk.broadcasts.commands), so a refusal reads the same and
exits 1: starting one already running, resuming one paused for a template Meta no longer approves. The
sending itself is the running SigDesk's (its worker); `watch` follows it until the campaign is done.
"""

from __future__ import annotations

import time
from typing import Any

import click

FINAL = ("completed", "cancelled")


@click.group("broadcasts")
def broadcasts() -> None:
    """List, start, pause, resume, cancel and watch broadcasts (the running SigDesk sends them)."""


def _line(data: Any) -> str:
    counts = data.counts
    done = counts["sent"] + counts["delivered"] + counts["read"] + counts["replied"]
    return (
        f"{data.status}: {done} sent ({counts['delivered'] + counts['read'] + counts['replied']} delivered, "
        f"{counts['read'] + counts['replied']} read, {counts['replied']} replied), {counts['failed']} failed, "
        f"{counts['skipped']} skipped, {counts['unknown']} unknown, "
        f"{counts['pending'] + counts['sending']} to go of {data.recipient_count}"
    )


@broadcasts.command("list")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 200), help="How many, newest first.")
@click.pass_obj
def list_command(obj: Any, limit: int) -> None:
    """Broadcasts, newest first: id, status, recipients, sent and failed, name."""
    from sigdesk.broadcasts import services

    with obj.database(existing=True) as database, database.session(write=False) as session:
        found = services.list_page(session, None, limit).items
    if not found:
        click.echo("No broadcasts yet.")
        return
    click.echo(f"{'ID':>6}  {'STATUS':<10} {'RECIPIENTS':>10} {'SENT':>8} {'FAILED':>7}  NAME")
    for item in found:
        sent = sum(item.counts[state] for state in ("sent", "delivered", "read", "replied"))
        click.echo(
            f"{item.id:>6}  {item.status:<10} {item.recipient_count:>10} {sent:>8} {item.counts['failed']:>7}  {item.name}"
        )


# A negative id is a value, not an option: `show -1` gets a range error rather than "No such option".
AN_ID = {"ignore_unknown_options": True}


@broadcasts.command("show", context_settings=AN_ID)
@click.argument("broadcast_id", type=click.IntRange(1))
@click.pass_obj
def show_command(obj: Any, broadcast_id: int) -> None:
    """A broadcast: its template, pace, schedule, status and recipients counted per state."""
    from sigdesk.broadcasts import audience, commands, services
    from sigdesk.db import utcnow

    with obj.database(existing=True) as database, database.session(write=False) as session:
        data = services.get(session, broadcast_id)
        failures = services.failure_groups(session, broadcast_id)
        # before the start, the audience as it is now (a walk through it); after, the counts say it all
        summary = (
            audience.summary(session, commands.get(session, broadcast_id), utcnow())
            if data.status in ("draft", "scheduled")
            else None
        )
    click.echo(f"Broadcast {data.id}: {data.name}")
    click.echo(f"Template: {data.template.name} ({data.template.language}, {data.template.category or 'no category'})")
    click.echo(f"Pace: {data.rate_per_second} messages/s")
    if data.scheduled_at:
        click.echo(f"Scheduled: {data.scheduled_at.isoformat()}")
    status = data.status
    if data.pause_kind:
        status += f" ({data.pause_kind}: {data.pause_reason or ''})"
    click.echo(f"Status: {status}")
    click.echo(f"Recipients: {data.recipient_count}")
    for state, count in data.counts.items():
        click.echo(f"  {state:<10} {count}")
    if summary is not None:
        click.echo(f"Will send: {summary.will_send}, in about {summary.duration_seconds} s at this pace")
        if summary.limit_used_share is not None:
            click.echo(f"Messaging limit: {summary.limit_used_share:.0%} of {summary.limit_tier} per 24 hours")
        for reason, count in summary.skipped_by_reason.items():
            click.echo(f"Skipped {count}: {reason}")
    for code, reason, count in failures:
        click.echo(f"Failed {count}: {reason or 'no reason given'}" + (f" (Meta {code})" if code else ""))


def _change(obj: Any, verb: str, broadcast_id: int) -> None:
    from sigdesk.actor import Actor
    from sigdesk.broadcasts import commands, services

    command = getattr(commands, verb)
    with obj.database(existing=True) as database:
        with database.session() as session:
            command(session, Actor.system("cli"), broadcast_id)
        with database.session(write=False) as session:
            data = services.get(session, broadcast_id)
    click.echo(f"Broadcast {broadcast_id} is {data.status}.")
    if data.status == "scheduled" and data.scheduled_at:
        click.echo(f"It starts at {data.scheduled_at.isoformat()}.")
    elif data.status == "running" and verb == "start":
        click.echo(f"{data.counts['pending']} recipients to send to, {data.counts['skipped']} skipped.")


@broadcasts.command("start", context_settings=AN_ID)
@click.argument("broadcast_id", type=click.IntRange(1))
@click.pass_obj
def start_command(obj: Any, broadcast_id: int) -> None:
    """Start a draft (at its scheduled time, if one is set and ahead)."""
    _change(obj, "start", broadcast_id)


@broadcasts.command("pause", context_settings=AN_ID)
@click.argument("broadcast_id", type=click.IntRange(1))
@click.pass_obj
def pause_command(obj: Any, broadcast_id: int) -> None:
    """Hold a running broadcast until it is resumed."""
    _change(obj, "pause", broadcast_id)


@broadcasts.command("resume", context_settings=AN_ID)
@click.argument("broadcast_id", type=click.IntRange(1))
@click.pass_obj
def resume_command(obj: Any, broadcast_id: int) -> None:
    """Go on sending a paused broadcast."""
    _change(obj, "resume", broadcast_id)


@broadcasts.command("cancel", context_settings=AN_ID)
@click.argument("broadcast_id", type=click.IntRange(1))
@click.pass_obj
def cancel_command(obj: Any, broadcast_id: int) -> None:
    """Stop a broadcast for good; recipients not yet sent to are skipped."""
    _change(obj, "cancel", broadcast_id)


@broadcasts.command("watch", context_settings=AN_ID)
@click.argument("broadcast_id", type=click.IntRange(1))
@click.option(
    "--interval", default=2.0, show_default=True, type=click.FloatRange(0.05, 60), help="Seconds between looks."
)
@click.option("--timeout", type=click.FloatRange(0), help="Give up after this many seconds (exit 1).")
@click.pass_obj
def watch_command(obj: Any, broadcast_id: int, interval: float, timeout: float | None) -> None:
    """Print the broadcast's progress whenever it changes, until it is completed or cancelled."""
    from sigdesk.broadcasts import services

    deadline = time.monotonic() + timeout if timeout is not None else None
    last = ""
    with obj.database(existing=True) as database:
        while True:
            with database.session(write=False) as session:
                data = services.get(session, broadcast_id)
            line = _line(data)
            if data.pause_kind:
                line += f" [paused: {data.pause_reason or data.pause_kind}]"
            if line != last:
                click.echo(line)
                last = line
            if data.status in FINAL:
                return
            if deadline is not None and time.monotonic() >= deadline:
                raise click.ClickException(f"Broadcast {broadcast_id} is still {data.status}; stopped watching.")
            time.sleep(interval)
