import json
import time
from datetime import timedelta

import httpx
import pytest

from sigdesk.whatsapp_account.services import client_or_none
from sigdesk.db import utcnow
from sigdesk.models import Conversation, Message, Template
from sigdesk.outbound import services as outbound
from sigdesk.settings import services as settings
from tests import factories
from tests.fakes.graph import PHONE_NUMBER_ID, WABA_ID
from tests.waiting import wait_for

APP_SECRET = factories.APP_SECRET
CUSTOMER = "15550001111"


def connect(app, fake_graph):
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        factories.whatsapp_connection(session, state.cipher, fake_graph.url)


def inbound(wamid, kind="text", content=None, when=None, name="Rosa"):
    body = factories.incoming(
        CUSTOMER,
        kind,
        content or {"body": "Is my cake ready?"},
        wamid=wamid,
        at=int(when or time.time()),
        name=name,
        waba_id=WABA_ID,
        meta=factories.metadata(PHONE_NUMBER_ID, "15550100199"),
    )
    return json.dumps(body).encode()


def post_webhook(base_url, raw):
    raw, headers = factories.signed(raw, APP_SECRET)
    response = httpx.post(f"{base_url}/webhooks/whatsapp", content=raw, headers=headers)
    assert response.status_code == 200, response.text
    return response


def first_conversation(api):
    return wait_for(lambda: api.get("/conversations").json()["items"])[0]


def message_status(api, conversation_id, message_id):
    messages = api.get(f"/conversations/{conversation_id}/messages").json()["items"]
    return next(m for m in messages if m["id"] == message_id)


def test_a_reply_reaches_meta_and_its_ticks_advance(api, fake_graph):
    post_webhook(api.live_server.url, inbound("wamid.IN1"))
    conversation = first_conversation(api)
    assert conversation["window_open"] and conversation["unread_count"] == 1
    response = api.post(
        f"/conversations/{conversation['id']}/messages", json={"text": "Yes, come by at 5!", "reply_to": "wamid.IN1"}
    )
    assert response.status_code == 202 and response.json()["status"] == "queued"
    sent = wait_for(lambda: fake_graph.sent)
    assert sent[0]["text"]["body"] == "Yes, come by at 5!" and sent[0]["context"] == {"message_id": "wamid.IN1"}
    message_id = response.json()["id"]
    wamid = wait_for(lambda: message_status(api, conversation["id"], message_id)["wamid"])
    assert message_status(api, conversation["id"], message_id)["status"] == "sent"
    url = f"{api.live_server.url}/webhooks/whatsapp"
    for status in ("read", "delivered", "sent"):
        assert fake_graph.post_status(url, APP_SECRET, wamid, status).status_code == 200
    assert message_status(api, conversation["id"], message_id)["status"] == "read"


def test_free_form_messages_are_refused_when_the_window_is_closed(api, app, fake_graph):
    post_webhook(api.live_server.url, inbound("wamid.OLD", when=time.time() - 25 * 3600))
    conversation = first_conversation(api)
    assert not conversation["window_open"]
    response = api.post(f"/conversations/{conversation['id']}/messages", json={"text": "Hello again"})
    assert response.status_code == 422 and "Send a template" in response.json()["error"]
    with app.extensions["sigdesk"].database.session() as session:
        session.add(
            Template(name="order_ready", language="en_US", status="APPROVED", category="UTILITY", components="[]")
        )
    response = api.post(
        f"/conversations/{conversation['id']}/messages",
        json={"type": "template", "template": {"name": "order_ready", "language": {"code": "en_US"}}},
    )
    assert response.status_code == 202
    assert wait_for(lambda: fake_graph.sent)[0]["template"]["name"] == "order_ready"


def test_bad_send_requests_get_clear_errors_and_store_nothing(api, app):
    post_webhook(api.live_server.url, inbound("wamid.IN2"))
    conversation = first_conversation(api)
    path = f"/conversations/{conversation['id']}/messages"
    assert api.post(path, content=b"not json", headers={"Content-Type": "application/json"}).status_code == 400
    assert api.post(path, json={"type": "text"}).status_code == 400
    too_long = api.post(path, json={"text": "x" * 4097})
    assert too_long.status_code == 400 and "4096" in too_long.json()["error"] and too_long.json()["field"] == "text"
    unapproved = api.post(path, json={"type": "template", "template": {"name": "nope", "language": {"code": "en"}}})
    assert unapproved.status_code == 422 and "Sync templates" in unapproved.json()["error"]
    assert api.post("/conversations/9999/messages", json={"text": "hi"}).status_code == 404
    with app.extensions["sigdesk"].database.session() as session:
        assert session.query(Message).filter_by(direction="out").count() == 0


def queue_text(app, text="Hello"):
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        conversation = session.query(Conversation).one()
        return outbound.queue(session, conversation, "text", {"body": text}).id


def run_sender(app, now=None):
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        return outbound.send_due(session, lambda s: client_or_none(s, state.cipher), now=now)


@pytest.fixture
def conversation_ready(app, owner, fake_graph):
    connect(app, fake_graph)
    client = app.test_client()
    raw, headers = factories.signed(inbound("wamid.IN9"), APP_SECRET)
    assert client.post("/webhooks/whatsapp", data=raw, headers=headers).status_code == 200


def load(app, message_id):
    with app.extensions["sigdesk"].database.session() as session:
        return session.get(Message, message_id)


def test_throughput_errors_are_retried_with_backoff(app, fake_graph, conversation_ready):
    message_id = queue_text(app)
    fake_graph.fail_next(130429, count=2)
    run_sender(app)
    first = load(app, message_id)
    assert first.status == "queued" and first.error_code == 130429 and first.next_attempt_at > utcnow()
    assert run_sender(app) == 0
    run_sender(app, now=utcnow() + timedelta(minutes=10))
    run_sender(app, now=utcnow() + timedelta(minutes=20))
    done = load(app, message_id)
    assert done.status == "sent" and done.wamid and done.attempts == 3
    assert len(fake_graph.sent) == 1


def test_permanent_errors_fail_at_once_with_words(app, fake_graph, conversation_ready):
    message_id = queue_text(app)
    fake_graph.fail_next(131026)
    run_sender(app)
    failed = load(app, message_id)
    assert (
        failed.status == "failed"
        and failed.error_code == 131026
        and "could not be delivered" in failed.error_explanation
    )
    assert failed.attempts == 1


def test_a_send_interrupted_by_a_crash_is_never_sent_twice(app, fake_graph, conversation_ready):
    message_id = queue_text(app)
    with app.extensions["sigdesk"].database.session() as session:
        session.get(Message, message_id).status = "sending"
    with app.extensions["sigdesk"].database.session() as session:
        assert outbound.recover_interrupted(session) == 1
    assert run_sender(app) == 0
    failed = load(app, message_id)
    assert failed.status == "failed" and "may or may not have reached" in failed.error_explanation
    assert fake_graph.sent == []


def test_sending_without_a_connection_says_what_to_set(app, owner, auth):
    with app.extensions["sigdesk"].database.session() as session:
        factories.conversation(session, factories.contact(session, CUSTOMER), last_inbound_at=utcnow())
    message_id = queue_text(app)
    run_sender(app)
    assert "not connected" in load(app, message_id).error_explanation


def test_read_receipts_follow_the_setting(api, app, fake_graph):
    post_webhook(api.live_server.url, inbound("wamid.IN3"))
    conversation = first_conversation(api)
    assert api.post(f"/conversations/{conversation['id']}/read").json()["receipt_queued"]
    receipt = {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.IN3"}
    wait_for(lambda: any(request.body == receipt for request in fake_graph.requests))
    with app.extensions["sigdesk"].database.session() as session:
        settings.set_text(session, app.extensions["sigdesk"].cipher, "whatsapp.read_receipts", "false")
    count = len(fake_graph.requests)
    assert not api.post(f"/conversations/{conversation['id']}/read").json()["receipt_queued"]
    time.sleep(0.5)
    assert len(fake_graph.requests) == count
    assert api.get("/conversations").json()["items"][0]["unread_count"] == 0


def test_an_interrupted_send_is_adopted_when_meta_reports_it(app, client, fake_graph, conversation_ready):
    message_id = queue_text(app)
    with app.extensions["sigdesk"].database.session() as session:
        message = session.get(Message, message_id)
        message.status = "sending"
        ref = message.client_ref
    with app.extensions["sigdesk"].database.session() as session:
        outbound.recover_interrupted(session)
    status = factories.status_update(
        "wamid.LATE",
        "delivered",
        CUSTOMER,
        at=1700000000,
        waba_id=WABA_ID,
        meta=factories.metadata(PHONE_NUMBER_ID, "1"),
        biz_opaque_callback_data=ref,
    )
    raw, headers = factories.signed(status, APP_SECRET)
    assert client.post("/webhooks/whatsapp", data=raw, headers=headers).status_code == 200
    adopted = load(app, message_id)
    assert adopted.wamid == "wamid.LATE" and adopted.status == "delivered" and adopted.error_explanation is None


def test_failed_statuses_are_explained_in_words(app, client, fake_graph, conversation_ready):
    message_id = queue_text(app)
    run_sender(app)
    wamid = load(app, message_id).wamid
    status = factories.status_update(
        wamid,
        "failed",
        CUSTOMER,
        at=1700000000,
        waba_id=WABA_ID,
        meta=factories.metadata(PHONE_NUMBER_ID, "1"),
        errors=[{"code": 131047, "title": "Re-engagement message"}],
    )
    raw, headers = factories.signed(status, APP_SECRET)
    client.post("/webhooks/whatsapp", data=raw, headers=headers)
    failed = load(app, message_id)
    assert failed.status == "failed" and failed.error_code == 131047 and "window is closed" in failed.error_explanation


def test_attachments_are_checked_before_upload_then_sent_by_id(api, fake_graph):
    post_webhook(api.live_server.url, inbound("wamid.IN4"))
    conversation = first_conversation(api)
    png = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 300
    lying = api.post(
        "/media", files={"file": ("cake.png", b"%PDF-1.7\n" + b"x" * 100, "image/png")}, data={"type": "image"}
    )
    assert lying.status_code == 422 and "application/pdf" in lying.json()["error"]
    big = api.post(
        "/media", files={"file": ("big.png", png + b"\x00" * (6 * 1024 * 1024), "image/png")}, data={"type": "document"}
    )
    assert big.status_code in (413, 422)
    assert api.post("/media", data={"type": "image"}).status_code == 400
    uploaded = api.post("/media", files={"file": ("cake.png", png, "image/png")}, data={"type": "image"})
    assert uploaded.status_code == 201
    response = api.post(
        f"/conversations/{conversation['id']}/messages",
        json={"type": "image", "image": {"id": uploaded.json()["id"], "caption": "Your cake"}},
    )
    assert response.status_code == 202
    assert wait_for(lambda: fake_graph.sent)[-1]["image"] == {"id": uploaded.json()["id"], "caption": "Your cake"}


def test_a_failed_message_can_be_sent_again_by_a_person(api, fake_graph):
    post_webhook(api.live_server.url, inbound("wamid.IN5"))
    conversation = first_conversation(api)
    fake_graph.fail_next(131026)
    message_id = api.post(f"/conversations/{conversation['id']}/messages", json={"text": "Ready!"}).json()["id"]
    wait_for(lambda: message_status(api, conversation["id"], message_id)["status"] == "failed")
    failed = message_status(api, conversation["id"], message_id)
    assert failed["error"]["code"] == 131026 and "could not be delivered" in failed["error"]["explanation"]
    retry = api.post(f"/conversations/{conversation['id']}/messages/{message_id}/retry")
    assert retry.status_code == 202 and retry.json()["status"] == "queued"
    wait_for(lambda: message_status(api, conversation["id"], message_id)["status"] == "sent")
    again = api.post(f"/conversations/{conversation['id']}/messages/{message_id}/retry")
    assert again.status_code == 422 and "Only failed" in again.json()["error"]
    assert api.post(f"/conversations/{conversation['id']}/messages/99999/retry").status_code == 404


def test_open_inboxes_hear_when_the_worker_has_sent_a_message(api, app, fake_graph):
    post_webhook(api.live_server.url, inbound("wamid.IN2"))
    conversation = first_conversation(api)
    subscription = app.extensions["sigdesk"].events.subscribe()
    message_id = api.post(f"/conversations/{conversation['id']}/messages", json={"text": "On its way"}).json()["id"]
    deadline = time.monotonic() + 10
    heard = []
    while time.monotonic() < deadline and ("message.updated", message_id) not in heard:
        heard += [(event.kind, event.data.get("message_id")) for event in subscription.get(timeout=0.5)]
    assert ("message.updated", message_id) in heard
    assert message_status(api, conversation["id"], message_id)["status"] == "sent"
