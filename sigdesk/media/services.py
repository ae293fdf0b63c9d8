"""Inbound media: fetched in the background from Meta, checked, stored content-addressed, or quarantined."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from sigdesk.models import Direction, MediaState, Message
from sigdesk.whatsapp.client import GraphClient
from sigdesk.whatsapp.errors import GraphError
from sigdesk.whatsapp.media import LIMITS, check_media, store_media

log = logging.getLogger(__name__)

BATCH = 5
MAX_FETCH_ATTEMPTS = 5
FETCHING = "fetching"


def fetch_pending(session: Session, client_for: Callable[[Session], GraphClient | None], data_dir: Path) -> int:
    due = list(session.scalars(
        select(Message.id)
        .where(Message.direction == Direction.IN.value, Message.media_state == MediaState.PENDING.value,
               Message.media_id.is_not(None), Message.attempts < MAX_FETCH_ATTEMPTS)
        .order_by(Message.id)
        .limit(BATCH)
    ))
    if not due:
        return 0
    client = client_for(session)
    if client is None:
        return 0
    handled = 0
    with client:
        for message_id in due:
            claimed = session.execute(
                update(Message).where(Message.id == message_id, Message.media_state == MediaState.PENDING.value)
                .values(attempts=Message.attempts + 1)
            ).rowcount
            session.commit()
            if claimed:
                fetch_one(session, client, session.get(Message, message_id), data_dir)
                session.commit()
                handled += 1
    return handled


def fetch_one(session: Session, client: GraphClient, message: Message, data_dir: Path) -> None:
    kind = message.type if message.type in LIMITS else "document"
    try:
        info = client.media_info(message.media_id)
        data = client.download_media(info["url"], LIMITS[kind])
    except GraphError as error:
        if error.retryable and message.attempts < MAX_FETCH_ATTEMPTS:
            log.info("media for message %s not fetched yet (attempt %s)", message.id, message.attempts)
            return
        message.media_state = MediaState.FAILED.value
        message.error_explanation = f"The file could not be downloaded from WhatsApp: {error.human}"
        return
    except (KeyError, TypeError):
        message.media_state = MediaState.FAILED.value
        message.error_explanation = "WhatsApp answered without a download address for this file."
        return
    check = check_media(data, message.mime_type or info.get("mime_type"), message.sha256 or info.get("sha256"), kind)
    message.file_size = check.size
    if not check.ok:
        message.media_state = MediaState.QUARANTINED.value
        message.error_explanation = f"Quarantined: {check.reason}."
        log.warning("quarantined media of message %s: %s", message.id, check.reason)
        return
    message.storage_key = store_media(data_dir, data)
    message.mime_type = message.mime_type or check.sniffed
    message.media_state = MediaState.READY.value
