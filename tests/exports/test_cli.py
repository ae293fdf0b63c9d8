"""`sigdesk export` writes what its file name says, for every --what: a zip for "all", CSV or JSON Lines for one
kind; a name that says otherwise is refused with the endings to use and a non-zero exit, before any work."""

from __future__ import annotations

import csv
import re
import json
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from sigdesk.cli import main
from sigdesk.exports.services import FORMATS, KINDS, WHAT
from tests import factories
from tests.commanding import audit, cli

ENDING = {"csv": ".csv", "json": ".jsonl"}


def sigdesk(app, *args: str):
    config = app.extensions["sigdesk"].config
    return CliRunner().invoke(main, ["--data-dir", str(config.data_dir), "--database-url", config.database_url, *args])


@pytest.fixture
def some_data(app):
    with app.extensions["sigdesk"].database.session() as session:
        factories.message(session, factories.conversation(session), text="Hello")
        factories.template(session, body="Your order is ready")
    return app


@pytest.mark.parametrize(
    ("what", "fmt", "name"),
    [
        ("all", "csv", "everything.csv"),
        ("all", "json", "everything.jsonl"),
        ("all", "csv", "everything"),
        ("contacts", "csv", "contacts.zip"),
        ("contacts", "json", "contacts.csv"),
        ("messages", "csv", "messages.jsonl"),
        ("conversations", "json", "conversations.txt"),
        ("templates", "csv", "templates.csv.zip"),
        ("audit", "json", "audit.xlsx"),
    ],
)
def test_a_file_name_that_says_another_format_is_refused_before_anything_is_written(app, tmp_path, what, fmt, name):
    out = tmp_path / "out" / name
    out.parent.mkdir()
    result = sigdesk(app, "export", "--what", what, "--format", fmt, "--out", str(out))
    assert result.exit_code == 1, result.output
    assert "end the file name with" in result.output
    assert (".zip" if what == "all" else ENDING[fmt]) in result.output
    assert list(out.parent.iterdir()) == []
    assert audit(app, "export.run") == []


def test_the_default_what_is_all_and_needs_a_zip(app, tmp_path):
    result = sigdesk(app, "export", "--out", str(tmp_path / "backup.csv"))
    assert result.exit_code == 1 and "--what all --format csv writes a zip" in result.output
    assert "backup.zip" in result.output


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("what", WHAT)
def test_every_what_writes_the_format_its_file_name_says(some_data, tmp_path, what, fmt):
    out = tmp_path / (f"{what}.zip" if what == "all" else f"{what}{ENDING[fmt]}")
    cli(some_data, "export", "--what", what, "--format", fmt, "--out", str(out))
    if what == "all":
        with zipfile.ZipFile(out) as archive:
            assert sorted(archive.namelist()) == sorted(f"{kind}{ENDING[fmt]}" for kind in KINDS)
        return
    text = out.read_text(encoding="utf-8")
    if fmt == "csv":
        assert next(csv.reader(text.splitlines()))[0] == "id"
    else:
        assert all(isinstance(json.loads(line), dict) for line in text.splitlines())


@pytest.mark.parametrize("name", ["m.JSONL", "m.ndjson", "m.json"])
def test_json_lines_may_be_named_as_tools_usually_name_them(some_data, tmp_path, name):
    cli(some_data, "export", "--what", "messages", "--format", "json", "--out", str(tmp_path / name))
    assert Path(tmp_path / name).read_text().count("\n") == 1


def test_the_readme_describes_every_what_the_command_takes():
    """A newcomer learns the kinds from README's --what table: every choice has its row, and no row names one
    the command does not take."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Exports", 1)[1].split("\n#", 1)[0]
    rows = re.findall(r"^\| `([a-z_]+)`(?: \(default\))? \|", section, re.M)
    assert sorted(rows) == sorted(WHAT)
    assert "| `all` (default) |" in section


def test_the_summary_counts_each_kind_in_words(some_data, tmp_path):
    out = tmp_path / "everything.zip"
    said = cli(some_data, "export", "--what", "all", "--out", str(out)).output
    assert "1 contact," in said and "1 conversation," in said and "1 message," in said and "1 template," in said
    assert "0 audit log entries, 0 orders." in said
