"""Exports read back with Python's own csv, json and zipfile modules and checked row by row."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import zipfile

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from sigdesk.cli import main
from sigdesk.exports.services import KINDS, ExportError, export
from sigdesk.models import AuditEvent, Message
from tests import factories
from tests.backup.seed import MESSAGE_TYPES, seed


@pytest.fixture
def seeded(app):
    seed(app)
    return app


def expected(app, kind: str) -> list[dict]:
    model, columns = KINDS[kind]
    with app.extensions["sigdesk"].database.session() as session:
        found = session.scalars(select(model).order_by(model.id)).all()
        values = [[getattr(row, c) for c in columns] for row in found]  # contacts' `name` too, by the model's rule
    return [{c: (v.isoformat() if hasattr(v, "isoformat") else v) for c, v in zip(columns, row)} for row in values]


def as_csv_text(value) -> str:
    if value is None:
        return ""
    return str(value)


@pytest.mark.database
@pytest.mark.parametrize("kind", list(KINDS))
def test_json_lines_export_matches_the_database_row_by_row(seeded, tmp_path, kind):
    out = tmp_path / f"{kind}.jsonl"
    with seeded.extensions["sigdesk"].database.session() as session:
        written = export(session, kind, "json", out)
    lines = out.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == expected(seeded, kind)
    assert written == {kind: len(lines)} and lines


@pytest.mark.parametrize("kind", list(KINDS))
def test_csv_export_matches_the_database_row_by_row(seeded, tmp_path, kind):
    out = tmp_path / f"{kind}.csv"
    with seeded.extensions["sigdesk"].database.session() as session:
        export(session, kind, "csv", out)
    with open(out, newline="", encoding="utf-8") as handle:
        table = list(csv.reader(handle))
    assert table[0] == list(KINDS[kind][1])
    assert table[1:] == [[as_csv_text(v) for v in row.values()] for row in expected(seeded, kind)]


def test_csv_keeps_newlines_quotes_and_emoji_and_adds_the_bom_on_request(seeded, tmp_path):
    with seeded.extensions["sigdesk"].database.session() as session:
        message = session.scalars(select(Message).where(Message.type == "text")).first()
        message.text = 'line one\nsays "hi", 👋; =SUM(A1)'
        session.flush()
        export(session, "messages", "csv", tmp_path / "bom.csv", bom=True)
        export(session, "messages", "csv", tmp_path / "plain.csv")
    raw = (tmp_path / "bom.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and not (tmp_path / "plain.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    with open(tmp_path / "bom.csv", newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["text"] == 'line one\nsays "hi", 👋; =SUM(A1)'
    assert len(rows) == 3 * len(MESSAGE_TYPES)


def test_all_is_a_zip_with_one_file_per_kind(seeded, tmp_path):
    out = tmp_path / "everything.zip"
    with seeded.extensions["sigdesk"].database.session() as session:
        written = export(session, "all", "json", out)
    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == sorted(f"{kind}.jsonl" for kind in KINDS)
        for kind in KINDS:
            lines = archive.read(f"{kind}.jsonl").decode("utf-8").splitlines()
            assert [json.loads(line) for line in lines] == expected(seeded, kind)
            assert written[kind] == len(lines)


def test_export_refuses_to_overwrite_and_names_what_it_cannot_do(seeded, tmp_path):
    out = tmp_path / "contacts.csv"
    out.write_text("mine")
    with seeded.extensions["sigdesk"].database.session() as session:
        with pytest.raises(ExportError, match="already exists"):
            export(session, "contacts", "csv", out)
        with pytest.raises(ExportError, match="no orders"):
            export(session, "orders", "csv", tmp_path / "orders.csv")
        with pytest.raises(ExportError, match="Unknown format"):
            export(session, "contacts", "xml", tmp_path / "c.xml")
    assert out.read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["contacts.csv"]


def test_export_streams_in_batches_past_the_batch_size(app, tmp_path, monkeypatch):
    monkeypatch.setattr("sigdesk.exports.services.BATCH", 7)
    with app.extensions["sigdesk"].database.session() as session:
        for n in range(30):
            factories.contact(session, f"4400{n}")
    seen = []
    with app.extensions["sigdesk"].database.session() as session:
        export(
            session, "contacts", "json", tmp_path / "c.jsonl", progress=lambda done, total: seen.append((done, total))
        )
    ids = [json.loads(line)["id"] for line in (tmp_path / "c.jsonl").read_text().splitlines()]
    assert ids == sorted(ids) and len(set(ids)) == 30
    assert seen[-1] == (30, 30)


def test_cli_export_writes_the_file_and_reports_counts(seeded, tmp_path, monkeypatch):
    monkeypatch.delenv("SIGDESK_DATABASE_URL", raising=False)
    config = seeded.extensions["sigdesk"].config
    out = tmp_path / "audit.csv"
    result = CliRunner().invoke(
        main,
        [
            "--data-dir",
            str(config.data_dir),
            "--database-url",
            config.database_url,
            "export",
            "--format",
            "csv",
            "--what",
            "audit",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    with seeded.extensions["sigdesk"].database.session() as session:
        audit_rows = len(session.scalars(select(AuditEvent).where(AuditEvent.action != "export.run")).all())
    assert f"{audit_rows} audit" in result.output  # the export's own audit entry is written after it
    bad = CliRunner().invoke(
        main,
        [
            "--data-dir",
            str(config.data_dir),
            "--database-url",
            config.database_url,
            "export",
            "--what",
            "orders",
            "--out",
            str(tmp_path / "o.csv"),
        ],
    )
    assert bad.exit_code == 1 and "no orders" in bad.output


@pytest.mark.skipif(not (shutil.which("soffice") or shutil.which("libreoffice")), reason="LibreOffice is not installed")
def test_csv_opens_in_libreoffice(seeded, tmp_path):
    out = tmp_path / "messages.csv"
    with seeded.extensions["sigdesk"].database.session() as session:
        export(session, "messages", "csv", out, bom=True)
    office = shutil.which("soffice") or shutil.which("libreoffice")
    done = subprocess.run(
        [office, "--headless", "--convert-to", "ods", "--outdir", str(tmp_path), str(out)],
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "messages.ods").stat().st_size > 0
