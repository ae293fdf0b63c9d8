"""Importing contacts: matching by phone then email, the three modes, tags, stage, owner, consent and custom
fields from columns, every refused row with its line and reason, and undo of the whole import."""

from __future__ import annotations

import csv
import io
import json

import pytest
from sqlalchemy import func, select

from sigdesk.actor import Actor
from sigdesk.errors import UserError
from sigdesk.imports import commands, services
from sigdesk.lifecycle import commands as lifecycle
from sigdesk.models import ConsentEvent, Contact, ContactFieldValue, ContactStage, ContactTag, ImportJob, StageChange
from tests import factories
from tests.commanding import audit, events
from tests.imports.helpers import finish, run, start, stored, workbook
from tests.lifecycle.helpers import clear_stages

pytestmark = pytest.mark.database
SYSTEM = Actor.system("cli")


@pytest.fixture
def db(app):
    clear_stages(app.extensions["sigdesk"].database)
    return app.extensions["sigdesk"].database


def contacts(db) -> dict[str, Contact]:
    with db.session() as session:
        return {c.wa_id: c for c in session.scalars(select(Contact))}


def error_report(app, job_id: int) -> list[list[str]]:
    with app.extensions["sigdesk"].database.session() as session:
        job = session.get(ImportJob, job_id)
        data = b"".join(services.error_csv(session, job)).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(data)))


def test_a_csv_creates_contacts_and_reports_each_refused_row_with_its_line(app, db):
    data = (
        b"Name,Phone,Email,City\n"
        b"Ann,+49 170 1234567,ANN@Example.com,Berlin\n"
        b"Bad,12,bad@example.com,\n"
        b"Bob,+44 7911 123456,not-an-email,\n"
        b"Carl,+1 202 555 0143,carl@example.com,\n"
    )
    job = run(app, "people.csv", data)
    assert (job.state, job.total, job.processed, job.created, job.updated, job.rejected) == ("done", 4, 4, 2, 0, 2)
    found = contacts(db)
    assert found["491701234567"].display_name == "Ann"
    assert found["491701234567"].email == "ann@example.com"
    assert found["491701234567"].city == "Berlin"
    report = error_report(app, job.id)
    assert report[0] == ["Name", "Phone", "Email", "City", "line", "error"]
    assert [(row[0], row[4]) for row in report[1:]] == [("Bad", "3"), ("Bob", "4")]
    assert "Phone" in report[1][5] and "phone number" in report[1][5]
    assert "Email" in report[2][5]
    [finished] = events(app, "contacts.imported")
    assert finished == {"job_id": job.id, "state": "done", "created": 2, "updated": 0, "rejected": 2}
    assert [e.action for e in audit(app, "contacts.import.start")] == ["contacts.import.start"]
    assert audit(app, "contacts.import.finish")[0].detail["created"] == 2
    assert not events(app, "contact.created"), "one event per import, not one per contact"


def test_existing_contacts_are_matched_by_phone_then_email_and_empty_cells_change_nothing(app, db):
    with db.session() as session:
        factories.contact(session, "491701234567", display_name="Old", company="Acme", email="ann@example.com")
        factories.contact(session, "447911123456", display_name="Bob", email="bob@example.com")
        factories.contact(session, display_name="No phone", email="nophone@example.com").wa_id = None
    data = (
        b"Phone,Name,Email,Company\n"
        b"0170 1234567,Ann,,\n"  # by phone, read in the default country given
        b",Bobby,BOB@example.com,Bobco\n"  # by email
        b"+1 202 555 0143,Nophone,nophone@example.com,\n"  # by email: the contact gets the phone
        b"+49 171 1111111,Other,bob@example.com,\n"  # email of a contact with another phone
    )
    job = run(app, "m.csv", data, country="DE")
    assert (job.created, job.updated, job.rejected) == (0, 3, 1)
    found = contacts(db)
    assert (found["491701234567"].display_name, found["491701234567"].company) == ("Ann", "Acme")
    assert (found["447911123456"].display_name, found["447911123456"].company) == ("Bobby", "Bobco")
    assert found["12025550143"].display_name == "Nophone"
    assert "another phone number" in error_report(app, job.id)[1][-1]


@pytest.mark.parametrize(("mode", "counts"), [("create", (1, 0, 1)), ("update", (0, 1, 1)), ("upsert", (1, 1, 0))])
def test_modes_create_update_and_upsert(app, db, mode, counts):
    with db.session() as session:
        factories.contact(session, "491701234567")
    data = b"Phone,Name\n+49 170 1234567,Known\n+44 7911 123456,New\n"
    job = run(app, "modes.csv", data, mode=mode)
    assert (job.created, job.updated, job.rejected) == counts


def test_a_later_row_for_the_same_contact_is_refused_as_a_duplicate_of_the_first(app, db):
    data = b"Phone,Name\n+49 170 1234567,First\n+49 (170) 123-4567,Second\n"
    job = run(app, "dup.csv", data)
    assert (job.created, job.rejected) == (1, 1)
    assert contacts(db)["491701234567"].display_name == "First"
    assert error_report(app, job.id)[1][-1].startswith("Duplicate of line 2")


def test_duplicates_are_found_across_batches(app, db, monkeypatch):
    monkeypatch.setattr(commands, "BATCH", 2)
    data = b"Phone,Name\n+49 170 1234567,First\n+44 7911 123456,B\n+1 202 555 0143,C\n+49 170 1234567,Again\n"
    job = run(app, "dup.csv", data)
    assert (job.created, job.rejected) == (3, 1)
    assert "Duplicate" in error_report(app, job.id)[1][-1]


def test_tags_stage_and_owner_come_from_columns_and_unknown_ones_refuse_the_row(app, db):
    with db.session() as session:
        vip, gold = lifecycle.create_tag(session, SYSTEM, "VIP"), lifecycle.create_tag(session, SYSTEM, "Gold")
        lead = lifecycle.create_stage(session, SYSTEM, "Lead")
        owner = factories.user(session, "agent", email="Agent@Example.com")
        vip_id, gold_id, lead_id, owner_id = vip.id, gold.id, lead.id, owner.id
    data = (
        b"Phone,Tags,Stage,Owner\n"
        b"+49 170 1234567,vip; Gold,lead,agent@example.com\n"
        b"+44 7911 123456,Nope,Lead,\n"
        b"+1 202 555 0143,,Unknown stage,\n"
        b"+33 6 12 34 56 78,,,nobody@example.com\n"
    )
    job = run(app, "t.csv", data)
    assert (job.created, job.rejected) == (1, 3)
    with db.session() as session:
        ann = session.scalar(select(Contact).where(Contact.wa_id == "491701234567"))
        assert ann.owner_id == owner_id
        assert set(session.scalars(select(ContactTag.tag_id).where(ContactTag.contact_id == ann.id))) == {
            vip_id,
            gold_id,
        }
        assert session.get(ContactStage, ann.id).stage_id == lead_id
        assert session.scalar(select(StageChange.stage_name).where(StageChange.contact_id == ann.id)) == "Lead"
    reasons = [row[-1] for row in error_report(app, job.id)[1:]]
    assert (
        "no tag 'Nope'" in reasons[0]
        and "no stage 'Unknown stage'" in reasons[1]
        and "nobody@example.com" in reasons[2]
    )


def test_consent_from_a_column_needs_the_source_confirmed(app, db):
    data = b"Phone,Consent\n+49 170 1234567,yes\n+44 7911 123456,opted_out\n+1 202 555 0143,maybe\n"
    with pytest.raises(UserError) as refused:
        start(app, "c.csv", data)
    assert refused.value.field == "consent_confirmed"
    with pytest.raises(UserError) as refused:
        start(app, "c.csv", data, consent_confirmed=True)
    assert refused.value.field == "consent_source"
    job = run(app, "c.csv", data, consent_confirmed=True, consent_source="Shop sign-up form")
    assert (job.created, job.rejected) == (2, 1)
    with db.session() as session:
        words = session.execute(select(ConsentEvent.status, ConsentEvent.source, ConsentEvent.evidence)).all()
    assert sorted(status for status, _s, _e in words) == ["opted_in", "opted_out"]
    assert all(
        source == "import" and "c.csv" in evidence and "Shop sign-up form" in evidence for _s, source, evidence in words
    )
    assert contacts(db)["447911123456"].opted_out_marketing is True


def test_custom_fields_are_parsed_from_text_and_bad_values_refuse_the_row(app, db):
    from sigdesk.custom_fields.commands import define_field

    with db.session() as session:
        define_field(session, SYSTEM, "Birthday", "date", key="birthday")
        define_field(session, SYSTEM, "Member no", "text", key="member", pattern="M-[0-9]{4}")
        define_field(session, SYSTEM, "Spend", "number", key="spend")
    data = (
        b"Phone,Birthday,Member,Spend\n"
        b'+49 170 1234567,2024-03-01,M-0001,"1.234,50"\n'
        b"+44 7911 123456,01.03.2024,M-0002,12\n"
        b"+1 202 555 0143,31/12/1999,,\n"
        b"+33 6 12 34 56 78,yesterday,,\n"
        b"+34 612 34 56 78,,X-1,\n"
        b"+39 312 345 6789,,,lots\n"
    )
    job = run(
        app,
        "f.csv",
        data,
        mapping={"Phone": "phone", "Birthday": "field:birthday", "Member": "field:member", "Spend": "field:spend"},
    )
    assert (job.created, job.rejected) == (3, 3)
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(ContactFieldValue)) == 7
        spent = session.scalar(select(ContactFieldValue.number_value).where(ContactFieldValue.number_value > 1000))
        assert spent == 1234.5
    reasons = [row[-1] for row in error_report(app, job.id)[1:]]
    assert reasons[0].startswith("Birthday") and reasons[1].startswith("Member no") and reasons[2].startswith("Spend")


def test_ragged_rows_pad_short_ones_and_refuse_long_ones(app, db):
    data = b"Phone,Name,City\n+49 170 1234567\n+44 7911 123456,Bob,London,extra\n+1 202 555 0143,Carl,NYC,,\n"
    job = run(app, "r.csv", data)
    assert (job.created, job.rejected) == (2, 1)
    assert "4 cells" in error_report(app, job.id)[1][-1]


def test_formula_cells_in_the_error_report_are_neutralised(app, db):
    data = b'Phone,Name\n=HYPERLINK("http://x"),@SUM(1)\n'
    job = run(app, "evil.csv", data)
    row = error_report(app, job.id)[1]
    assert row[0] == '\'=HYPERLINK("http://x")' and row[1] == "'@SUM(1)"


def test_an_xlsx_workbook_imports_like_a_csv(app, db):
    job = run(
        app, "w.xlsx", workbook([["Phone", "Name"], [491701234567, "Ann"], ["+44 7911 123456", "Bob"], ["x", "Bad"]])
    )
    assert (job.format, job.created, job.rejected) == ("xlsx", 2, 1)


def test_undo_deletes_created_contacts_restores_updated_ones_and_keeps_those_with_conversations(app, db):
    with db.session() as session:
        vip = lifecycle.create_tag(session, SYSTEM, "VIP")
        lead = lifecycle.create_stage(session, SYSTEM, "Lead")
        customer = lifecycle.create_stage(session, SYSTEM, "Customer")
        known = factories.contact(session, "491701234567", display_name="Old name", city="Bonn")
        lifecycle.set_stage(session, SYSTEM, known.id, customer.id)
        known_id, vip_id, customer_id = known.id, vip.id, customer.id
        assert lead.id
    data = (
        b"Phone,Name,City,Tags,Stage,Consent\n"
        b"+49 170 1234567,New name,,VIP,Lead,yes\n"
        b"+44 7911 123456,Bob,London,VIP,,\n"
        b"+1 202 555 0143,Carl,,,,\n"
    )
    job = run(app, "u.csv", data, consent_confirmed=True, consent_source="fair")
    assert (job.created, job.updated) == (2, 1)
    with db.session() as session:
        carl = session.scalar(select(Contact).where(Contact.wa_id == "12025550143"))
        factories.conversation(session, carl)
    with db.session() as session:
        assert commands.undo_import(session, SYSTEM, job.id).state == "undoing"
    assert len(contacts(db)) == 3, "asking for the undo changes no contact: the worker does it"
    finish(app)
    with db.session() as session:
        undone = session.get(ImportJob, job.id)
        assert (undone.deleted, undone.restored, undone.kept, undone.undo_processed) == (1, 1, 1, 3)
    found = contacts(db)
    assert set(found) == {"491701234567", "12025550143"}
    assert (found["491701234567"].display_name, found["491701234567"].city) == ("Old name", "Bonn")
    assert found["491701234567"].marketing_consent == "unknown"
    with db.session() as session:
        assert not session.scalars(select(ContactTag).where(ContactTag.contact_id == known_id)).all()
        assert session.get(ContactStage, known_id).stage_id == customer_id
        assert not session.scalars(select(ConsentEvent).where(ConsentEvent.contact_id == known_id)).all()
        assert session.get(ImportJob, job.id).state == "undone"
        assert vip_id
    assert events(app, "contacts.import_undone")[0]["deleted"] == 1
    with db.session() as session, pytest.raises(UserError) as refused:
        commands.undo_import(session, SYSTEM, job.id)
    assert refused.value.status == 409


def test_an_agent_may_not_import(app, db):
    with db.session() as session:
        agent = factories.user(session, "agent")
        actor = Actor(agent, "web")
        with pytest.raises(UserError) as refused:
            commands.start_import(
                session, actor, app.extensions["sigdesk"].config.data_dir, "upload-" + "0" * 24 + ".csv", "a.csv"
            )
    assert refused.value.status == 403


def test_the_upload_is_deleted_once_the_import_finished(app, db):
    job = run(app, "gone.csv", b"Phone\n+49 170 1234567\n")
    assert not (services.private_dir(app.extensions["sigdesk"].config.data_dir) / job.stored_path).exists()
    assert json.loads(job.mapping) == [[0, "Phone", "phone"]]


def test_an_import_interrupted_by_a_restart_carries_on_from_its_last_committed_batch(app, db, monkeypatch):
    monkeypatch.setattr(commands, "BATCH", 2)
    state = app.extensions["sigdesk"]
    data = b"Phone,Name\n+49 170 1234567,A\n+44 7911 123456,B\n+1 202 555 0143,C\n+33 6 12 34 56 78,D\n+34 612 34 56 78,E\n"
    job_id = start(app, "long.csv", data)
    with db.session() as session:
        assert commands.run_step(session, Actor.system("worker"), job_id, state.config.data_dir, seconds=0) == 2
    commands._readers.clear()  # the process stopped: its open reader and its claim are gone
    commands._owned.clear()
    with db.session() as session:
        assert commands.next_job(session) is None, "a running job of another process is left alone"
        assert commands.requeue_interrupted(session) == 1
    finish(app)
    with db.session() as session:
        job = session.get(ImportJob, job_id)
        assert (job.state, job.processed, job.created, job.rejected) == ("done", 5, 5, 0)


def test_stale_uploads_nobody_started_are_cleared(app, db):
    import os
    import time

    data_dir = app.extensions["sigdesk"].config.data_dir
    old = services.private_dir(data_dir) / stored(app, "old.csv", b"Phone\n+49 170 1234567\n")
    fresh = services.private_dir(data_dir) / stored(app, "fresh.csv", b"Phone\n+49 170 1234567\n")
    os.utime(old, (time.time() - 2 * 86400,) * 2)
    with db.session() as session:
        assert services.clear_stale_uploads(session, data_dir) == 1
    assert not old.exists() and fresh.exists()


def test_a_created_contact_needs_every_required_custom_field_but_an_update_does_not(app, db):
    from sigdesk.custom_fields.commands import define_field

    with db.session() as session:
        define_field(session, SYSTEM, "Member no", "text", key="member", required=True)
        factories.contact(session, "491701234567", display_name="Known")
    data = b"Phone,Name,Member\n+49 170 1234567,Known again,\n+44 7911 123456,Bob,M-1\n+1 202 555 0143,Carl,\n"
    job = run(app, "req.csv", data, mapping={"Phone": "phone", "Name": "name", "Member": "field:member"})
    assert (job.created, job.updated, job.rejected) == (1, 1, 1)
    rows = error_report(app, job.id)
    assert rows[1][1:] == ["Carl", "", "4", rows[1][-1]]
    assert "required field 'Member no'" in rows[1][-1]
    unmapped = run(app, "none.csv", b"Phone\n+33 6 12 34 56 78\n")
    assert unmapped.rejected == 1
    assert "'Member no' (map a column to it)" in error_report(app, unmapped.id)[1][-1]


def test_cells_beyond_the_header_are_kept_in_extra_columns_of_the_error_report(app, db):
    data = b"Phone,Name\n+49 170 1234567,Ann,x,,y\n12,Bad\n+44 7911 123456,Bob,z\n"
    job = run(app, "wide.csv", data)
    rows = error_report(app, job.id)
    assert rows[0] == ["Phone", "Name", "extra 1", "extra 2", "extra 3", "line", "error"]
    assert rows[1][1:6] == ["Ann", "x", "", "y", "2"] and "cells" in rows[1][6]
    assert rows[2][:6] == ["12", "Bad", "", "", "", "3"]
    assert rows[3][1:6] == ["Bob", "z", "", "", "4"]
