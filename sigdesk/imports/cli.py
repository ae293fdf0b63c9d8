"""`sigdesk contacts import FILE`: import contacts from a CSV or Excel file, here and now, with a progress bar.

The `contacts` group lives here until the contacts feature has command-line commands of its own; other
contact commands can join it (contacts.add_command). The import runs in this process exactly as the
server's worker would run it (the job is claimed, so a running server leaves it alone), and is listed
on the Import page like any other, where it can be undone.
"""

from __future__ import annotations

import contextlib
import csv
from pathlib import Path
from typing import Any

import click

from sigdesk.terminal import progress_bar


@click.group("contacts")
def contacts() -> None:
    """Work with contacts: import them from a file, or undo an import."""


@contacts.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--map",
    "maps",
    multiple=True,
    metavar="COLUMN=FIELD",
    help="Map a column to a field (repeatable); "
    "fields: phone, name, email, company, city, country, language, notes, owner, tags, stage, consent, "
    "field:<key>, ignore. Columns not given are mapped from their names.",
)
@click.option(
    "--mode",
    type=click.Choice(["create", "update", "upsert"]),
    default="upsert",
    show_default=True,
    help="create: only new contacts; update: only existing ones; upsert: both.",
)
@click.option(
    "--country", metavar="CC", help="Country of numbers written without a country code (default: the setting)."
)
@click.option("--consent-source", metavar="TEXT", help="Where a consent column's words come from; confirms them.")
@click.option(
    "--errors",
    "errors_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the refused rows (default: FILE-errors.csv next to the file).",
)
@click.pass_obj
def import_contacts(
    obj: Any,
    file: Path,
    maps: tuple[str, ...],
    mode: str,
    country: str | None,
    consent_source: str | None,
    errors_file: Path | None,
) -> None:
    """Import contacts from a CSV or .xlsx FILE; exits 0 when the file could be read, whatever rows it refused."""
    from sigdesk.actor import Actor
    from sigdesk.errors import UserError
    from sigdesk.imports import commands, mapping, services

    try:
        source = open(file, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise click.ClickException(f"Cannot read {file}: {exc.strerror or exc}") from exc
    actor = Actor.system("cli")
    shown = 0
    with contextlib.ExitStack() as stack:
        stack.enter_context(source)
        bar = None

        def progress(done: int, total: int) -> None:
            nonlocal bar, shown
            if bar is None:
                bar = stack.enter_context(progress_bar(total, "Importing"))
            bar.update(done - shown)
            shown = done

        with obj.database() as database:
            data_dir = obj.config().data_dir
            try:
                given = mapping.parse_pairs(maps)
                stored = services.save_upload(data_dir, source, file.name, limit=1 << 62)
            except UserError as exc:
                raise click.ClickException(str(exc)) from exc
            try:
                with database.session() as session:
                    job = commands.start_import(
                        session,
                        actor,
                        data_dir,
                        stored,
                        file.name,
                        given,
                        mode,
                        country,
                        consent_confirmed=bool(consent_source),
                        consent_source=consent_source,
                        suggest=True,
                        claim=True,
                    )
                    job_id = job.id
            except UserError as exc:
                (services.private_dir(data_dir) / stored).unlink(missing_ok=True)
                raise click.ClickException(str(exc)) from exc
            with database.session() as session:
                try:
                    commands.run_step(session, actor, job_id, data_dir, seconds=float("inf"), progress=progress)
                except Exception:
                    commands.fail(session, actor, job_id, "The import stopped on an unexpected error")
                    raise
                job = services.get_job(session, job_id)
                commands.remove_upload(data_dir, job)
                written = _write_errors(session, job, errors_file or file.with_name(f"{file.stem}-errors.csv"))
    if bar is not None:
        click.echo("", err=True)
    if written is not None:
        click.echo(f"Refused rows, with their line and reason: {written}")
    if job.state == "failed":
        click.echo(f"{job.created} created, {job.updated} updated, {job.rejected} rejected")
        raise click.ClickException(f"The import stopped: {job.error}")
    click.echo(f"{job.created} created, {job.updated} updated, {job.rejected} rejected")


def _write_errors(session: Any, job: Any, target: Path) -> Path | None:
    from sigdesk.exports.services import create_private
    from sigdesk.imports.services import error_rows

    if not job.rejected:
        return None
    target.unlink(missing_ok=True)
    with create_private(target) as raw, open(raw.fileno(), "w", encoding="utf-8-sig", newline="", closefd=False) as out:
        writer = csv.writer(out)
        for row in error_rows(session, job):
            writer.writerow(row)
    return target


@contacts.command("import-undo")
@click.argument("job_id", type=int)
@click.pass_obj
def undo_import(obj: Any, job_id: int) -> None:
    """Undo import JOB_ID as a whole, here and now, with a progress bar (the Import page lists the ids).

    The undo is asked for as on the page, then worked through in this process; a running server's worker
    may take turns with it, and if this stops part-way the server's worker (or this command run again)
    carries on from where it stopped."""
    from sigdesk.actor import Actor
    from sigdesk.errors import UserError
    from sigdesk.imports import commands, services

    actor = Actor.system("cli")
    shown = 0
    with contextlib.ExitStack() as stack:
        bar = None

        def progress(done: int, total: int) -> None:
            nonlocal bar, shown
            if bar is None:
                bar = stack.enter_context(progress_bar(total, "Undoing"))
            bar.update(done - shown)
            shown = done

        with obj.database() as database:
            with database.session() as session:
                try:
                    job = services.get_job(session, job_id)
                    if job.state != "undoing":  # asked for already (the page, or a run stopped): carry on
                        commands.undo_import(session, actor, job_id)
                        session.commit()
                except UserError as exc:
                    raise click.ClickException(str(exc)) from exc
            with database.session() as session:
                try:
                    while commands.undo_step(session, actor, job_id, seconds=float("inf"), progress=progress):
                        pass
                except Exception:
                    commands.fail_undo(session, actor, job_id)
                    raise
                session.expire_all()
                job = services.get_job(session, job_id)
                state, counts = job.state, (job.deleted, job.restored, job.kept)
    if bar is not None:
        click.echo("", err=True)
    if state != "undone":
        raise click.ClickException(f"The undo stopped ({state}): {job.error or 'run this command again'}")
    click.echo(f"{counts[0]} deleted, {counts[1]} put back as they were, {counts[2]} kept")
