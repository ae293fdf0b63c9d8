"""Undoing an import is the worker's job, never the request's: asking marks the import "undoing", the worker
takes it back in set-based batches whose place is committed with each, so an undo stopped part-way carries
on when the worker runs again; a merge keeps the import's record on the contact it kept."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from sigdesk.actor import Actor
from sigdesk.imports import commands
from sigdesk.merge.commands import merge_contacts
from sigdesk.models import Contact, ImportChange, ImportJob
from tests import factories
from tests.commanding import audit, events
from tests.imports.helpers import finish, run
from tests.lifecycle.helpers import clear_stages

pytestmark = pytest.mark.database
SYSTEM = Actor.system("cli")
FIVE = b"Phone,Name\n+49 170 1234567,A\n+44 7911 123456,B\n+1 202 555 0143,C\n+33 6 12 34 56 78,D\n+34 612 34 56 78,E\n"


@pytest.fixture
def db(app):
    clear_stages(app.extensions["sigdesk"].database)
    return app.extensions["sigdesk"].database


def count_contacts(db) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(Contact))


def test_an_undo_stopped_part_way_carries_on_when_the_worker_runs_again(app, db, monkeypatch):
    with db.session() as session:
        factories.contact(session, "491701234567", display_name="Was here")
    job = run(app, "five.csv", FIVE)
    assert (job.created, job.updated) == (4, 1)
    monkeypatch.setattr(commands, "UNDO_BATCH", 2)
    with db.session() as session:
        commands.undo_import(session, SYSTEM, job.id)
    with db.session() as session:  # one batch, then the worker stops (a restart, a crash)
        assert commands.undo_step(session, Actor.system("worker"), job.id, seconds=0) == 2
    with db.session() as session:
        stopped = session.get(ImportJob, job.id)
        assert (stopped.state, stopped.undo_processed, stopped.undo_total) == ("undoing", 2, 5)
        assert stopped.undo_cursor > 0
    assert count_contacts(db) == 4
    finish(app)  # the worker runs again: it carries on from the committed batch, undoing nothing twice
    with db.session() as session:
        done = session.get(ImportJob, job.id)
        assert (done.state, done.undo_processed, done.deleted, done.restored, done.kept) == ("undone", 5, 4, 1, 0)
        assert session.scalar(select(Contact.display_name)) == "Was here"
    assert count_contacts(db) == 1
    assert [e["deleted"] for e in events(app, "contacts.import_undone")] == [4]
    assert len(audit(app, "contacts.import.undo")) == 1 and len(audit(app, "contacts.import.undo.finish")) == 1


def test_an_undo_is_queued_for_the_worker_and_asked_for_once(app, db):
    job = run(app, "five.csv", FIVE)
    with db.session() as session:
        commands.undo_import(session, SYSTEM, job.id)
    assert count_contacts(db) == 5, "the request changes no contact"
    assert events(app, "contacts.import_undo_queued")[0]["job_id"] == job.id
    with db.session() as session, pytest.raises(Exception) as refused:
        commands.undo_import(session, SYSTEM, job.id)
    assert getattr(refused.value, "status", None) == 409
    with db.session() as session:
        assert commands.next_job(session) == job.id


def test_an_undo_that_failed_on_an_error_carries_on_when_asked_again(app, db, monkeypatch):
    job = run(app, "five.csv", FIVE)
    monkeypatch.setattr(commands, "UNDO_BATCH", 2)
    with db.session() as session:
        commands.undo_import(session, SYSTEM, job.id)
    with db.session() as session:
        commands.undo_step(session, SYSTEM, job.id, seconds=0)

    def broken(*_args, **_kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(commands, "_undo_created", broken)
    finish(app)
    with db.session() as session:
        failed = session.get(ImportJob, job.id)
        assert (failed.state, failed.undo_processed) == ("failed", 2) and "undo again" in failed.error
    monkeypatch.undo()
    monkeypatch.setattr(commands, "UNDO_BATCH", 2)
    with db.session() as session:
        commands.undo_import(session, SYSTEM, job.id)
    finish(app)
    with db.session() as session:
        assert (session.get(ImportJob, job.id).state, session.get(ImportJob, job.id).deleted) == ("undone", 5)
    assert count_contacts(db) == 0


def test_a_merge_moves_the_imports_record_to_the_kept_contact(app, db):
    with db.session() as session:
        admin = Actor(factories.user(session, "admin"), "web")
        old = factories.contact(session, "491701234567", display_name="Old", city="Bonn")
        old_id = old.id
    job = run(app, "two.csv", b"Phone,City\n+49 170 1234567,Berlin\n+44 7911 123456,London\n")
    assert (job.created, job.updated) == (1, 1)
    with db.session() as session:
        new_id = session.scalar(select(Contact.id).where(Contact.wa_id == "447911123456"))
        other = factories.contact(session, "4915112345678", display_name="Other")
        other_id = other.id
    with db.session() as session:  # the contact the import updated is merged into another one
        merge_contacts(session, admin, other_id, old_id)
    with db.session() as session:  # the contact it created is merged into one that was there
        merge_contacts(session, admin, other_id, new_id)
    with db.session() as session:
        rows = session.execute(select(ImportChange.contact_id, ImportChange.created)).all()
        assert {row.contact_id for row in rows} == {other_id}
        assert not any(row.created for row in rows), "undo must not delete a contact that was there"
        city_before = session.get(Contact, other_id).city
        commands.undo_import(session, SYSTEM, job.id)
    finish(app)
    with db.session() as session:
        done = session.get(ImportJob, job.id)
        assert (done.state, done.deleted, done.restored, done.kept) == ("undone", 0, 0, 2)
        kept = session.get(Contact, other_id)
        assert kept is not None and kept.city == city_before, "the merged contact's old city is not written over it"


def test_undo_after_a_merge_leaves_the_kept_contact_without_the_merged_contacts_old_values(app, db):
    with db.session() as session:
        admin = Actor(factories.user(session, "admin"), "web")
        a = factories.contact(session, "491701234567", display_name="A", city="Bonn", company="A GmbH")
        b = factories.contact(session, "447911123456", display_name="B", city="Leeds", company="B Ltd")
        a_id, b_id = a.id, b.id
    job = run(app, "ab.csv", b"Phone,City\n+49 170 1234567,Berlin\n+44 7911 123456,London\n")
    assert job.updated == 2
    with db.session() as session:
        merge_contacts(session, admin, a_id, b_id)
    with db.session() as session:
        before = session.get(Contact, a_id)
        company_before = before.company
        commands.undo_import(session, SYSTEM, job.id)
    finish(app)
    with db.session() as session:
        done = session.get(ImportJob, job.id)
        assert (done.state, done.restored, done.kept) == ("undone", 1, 1)
        kept = session.get(Contact, a_id)
        assert kept.city == "Bonn", "A's own change is undone"
        assert kept.company == company_before and kept.display_name == "A", "nothing of B's old values lands on A"


def test_a_merge_of_two_contacts_the_same_import_created_still_undoes_to_none(app, db):
    with db.session() as session:
        admin = Actor(factories.user(session, "admin"), "web")
    job = run(app, "two.csv", b"Phone,Name\n+49 170 1234567,A\n+44 7911 123456,A\n")
    with db.session() as session:
        ids = sorted(session.scalars(select(Contact.id)))
        merge_contacts(session, admin, ids[0], ids[1])
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(ImportChange)) == 1
        commands.undo_import(session, SYSTEM, job.id)
    finish(app)
    assert count_contacts(db) == 0
