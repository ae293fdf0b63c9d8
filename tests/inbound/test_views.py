import json
import logging
from pathlib import Path

import httpx
import pytest
from sqlalchemy import event, func, select, text

from sigdesk.inbound import services
from sigdesk.inbound.intake import MAX_WEBHOOK_BYTES
from sigdesk.models import Contact, Conversation, Message, MessageStatusEvent, WebhookDelivery
from sigdesk.settings import services as settings
from tests import factories

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"
SECRET = "test-app-secret"
TOKEN = "test-verify-token"
URL = "/webhooks/whatsapp"


def body_of(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def signed(raw: bytes, secret: str = SECRET) -> dict[str, str]:
    return factories.signed(raw, secret)[1]


def rows(app, model, *where) -> int:
    with app.extensions["sigdesk"].database.session() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


@pytest.fixture
def configured(app, auth):
    """A set-up SigDesk with Meta's app secret and verify token entered."""
    auth.create_user("owner")
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        settings.set_value(session, state.cipher, "whatsapp.app_secret", SECRET)
        settings.set_value(session, state.cipher, "whatsapp.verify_token", TOKEN)
    return app


# --- handshake ---------------------------------------------------------------------------------


def test_handshake_answers_the_challenge_as_plain_text(configured, client):
    response = client.get(
        URL, query_string={"hub.mode": "subscribe", "hub.verify_token": TOKEN, "hub.challenge": "1158201444"}
    )
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert response.get_data() == b"1158201444"


@pytest.mark.parametrize(
    "query",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": TOKEN, "hub.challenge": "1"},
        {"hub.verify_token": TOKEN, "hub.challenge": "1"},
        {},
    ],
)
def test_handshake_with_wrong_token_or_mode_is_forbidden(configured, client, query):
    assert client.get(URL, query_string=query).status_code == 403


def test_handshake_is_forbidden_until_a_verify_token_is_set(app, auth, client):
    auth.create_user("owner")
    response = client.get(URL, query_string={"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"})
    assert response.status_code == 403


# --- deliveries --------------------------------------------------------------------------------


@pytest.mark.database
def test_signed_delivery_is_stored_and_processed(configured, client):
    raw = body_of("message_text")
    response = client.post(URL, data=raw, headers=signed(raw))
    assert response.status_code == 200
    assert response.get_json()["status"] == "processed"
    with configured.extensions["sigdesk"].database.session() as session:
        delivery = session.scalar(select(WebhookDelivery))
        assert (delivery.raw, delivery.state, delivery.source) == (raw, "processed", "direct")
        assert delivery.signature == signed(raw)["X-Hub-Signature-256"]
        assert session.scalar(select(Message.text)) == "Hello, is the shop open today? 🙂"


@pytest.mark.database
@pytest.mark.parametrize("header", [None, "sha256=" + "0" * 64, "sha256=nothex", "sha1=abc"])
def test_bad_or_missing_signature_is_forbidden_and_nothing_is_stored(configured, client, header):
    raw = body_of("message_text")
    headers = {"Content-Type": "application/json"}
    if header:
        headers["X-Hub-Signature-256"] = header
    response = client.post(URL, data=raw, headers=headers)
    assert response.status_code == 403
    assert rows(configured, WebhookDelivery) == 0
    assert rows(configured, Message) == 0
    configured.extensions["sigdesk"].worker.run_once()
    with configured.extensions["sigdesk"].database.session() as session:
        assert services.rejected_count(session) == 1


@pytest.mark.database
def test_bad_signatures_cost_no_database_write_until_the_worker_adds_them_up(configured, client):
    state = configured.extensions["sigdesk"]
    raw = body_of("message_text")
    writes = []

    def count_writes(_conn, _cursor, statement, *_args) -> None:
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            writes.append(statement)

    event.listen(state.database.engine, "before_cursor_execute", count_writes)
    try:
        for _ in range(40):
            assert client.post(URL, data=raw, headers={"X-Hub-Signature-256": "sha256=" + "0" * 64}).status_code == 403
        assert writes == []
        assert configured.extensions["sigdesk.inbound.intake"].refusals.pending == 40
        state.worker.run_once()
    finally:
        event.remove(state.database.engine, "before_cursor_execute", count_writes)
    assert len([w for w in writes if "webhook_counters" in w]) == 1
    with state.database.session() as session:
        assert services.rejected_count(session) == 40


def test_a_flood_of_bad_signatures_logs_one_summary_line(configured, client, caplog):
    raw = body_of("message_text")
    refusals = configured.extensions["sigdesk.inbound.intake"].refusals
    with caplog.at_level(logging.WARNING, logger="sigdesk.inbound.intake"):
        for _ in range(30):
            client.post(URL, data=raw, headers={"X-Hub-Signature-256": "sha256=" + "0" * 64})
        first = [record.getMessage() for record in caplog.records]
        assert len(first) == 1 and first[0].startswith("refused 1 webhook (1 signature missing or wrong)")
        refusals.log_summary(force=True)  # as the worker does once the interval is over
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 2
    assert lines[1].startswith("refused 29 webhooks (29 signature missing or wrong) in the last 60 s")


def test_signature_made_with_another_secret_is_forbidden(configured, client):
    raw = body_of("message_text")
    assert client.post(URL, data=raw, headers=signed(raw, "someone-elses-secret")).status_code == 403


def test_deliveries_are_forbidden_until_an_app_secret_is_set(app, auth, client):
    auth.create_user("owner")
    raw = body_of("message_text")
    assert client.post(URL, data=raw, headers=signed(raw, "")).status_code == 403
    assert rows(app, WebhookDelivery) == 0


def test_body_over_the_limit_is_refused_before_reading(configured, client):
    raw = b"{" + b" " * (MAX_WEBHOOK_BYTES + 10) + b"}"
    response = client.post(URL, data=raw, headers=signed(raw))
    assert response.status_code == 413
    assert "4 MB" in response.get_json()["error"]
    assert rows(configured, WebhookDelivery) == 0


def test_body_of_three_megabytes_is_accepted(configured, client):
    body = json.loads(body_of("message_text"))
    body["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = "x" * (3 * 1024 * 1024 - 2000)
    raw = json.dumps(body).encode()
    assert client.post(URL, data=raw, headers=signed(raw)).get_json()["status"] == "processed"


@pytest.mark.database
def test_duplicate_deliveries_store_the_message_once(configured, client):
    raw = body_of("message_text")
    for _ in range(3):
        assert client.post(URL, data=raw, headers=signed(raw)).status_code == 200
    assert rows(configured, WebhookDelivery) == 3
    assert rows(configured, Message) == 1


@pytest.mark.database
def test_several_entries_changes_and_messages_all_land(configured, client):
    raw = body_of("batch_several_entries")
    assert client.post(URL, data=raw, headers=signed(raw)).status_code == 200
    assert rows(configured, Message) == 3
    assert rows(configured, Contact) == 2
    assert rows(configured, MessageStatusEvent) == 2


@pytest.mark.database
def test_signed_body_that_is_not_json_is_kept_quarantined_and_answered_200(configured, client):
    raw = b"this is not json"
    response = client.post(URL, data=raw, headers=signed(raw))
    assert response.status_code == 200
    assert response.get_json()["status"] == "quarantined"
    with configured.extensions["sigdesk"].database.session() as session:
        delivery = session.scalar(select(WebhookDelivery))
        assert (delivery.raw, delivery.state) == (raw, "quarantined")


def test_form_encoded_body_is_read_raw_not_parsed_as_a_form(configured, client):
    raw = b"hub.mode=subscribe&x=%FF"
    headers = {**signed(raw), "Content-Type": "application/x-www-form-urlencoded"}
    response = client.post(URL, data=raw, headers=headers)
    assert response.status_code == 200
    with configured.extensions["sigdesk"].database.session() as session:
        assert session.scalar(select(WebhookDelivery.raw)) == raw


def test_deliveries_are_answered_before_flask_with_no_cookie_and_nothing_to_sniff(configured, client):
    raw = body_of("message_text")
    response = client.post(URL, data=raw, headers=signed(raw))
    assert response.status_code == 200 and response.get_json()["status"] == "processed"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Set-Cookie" not in response.headers


def test_other_methods_and_paths_are_left_to_flask(configured, client):
    raw = body_of("message_text")
    for response in (
        client.put(URL, data=raw, headers=signed(raw)),
        client.post(URL + "/again", data=raw, headers=signed(raw)),
    ):
        assert response.status_code == 400 and "CSRF" in response.get_json()["error"]  # Flask's own checks
    assert rows(configured, WebhookDelivery) == 0


def test_webhook_needs_no_csrf_token_or_login(configured, client):
    raw = body_of("status_sent")
    assert client.post(URL, data=raw, headers=signed(raw)).status_code == 200


@pytest.mark.database
def test_failed_processing_still_answers_200_and_keeps_the_delivery(configured, client, caplog):
    database = configured.extensions["sigdesk"].database
    with database.engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            connection.execute(
                text("CREATE TRIGGER boom BEFORE INSERT ON messages BEGIN SELECT RAISE(ABORT, 'boom'); END")
            )
        else:
            connection.execute(
                text(
                    "CREATE TRIGGER boom BEFORE INSERT ON messages FOR EACH ROW "
                    "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'boom'"
                )
            )
    try:
        raw = body_of("message_text")
        with caplog.at_level(logging.INFO):
            response = client.post(URL, data=raw, headers=signed(raw))
        assert response.status_code == 200
        assert response.get_json()["status"] == "failed"
        with database.session() as session:
            delivery = session.scalar(select(WebhookDelivery))
            assert (delivery.state, delivery.raw) == ("failed", raw)
            assert "boom" in delivery.error
        assert "shop open" not in caplog.text
        assert "webhook delivery" in caplog.text
    finally:
        with database.engine.begin() as connection:
            connection.execute(text("DROP TRIGGER boom"))


# --- a real server -----------------------------------------------------------------------------


@pytest.fixture
def live(configured, live_server):
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        yield http


def test_live_handshake_and_delivery_over_waitress(configured, live):
    answer = live.get(URL, params={"hub.mode": "subscribe", "hub.verify_token": TOKEN, "hub.challenge": "987"})
    assert (answer.status_code, answer.text) == (200, "987")
    assert (
        live.get(URL, params={"hub.mode": "subscribe", "hub.verify_token": "no", "hub.challenge": "1"}).status_code
        == 403
    )
    raw = body_of("batch_several_entries")
    for _ in range(2):
        response = live.post(URL, content=raw, headers=signed(raw))
        assert response.status_code == 200
    assert live.post(URL, content=raw, headers=signed(raw, "wrong")).status_code == 403
    assert rows(configured, WebhookDelivery) == 2
    assert rows(configured, Message) == 3


def test_live_oversized_bodies_are_refused(configured, live):
    raw = b"{" + b" " * (MAX_WEBHOOK_BYTES + 1) + b"}"
    assert live.post(URL, content=raw, headers=signed(raw)).status_code == 413

    def chunks():
        for _ in range(5):
            yield b" " * (1024 * 1024)

    chunked = live.post(URL, content=chunks(), headers={"X-Hub-Signature-256": "sha256=" + "0" * 64})
    assert chunked.status_code == 413
    assert rows(configured, WebhookDelivery) == 0


@pytest.mark.database
def test_live_concurrent_deliveries_all_land_once(configured, live_server):
    from concurrent.futures import ThreadPoolExecutor

    bodies = []
    for n in range(48):
        body = json.loads(body_of("message_text"))
        item = body["entry"][0]["changes"][0]["value"]["messages"][0]
        item["id"] = f"wamid.live.{n % 32}"  # 16 of them are redeliveries
        item["from"] = body["entry"][0]["changes"][0]["value"]["contacts"][0]["wa_id"] = f"1555000{n % 4:04d}"
        del body["entry"][0]["changes"][0]["value"]["contacts"][0]["user_id"]
        bodies.append(json.dumps(body).encode())

    def post(raw: bytes) -> int:
        with httpx.Client(base_url=live_server.url, timeout=30) as http:
            return http.post(URL, content=raw, headers=signed(raw)).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        codes = list(pool.map(post, bodies))
    assert codes == [200] * 48
    assert rows(configured, Message) == 32
    assert rows(configured, Contact) == 4
    assert rows(configured, WebhookDelivery, WebhookDelivery.state == "processed") == 48


# --- live updates ------------------------------------------------------------------------------


def test_a_new_message_is_announced_to_open_inboxes_after_it_is_stored(configured, client):
    subscription = configured.extensions["sigdesk"].events.subscribe()
    raw = body_of("message_text")
    assert client.post(URL, data=raw, headers=signed(raw)).status_code == 200
    events = subscription.get(timeout=1)
    with configured.extensions["sigdesk"].database.session() as session:
        message = session.scalars(select(Message)).one()
    assert [(e.kind, e.conversation_id, e.data["message_id"]) for e in events] == [
        ("message.created", message.conversation_id, message.id)
    ]
    assert client.post(URL, data=raw, headers=signed(raw)).status_code == 200
    assert subscription.get(timeout=0.2) == []  # a redelivery changes nothing, so says nothing


def test_a_status_for_our_message_is_announced_and_one_for_an_unknown_message_is_not(configured, client):
    state = configured.extensions["sigdesk"]
    raw_in = body_of("message_text")
    client.post(URL, data=raw_in, headers=signed(raw_in))
    with state.database.session() as session:
        customer = session.scalars(select(Message)).one()
        ours = factories.message(
            session,
            session.get(Conversation, customer.conversation_id),
            "out",
            wamid="wamid.FIX.out.1",
            text="hello",
            status="sent",
        )
        ours_id = ours.id
    subscription = state.events.subscribe()
    raw = body_of("status_delivered")
    assert client.post(URL, data=raw, headers=signed(raw)).status_code == 200
    assert [(e.kind, e.data["message_id"]) for e in subscription.get(timeout=1)] == [("message.updated", ours_id)]
    raw = body_of("status_delivered").replace(b"wamid.FIX.out.1", b"wamid.FIX.out.unknown")
    assert client.post(URL, data=raw, headers=signed(raw)).status_code == 200
    assert subscription.get(timeout=0.2) == []


def test_a_delivery_the_database_refuses_gets_503_and_leaves_nothing_half_stored(configured, client, caplog):
    database = configured.extensions["sigdesk"].database
    with database.engine.begin() as connection:
        connection.execute(
            text(
                "CREATE TRIGGER refuse BEFORE INSERT ON webhook_deliveries BEGIN SELECT RAISE(ABORT, 'disk trouble'); END"
            )
        )
    raw = body_of("message_text")
    response = client.post(URL, data=raw, headers=signed(raw))
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert "Meta will send it again" in response.get_json()["error"]
    assert rows(configured, WebhookDelivery) == 0 and rows(configured, Message) == 0
    assert "Hello" not in caplog.text  # the message body stays out of the log
    with database.engine.begin() as connection:
        connection.execute(text("DROP TRIGGER refuse"))
    assert client.post(URL, data=raw, headers=signed(raw)).status_code == 200  # Meta's retry lands
    assert rows(configured, Message) == 1
