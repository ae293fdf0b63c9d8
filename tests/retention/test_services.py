"""Retention with the clock moved: each setting removes exactly what is older than it allows."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from sigdesk.audit.services import record, record_login
from sigdesk.media.services import keep_upload
from sigdesk.models import AuditEvent, Conversation, LoginEvent, Message, Setting, UploadedMedia, WebhookDelivery
from sigdesk.retention.services import LAST_RUN, purge, run_daily
from sigdesk.settings import services as settings
from sigdesk.whatsapp.media import check_media, media_path
from tests import factories
from tests.backup.seed import media_files, seed

SEEDED_AT = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def seeded(app):
    seed(app)
    with app.extensions["sigdesk"].database.session() as session:
        session.execute(WebhookDelivery.__table__.update().values(state="processed"))
    return app


def count(app, model) -> int:
    with app.extensions["sigdesk"].database.session() as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


def run_purge(app, now: datetime, **values) -> dict[str, int]:
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        for key, value in values.items():
            settings.set_text(session, state.cipher, key, str(value))
        return purge(session, state.cipher, state.config.data_dir, now)


@pytest.mark.database
def test_messages_are_kept_forever_by_default(seeded):
    messages = count(seeded, Message)
    run_purge(seeded, SEEDED_AT + timedelta(days=3650))
    assert count(seeded, Message) == messages


@pytest.mark.database
def test_message_retention_removes_old_messages_their_media_and_raw_webhooks(seeded):
    state = seeded.extensions["sigdesk"]
    with state.database.session() as session:
        keep = session.scalars(select(Message).where(Message.storage_key.is_not(None)).order_by(Message.id)).first()
        factories.message(
            session,
            session.get(Conversation, keep.conversation_id),
            type="image",
            wamid="wamid.recent",
            storage_key=keep.storage_key,
            media_state="ready",
            timestamp=SEEDED_AT + timedelta(days=40),
        )
        shared_key = keep.storage_key
    assert run_purge(seeded, SEEDED_AT + timedelta(days=29), **{"retention.messages_days": 30}) == {}
    assert count(seeded, Message) == 43

    counts = run_purge(seeded, SEEDED_AT + timedelta(days=31), **{"retention.messages_days": 30})
    assert counts["messages"] == 42 and counts["webhook_deliveries"] == 1 and counts["media_files"] == 14
    assert count(seeded, Message) == 1 and count(seeded, WebhookDelivery) == 0
    assert list(media_files(state.config.data_dir)) == [shared_key.removeprefix("media/")]
    with state.database.session() as session:
        assert session.scalars(select(AuditEvent).where(AuditEvent.action == "retention.purged")).one()


def test_audit_and_login_history_follow_their_own_settings(seeded):
    state = seeded.extensions["sigdesk"]
    with state.database.session() as session:
        record_login(session, "owner@example.com", None, "127.0.0.1", "pytest", False, "bad_password")
    now = datetime.now(timezone.utc)
    audits, logins = count(seeded, AuditEvent), count(seeded, LoginEvent)
    assert run_purge(seeded, now + timedelta(days=364)) == {}
    assert (count(seeded, AuditEvent), count(seeded, LoginEvent)) == (audits, logins)

    counts = run_purge(seeded, now + timedelta(days=366))
    assert counts["audit_events"] == audits and counts["login_events"] == logins
    assert count(seeded, LoginEvent) == 0
    assert count(seeded, AuditEvent) == 1  # the purge's own record

    run_purge(seeded, now + timedelta(days=3000), **{"retention.audit_days": 0})
    assert count(seeded, AuditEvent) == 1


def test_old_backups_in_the_backup_folder_are_removed_and_nothing_else(app, tmp_path):
    folder = tmp_path / "usb"
    folder.mkdir()
    now = datetime.now(timezone.utc)
    for name, age_days in (("old.sigdesk-backup", 31), ("new.sigdesk-backup", 29), ("notes.txt", 400)):
        path = folder / name
        path.write_bytes(b"x")
        stamp = (now - timedelta(days=age_days)).timestamp()
        os.utime(path, (stamp, stamp))
    counts = run_purge(app, now, **{"backup.folder": folder})
    assert counts == {"backups": 1}
    assert sorted(p.name for p in folder.iterdir()) == ["new.sigdesk-backup", "notes.txt"]


def test_purge_runs_once_a_day_and_catches_up_after_the_app_was_closed(app):
    state = app.extensions["sigdesk"]
    start = datetime.now(timezone.utc) + timedelta(days=400)

    def old_audit():
        with state.database.session() as session:
            record(session, "test.old")
            session.execute(
                AuditEvent.__table__.update()
                .where(AuditEvent.action == "test.old")
                .values(at=start - timedelta(days=800))
            )

    def tick(now):
        with state.database.session() as session:
            return run_daily(session, state.cipher, state.config.data_dir, now)

    old_audit()
    assert tick(start) >= 1
    old_audit()
    assert tick(start + timedelta(hours=23)) == 0
    assert tick(start + timedelta(days=3)) >= 1


def test_the_purge_is_a_task_on_the_one_worker(app):
    worker = app.extensions["sigdesk"].worker
    task = next(task for task in worker.tasks if task.name == "retention")
    worker.run_once([task])
    with app.extensions["sigdesk"].database.session() as session:
        assert session.get(Setting, LAST_RUN) is not None


def test_copies_of_uploads_are_dropped_once_metas_media_id_has_expired_unless_a_message_shows_them(app):
    state = app.extensions["sigdesk"]
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    sent, unsent = png + b"sent", png + b"unsent"
    with state.database.session() as session:
        for media_id, data in (("m-sent", sent), ("m-unsent", unsent)):
            keep_upload(
                session,
                state.config.data_dir,
                media_id,
                data,
                "image/png",
                None,
                check_media(data, "image/png", None, "image"),
            )
        keys = dict(session.execute(select(UploadedMedia.media_id, UploadedMedia.storage_key)).all())
        contact = factories.contact(session)
        conversation = factories.conversation(session, contact)
        factories.message(session, conversation, "out", "image", storage_key=keys["m-sent"])
        session.commit()
    assert "expired_uploads" not in run_purge(app, datetime.now(timezone.utc) + timedelta(days=29))
    later = datetime.now(timezone.utc) + timedelta(days=31)
    assert run_purge(app, later)["expired_uploads"] == 2
    assert count(app, UploadedMedia) == 0
    assert media_path(state.config.data_dir, keys["m-sent"]).exists()  # the thread still shows it
    assert not media_path(state.config.data_dir, keys["m-unsent"]).exists()
