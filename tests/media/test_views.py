import hashlib
import time

import pytest

from sigdesk.whatsapp_account.services import client_or_none
from sigdesk.media.services import fetch_pending
from sigdesk.models import Message
from tests import factories
from tests.outbound.test_sending import APP_SECRET, connect, inbound

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 300
PDF = b"%PDF-1.7\n" + b"1 0 obj\n" * 40


def deliver(app, client, raw):
    raw, headers = factories.signed(raw, APP_SECRET)
    assert client.post("/webhooks/whatsapp", data=raw, headers=headers).status_code == 200


def fetch(app):
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        return fetch_pending(session, lambda s: client_or_none(s, state.cipher), state.config.data_dir)


def media_message(app, wamid):
    with app.extensions["sigdesk"].database.session() as session:
        return session.query(Message).filter_by(wamid=wamid).one()


@pytest.fixture
def connected(app, owner, fake_graph):
    connect(app, fake_graph)


def test_inbound_image_is_fetched_checked_and_served_inline(app, client, connected, fake_graph):
    media_id = fake_graph.add_media(PNG, "image/png")
    deliver(
        app,
        client,
        inbound(
            "wamid.IMG",
            "image",
            {
                "id": media_id,
                "mime_type": "image/png",
                "sha256": hashlib.sha256(PNG).hexdigest(),
                "caption": "this one",
            },
        ),
    )
    assert fetch(app) == 1
    message = media_message(app, "wamid.IMG")
    assert message.media_state == "ready"
    response = client.get(f"/media/{message.id}")
    assert response.status_code == 200 and response.data == PNG
    assert response.headers["Content-Type"] == "image/png"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "attachment" not in response.headers.get("Content-Disposition", "")


def test_documents_download_as_attachments(app, client, connected, fake_graph):
    media_id = fake_graph.add_media(PDF, "application/pdf")
    deliver(
        app,
        client,
        inbound("wamid.DOC", "document", {"id": media_id, "mime_type": "application/pdf", "filename": "invoice.pdf"}),
    )
    fetch(app)
    response = client.get(f"/media/{media_message(app, 'wamid.DOC').id}")
    assert response.status_code == 200
    assert (
        response.headers["Content-Disposition"].startswith("attachment")
        and "invoice.pdf" in response.headers["Content-Disposition"]
    )


def test_a_file_that_lies_about_its_type_is_quarantined_and_never_served(app, client, connected, fake_graph):
    media_id = fake_graph.add_media(PDF, "image/jpeg")
    deliver(app, client, inbound("wamid.FAKEJPG", "image", {"id": media_id, "mime_type": "image/jpeg"}))
    fetch(app)
    message = media_message(app, "wamid.FAKEJPG")
    assert message.media_state == "quarantined" and "application/pdf" in message.error_explanation
    response = client.get(f"/media/{message.id}")
    assert response.status_code == 409 and "quarantined" in response.get_data(as_text=True)


def test_a_hash_mismatch_is_quarantined(app, client, connected, fake_graph):
    media_id = fake_graph.add_media(PNG, "image/png")
    deliver(
        app, client, inbound("wamid.BADSHA", "image", {"id": media_id, "mime_type": "image/png", "sha256": "0" * 64})
    )
    fetch(app)
    assert media_message(app, "wamid.BADSHA").media_state == "quarantined"


def test_media_needs_a_login(app, client, connected, fake_graph, auth):
    media_id = fake_graph.add_media(PNG, "image/png")
    deliver(app, client, inbound("wamid.PRIV", "image", {"id": media_id, "mime_type": "image/png"}))
    fetch(app)
    message_id = media_message(app, "wamid.PRIV").id
    auth.logout()
    assert client.get(f"/media/{message_id}").status_code == 302


def test_media_that_meta_lost_fails_with_a_reason(app, client, connected):
    deliver(app, client, inbound("wamid.GONE", "image", {"id": "4040404", "mime_type": "image/png"}))
    fetch(app)
    message = media_message(app, "wamid.GONE")
    assert message.media_state == "failed" and "could not be downloaded" in message.error_explanation


def test_the_worker_fetches_media_under_a_real_server(app, connected, fake_graph, live_server):
    import httpx

    media_id = fake_graph.add_media(PNG, "image/png")
    raw, headers = factories.signed(
        inbound("wamid.LIVE", "image", {"id": media_id, "mime_type": "image/png"}), APP_SECRET
    )
    httpx.post(f"{live_server.url}/webhooks/whatsapp", content=raw, headers=headers)
    live_server.worker.wake()
    deadline = time.monotonic() + 10
    while media_message(app, "wamid.LIVE").media_state != "ready" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert media_message(app, "wamid.LIVE").media_state == "ready"
