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
    from sigdesk.imports import commands, mapping

    def start(session: Any, actor: Any, data_dir: Path, stored: str) -> Any:
        return commands.start_import(
            session,
            actor,
            data_dir,
            stored,
            file.name,
            mapping.parse_pairs(maps),
            mode,
            country,
            consent_confirmed=bool(consent_source),
            consent_source=consent_source,
            suggest=True,
            claim=True,
        )

    run_file_import(
        obj,
        file,
        start,
        errors_file,
        lambda job: f"{job.created} created, {job.updated} updated, {job.rejected} rejected",
    )


def run_file_import(obj: Any, file: Path, start: Any, errors_file: Path | None, summary: Any) -> Any:
    """Copy FILE into the imports folder, start its import with `start(session, actor, data_dir, stored)`
    (claimed: the server's worker leaves it alone), run it here with a progress bar, write the refused rows
    next to it, print `summary(job)` as the last line of the output and return the finished job. A file that
    cannot be read, or a refused start, is a ClickException (exit 1); so is a run that stopped, after its
    summary."""
    from sigdesk.actor import Actor
    from sigdesk.errors import UserError
    from sigdesk.imports import commands, services

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
                stored = services.save_upload(data_dir, source, file.name, limit=1 << 62)
            except UserError as exc:
                raise click.ClickException(str(exc)) from exc
            try:
                with database.session() as session:
                    job = start(session, actor, data_dir, stored)
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
    click.echo(summary(job))
    if job.state == "failed":
        raise click.ClickException(f"The import stopped: {job.error}")
    return job


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


# A negative id is a value, not an option: `import-undo -1` gets a range error rather than "No such option".
@contacts.command("import-undo", context_settings={"ignore_unknown_options": True})
@click.argument("job_id", type=click.IntRange(min=1))
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
                removed = f"{job.removed} {job.kind} removed, " if job.kind != "contacts" else ""
    if bar is not None:
        click.echo("", err=True)
    if state != "undone":
        raise click.ClickException(f"The undo stopped ({state}): {job.error or 'run this command again'}")
    click.echo(f"{removed}{counts[0]} deleted, {counts[1]} put back as they were, {counts[2]} kept")


def _import_kind(kind: str, summary: Any) -> click.Command:
    """`sigdesk <kind> import FILE` for a kind of import other than contacts (products, orders)."""

    @click.command("import")
    @click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
    @click.option(
        "--map",
        "maps",
        multiple=True,
        metavar="COLUMN=FIELD",
        help="Map a column to a field (repeatable). Columns not given are mapped from their names.",
    )
    @click.option(
        "--option",
        "options",
        multiple=True,
        metavar="NAME=VALUE",
        help="The import's options (orders: country=CC, currency=EUR, status=delivered).",
    )
    @click.option(
        "--errors",
        "errors_file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Where to write the refused rows (default: FILE-errors.csv next to the file).",
    )
    @click.pass_obj
    def command(
        obj: Any, file: Path, maps: tuple[str, ...], options: tuple[str, ...], errors_file: Path | None
    ) -> None:
        from sigdesk.errors import UserError
        from sigdesk.imports import commands, mapping

        given: dict[str, str] = {}
        for pair in options:
            name, sep, value = pair.partition("=")
            if not sep or not name.strip():
                raise click.ClickException(f"--option takes NAME=VALUE, not '{pair}'")
            given[name.strip()] = value.strip()

        def start(session: Any, actor: Any, data_dir: Path, stored: str) -> Any:
            return commands.start_kind_import(
                session,
                actor,
                data_dir,
                stored,
                file.name,
                kind,
                mapping.parse_pairs(maps),
                given,
                suggest=True,
                claim=True,
            )

        try:
            run_file_import(obj, file, start, errors_file, summary)
        except UserError as exc:
            raise click.ClickException(str(exc)) from exc

    return command


@click.group("orders")
def orders() -> None:
    """Work with orders: import an order history from a file."""


orders.add_command(
    _import_kind(
        "orders",
        lambda job: (
            f"{job.created} orders, {job.lines} lines, {job.contacts_created} contacts created, {job.rejected} rejected"
        ),
    )
)
orders.commands["import"].help = (
    "Import historical orders from a CSV or .xlsx FILE: phone, ordered_at, sku, quantity, unit_price (or amount), "
    "currency, order_ref (and status, description). Lines with the same order_ref make one order. Exits 0 when "
    "the file could be read, whatever rows it refused; the last line counts what it did."
)


def _products_group() -> click.Group:
    """The sales feature's `products` group (sigdesk.sales.cli) with `import` added: the sales package may
    not import this one (imports depend on sales), so COMMANDS names this module's group."""
    from sigdesk.sales.cli import products as group

    return group


products = _products_group()
products.add_command(
    _import_kind("products", lambda job: f"{job.created} created, {job.updated} updated, {job.rejected} rejected")
)
products.commands["import"].help = (
    "Import products from a CSV or .xlsx FILE: sku, name, price, currency, category, active, reorder_days. "
    "A known SKU is updated, a new one created. Exits 0 when the file could be read, whatever rows it refused."
)
