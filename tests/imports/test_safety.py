"""What a review found in imports: anonymising a contact leaves nothing personal in the import tables for an
undo to put back, refused rows are not kept for ever, the errors report streams in a session of its own,
the 50 MB limit is only for those who may import, and one upload is imported at most once."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from sigdesk.actor import Actor
from sigdesk.contacts.commands import anonymise
from sigdesk.db import utcnow
from sigdesk.errors import UserError
from sigdesk.imports import commands, services
from sigdesk.imports.views import allow_large_uploads
from sigdesk.models import Contact, ImportChange, ImportJob, ImportRejection
from tests import factories
from tests.imports.helpers import finish, run, stored
from tests.lifecycle.helpers import Api, clear_stages

pytestmark = pytest.mark.database
SYSTEM = Actor.system("cli")


@pytest.fixture
def db(app):
    clear_stages(app.extensions["sigdesk"].database)
    return app.extensions["sigdesk"].database


def test_an_anonymised_contact_keeps_nothing_personal_in_the_import_and_undo_writes_nothing_back(app, db):
    with db.session() as session:
        known = factories.contact(session, "491701234567", display_name="Ann Example", city="Bonn")
        known_id = known.id
    data = b"Phone,Name,City,Consent\n+49 170 1234567,Anna Example,Berlin,opted_out\n"
    job = run(app, "u.csv", data, consent_confirmed=True, consent_source="fair")
    assert job.updated == 1
    with db.session() as session:
        anonymise(session, SYSTEM, known_id, app.extensions["sigdesk"].config.data_dir)
        session.commit()
    with db.session() as session:
        after = session.get(Contact, known_id)
        erased = (after.display_name, after.city, after.marketing_consent, after.opted_out_marketing)
        for previous, added in session.execute(select(ImportChange.previous, ImportChange.added)):
            assert "Ann" not in (previous or "") and "Bonn" not in (previous or "") and added is None
        commands.undo_import(session, SYSTEM, job.id)
    finish(app)
    with db.session() as session:
        done = session.get(ImportJob, job.id)
        assert (done.state, done.restored, done.kept) == ("undone", 0, 1)
        contact = session.get(Contact, known_id)
        assert (contact.display_name, contact.city, contact.marketing_consent, contact.opted_out_marketing) == erased
        assert contact.opted_out_marketing is True, "undo does not turn marketing back on"


def test_refused_rows_are_deleted_30_days_after_their_import_finished(app, db):
    job = run(app, "r.csv", b"Phone,Name\n123,Bad\n+49 170 1234567,Good\n")
    assert job.rejected == 1
    with db.session() as session:
        assert services.purge_old_rejections(session) == 0, "a recent import keeps its error report"
        session.execute(
            update(ImportJob).where(ImportJob.id == job.id).values(finished_at=utcnow() - timedelta(days=31))
        )
        assert services.purge_old_rejections(session) == 1
        session.commit()
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(ImportRejection)) == 0


def test_the_errors_report_downloads_whole_from_a_session_of_its_own(app, client, owner):
    data = b"Phone,Name\n" + b"".join(b"%d,Bad %d\n" % (n, n) for n in range(1, 1501))
    job = run(app, "bad.csv", data)
    assert job.rejected == 1500
    report = client.get(f"/admin/imports/{job.id}/errors")
    assert report.status_code == 200
    lines = report.get_data(as_text=True).lstrip("\ufeff").splitlines()
    assert len(lines) == 1501 and lines[-1].startswith("1500,Bad 1500,1501,")
    api = Api.of(app, "admin")
    lines = api.call("GET", f"/contact-imports/{job.id}/errors").get_data(as_text=True).splitlines()
    assert len(lines) == 1501

    closed = []
    maker = app.extensions["sigdesk"].database.sessionmaker

    def make():
        session = maker()
        session.close = lambda: closed.append(True)
        return session

    chunks = services.streamed_error_csv(make, job.id)
    assert b"".join(chunks).count(b"\n") == 1501 and closed == [True]


def test_an_anonymous_upload_keeps_the_small_limit_and_is_refused_unread(app, client):
    body = b"x" * (20 * 1024 * 1024)
    refused = client.post("/admin/imports/upload", data=body, content_type="multipart/form-data; boundary=b")
    assert refused.status_code in (302, 401, 403, 413)
    with app.test_request_context(
        "/admin/imports/upload", method="POST", headers={"Content-Length": str(60 * 1024 * 1024)}
    ):
        from flask import request

        allow_large_uploads()  # nobody signed in: neither the 50 MB limit nor its early refusal
        assert request.max_content_length == app.config["MAX_CONTENT_LENGTH"]


def test_an_agent_token_keeps_the_small_limit(app):
    agent = Api.of(app, "agent")
    form = {"file": (io.BytesIO(b"Phone\n" + b"1" * (20 * 1024 * 1024)), "a.csv")}
    refused = agent.client.post(
        "/api/v1/contact-imports",
        data=form,
        headers={"Authorization": f"Bearer {agent.token}"},
        content_type="multipart/form-data",
    )
    assert refused.status_code in (403, 413)


def test_the_same_upload_cannot_be_started_twice(app, db):
    state = app.extensions["sigdesk"]
    upload = stored(app, "twice.csv", b"Phone,Name\n+49 170 1234567,Ann\n")
    with db.session() as session:
        first = commands.start_import(session, SYSTEM, state.config.data_dir, upload, "twice.csv")
        first_id = first.id
        session.commit()
    with db.session() as session, pytest.raises(UserError) as refused:
        commands.start_import(session, SYSTEM, state.config.data_dir, upload, "twice.csv")
    assert refused.value.status == 409 and refused.value.field == "file"
    assert "twice.csv" in str(refused.value) and str(first_id) in str(refused.value)
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(ImportJob)) == 1


def test_lead_scores_are_recomputed_for_everyone_after_an_import_and_its_undo():
    from sigdesk.lead_score.scoring import EVERYONE_EVENTS, LeadScoreConsumer

    assert {"contacts.imported", "contacts.import_undone"} <= set(EVERYONE_EVENTS)
    assert {"contacts.imported", "contacts.import_undone"} <= set(LeadScoreConsumer().events)
