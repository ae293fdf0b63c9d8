"""A small database with a row in every table and media of several kinds, and a way to compare two."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import Engine

from sigdesk.audit.services import record
from sigdesk.auth import services as accounts
from sigdesk.db import Base
from sigdesk.models import (
    AccountEvent,
    Contact,
    Conversation,
    Message,
    MessageStatusEvent,
    Reaction,
    RelayReceipt,
    Template,
    WebhookCounter,
    WebhookDelivery,
)
from sigdesk.settings import services as settings
from sigdesk.whatsapp.media import store_media

SECRET = "EAAG-secret-token-ü"
MESSAGE_TYPES = [
    "text",
    "image",
    "video",
    "audio",
    "document",
    "sticker",
    "location",
    "contacts",
    "interactive",
    "button",
    "reaction",
    "template",
    "unsupported",
    "system",
]
MEDIA_TYPES = {"image", "video", "audio", "document", "sticker"}


def seed(app, contacts: int = 3) -> None:
    state = app.extensions["sigdesk"]
    data_dir: Path = state.config.data_dir
    now = datetime(2026, 11, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
    with state.database.session() as session:
        owner = accounts.create_user(
            session, "olive@example.com", "Olive Owner", "owner", "correct horse battery", rounds=4
        )
        agent = accounts.create_user(
            session, "agnes@example.com", "Ágnes Agent 🙂", "agent", "correct horse battery", rounds=4
        )
        accounts.create_api_token(session, owner, "zapier")
        settings.set_text(session, state.cipher, "whatsapp.access_token", SECRET)
        settings.set_text(session, state.cipher, "general.business_name", "Bäckerei 🍞")
        record(session, "settings.changed", actor=owner, target="whatsapp.access_token", detail={"via": "test"})
        delivery = WebhookDelivery(raw=b'\x00\xff{"object":"whatsapp_business_account"}\x80', size=40, received_at=now)
        session.add(delivery)
        session.flush()
        session.add(RelayReceipt(install="install-1", seq=2**40, delivery_id=delivery.id, received_at=now))
        session.add(AccountEvent(fingerprint="f" * 64, field="account_update", payload="{}", delivery_id=delivery.id))
        session.add(WebhookCounter(name="bad_signature", count=3, last_at=now))
        session.add(
            Template(name="order_ready", language="en_US", status="APPROVED", components=json.dumps([{"type": "BODY"}]))
        )
        for number in range(contacts):
            contact = Contact(
                wa_id=f"4477009000{number:02d}",
                profile_name=f"Customer {number} — ñ",
                opted_out_marketing=bool(number % 2),
                created_at=now,
            )
            session.add(contact)
            session.flush()
            conversation = Conversation(
                contact_id=contact.id, assignee_id=agent.id, last_message_at=now, unread_count=number
            )
            session.add(conversation)
            session.flush()
            for index, kind in enumerate(MESSAGE_TYPES):
                message = Message(
                    wamid=f"wamid.{number}.{index}",
                    conversation_id=conversation.id,
                    contact_id=contact.id,
                    direction="in" if index % 2 else "out",
                    type=kind,
                    timestamp=now + timedelta(seconds=index),
                    text="Hello 👋 " + "long " * (2000 if index == 0 else 1) if kind == "text" else None,
                    caption="蛋糕已经做好了" if kind == "image" else None,  # indexed by n-grams on MariaDB
                    details=json.dumps({"type": kind, "n": index}),
                    raw=json.dumps({"id": f"wamid.{number}.{index}"}),
                    author_id=owner.id if index % 2 == 0 else None,
                    status="delivered" if index % 2 == 0 else None,
                )
                if kind in MEDIA_TYPES:
                    data = os.urandom(1000 + 500 * index) + kind.encode()
                    message.storage_key = store_media(data_dir, data)
                    message.file_size = len(data)
                    message.media_state = "ready"
                    message.mime_type = "application/octet-stream"
                session.add(message)
            session.add(MessageStatusEvent(wamid=f"wamid.{number}.0", status="delivered", timestamp=now))
            session.add(Reaction(target_wamid=f"wamid.{number}.1", contact_id=contact.id, emoji="❤️"))


def snapshot(engine: Engine, seconds_only: bool = False) -> dict[str, list[tuple]]:
    """Every row of every table, in key order; seconds_only when a leg went through MySQL's DATETIME."""

    def norm(value):
        if seconds_only and isinstance(value, datetime):
            return value.replace(microsecond=0)
        return value

    tables = {}
    with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            order = list(table.primary_key.columns)
            tables[table.name] = [
                tuple(norm(value) for value in row) for row in connection.execute(select(table).order_by(*order))
            ]
    return tables


def media_files(data_dir: Path) -> dict[str, bytes]:
    root = data_dir / "media"
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}
