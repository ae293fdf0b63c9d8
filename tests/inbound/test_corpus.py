"""Every payload in the shared corpus of real-world webhook examples ingests cleanly.

Expectations are computed from the JSON directly (not through SigDesk's parser), so a payload the
parser misreads shows up as a missing or different row.
"""

import json

import pytest
from sqlalchemy import delete, func, select

from sigdesk.config import Config
from sigdesk.db import Base, Database, upgrade_to_head
from sigdesk.models import AccountEvent, Contact, Message, MessageStatusEvent, Reaction, Template, WebhookDelivery
from sigdesk.whatsapp.webhook import TEMPLATE_FIELDS
from tests.conftest import SHARED_DIR
from tests.inbox.helpers import deliver

CORPUS = SHARED_DIR / "meta-webhooks"
FILES = sorted(CORPUS.rglob("*.json")) if CORPUS.is_dir() else []
KEEP = {"users", "settings", "alembic_version"}


def expected_rows(body: dict) -> dict:
    found = {
        "messages": {},
        "statuses": set(),
        "reactions": set(),
        "templates": set(),
        "fields": set(),
        "preferences": [],
    }
    for entry in body.get("entry", []):
        for change in entry.get("changes", []):
            field, value = change["field"], change["value"]
            if field in ("messages", "smb_message_echoes"):
                for item in value.get("messages", []) + value.get("message_echoes", []):
                    if item.get("type") == "reaction":
                        found["reactions"].add(item["reaction"]["message_id"])
                    else:
                        found["messages"].setdefault(item["id"], item)
                for status in value.get("statuses", []):
                    found["statuses"].add((status["id"], status["status"].lower()))
                if value.get("errors"):
                    found["fields"].add(f"{field}.errors")
            elif field in TEMPLATE_FIELDS:
                found["templates"].add((value["message_template_name"], value["message_template_language"]))
                found["fields"].add(field)
            elif field == "user_preferences":
                found["preferences"].extend(value["user_preferences"])
            else:
                found["fields"].add(field)
    return found


@pytest.fixture(scope="module")
def corpus_db(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    config = Config(data_dir=folder, database_url=f"sqlite:///{folder / 'corpus.db'}")
    database = Database(config.database_url)
    upgrade_to_head(database, config.migrations_dir)
    yield database
    database.dispose()


def empty(database: Database) -> None:
    with database.session() as session:
        for table in reversed(Base.metadata.sorted_tables):
            if table.name not in KEEP:
                session.execute(delete(table))


@pytest.mark.parametrize(
    "path", FILES or [None], ids=lambda path: path.relative_to(CORPUS).as_posix() if path else "absent"
)
def test_corpus_payload_ingests_with_the_expected_rows(shared_dir, corpus_db, path):
    empty(corpus_db)
    raw = path.read_bytes()
    want = expected_rows(json.loads(raw))
    assert deliver(corpus_db, raw) == "processed"
    with corpus_db.session() as session:
        stored = {m.wamid: m for m in session.scalars(select(Message))}
        assert set(stored) == set(want["messages"])
        for wamid, item in want["messages"].items():
            message = stored[wamid]
            assert message.type == item.get("type", message.type)
            assert message.raw is not None and message.contact_id is not None
            if item.get("type") == "text":
                assert message.text == item["text"]["body"]
            for kind in ("image", "video", "audio", "document", "sticker"):
                if item.get("type") == kind:
                    assert message.media_id == str(item[kind]["id"])
        statuses = set(session.execute(select(MessageStatusEvent.wamid, MessageStatusEvent.status)).all())
        assert statuses == want["statuses"]
        assert set(session.scalars(select(Reaction.target_wamid))) == want["reactions"]
        assert set(session.execute(select(Template.name, Template.language)).all()) == want["templates"]
        assert want["fields"] <= set(session.scalars(select(AccountEvent.field)))
        for preference in want["preferences"]:
            contact = session.scalar(select(Contact).where(Contact.wa_id == preference["wa_id"]))
            assert contact.opted_out_marketing is (preference["value"] == "stop")


@pytest.mark.database
def test_whole_corpus_ingests_into_one_database_and_redelivery_changes_nothing(app, shared_dir):
    database = app.extensions["sigdesk"].database
    files = sorted((shared_dir / "meta-webhooks").rglob("*.json"))

    def snapshot() -> dict:
        with database.session() as session:
            return {
                model.__tablename__: session.scalar(select(func.count()).select_from(model))
                for model in (Contact, Message, MessageStatusEvent, Reaction, Template, AccountEvent)
            }

    for path in files:
        assert deliver(database, path.read_bytes()) == "processed", path.name
    first = snapshot()
    assert first["messages"] > 0 and first["message_status_events"] > 0
    for path in files:
        assert deliver(database, path.read_bytes()) == "processed", path.name
    assert snapshot() == first
    with database.session() as session:
        states = set(session.scalars(select(WebhookDelivery.state)))
    assert states == {"processed"}
