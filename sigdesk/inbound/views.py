"""Meta's webhook endpoint: the handshake, and deliveries stored before they are interpreted.

Answers, and why:

* GET with the right verify token -> 200 and the challenge as text/plain; anything else 403.
* POST without a valid X-Hub-Signature-256 -> 403, nothing stored, a counter bumped for admins.
* POST larger than Meta's 3 MB plus margin -> 413, before the body is read.
* POST correctly signed -> the raw bytes are committed first, then processed in a second
  transaction, and the answer is 200 whatever processing did: the raw copy is safe, and any other
  answer makes Meta resend for seven days. A signed body that is not a JSON object is therefore
  stored as *quarantined* and still answered 200 (a resend would be the same bytes); a body whose
  processing fails is stored as *failed* with its error, to be reprocessed after a fix.
"""

from __future__ import annotations

import logging
import time
from functools import partial

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy.orm import Session
from werkzeug.exceptions import RequestEntityTooLarge

from sigdesk.batching import BatchFailed, GroupCommit
from sigdesk.extensions import limiter
from sigdesk.inbound import services
from sigdesk.settings import services as settings
from sigdesk.web import cipher, db_session, error_response, internet_facing, public
from sigdesk.whatsapp.webhook import SIGNATURE_HEADER, parse, verify_challenge, verify_signature

log = logging.getLogger(__name__)

bp = Blueprint("inbound", __name__)
limiter.exempt(bp)  # Meta retries anything but 200; throttling it would only lose time

MAX_WEBHOOK_BYTES = 4 * 1024 * 1024
SECRET_TTL_SECONDS = 5.0


class CachedAppSecret:
    """The app secret is needed on every delivery; reading and decrypting it each time is waste."""

    def __init__(self) -> None:
        self.loaded_at = 0.0
        self.value: str | None = None

    def get(self, session: Session) -> str | None:
        if time.monotonic() - self.loaded_at > SECRET_TTL_SECONDS:
            self.value = services.app_secret(session, cipher())
            self.loaded_at = time.monotonic()
        return self.value


def _app_secret(session: Session) -> str | None:
    return current_app.extensions.setdefault("sigdesk.inbound.app_secret", CachedAppSecret()).get(session)


def invalidate_app_secret() -> None:
    """For the settings page: make a changed app secret count on the next delivery."""
    cached = current_app.extensions.get("sigdesk.inbound.app_secret")
    if cached is not None:
        cached.loaded_at = 0.0


@bp.get("/webhooks/whatsapp")
@public
@internet_facing
def handshake():
    expected = settings.get(db_session(), cipher(), "whatsapp.verify_token")
    challenge = verify_challenge(
        request.args.get("hub.mode"), request.args.get("hub.verify_token"), request.args.get("hub.challenge"), expected
    )
    if challenge is None:
        log.warning("refused a webhook handshake: %s", "wrong mode or token" if expected else "no verify token is set")
        return error_response(403, "The verify token does not match the one set in SigDesk.")
    return Response(challenge, status=200, mimetype="text/plain")


handshake.csrf_exempt = True


def _intake() -> GroupCommit:
    """The app's one group commit for webhook deliveries (see sigdesk.batching)."""
    state = current_app.extensions["sigdesk"]
    intake = current_app.extensions.get("sigdesk.inbound.intake")
    if intake is None:
        intake = current_app.extensions.setdefault(
            "sigdesk.inbound.intake", GroupCommit(partial(_store_and_apply, state.database, state.events))
        )
    return intake


def _store_and_apply(database, events, batch: list[services.Incoming]) -> list[tuple[int, str]]:
    session = database.writer()
    try:
        ids, applied = services.store_and_apply(session, batch)
    finally:
        session.close()
    services.publish_changes(events, applied.changes)
    return list(zip(ids, applied.states))


@bp.post("/webhooks/whatsapp")
@public
@internet_facing
def receive():
    too_large = f"Webhook bodies are limited to {MAX_WEBHOOK_BYTES // (1024 * 1024)} MB."
    if request.content_length is not None and request.content_length > MAX_WEBHOOK_BYTES:
        return error_response(413, too_large)
    request.max_content_length = MAX_WEBHOOK_BYTES
    try:
        raw = request.get_data(cache=False)
    except RequestEntityTooLarge:
        return error_response(413, too_large)
    session = db_session()
    secret = _app_secret(session)
    if session.in_transaction():
        session.commit()  # end any read transaction before writing
    signature = request.headers.get(SIGNATURE_HEADER)
    if not verify_signature(secret, raw, signature):
        log.warning("refused a webhook: %s", "signature missing or wrong" if secret else "no app secret is set")
        with services.write_lock(session):
            services.count_rejected(session)
            session.commit()
        return error_response(403, "The webhook signature is missing or does not match the app secret.")
    try:
        parsed = parse(raw)  # here, not in the batch: only one thread at a time writes
    except Exception:  # noqa: BLE001 - process_delivery parses again and records what went wrong
        parsed = None
    try:
        delivery_id, state = _intake().submit(services.Incoming(raw, signature, parsed))
    except BatchFailed as exc:
        log.error("could not store a webhook delivery: %s", services.describe_error(exc.__cause__ or exc))
        response, status = error_response(503, "SigDesk could not store the delivery; Meta will send it again.")
        response.headers["Retry-After"] = "5"
        return response, status
    return jsonify(status=state, delivery=delivery_id)


receive.csrf_exempt = True
