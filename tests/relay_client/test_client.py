import socket
import threading

import httpx
import pytest
from sqlalchemy import func, select

from sigdesk.models import Message, RejectedDelivery, Setting, WebhookDelivery
from sigdesk.relay_client import client as relay
from sigdesk.settings import services as settings
from tests.relay.payloads import SECRET, delivery, signed, wamid


@pytest.fixture
def desktop(app):
    """SigDesk with the app secret set; its puller waits only briefly so tests stay quick."""
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        settings.set_value(session, state.cipher, "whatsapp.app_secret", SECRET)
    return app


@pytest.fixture
def puller(desktop):
    state = desktop.extensions["sigdesk"]
    return relay.Puller(state.database, state.cipher, batch=50, wait=0.2, request_seconds=2.0)


def pair_with(app, relay_server, install) -> relay.Pairing:
    state = app.extensions["sigdesk"]
    pairing = relay.pair(relay_server.url, install.credentials.pairing_code)
    with state.database.session() as session:
        relay.save_pairing(session, state.cipher, relay_server.url, pairing)
    return pairing


_http = httpx.Client()  # one client: each new one loads the CA bundle (tens of ms)


def send(relay_server, install, body: bytes, headers=None) -> int:
    return _http.post(relay_server.url + install.hook, content=body, headers=headers or signed(body)).status_code


def count(app, model, *where) -> int:
    with app.extensions["sigdesk"].database.session() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


@pytest.mark.database
def test_puller_stores_processes_and_then_acknowledges(desktop, puller, relay_server, relay_client, make_install):
    install = make_install(pair=False)
    pair_with(desktop, relay_server, install)
    for serial in range(120):
        assert send(relay_server, install, delivery(serial)) == 200
    for _ in range(4):
        puller.step()
    assert count(desktop, Message) == 120
    assert (
        count(desktop, WebhookDelivery, WebhookDelivery.source == "relay", WebhookDelivery.state == "processed") == 120
    )
    status = puller.status
    assert status.state == "connected" and status.backlog == 0 and status.ingested == 120
    with relay.RelayClient(relay_server.url, _token(desktop)) as client:
        assert client.status()["backlog"] == 0


@pytest.mark.database
def test_forged_relay_event_is_quarantined_not_ingested(desktop, puller, relay_server, make_install):
    install = make_install(pair=False)
    pair_with(desktop, relay_server, install)
    forged = delivery(1, "forged")
    send(relay_server, install, forged, signed(forged, "an attacker's secret"))
    send(relay_server, install, delivery(2))
    puller.step()
    assert count(desktop, Message, Message.wamid == wamid(1, "forged")) == 0
    assert count(desktop, Message, Message.wamid == wamid(2)) == 1
    assert count(desktop, WebhookDelivery, WebhookDelivery.state == "quarantined") == 0
    assert count(desktop, RejectedDelivery) == 1
    assert puller.status.quarantined == 1


def test_puller_is_off_in_direct_mode_and_unpaired_without_a_token(desktop, puller):
    puller.step()
    assert puller.status.state == "off"
    state = desktop.extensions["sigdesk"]
    with state.database.session() as session:
        settings.set_value(session, state.cipher, "inbound.mode", "relay")
    puller.step()
    assert puller.status.state == "unpaired"


def test_puller_waits_for_the_app_secret(app, relay_server, make_install):
    state = app.extensions["sigdesk"]
    puller = relay.Puller(state.database, state.cipher, wait=0.2)
    pair_with(app, relay_server, make_install(pair=False))
    assert puller.step() > 0
    assert puller.status.state == "waiting"


def test_refused_token_is_reported_and_retried_slowly(desktop, puller, relay_server, make_install):
    pair_with(desktop, relay_server, make_install(pair=False))
    state = desktop.extensions["sigdesk"]
    with state.database.session() as session:
        settings.set_value(session, state.cipher, "relay.token", "sdr_revoked")
    assert puller.step() == relay.REFUSED_SECONDS
    assert puller.status.state == "refused"


def test_unreachable_relay_backs_off_then_shows_offline(desktop, puller, relay_server, make_install):
    pair_with(desktop, relay_server, make_install(pair=False))
    state = desktop.extensions["sigdesk"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    with state.database.session() as session:
        settings.set_text(session, state.cipher, "relay.url", f"http://127.0.0.1:{closed_port}")
    pauses = [puller.step() for _ in range(5)]
    assert all(pause > 0 for pause in pauses)
    assert puller.status.state == "offline"
    assert "reach" in puller.status.message


def test_puller_never_sends_the_token_to_a_stored_metadata_address(desktop, puller, relay_server, make_install):
    pair_with(desktop, relay_server, make_install(pair=False))
    state = desktop.extensions["sigdesk"]
    with state.database.session() as session:  # as an older SigDesk, or a hand-edited database, might have it
        session.merge(Setting(key="relay.url", value="http://169.254.169.254", is_secret=False))
    assert puller.step() == relay.REFUSED_SECONDS
    assert puller.status.state == "refused"
    assert "SigDesk will not send secrets there" in puller.status.message


def test_every_request_has_a_deadline(desktop, relay_server, make_install):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(5)  # accepts connections, never answers: a connection that died in a sleep looks like this
    try:
        client = relay.RelayClient(f"http://127.0.0.1:{silent.getsockname()[1]}", "sdr_x", request_seconds=0.5)
        finished = threading.Event()
        errors: list[Exception] = []

        def call() -> None:
            try:
                client.pull(wait=0.5)
            except relay.RelayUnavailable as exc:
                errors.append(exc)
            finished.set()

        threading.Thread(target=call, daemon=True).start()
        assert finished.wait(10), "the pull did not give up"
        assert errors
    finally:
        silent.close()


def test_backoff_grows_with_jitter_and_is_capped():
    for failures in range(1, 20):
        pause = relay.backoff(failures)
        step = min(relay.MAX_BACKOFF_SECONDS, 2.0 ** min(failures, 10) / 2)
        assert step / 2 <= pause <= step
    assert len({round(relay.backoff(6), 6) for _ in range(20)}) > 1


def test_pairing_with_a_bad_code_says_so(relay_server, make_install):
    make_install(pair=False)
    with pytest.raises(relay.RelayRefused):
        relay.pair(relay_server.url, "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF")
    with pytest.raises(relay.RelayProblem):
        relay.pair(relay_server.url + "/healthz", "x")


def _token(app) -> str:
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        return settings.get(session, state.cipher, "relay.token")


def test_a_chunk_that_fails_together_is_applied_one_by_one(desktop, caplog):
    from sigdesk.inbound.services import store_delivery
    from sigdesk.relay_client.receive import Pending

    caplog.set_level("INFO", logger="sigdesk.inbound.services")
    database = desktop.extensions["sigdesk"].database
    session = database.writer()
    try:
        good = []
        for serial in range(3):
            body = delivery(serial)
            good.append(Pending(store_delivery(session, body, signed(body)["X-Hub-Signature-256"], "relay"), body))
        session.commit()
        vanished = Pending(10**9, delivery(99))  # a delivery row that does not exist makes the chunk fail
        relay.apply(session, [good[0], vanished, good[1], good[2]])
    finally:
        session.close()
    assert "applying them one by one" in caplog.text
    assert count(desktop, Message) == 3
    assert count(desktop, WebhookDelivery, WebhookDelivery.state == "processed") == 3
