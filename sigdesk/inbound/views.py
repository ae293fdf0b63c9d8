"""Meta's webhook handshake (GET). The deliveries themselves (POST) never reach Flask: see
sigdesk.inbound.intake, installed in front of the app by `install_intake`.

GET with the right verify token -> 200 and the challenge as text/plain; anything else 403.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, Response, request

from sigdesk.events.catalogue import SettingsChanged
from sigdesk.extensions import limiter
from sigdesk.inbound.intake import WebhookIntake
from sigdesk.settings import services as settings
from sigdesk.web import cipher, db_session, error_response, internet_facing, public
from sigdesk.whatsapp.webhook import verify_challenge

log = logging.getLogger(__name__)

bp = Blueprint("inbound", __name__)
limiter.exempt(bp)  # Meta retries anything but 200; throttling it would only lose time


def install_intake(app: Flask) -> None:
    """Put the webhook intake in front of the app (every server and the test client go through it)."""
    state = app.extensions["sigdesk"]
    intake = WebhookIntake(app.wsgi_app, state.database, state.cipher)
    app.extensions["sigdesk.inbound.intake"] = intake
    app.wsgi_app = intake
    state.worker.register("webhook refusals", intake.refusals.flush)
    state.dispatcher.subscribe("settings.changed", lambda event: _forget_secret(intake, event))


def _forget_secret(intake: WebhookIntake, event: SettingsChanged) -> None:
    """A saved app secret counts on the next delivery."""
    if "whatsapp.app_secret" in event.keys:
        intake.secret.invalidate()


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
