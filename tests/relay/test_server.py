import base64
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import text

from sigdesk.db import utcnow
from tests.relay.payloads import delivery, signed

pytestmark = pytest.mark.database


def post(client, install, body: bytes, headers=None):
    return client.post(install.hook, data=body, headers=headers if headers is not None else signed(body))


def pull(client, install, **params):
    return client.get("/v1/events", query_string=params, headers=install.auth)


def bodies(response) -> list[bytes]:
    return [base64.b64decode(event["body"]) for event in response.get_json()["events"]]


# --- Meta's side -------------------------------------------------------------------------------


def test_handshake_answers_the_challenge_only_with_the_installs_verify_token(relay_client, make_install):
    install = make_install(pair=False)
    query = {
        "hub.mode": "subscribe",
        "hub.verify_token": install.credentials.verify_token,
        "hub.challenge": "1158201444",
    }
    answer = relay_client.get(install.hook, query_string=query)
    assert answer.status_code == 200 and answer.get_data() == b"1158201444"
    assert answer.mimetype == "text/plain"
    assert relay_client.get(install.hook, query_string={**query, "hub.verify_token": "wrong"}).status_code == 403
    assert relay_client.get(install.hook, query_string={**query, "hub.mode": "unsubscribe"}).status_code == 403
    assert relay_client.get("/hook/not-an-install", query_string=query).status_code == 404


def test_delivery_is_stored_byte_for_byte_with_its_signature(relay_client, make_install):
    install = make_install()
    body = b'{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[]}], "odd":  "\\ud83d\\ude42"}\n'
    headers = signed(body)
    assert post(relay_client, install, body, headers).status_code == 200
    event = pull(relay_client, install).get_json()["events"][0]
    assert base64.b64decode(event["body"]) == body
    assert event["signature"] == headers["X-Hub-Signature-256"]


def test_relay_stores_bodies_it_could_not_parse(relay_client, make_install):
    install = make_install()
    for body in (b"not json at all", b"", b"\xff\xfe binary"):
        assert post(relay_client, install, body).status_code == 200
    assert bodies(pull(relay_client, install)) == [b"not json at all", b"", b"\xff\xfe binary"]


def test_delivery_without_a_well_formed_signature_is_refused(relay_client, make_install):
    install = make_install()
    body = delivery(1)
    assert post(relay_client, install, body, {}).status_code == 403
    assert post(relay_client, install, body, {"X-Hub-Signature-256": "sha1=abc"}).status_code == 403
    assert pull(relay_client, install).get_json()["events"] == []


def test_oversized_body_gets_413_and_is_not_stored(relay_client, relay_app, make_install):
    install = make_install()
    body = b"x" * (relay_app.max_body_bytes + 1)
    response = post(relay_client, install, body)
    assert response.status_code == 413
    assert pull(relay_client, install).get_json()["events"] == []


def test_unknown_or_revoked_webhook_address_gets_404(relay_client, relay_store, make_install):
    from sigdesk.relay.installs import revoke_install

    install = make_install()
    assert post(relay_client, install, delivery(1)).status_code == 200
    with relay_store.database.session() as session:
        revoke_install(session, install.credentials.install.name)
    assert post(relay_client, install, delivery(2)).status_code == 404
    assert pull(relay_client, install).status_code == 401


def test_storage_failure_answers_503_so_meta_retries(relay_client, relay_store, make_install):
    install = make_install()
    with relay_store.engine.begin() as connection:
        connection.execute(text("DROP TABLE relay_events"))
    response = post(relay_client, install, delivery(1))
    assert response.status_code == 503
    assert response.headers["Retry-After"]


def test_full_quota_drops_acknowledged_events_first_then_answers_503(relay_client, make_install):
    install = make_install(max_events=3)
    for serial in range(3):
        assert post(relay_client, install, delivery(serial)).status_code == 200
    assert post(relay_client, install, delivery(3)).status_code == 503
    relay_client.post(
        "/v1/ack", json={"seq": pull(relay_client, install).get_json()["events"][1]["seq"]}, headers=install.auth
    )
    assert post(relay_client, install, delivery(4)).status_code == 200
    status = relay_client.get("/v1/status", headers=install.auth).get_json()
    assert status["stored_events"] == 2 and status["backlog"] == 2


# --- the desktop's side ------------------------------------------------------------------------


def test_pairing_code_works_once(relay_client, make_install):
    install = make_install(pair=False)
    code = install.credentials.pairing_code
    first = relay_client.post("/v1/pair", json={"code": code.lower().replace("-", " ")})
    assert first.status_code == 200
    assert first.get_json()["install"] == install.uid and first.get_json()["token"].startswith("sdr_")
    assert relay_client.post("/v1/pair", json={"code": code}).status_code == 401
    assert relay_client.post("/v1/pair", json={"code": 12}).status_code == 400
    assert relay_client.post("/v1/pair", data=b"{nope", content_type="application/json").status_code == 400


def test_expired_pairing_code_is_refused(relay_client, relay_store, make_install):
    from sigdesk.relay.models import Install

    install = make_install(pair=False)
    with relay_store.database.session() as session:
        session.get(Install, install.credentials.install.id).pairing_expires_at = utcnow() - timedelta(seconds=1)
    assert relay_client.post("/v1/pair", json={"code": install.credentials.pairing_code}).status_code == 401


@pytest.mark.parametrize("header", [None, "Bearer sdr_wrong", "Basic dXNlcjpwYXNz", "Bearer "])
def test_wrong_bearer_token_gets_401(relay_client, make_install, header):
    make_install()
    headers = {"Authorization": header} if header else {}
    for method, path in (("GET", "/v1/events"), ("POST", "/v1/ack"), ("POST", "/v1/replay"), ("GET", "/v1/status")):
        response = relay_client.open(
            path, method=method, headers=headers, json={"seq": 1} if method == "POST" else None
        )
        assert response.status_code == 401, (method, path)


def test_another_installs_token_cannot_read_or_move_this_installs_events(relay_client, make_install):
    mine = make_install("Mine")
    theirs = make_install("Theirs")
    for serial in range(3):
        post(relay_client, mine, delivery(serial, "mine"))
    post(relay_client, theirs, delivery(0, "theirs"))
    assert bodies(pull(relay_client, theirs, after=0)) == [delivery(0, "theirs")]
    relay_client.post("/v1/ack", json={"seq": 10**12}, headers=theirs.auth)
    relay_client.post("/v1/replay", json={"since": "2000-01-01"}, headers=theirs.auth)
    assert bodies(pull(relay_client, mine)) == [delivery(serial, "mine") for serial in range(3)]
    assert relay_client.get("/v1/status", headers=theirs.auth).get_json()["install"] == "Theirs"


@pytest.mark.parametrize(
    "query",
    [
        {"after": "x"},
        {"after": "-1"},
        {"after": "1.5"},
        {"after": ""},
        {"limit": "0"},
        {"limit": "100000"},
        {"wait": "nan"},
        {"wait": "-1"},
        {"wait": "999"},
        {"after": ["1", "2"]},
    ],
)
def test_malformed_cursor_or_parameters_get_400(relay_client, make_install, query):
    install = make_install()
    response = pull(relay_client, install, **query)
    assert response.status_code == 400
    assert response.get_json()["error"]


@pytest.mark.parametrize("payload", [{}, {"seq": "5"}, {"seq": -1}, {"seq": True}, {"seq": 1.5}])
def test_malformed_ack_gets_400(relay_client, make_install, payload):
    install = make_install()
    assert relay_client.post("/v1/ack", json=payload, headers=install.auth).status_code == 400


def test_unacknowledged_events_are_delivered_again_until_acknowledged(relay_client, make_install):
    install = make_install()
    for serial in range(5):
        post(relay_client, install, delivery(serial))
    first = pull(relay_client, install, limit=3).get_json()
    assert [event["seq"] for event in first["events"]] == sorted(event["seq"] for event in first["events"])
    assert first["more"] is True
    assert bodies(pull(relay_client, install, limit=3)) == [delivery(serial) for serial in range(3)]
    acked = relay_client.post("/v1/ack", json={"seq": first["events"][-1]["seq"]}, headers=install.auth).get_json()
    assert acked["acked"] == first["events"][-1]["seq"]
    rest = pull(relay_client, install, limit=3).get_json()
    assert [base64.b64decode(event["body"]) for event in rest["events"]] == [delivery(3), delivery(4)]
    assert rest["more"] is False
    explicit = pull(relay_client, install, after=first["events"][0]["seq"]).get_json()
    assert len(explicit["events"]) == 4


def test_ack_never_moves_back_nor_past_the_last_event(relay_client, make_install):
    install = make_install()
    for serial in range(3):
        post(relay_client, install, delivery(serial))
    seqs = [event["seq"] for event in pull(relay_client, install).get_json()["events"]]
    assert (
        relay_client.post("/v1/ack", json={"seq": seqs[-1] + 1000}, headers=install.auth).get_json()["acked"]
        == seqs[-1]
    )
    assert relay_client.post("/v1/ack", json={"seq": seqs[0]}, headers=install.auth).get_json()["acked"] == seqs[-1]
    post(relay_client, install, delivery(3))
    assert bodies(pull(relay_client, install)) == [delivery(3)]


def test_replay_delivers_acknowledged_events_again_from_a_date(relay_client, make_install):
    install = make_install()
    for serial in range(3):
        post(relay_client, install, delivery(serial))
    last = pull(relay_client, install).get_json()["events"][-1]["seq"]
    relay_client.post("/v1/ack", json={"seq": last}, headers=install.auth)
    assert pull(relay_client, install).get_json()["events"] == []
    future = relay_client.post(
        "/v1/replay", json={"since": (utcnow() + timedelta(days=1)).isoformat()}, headers=install.auth
    )
    assert future.get_json()["redelivering"] == 0
    result = relay_client.post(
        "/v1/replay", json={"since": (utcnow() - timedelta(days=1)).date().isoformat()}, headers=install.auth
    )
    assert result.status_code == 200 and result.get_json()["redelivering"] == 3
    assert bodies(pull(relay_client, install)) == [delivery(serial) for serial in range(3)]
    assert relay_client.post("/v1/replay", json={"since": "yesterday"}, headers=install.auth).status_code == 400


def test_long_poll_returns_as_soon_as_an_event_arrives(relay_client, make_install):
    install = make_install()
    threading.Timer(0.3, lambda: post(relay_client, install, delivery(1))).start()
    started = time.monotonic()
    response = pull(relay_client, install, wait=10)
    assert bodies(response) == [delivery(1)]
    assert time.monotonic() - started < 5


def test_long_poll_without_events_ends_at_its_deadline(relay_client, make_install):
    install = make_install()
    started = time.monotonic()
    response = pull(relay_client, install, wait=0.5)
    assert response.status_code == 200 and response.get_json()["events"] == []
    assert 0.4 < time.monotonic() - started < 5


def test_status_reports_deliveries_polls_and_backlog(relay_client, make_install):
    install = make_install()
    empty = relay_client.get("/v1/status", headers=install.auth).get_json()
    assert empty["backlog"] == 0 and empty["last_delivery_at"] is None and empty["oldest_unacked_at"] is None
    post(relay_client, install, delivery(1))
    post(relay_client, install, delivery(2))
    pull(relay_client, install)
    status = relay_client.get("/v1/status", headers=install.auth).get_json()
    assert status["backlog"] == 2 and status["last_delivery_at"] and status["last_poll_at"]
    assert status["oldest_unacked_age_seconds"] >= 0


def test_healthz_needs_no_token(relay_client):
    response = relay_client.get("/healthz")
    assert response.status_code == 200 and response.get_json()["status"] == "ok"


def test_unknown_paths_and_methods(relay_client, make_install):
    install = make_install()
    assert relay_client.get("/").status_code == 404
    assert relay_client.post("/v1/events", headers=install.auth).status_code == 405
    assert relay_client.put(install.hook).status_code == 405


def test_purge_keeps_unacknowledged_events_and_drops_old_acknowledged_ones(relay_client, relay_store, make_install):
    install = make_install()
    for serial in range(4):
        post(relay_client, install, delivery(serial))
    seqs = [event["seq"] for event in pull(relay_client, install).get_json()["events"]]
    relay_client.post("/v1/ack", json={"seq": seqs[1]}, headers=install.auth)
    assert relay_store.purge(utcnow()) == 0  # acknowledged, but inside the replay window
    assert relay_store.purge(utcnow() + relay_store.keep_acked + timedelta(minutes=1)) == 2
    assert bodies(pull(relay_client, install)) == [delivery(2), delivery(3)]
    assert relay_store.purge(utcnow() + timedelta(days=31)) == 2
    status = relay_client.get("/v1/status", headers=install.auth).get_json()
    assert status["stored_events"] == 0 and status["stored_bytes"] == 0
    post(relay_client, install, delivery(9))
    assert pull(relay_client, install).get_json()["events"][0]["seq"] > seqs[-1]  # numbers are never reused


def test_concurrent_deliveries_each_get_their_own_sequence_number(relay_store, relay_client, make_install):
    installs = [make_install("One"), make_install("Two")]
    results: list[tuple[int, bytes]] = []
    lock = threading.Lock()

    def sender(worker: int) -> None:
        for serial in range(worker * 1000, worker * 1000 + 40):
            install = installs[serial % 2]
            body = delivery(serial, install.uid[:6])
            seq = relay_store.append(install.credentials.install.id, body, signed(body)["X-Hub-Signature-256"])
            with lock:
                results.append((seq, body))

    threads = [threading.Thread(target=sender, args=(worker,)) for worker in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({seq for seq, _ in results}) == len(results) == 480
    by_seq = dict(results)
    for install in installs:
        events = pull(relay_client, install, limit=1000).get_json()["events"]
        assert len(events) == 240
        assert all(base64.b64decode(event["body"]) == by_seq[event["seq"]] for event in events)
        status = relay_client.get("/v1/status", headers=install.auth).get_json()
        assert status["stored_events"] == 240
