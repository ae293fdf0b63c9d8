"""What the import tests share: files written in the encodings and shapes people send, and an import run to
its end the way the worker runs it."""

from __future__ import annotations

import io
from pathlib import Path

from sigdesk.actor import Actor
from sigdesk.imports import commands, services
from sigdesk.models import ImportJob


def workbook(rows: list[list[object]]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def stored(app, name: str, data: bytes) -> str:
    """The file as uploaded: kept in the private imports folder, by the name start_import takes."""
    return services.save_upload(app.extensions["sigdesk"].config.data_dir, io.BytesIO(data), name)


def start(app, name: str, data: bytes, actor: Actor | None = None, **options) -> int:
    state = app.extensions["sigdesk"]
    upload = stored(app, name, data)
    with state.database.session() as session:
        job = commands.start_import(
            session, actor or Actor.system("cli"), state.config.data_dir, upload, name, **options
        )
        return job.id


def finish(app) -> None:
    """Run the worker's task until no import is left to do."""
    state = app.extensions["sigdesk"]
    for _ in range(1000):
        with state.database.session() as session:
            if not commands.work(session, state.config.data_dir):
                return
    raise AssertionError("the import did not finish")


def run(app, name: str, data: bytes, **options) -> ImportJob:
    job_id = start(app, name, data, **options)
    finish(app)
    with app.extensions["sigdesk"].database.session() as session:
        return session.get(ImportJob, job_id)


def path_of(app, name: str) -> Path:
    return services.private_dir(app.extensions["sigdesk"].config.data_dir) / name


def start_kind(app, kind: str, name: str, data: bytes, actor: Actor | None = None, **options) -> int:
    """An import of another kind (products, orders) started as the page and the CLI start it."""
    state = app.extensions["sigdesk"]
    upload = stored(app, name, data)
    with state.database.session() as session:
        job = commands.start_kind_import(
            session, actor or Actor.system("cli"), state.config.data_dir, upload, name, kind, **options
        )
        return job.id


def run_kind(app, kind: str, name: str, data: bytes, **options) -> ImportJob:
    job_id = start_kind(app, kind, name, data, **options)
    finish(app)
    with app.extensions["sigdesk"].database.session() as session:
        return session.get(ImportJob, job_id)


def refused(app, job_id: int) -> dict[int, str]:
    """The error report's reasons by line."""
    with app.extensions["sigdesk"].database.session() as session:
        rows = list(services.error_rows(session, session.get(ImportJob, job_id)))
    return {int(row[-2]): row[-1] for row in rows[1:]}
