"""Inbound media: fetched in the background from Meta, checked, stored content-addressed, or quarantined."""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from sigdesk.whatsapp_account.services import NotConnected, graph_client
from sigdesk.crypto import Cipher
from sigdesk.db import write_lock
from sigdesk.errors import UserError
from sigdesk.events.catalogue import MessageUpdated
from sigdesk.events.outbox import record
from sigdesk.models import Conversation, Direction, MediaState, Message, UploadedMedia
from sigdesk.whatsapp.client import GraphClient, InvalidMessage
from sigdesk.whatsapp.errors import GraphError
from sigdesk.whatsapp.media import LIMITS, MediaCheck, check_media, store_media

log = logging.getLogger(__name__)

BATCH = 5
MAX_FETCH_ATTEMPTS = 5
FETCHING = "fetching"
HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}")
BASE64_DIGEST = re.compile(r"[A-Za-z0-9+/_-]{43}=?")


class MalformedDigest(ValueError):
    """Meta announced a SHA-256 that is neither 64 hex digits nor 32 bytes in base64."""


def digest_bytes(announced: object) -> bytes | None:
    """The 32 bytes of an announced SHA-256: Meta's webhooks send base64, its media endpoint answers hex.

    Both name the same bytes, so they are compared as bytes; anything else is refused rather than guessed at.
    """
    if announced is None or (isinstance(announced, str) and not announced.strip()):
        return None
    if not isinstance(announced, str):
        raise MalformedDigest(type(announced).__name__)
    text = announced.strip()
    if HEX_DIGEST.fullmatch(text):
        return bytes.fromhex(text)
    if BASE64_DIGEST.fullmatch(text):
        try:
            raw = base64.b64decode(text.replace("-", "+").replace("_", "/").rstrip("=") + "=", validate=True)
        except binascii.Error as exc:
            raise MalformedDigest(text) from exc
        if len(raw) == 32:
            return raw
    raise MalformedDigest(text)


def digest_problem(data: bytes, *announced: object) -> str | None:
    """Why the bytes do not match what WhatsApp announced (webhook and media endpoint alike), or None."""
    actual = hashlib.sha256(data).digest()
    for value in announced:
        try:
            expected = digest_bytes(value)
        except MalformedDigest:
            return "WhatsApp announced a SHA-256 for this file that is not a valid one"
        if expected is not None and expected != actual:
            return "the file's SHA-256 does not match the one WhatsApp announced"
    return None


class UploadRefused(UserError):
    """An attachment that cannot go to Meta; `status` is the HTTP answer that fits."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message, status, "file")


def upload_checked(
    session: Session,
    cipher: Cipher,
    data: bytes,
    mimetype: str | None,
    filename: str | None,
    kind: str,
    data_dir: Path | None = None,
) -> tuple[str, MediaCheck]:
    """The one upload path: check the bytes here (real type, size) before Meta sees them, then
    upload; returns Meta's media id. Ends the session's transaction first: none is held across
    the network call. With `data_dir`, the checked bytes are also kept in the media store under
    that id, so a message sent later with it shows our copy in the thread (keep_upload)."""
    check = check_media(data, mimetype, None, kind)
    article = "an" if kind[:1] in "aeiou" else "a"
    if not check.ok:
        raise UploadRefused(422, f"This file cannot be sent as {article} {kind}: {check.reason}.")
    try:
        with graph_client(session, cipher) as client:
            session.commit()
            media_id = client.upload_media(
                data, mimetype or check.sniffed or "application/octet-stream", filename or kind
            )
    except NotConnected as exc:
        raise UploadRefused(409, str(exc)) from exc
    except InvalidMessage as exc:
        raise UploadRefused(422, f"This file cannot be sent as {article} {kind}: {exc}") from exc
    except GraphError as exc:
        raise UploadRefused(502, exc.human) from exc
    if data_dir is not None:
        keep_upload(session, data_dir, media_id, data, mimetype or check.sniffed, filename, check)
    return media_id, check


def keep_upload(
    session: Session,
    data_dir: Path,
    media_id: str,
    data: bytes,
    mimetype: str | None,
    filename: str | None,
    check: MediaCheck,
) -> None:
    """Store checked bytes content-addressed (as inbound media) and remember them by Meta's media id."""
    key = store_media(data_dir, data)
    with write_lock(session):
        if session.scalar(select(UploadedMedia.id).where(UploadedMedia.media_id == media_id)) is None:
            session.add(
                UploadedMedia(
                    media_id=media_id[:128],
                    storage_key=key,
                    mime_type=(mimetype or "application/octet-stream")[:255],
                    filename=filename[:255] if filename else None,
                    file_size=check.size,
                )
            )
        session.commit()


def fetch_pending(session: Session, client_for: Callable[[Session], GraphClient | None], data_dir: Path) -> int:
    due = list(
        session.scalars(
            select(Message.id)
            .where(
                Message.direction == Direction.IN.value,
                Message.media_state == MediaState.PENDING.value,
                Message.media_id.is_not(None),
                Message.attempts < MAX_FETCH_ATTEMPTS,
            )
            .order_by(Message.id)
            .limit(BATCH)
        )
    )
    if not due:
        return 0
    client = client_for(session)
    if client is None:
        return 0
    session.commit()  # end the read that found the work: each write below starts its own transaction
    handled = 0
    with client:
        for message_id in due:
            with write_lock(session):
                claimed = session.execute(
                    update(Message)
                    .where(Message.id == message_id, Message.media_state == MediaState.PENDING.value)
                    .values(attempts=Message.attempts + 1)
                ).rowcount
                session.commit()
            if claimed:
                fetch_one(session, client, message_id, data_dir)
                handled += 1
    return handled


def fetch_one(session: Session, client: GraphClient, message_id: int, data_dir: Path) -> None:
    """Download and check outside any transaction, then record the result under the write lock."""
    message = session.get(Message, message_id)
    session.refresh(message)
    kind = message.type if message.type in LIMITS else "document"
    media_id, declared, expected, attempts = message.media_id, message.mime_type, message.sha256, message.attempts
    session.commit()
    changes: dict = {}
    try:
        info = client.media_info(media_id)
        data = client.download_media(info["url"], LIMITS[kind])
    except GraphError as error:
        if error.retryable and attempts < MAX_FETCH_ATTEMPTS:
            log.info("media for message %s not fetched yet (attempt %s)", message_id, attempts)
            return
        changes = {
            "media_state": MediaState.FAILED.value,
            "error_explanation": f"The file could not be downloaded from WhatsApp: {error.human}",
        }
    except (KeyError, TypeError):
        changes = {
            "media_state": MediaState.FAILED.value,
            "error_explanation": "WhatsApp answered without a download address for this file.",
        }
    else:
        check = check_media(data, declared or info.get("mime_type"), None, kind)
        problem = digest_problem(data, expected, info.get("sha256"))
        if problem is not None:
            check = replace(check, ok=False, reason=problem)
        if check.ok:
            changes = {
                "storage_key": store_media(data_dir, data),
                "mime_type": declared or check.sniffed,
                "media_state": MediaState.READY.value,
                "file_size": check.size,
            }
        else:
            log.warning("quarantined media of message %s: %s", message_id, check.reason)
            changes = {
                "media_state": MediaState.QUARANTINED.value,
                "file_size": check.size,
                "error_explanation": f"Quarantined: {check.reason}.",
            }
    with write_lock(session):
        session.execute(update(Message).where(Message.id == message_id).values(**changes))
        found = session.execute(
            select(Message.conversation_id, Conversation.assignee_id)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(Message.id == message_id)
        ).first()
        if found is not None:  # open threads show the photo instead of "downloading…"
            record(session, MessageUpdated(found[0], found[1], message_id, "media"))
        session.commit()
