"""`sigdesk contacts import`: a progress bar, the counts on the last line, the refused rows next to the file;
exit 0 whenever the file could be read, non-zero with a clear message when it could not."""

from __future__ import annotations

import csv

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from sigdesk.cli import main
from sigdesk.models import Contact, ImportJob
from tests.commanding import audit

pytestmark = pytest.mark.database


def sigdesk(app, *args: str):
    config = app.extensions["sigdesk"].config
    return CliRunner().invoke(main, ["--data-dir", str(config.data_dir), "--database-url", config.database_url, *args])


def test_import_prints_counts_and_writes_the_refused_rows_next_to_the_file(app, tmp_path):
    source = tmp_path / "people.csv"
    source.write_text(
        "Mobile,Full name,Extra\n+49 170 1234567,Ann,x\n999,Bad,y\n+44 7911 123456,Bob,z\n", encoding="utf-8"
    )
    result = sigdesk(app, "contacts", "import", str(source), "--map", "Extra=notes")
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == "2 created, 0 updated, 1 rejected"
    with open(tmp_path / "people-errors.csv", encoding="utf-8-sig", newline="") as report:
        rows = list(csv.reader(report))
    assert rows[0] == ["Mobile", "Full name", "Extra", "line", "error"]
    assert rows[1][:4] == ["999", "Bad", "y", "3"]
    with app.extensions["sigdesk"].database.session() as session:
        assert session.scalar(select(Contact.notes).where(Contact.wa_id == "491701234567")) == "x"
        assert session.scalar(select(ImportJob.state)) == "done"
    assert audit(app, "contacts.import.start")[0].channel == "cli"
    again = sigdesk(app, "contacts", "import", str(source), "--mode", "update", "--errors", str(tmp_path / "e.csv"))
    assert again.output.strip().splitlines()[-1] == "0 created, 2 updated, 1 rejected"
    assert (tmp_path / "e.csv").exists()


@pytest.mark.parametrize(
    ("name", "data", "args", "message"),
    [
        ("missing.csv", None, [], "Cannot read"),
        ("empty.csv", b"", [], "The file is empty"),
        ("fake.xlsx", b"Phone\n+49 170 1234567\n", [], "not an Excel workbook"),
        (
            "two.csv",
            b"Phone,Mobile\n+49 170 1234567,+49 170 1234568\n",
            ["--map", "Mobile=phone"],
            "both mapped to phone",
        ),
        ("c.csv", b"Phone\n170 1234567\n", ["--country", "Q1"], "two-letter"),
    ],
)
def test_a_file_that_cannot_be_read_exits_non_zero_with_a_clear_message(app, tmp_path, name, data, args, message):
    path = tmp_path / name
    if data is not None:
        path.write_bytes(data)
    result = sigdesk(app, "contacts", "import", str(path), *args)
    assert result.exit_code != 0
    assert message in result.output


def test_import_undo_undoes_in_this_process_with_a_progress_bar_and_carries_on_a_stopped_one(app, tmp_path):
    source = tmp_path / "people.csv"
    source.write_text("Phone,Name\n+49 170 1234567,Ann\n+44 7911 123456,Bob\n", encoding="utf-8")
    assert sigdesk(app, "contacts", "import", str(source)).exit_code == 0
    with app.extensions["sigdesk"].database.session() as session:
        job_id = session.scalar(select(ImportJob.id))
    result = sigdesk(app, "contacts", "import-undo", str(job_id))
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == "2 deleted, 0 put back as they were, 0 kept"
    with app.extensions["sigdesk"].database.session() as session:
        assert session.scalar(select(ImportJob.state)) == "undone"
        assert not session.scalars(select(Contact)).all()
    assert audit(app, "contacts.import.undo")[0].channel == "cli"
    again = sigdesk(app, "contacts", "import-undo", str(job_id))
    assert again.exit_code != 0 and "undone already" in again.output
    missing = sigdesk(app, "contacts", "import-undo", "999")
    assert missing.exit_code != 0 and "no import 999" in missing.output


def test_import_undo_carries_on_an_undo_left_undoing(app, tmp_path):
    from sigdesk.actor import Actor
    from sigdesk.imports import commands

    source = tmp_path / "people.csv"
    source.write_text("Phone\n+49 170 1234567\n+44 7911 123456\n", encoding="utf-8")
    assert sigdesk(app, "contacts", "import", str(source)).exit_code == 0
    with app.extensions["sigdesk"].database.session() as session:
        job_id = session.scalar(select(ImportJob.id))
        commands.undo_import(session, Actor.system("web"), job_id)
    result = sigdesk(app, "contacts", "import-undo", str(job_id))
    assert result.exit_code == 0, result.output
    assert "2 deleted" in result.output


@pytest.mark.parametrize("given", ["-1", "0"])
def test_import_undo_of_a_negative_or_zero_id_is_a_range_error_not_an_unknown_option(app, given):
    result = sigdesk(app, "contacts", "import-undo", given)
    assert result.exit_code == 2, result.output
    assert f"Invalid value for 'JOB_ID': {given} is not in the range x>=1" in result.output
    assert "No such option" not in result.output
