"""The relay and SigDesk as real processes on loopback ports, with a sender posting signed deliveries."""

import threading
from collections import Counter

import httpx
import pytest

from sigdesk.relay_client.client import RelayClient
from tests.relay.payloads import SECRET, delivery, signed, wamid
from tests.relay.processes import Desktop, KillingProxy, Relay, send_all, until


@pytest.fixture
def relay(tmp_path):
    relay = Relay(tmp_path)
    yield relay
    relay.process.stop()


@pytest.fixture
def desktop(tmp_path):
    desktop = Desktop(tmp_path)
    yield desktop
    desktop.process.stop()


def test_deliveries_that_arrive_while_sigdesk_is_stopped_are_all_ingested_exactly_once(relay, desktop):
    install = relay.add_install("Rosa's Bakery")
    relay.process.start()
    token = desktop.configure(relay, install, SECRET)
    bodies = [delivery(serial, "a") for serial in range(1000)]
    forged = delivery(0, "forged")
    codes = send_all(
        relay.hook_url(install),
        [(body, signed(body)) for body in bodies] + [(forged, signed(forged, "not the app secret"))],
    )
    assert codes == Counter({200: 1001})
    assert relay.status(token)["backlog"] == 1001

    desktop.process.start()
    until(lambda: relay.status(token)["backlog"] == 0, 90, "SigDesk to drain the relay")
    counts = desktop.counts()
    assert counts["deliveries"] == 1000 and counts["receipts"] == 1001
    assert counts["processed"] == 1000
    assert counts["messages"] == counts["distinct_wamids"] == 1000
    assert counts["wamids"] == {wamid(serial, "a") for serial in range(1000)}
    assert counts["quarantined"] == 1, "the forged delivery is listed for the admin, as a digest only"
    assert wamid(0, "forged") not in counts["wamids"]


def test_nothing_answered_200_is_lost_when_the_relay_is_killed(relay):
    install = relay.add_install("Rosa's Bakery")
    relay.process.start()
    answered: list[bytes] = []
    lock = threading.Lock()
    enough = threading.Event()

    def sender(offset: int) -> None:
        with httpx.Client(trust_env=False, timeout=10) as client:
            for serial in range(offset, offset + 100_000, 4):
                body = delivery(serial, "k")
                try:
                    response = client.post(relay.hook_url(install), content=body, headers=signed(body))
                except httpx.TransportError:
                    return
                if response.status_code == 200:
                    with lock:
                        answered.append(body)
                        if len(answered) >= 300:
                            enough.set()

    senders = [threading.Thread(target=sender, args=(offset,)) for offset in range(4)]
    for thread in senders:
        thread.start()
    assert enough.wait(60)
    relay.process.kill()  # while the senders are mid-request, right after 200s went out
    for thread in senders:
        thread.join(30)
    relay.process.start()

    pairing = httpx.post(f"{relay.url}/v1/pair", json={"code": install.pairing_code}).json()
    stored: list[bytes] = []
    with RelayClient(relay.url, pairing["token"]) as client:
        while True:
            batch = client.pull(limit=1000, wait=0)
            if not batch.events:
                break
            stored.extend(event.body for event in batch.events)
            client.ack(batch.events[-1].seq)
    assert len(answered) >= 300
    assert set(answered) <= set(stored), f"{len(set(answered) - set(stored))} deliveries answered 200 were lost"
    assert len(stored) == len(set(stored)), "an event was stored twice"


def test_a_wrong_or_foreign_token_an_oversized_body_and_a_malformed_cursor_are_refused(relay):
    mine = relay.add_install("Mine")
    theirs = relay.add_install("Theirs")
    relay.process.start()
    token = httpx.post(f"{relay.url}/v1/pair", json={"code": mine.pairing_code}).json()["token"]
    foreign = httpx.post(f"{relay.url}/v1/pair", json={"code": theirs.pairing_code}).json()["token"]
    body = delivery(1, "x")
    assert httpx.post(relay.hook_url(mine), content=body, headers=signed(body)).status_code == 200
    assert httpx.post(relay.hook_url(mine), content=b"x" * (5 * 1024 * 1024), headers=signed(b"x")).status_code == 413
    events = f"{relay.url}/v1/events"
    assert httpx.get(events, headers={"Authorization": "Bearer sdr_wrong"}).status_code == 401
    assert httpx.get(events, headers={"Authorization": f"Bearer {foreign}"}).json()["events"] == []
    assert httpx.get(events, params={"after": "abc"}, headers={"Authorization": f"Bearer {token}"}).status_code == 400
    assert len(httpx.get(events, headers={"Authorization": f"Bearer {token}"}).json()["events"]) == 1


def test_sigdesk_killed_between_its_commit_and_its_ack_changes_nothing_on_redelivery(relay, tmp_path):
    install = relay.add_install("Rosa's Bakery")
    relay.process.start()
    proxy = KillingProxy()
    desktop = Desktop(tmp_path, "killed-desktop")
    try:
        token = desktop.configure(relay, install, SECRET)
        bodies = [delivery(serial, "c") for serial in range(50)]
        assert send_all(relay.hook_url(install), [(body, signed(body)) for body in bodies]) == Counter({200: 50})
        proxy.victim = desktop.process
        desktop.process.start(env={"HTTP_PROXY": proxy.url})  # SigDesk honours the proxy variables
        assert proxy.killed.wait(60), f"SigDesk never acknowledged:\n{desktop.process.output()}"
        assert "GET /v1/events" in proxy.forwarded

        before = desktop.counts()
        assert before["deliveries"] == before["processed"] == before["messages"] == 50, "committed before the ack"
        assert relay.status(token)["backlog"] == 50, "the ack never reached the relay"

        desktop.process.start(env={})
        until(lambda: relay.status(token)["backlog"] == 0, 60, "the redelivered events to be acknowledged")
        assert desktop.counts() == before
    finally:
        desktop.process.stop()
        proxy.close()
