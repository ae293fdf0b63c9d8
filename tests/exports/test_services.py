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

from sigdesk.audit.services import AuditData
from sigdesk.cli import main
from sigdesk.contacts.services import ContactData
from sigdesk.conversations.schemas import ConversationData, MessageData
from sigdesk.conversations.services import reactions_for
from sigdesk.exports.services import COLUMNS, FORMULA_START, KINDS, ExportError, export
from sigdesk.message_templates.schemas import TemplateData
from sigdesk.models import AuditEvent, Contact, Conversation, Message, Template, User
from sigdesk.models.sales import Order
from sigdesk.sales.services import OrderData
from tests import factories
from tests.backup.seed import MESSAGE_TYPES, seed

# Each kind's table and its one serializer, applied here to whole ORM objects (the export reads columns)
SERIALIZERS = {
    "contacts": (Contact, lambda session, contact: contact_record(contact)),
    "conversations": (
        Conversation,
        lambda session, conversation: ConversationData.of(conversation, session.get(Contact, conversation.contact_id)),
    ),
    "messages": (
        Message,
        lambda session, message: MessageData.of(message, reactions_for(session, [message.wamid]).get(message.wamid)),
    ),
    "templates": (Template, lambda session, template: TemplateData.of(template)),
    "audit": (AuditEvent, lambda session, event: AuditData.of(event)),
    "orders": (Order, lambda session, order: OrderData.of(order)),
}


def contact_record(contact: Contact) -> dict:
    """A contact as exported: its serializer's JSON, with its custom field values (none in the seed)."""
    record = ContactData.of(contact).model_dump(mode="json")
    record.setdefault("fields", {})
    return record


@pytest.fixture
def seeded(app):
    seed(app)
    with app.extensions["sigdesk"].database.session() as session:  # two orders, one of two lines
        first, second = session.scalars(select(Contact).order_by(Contact.id).limit(2)).all()
        water = factories.product(session, sku="WATER", name="Water 20 L")
        factories.order(session, first, lines=[(water, 2, 250), (None, 1, 100)], notes="=ring twice")
        factories.order(session, second)
    return app


def expected(app, kind: str) -> list[dict]:
    """Every row of the kind's table in id order, as its serializer's JSON."""
    model, serialize = SERIALIZERS[kind]
    with app.extensions["sigdesk"].database.session() as session:
        found = session.scalars(select(model).order_by(model.id)).all()
        made = [serialize(session, row) for row in found]
        return [record if isinstance(record, dict) else record.model_dump(mode="json") for record in made]


def as_csv_text(value) -> str:
    """A value as its CSV cell: text that starts like a formula gets a leading apostrophe (test_csv_safety.py)."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return str(value)


def flattened(record: dict, columns: list[str]) -> list:
    """A record as CSV cells: nested objects by dotted column; lists and free-form objects stay as JSON (compared
    parsed), but for a contact's tags, which are one cell "a, b"."""
    cells = []
    for column in columns:
        value = record
        for part in column.split("."):
            value = None if value is None else value[part]
        if column == "tags":
            value = ", ".join(value)
        cells.append(value if isinstance(value, (dict, list)) else as_csv_text(value))
    return cells


def csv_records(kind: str, record: dict, columns: list[str]) -> list[list]:
    """A record's expected CSV rows: one, or for an order one per line, its `line.` columns from the line."""
    if kind != "orders":
        return [flattened(record, columns)]
    own = [column for column in columns if not column.startswith("line.")]
    lines = [column.removeprefix("line.") for column in columns if column.startswith("line.")]
    return [flattened(record, own) + flattened(line, lines) for line in record["lines"]]


def read_cells(row: list[str], like: list) -> list:
    """CSV text, with the cells that hold JSON parsed, to compare with flattened()."""
    return [json.loads(text) if isinstance(want, (dict, list)) else text for text, want in zip(row, like)]


def test_every_kind_has_every_table_the_test_knows():
    assert set(SERIALIZERS) == set(KINDS)


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
    columns = list(COLUMNS[kind])
    assert table[0] == columns
    want = [cells for record in expected(seeded, kind) for cells in csv_records(kind, record, columns)]
    assert [read_cells(row, cells) for row, cells in zip(table[1:], want)] == want
    assert len(table) - 1 == len(want)


def test_csv_columns_flatten_nested_objects_and_keep_lists_as_json(seeded, tmp_path):
    with seeded.extensions["sigdesk"].database.session() as session:
        export(session, "messages", "csv", tmp_path / "m.csv")
        export(session, "conversations", "csv", tmp_path / "c.csv")
    with open(tmp_path / "m.csv", newline="", encoding="utf-8") as handle:
        messages = {row["wamid"]: row for row in csv.DictReader(handle)}
    with open(tmp_path / "c.csv", newline="", encoding="utf-8") as handle:
        conversations = list(csv.DictReader(handle))
    assert json.loads(messages["wamid.0.1"]["reactions"]) == ["❤️"] and messages["wamid.0.0"]["reactions"] == "[]"
    assert json.loads(messages["wamid.0.1"]["details"]) == {"type": "image", "n": 1}
    image = messages["wamid.0.1"]
    assert image["media.state"] == "ready" and image["media.url"] == f"/media/{image['id']}"
    assert messages["wamid.0.0"]["media.url"] == "" and messages["wamid.0.0"]["error.code"] == ""
    assert [row["contact.wa_id"] for row in conversations] == ["447700900000", "447700900001", "447700900002"]


def test_messages_stream_in_batches_with_each_batchs_reactions(seeded, tmp_path, monkeypatch):
    monkeypatch.setattr("sigdesk.exports.services.BATCH", 5)
    with seeded.extensions["sigdesk"].database.session() as session:
        export(session, "messages", "json", tmp_path / "m.jsonl")
    lines = (tmp_path / "m.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == expected(seeded, "messages")


def api_items(client, token: str, path: str) -> list[dict]:
    response = client.get(f"/api/v1{path}", query_string={"limit": 200}, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["next_cursor"] is None
    return response.get_json()["items"]


def exported(app, tmp_path, kind: str, fmt: str) -> dict[int, dict | list]:
    """The kind's export by id: JSON records, or CSV rows (lists of cells)."""
    out = tmp_path / f"{kind}-api.{fmt}"
    with app.extensions["sigdesk"].database.session() as session:
        export(session, kind, fmt, out)
    if fmt == "json":
        return {record["id"]: record for record in map(json.loads, out.read_text(encoding="utf-8").splitlines())}
    with open(out, newline="", encoding="utf-8") as handle:
        table = list(csv.reader(handle))
    assert table[0] == list(COLUMNS[kind])
    return {int(row[0]): row for row in table[1:]}


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_exported_conversations_messages_and_templates_are_what_the_api_answers(seeded, client, tmp_path, fmt):
    with seeded.extensions["sigdesk"].database.session() as session:
        owner = session.scalar(select(User).where(User.email == "olive@example.com"))
        token = factories.api_token(session, owner)
    conversations = api_items(client, token, "/conversations")
    answered = {
        "conversations": conversations,
        "messages": [m for c in conversations for m in api_items(client, token, f"/conversations/{c['id']}/messages")],
        "templates": api_items(client, token, "/templates"),
        "contacts": [conversation["contact"] for conversation in conversations],
    }
    for kind, items in answered.items():
        found = exported(seeded, tmp_path, kind, fmt)
        assert items and sorted(found) == sorted(item["id"] for item in items), kind
        for item in items:
            if fmt == "json":  # a conversation's contact is the contact without its custom field values
                assert {key: found[item["id"]][key] for key in item} == item, kind
            else:
                cells = flattened(item, list(COLUMNS[kind]))
                assert read_cells(found[item["id"]], cells) == cells, kind
    assert any(message["reactions"] for message in answered["messages"])
    assert any(message["media"] for message in answered["messages"])


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
        with pytest.raises(ExportError, match="Unknown export"):
            export(session, "invoices", "csv", tmp_path / "invoices.csv")
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
            "audit",
            "--out",
            str(out),
        ],
    )
    assert bad.exit_code == 1 and "already exists" in bad.output


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
