"""An export is one command: the Exports page and `sigdesk export` audit it alike and record export.finished."""

from __future__ import annotations

import csv
import json

import pytest

from tests.commanding import audit, cli, events

pytestmark = pytest.mark.database


def test_the_exports_page_and_the_cli_record_the_same_export(app, auth, owner, tmp_path):
    page = auth.post("/admin/exports/download", {"what": "audit", "format": "csv"}, form_page="/admin/exports/")
    assert page.status_code == 200
    page_rows = page.get_data(as_text=True).count("\n") - 1
    out = tmp_path / "audit.jsonl"
    cli(app, "export", "--format", "json", "--what", "audit", "--out", str(out))
    cli_rows = len(out.read_text().splitlines())

    runs = audit(app, "export.run")
    assert [(entry.target, entry.actor, entry.channel, entry.detail) for entry in runs] == [
        ("audit", owner.email, "web", {"format": "csv", "rows": page_rows}),
        ("audit", None, "cli", {"format": "json", "rows": cli_rows}),
    ]
    assert events(app, "export.finished") == [
        {"what": "audit", "format": "csv", "rows": page_rows, "extra": {"rows_by_kind": {"audit": page_rows}}},
        {"what": "audit", "format": "json", "rows": cli_rows, "extra": {"rows_by_kind": {"audit": cli_rows}}},
    ]


def test_a_refused_export_records_nothing(app, auth, owner):
    assert (
        auth.post(
            "/admin/exports/download", {"what": "invoices", "format": "csv"}, form_page="/admin/exports/"
        ).status_code
        == 400
    )
    assert audit(app, "export.run") == [] and events(app, "export.finished") == []


def test_the_audit_export_says_through_which_channel_each_entry_came(app, auth, owner, tmp_path):
    auth.post("/admin/exports/download", {"what": "audit", "format": "csv"}, form_page="/admin/exports/")
    cli(app, "export", "--format", "json", "--what", "audit", "--out", str(tmp_path / "audit.jsonl"))
    cli(app, "export", "--format", "csv", "--what", "audit", "--out", str(tmp_path / "audit.csv"))

    records = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [(r["action"], r["channel"]) for r in records if r["action"] == "export.run"] == [("export.run", "web")]
    with open(tmp_path / "audit.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert "channel" in rows[0]
    assert [(r["action"], r["channel"]) for r in rows if r["action"] == "export.run"] == [
        ("export.run", "web"),
        ("export.run", "cli"),
    ]
    assert [entry.channel for entry in audit(app, "export.run")] == ["web", "cli", "cli"]
