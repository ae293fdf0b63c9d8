"""The fake Graph API's own promises: its status webhooks pass SigDesk's real signature check."""

import json

from sigdesk.settings import services as settings
from tests.fakes.graph import APP_SECRET


def use_app_secret(app, secret):
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        settings.set_text(session, state.cipher, "whatsapp.app_secret", secret)


def test_status_webhooks_are_signed_like_metas(app, live_server, fake_graph):
    use_app_secret(app, APP_SECRET)
    fake_graph.connect_webhook(f"{live_server.url}/webhooks/whatsapp")
    response = fake_graph.send_status("wamid.FAKE00000001", "delivered")
    assert response.status_code == 200, response.text


def test_a_wrong_app_secret_is_refused_by_sigdesk(app, live_server, fake_graph):
    use_app_secret(app, "the-real-secret")
    fake_graph.connect_webhook(f"{live_server.url}/webhooks/whatsapp", app_secret="a-guess")
    assert fake_graph.send_status("wamid.FAKE00000001", "read").status_code == 403


def test_failed_statuses_carry_metas_error_shape(fake_graph):
    payload = fake_graph.status_payload(
        "wamid.X", "failed", errors=[{"code": 131047, "title": "Re-engagement message"}]
    )
    status = payload["entry"][0]["changes"][0]["value"]["statuses"][0]
    assert status["errors"][0]["code"] == 131047 and "conversation" not in status
    json.dumps(payload)
