"""Behind a same-host tunnel or an HTTPS reverse proxy every request arrives from the proxy's address.
X-Forwarded-For is believed from listed proxies only, so the allow-list, the per-address limits and the
audit log see the real client, and nobody else can choose the address they are judged by."""

from __future__ import annotations

import httpx
import pytest

from sigdesk.security import forwarded_client
from sigdesk.settings import services as settings
from sigdesk.settings.specs import SettingError, parse_proxies
from tests.conftest import csrf_from

pytestmark = pytest.mark.database


def configure(app, **values: str) -> None:
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        for key, value in values.items():
            settings.set_text(session, state.cipher, key.replace("__", "."), value)
    state.policy.invalidate()


def proxied(forwarded_for: str | None, peer: str = "127.0.0.1") -> dict:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for is not None else {}
    return {"environ_base": {"REMOTE_ADDR": peer}, "headers": headers}


@pytest.fixture
def behind_tunnel(app, owner):
    """The safe setup from the README: a tunnel on this machine, loopback out of the allow-list."""
    configure(app, server__trusted_proxies="127.0.0.1", server__allowed_networks="192.168.0.0/16")


def test_behind_a_trusted_proxy_the_forwarded_client_meets_the_allow_list(client, behind_tunnel):
    assert client.get("/healthz", **proxied("203.0.113.7")).status_code == 403
    assert client.get("/healthz", **proxied("192.168.1.20")).status_code == 200


def test_a_request_from_the_proxy_without_a_forwarded_address_is_the_proxys_own(client, behind_tunnel):
    assert client.get("/healthz", **proxied(None)).status_code == 403


def test_forwarded_for_from_an_untrusted_peer_is_ignored(app, client, owner):
    configure(app, server__allowed_networks="192.168.0.0/16")
    assert client.get("/healthz", **proxied("192.168.1.20", peer="203.0.113.7")).status_code == 403
    configure(app, server__trusted_proxies="10.0.0.1", server__allowed_networks="192.168.0.0/16")
    assert client.get("/healthz", **proxied("192.168.1.20", peer="203.0.113.7")).status_code == 403


def test_a_client_cannot_choose_its_address_by_writing_forwarded_for_itself(client, behind_tunnel):
    # the proxy appends the address it saw; whatever the client sent stands to its left
    assert client.get("/healthz", **proxied("192.168.1.20, 203.0.113.7")).status_code == 403


def test_the_sign_in_history_and_audit_log_record_the_forwarded_address(app, auth, client, owner, behind_tunnel):
    from sigdesk.audit.services import list_logins

    auth.logout()
    token = csrf_from(client.get("/login", **proxied("192.168.7.7")).get_data(as_text=True))
    data = {"email": owner.email, "password": "wrong password!", "csrf_token": token}
    assert client.post("/login", data=data, **proxied("192.168.7.7")).status_code == 401
    with app.extensions["sigdesk"].database.session() as session:
        assert list_logins(session, success=False)[0].ip == "192.168.7.7"


def test_per_address_sign_in_limits_count_each_forwarded_client(app, client, owner):
    configure(app, server__trusted_proxies="127.0.0.1")

    def attempts(address: str) -> list[int]:
        statuses = []
        for n in range(11):
            token = csrf_from(client.get("/login", **proxied(address)).get_data(as_text=True))
            data = {"email": f"guess{n}@example.com", "password": "nope", "csrf_token": token}
            statuses.append(client.post("/login", data=data, **proxied(address)).status_code)
        return statuses

    assert attempts("10.1.1.1")[-1] == 429
    assert attempts("10.1.1.2")[0] == 401  # another client behind the same tunnel is not held up


def test_forwarded_client_reads_from_the_right_and_skips_listed_proxies():
    import ipaddress

    proxies = (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("10.0.0.0/24"))
    assert forwarded_client("127.0.0.1", "203.0.113.9", proxies) == "203.0.113.9"
    assert forwarded_client("127.0.0.1", "1.1.1.1, 203.0.113.9, 10.0.0.5", proxies) == "203.0.113.9"
    assert forwarded_client("192.0.2.1", "203.0.113.9", proxies) is None
    assert forwarded_client("127.0.0.1", "not-an-address", proxies) is None
    assert forwarded_client("127.0.0.1", "10.0.0.5", proxies) is None
    assert forwarded_client("127.0.0.1", "::ffff:203.0.113.9", proxies) == "203.0.113.9"
    assert forwarded_client("127.0.0.1", "203.0.113.9", ()) is None


def test_the_setting_refuses_to_trust_everyone():
    assert parse_proxies("") == ""
    assert parse_proxies("127.0.0.1, ::1") == "127.0.0.1,::1"
    for bad in ("0.0.0.0/0", "::/0", "my-proxy"):
        with pytest.raises(SettingError):
            parse_proxies(bad)


def test_through_real_waitress_the_forwarded_address_reaches_the_allow_list(app, owner, live_server):
    configure(app, server__trusted_proxies="127.0.0.1", server__allowed_networks="192.168.0.0/16")
    url = f"{live_server.url}/healthz"
    assert httpx.get(url, headers={"X-Forwarded-For": "192.168.1.20"}).status_code == 200
    assert httpx.get(url, headers={"X-Forwarded-For": "203.0.113.7"}).status_code == 403
    assert httpx.get(url).status_code == 403


@pytest.fixture
def tunnel_with_default_allow_list(app, owner):
    """A tunnel or proxy on this machine, with loopback still in the (default) allow-list: `ssh -R`
    adds no X-Forwarded-For, so its requests look like the proxy's own."""
    configure(app, server__trusted_proxies="127.0.0.1")


@pytest.mark.parametrize("forwarded_for", [None, "", "not-an-address", "127.0.0.1", "203.0.113.7, garbage"])
def test_a_request_from_a_trusted_proxy_without_a_readable_client_is_refused(
    client, tunnel_with_default_allow_list, forwarded_for
):
    response = client.get("/login", **proxied(forwarded_for))
    assert response.status_code == 403
    assert "X-Forwarded-For" in response.get_data(as_text=True)


def test_metas_webhook_still_answers_through_a_proxy_that_names_no_client(app, client, tunnel_with_default_allow_list):
    from tests import factories

    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        settings.set_text(session, state.cipher, "whatsapp.app_secret", "tunnel-secret")
    raw, headers = factories.signed(factories.webhook(), "tunnel-secret")
    peer = {"REMOTE_ADDR": "127.0.0.1"}
    assert client.post("/webhooks/whatsapp", data=raw, headers=headers, environ_base=peer).status_code == 200


def test_through_real_waitress_a_tunnel_without_forwarded_for_does_not_let_the_internet_in(
    app, live_server, tunnel_with_default_allow_list
):
    url = f"{live_server.url}/login"
    assert httpx.get(url).status_code == 403  # what `ssh -R` delivers: a loopback peer, no header
    assert httpx.get(url, headers={"X-Forwarded-For": "192.168.1.20"}).status_code == 200
