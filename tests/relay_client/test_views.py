import socket

import httpx
import pytest
from sqlalchemy import select

from sigdesk.models import AuditEvent, Message
from sigdesk.relay_client import client as relay
from sigdesk.settings import services as settings
from tests.conftest import csrf_from
from tests.relay.payloads import SECRET, delivery, signed, wamid

PAGE = "/admin/inbound/"


def setting(app, key):
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        return settings.get(session, state.cipher, key)


def form(auth, path, data):
    return auth.post(path, data, form_page=PAGE)


def pair(auth, relay_server, install):
    return form(auth, "/admin/inbound/pair", {"relay_url": relay_server.url, "code": install.credentials.pairing_code})


def test_inbound_page_shows_both_modes(app, auth, owner):
    page = auth.client.get(PAGE)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'name="code"' in html and 'id="pair"' in html
    assert 'id="direct-unreachable"' in html and "Meta cannot call it" in html  # never offers loopback to Meta


def test_inbound_page_offers_meta_the_public_address_once_it_is_set(app, auth, owner):
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        settings.set_text(session, state.cipher, "whatsapp.callback_url", "https://desk.example.com/webhooks/whatsapp")
    html = auth.client.get(PAGE).get_data(as_text=True)
    assert '<code id="direct-url">https://desk.example.com/webhooks/whatsapp</code>' in html
    assert 'id="direct-unreachable"' not in html


def test_agents_cannot_open_the_inbound_page(app, auth, owner):
    agent = auth.create_user("agent")
    auth.logout()
    auth.login(agent)
    assert auth.client.get(PAGE).status_code == 403
    assert auth.client.get("/admin/inbound/status.json").status_code == 403


def test_pairing_from_the_page_switches_inbound_to_the_relay(app, auth, owner, relay_server, make_install):
    install = make_install(pair=False)
    response = pair(auth, relay_server, install)
    assert response.status_code == 302
    assert setting(app, "inbound.mode") == "relay"
    assert setting(app, "relay.url") == relay_server.url
    assert setting(app, "relay.install") == install.uid
    assert setting(app, "relay.token").startswith("sdr_")
    with app.extensions["sigdesk"].database.session() as session:
        assert session.scalar(select(AuditEvent.action).where(AuditEvent.action == "relay.paired"))
    summary = auth.client.get("/admin/inbound/status.json").get_json()
    assert summary["mode"] == "relay" and summary["paired"] is True


def test_pairing_with_a_used_code_or_bad_address_shows_an_error(app, auth, owner, relay_server, make_install):
    install = make_install(pair=False)
    assert pair(auth, relay_server, install).status_code == 302
    again = pair(auth, relay_server, install)
    refused = again.get_data(as_text=True)
    assert again.status_code == 400 and "Pairing failed" in refused
    assert f'value="{install.credentials.pairing_code}"' in refused, "the typed code is kept"
    assert "RelayProblem" not in refused and "Traceback" not in refused
    bad = form(auth, "/admin/inbound/pair", {"relay_url": "ftp://relay", "code": "X"})
    assert bad.status_code == 400
    assert setting(app, "relay.url") == relay_server.url


def test_pairing_with_a_metadata_address_is_refused_before_any_call_and_keeps_the_typed_code(app, auth, owner):
    for address in ("http://169.254.169.254", "http://metadata.google.internal", "http://[fe80::1]:8080"):
        response = form(auth, "/admin/inbound/pair", {"relay_url": address, "code": "ABCD-EFGH-JKLM"})
        html = response.get_data(as_text=True)
        assert response.status_code == 400
        assert "SigDesk will not send secrets there" in html
        assert 'value="ABCD-EFGH-JKLM"' in html
    assert setting(app, "relay.url") is None


def test_unreachable_relay_is_explained_in_plain_words_and_the_code_is_kept(app, auth, owner):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    response = form(auth, "/admin/inbound/pair", {"relay_url": f"http://127.0.0.1:{port}", "code": "ABCD-EFGH-JKLM"})
    html = response.get_data(as_text=True)
    assert response.status_code == 502
    assert f"SigDesk could not reach a relay at http://127.0.0.1:{port}" in html
    assert "ConnectError" not in html and "Errno" not in html
    assert 'value="ABCD-EFGH-JKLM"' in html and f'value="http://127.0.0.1:{port}"' in html


def test_only_the_owner_may_point_pairing_at_a_new_relay_address(app, auth, owner, relay_server, make_install):
    admin = auth.create_user("admin")
    auth.logout()
    auth.login(admin)
    install = make_install(pair=False)
    refused = pair(auth, relay_server, install)
    assert refused.status_code == 403
    assert "Only the owner can change the relay address" in refused.get_data(as_text=True)
    assert setting(app, "relay.url") is None
    auth.logout()
    auth.login(owner)
    assert pair(auth, relay_server, install).status_code == 302
    auth.logout()
    auth.login(admin)  # pairing again with the address the owner chose is still an admin's job
    assert pair(auth, relay_server, make_install("Second till", pair=False)).status_code == 302


def test_switching_modes_and_unpairing(app, auth, owner, relay_server, make_install):
    refused = form(auth, "/admin/inbound/mode", {"mode": "relay"})
    assert refused.status_code == 400 and "Pair with a relay first" in refused.get_data(as_text=True)
    pair(auth, relay_server, make_install(pair=False))
    assert form(auth, "/admin/inbound/mode", {"mode": "direct"}).status_code == 302
    assert setting(app, "inbound.mode") == "direct"
    assert form(auth, "/admin/inbound/mode", {"mode": "sideways"}).status_code == 400
    assert form(auth, "/admin/inbound/mode", {"mode": "relay"}).status_code == 302
    assert form(auth, "/admin/inbound/unpair", {}).status_code == 302
    assert setting(app, "inbound.mode") == "direct" and not setting(app, "relay.token")


@pytest.mark.database
def test_replay_from_date_asks_the_relay_to_send_again(app, auth, owner, relay_server, make_install):
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        settings.set_value(session, state.cipher, "whatsapp.app_secret", SECRET)
    install = make_install(pair=False)
    pair(auth, relay_server, install)
    for serial in range(3):
        body = delivery(serial)
        assert httpx.post(relay_server.url + install.hook, content=body, headers=signed(body)).status_code == 200
    puller = relay.Puller(state.database, state.cipher, wait=0.1)
    puller.step()
    page = auth.client.get(PAGE).get_data(as_text=True)
    response = auth.client.post("/admin/inbound/replay", data={"since": "2000-01-01", "csrf_token": csrf_from(page)})
    assert response.status_code == 302
    assert "sending 3 events again" in auth.client.get(PAGE).get_data(as_text=True)
    puller.step()
    with state.database.session() as session:
        assert len(session.scalars(select(Message.id)).all()) == 3
    bad = auth.client.post("/admin/inbound/replay", data={"since": "soon", "csrf_token": csrf_from(page)})
    assert bad.status_code == 400


def test_recheck_lets_rejected_events_through_after_the_secret_is_fixed(app, auth, owner, relay_server, make_install):
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        settings.set_value(session, state.cipher, "whatsapp.app_secret", "a-wrong-secret")
    install = make_install(pair=False)
    pair(auth, relay_server, install)
    body = delivery(7)
    httpx.post(relay_server.url + install.hook, content=body, headers=signed(body))
    puller = relay.Puller(state.database, state.cipher, wait=0.1)
    puller.step()
    page = auth.client.get(PAGE).get_data(as_text=True)
    assert 'id="recheck"' in page and "keeps only a fingerprint" in page
    assert auth.client.get("/admin/inbound/status.json").get_json()["quarantined"] == 1
    with state.database.session() as session:
        settings.set_value(session, state.cipher, "whatsapp.app_secret", SECRET)
    response = auth.client.post("/admin/inbound/recheck", data={"csrf_token": csrf_from(page)})
    assert response.status_code == 302
    assert "The relay is sending 1 event again" in auth.client.get(PAGE).get_data(as_text=True)
    puller.step()
    assert auth.client.get("/admin/inbound/status.json").get_json()["quarantined"] == 0
    with state.database.session() as session:
        assert session.scalar(select(Message.wamid).where(Message.wamid == wamid(7)))


def test_header_indicator_is_there_for_admins_only(app, auth, owner):
    html = auth.client.get("/").get_data(as_text=True)
    assert 'id="inbound-status"' in html and "js/inbound-status.js" in html
    agent = auth.create_user("agent")
    auth.logout()
    auth.login(agent)
    html = auth.client.get("/").get_data(as_text=True)
    assert 'id="inbound-status"' not in html and "inbound-status.js" not in html


def test_the_inbound_page_explains_setting_up_a_relay_without_pointing_into_the_source(app, auth, owner):
    html = auth.client.get(PAGE).get_data(as_text=True)
    assert "packaging/" not in html and "README.md" not in html
    setup = html.split('id="relay-setup"')[1].split("</p>")[0]
    assert "sigdesk relay add-install" in setup and "pairing code" in setup and "Relay tunnel" in setup


def test_the_inbound_page_points_to_the_connection_page_by_its_menu_label(app, auth, owner):
    html = auth.client.get(PAGE).get_data(as_text=True)
    unreachable = html.split('id="direct-unreachable"')[1].split("</p>")[0]
    assert 'href="/admin/whatsapp/">Settings → Connection</a>' in unreachable
    assert "Settings → WhatsApp" not in html and "WhatsApp page" not in html
