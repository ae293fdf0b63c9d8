"""The fake Graph API's own promises: its status webhooks pass SigDesk's real signature check, and it answers
reads of a phone number as Meta does."""

import json

import httpx

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


def test_a_phone_number_is_answered_with_the_fields_asked_for_or_metas_defaults(fake_graph):
    """Meta leaves out what a read of a number does not ask for (the messaging limit tier is not a default), so a
    client that forgets to ask shows "unknown" against the fake as it would against Meta."""
    from tests.fakes.graph import PHONE_NUMBER_ID, TOKEN, WABA_ID

    bearer = {"Authorization": f"Bearer {TOKEN}"}
    listed = httpx.get(f"{fake_graph.url}/v26.0/{WABA_ID}/phone_numbers", headers=bearer).json()["data"]
    node = httpx.get(f"{fake_graph.url}/v26.0/{PHONE_NUMBER_ID}", headers=bearer).json()
    for number in (listed[0], node):
        assert set(number) == {"id", "display_phone_number", "verified_name", "quality_rating"}
    asked = {"fields": "verified_name,messaging_limit_tier"}
    node = httpx.get(f"{fake_graph.url}/v26.0/{PHONE_NUMBER_ID}", params=asked, headers=bearer).json()
    assert node == {"id": PHONE_NUMBER_ID, "verified_name": "Rosa's Bakery", "messaging_limit_tier": "TIER_1K"}
