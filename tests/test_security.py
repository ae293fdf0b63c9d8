import html
import logging
import time

from sigdesk.inbound.intake import PATH
from sigdesk.security import RefusalLog


def test_healthz_needs_no_login(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"
    assert response.get_json()["version"]


def test_responses_carry_security_headers(client):
    headers = client.get("/healthz").headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert "default-src 'self'" in headers["Content-Security-Policy"]


def test_oversized_bodies_get_413_and_change_nothing(app, client, auth, owner):
    app.config["MAX_CONTENT_LENGTH"] = 1024
    response = client.post("/login", data={"email": "x" * 4096, "password": "y"})
    assert response.status_code == 413
    assert "larger than" in response.get_data(as_text=True)
    assert client.get("/").status_code == 200


def test_addresses_outside_the_allow_list_get_403(client, auth, owner):
    auth.post(
        "/admin/settings",
        {"server.allowed_networks": "192.168.1.0/24", "general.business_name": ""},
        form_page="/admin/settings",
        environ_base={"REMOTE_ADDR": "192.168.1.20"},  # the page refuses a list that leaves out its saver
    )
    outside = client.get("/healthz", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert outside.status_code == 403
    assert "not allowed" in outside.get_data(as_text=True)
    assert client.get("/healthz", environ_base={"REMOTE_ADDR": "192.168.1.20"}).status_code == 200
    # loopback is no exception: behind a same-host tunnel it would let the whole internet in
    assert client.get("/healthz", environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 403


def test_default_allow_list_admits_private_networks_only(client, owner):
    assert client.get("/healthz", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 200
    assert client.get("/healthz", environ_base={"REMOTE_ADDR": "8.8.8.8"}).status_code == 403


def test_unknown_pages_get_a_clear_404(client, owner):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "nothing at this address" in response.get_data(as_text=True)


def test_json_callers_get_json_errors(client, owner):
    response = client.get("/no/such/page", headers={"Accept": "application/json"})
    assert response.get_json()["status"] == 404


def test_only_metas_webhook_is_reachable_from_outside_the_allow_list(app, client, owner):
    from sigdesk.settings import services as settings
    from tests import factories

    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        settings.set_text(session, state.cipher, "whatsapp.app_secret", "outside-secret")
    raw, headers = factories.signed(factories.webhook(), "outside-secret")
    meta = {"REMOTE_ADDR": "157.240.1.1"}
    assert client.post("/webhooks/whatsapp", data=raw, headers=headers, environ_base=meta).status_code == 200
    assert (
        client.post(
            "/webhooks/whatsapp", data=raw, headers={"X-Hub-Signature-256": "sha256=00"}, environ_base=meta
        ).status_code
        == 403
    )
    assert client.get("/healthz", environ_base=meta).status_code == 403
    assert client.get("/login", environ_base=meta).status_code == 403


def test_internet_facing_routes_are_few_and_known(app):
    facing = {
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if getattr(app.view_functions[rule.endpoint], "internet_facing", False)
    }
    assert facing == {"inbound.handshake"}
    # Meta's POST never reaches a Flask view: the intake in front of the app answers it alone
    assert app.wsgi_app is app.extensions["sigdesk.inbound.intake"] and PATH == "/webhooks/whatsapp"


def test_the_403_page_names_the_refused_address_and_the_command_that_lets_it_in(client, owner):
    refused = client.get("/", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert refused.status_code == 403
    page = html.unescape(refused.get_data(as_text=True))
    assert "This address (203.0.113.9) is not allowed to use SigDesk: it is not on the allow-list" in page
    assert (
        'sigdesk settings set server.allowed_networks "$(sigdesk settings get server.allowed_networks),203.0.113.9"'
        in page
    )
    assert "administrator" not in page
    mapped = client.get(
        "/healthz", headers={"Accept": "application/json"}, environ_base={"REMOTE_ADDR": "::ffff:8.8.4.4"}
    )
    assert mapped.status_code == 403
    assert mapped.get_json()["command"].endswith(',8.8.4.4"')
    assert "(8.8.4.4)" in mapped.get_json()["error"]


def test_a_refused_address_is_logged_by_address_at_most_once_a_minute(client, owner, caplog):
    caplog.set_level(logging.WARNING, logger="sigdesk.security")
    for _ in range(5):
        assert client.get("/healthz", environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code == 403
    assert client.get("/healthz", environ_base={"REMOTE_ADDR": "198.51.100.7"}).status_code == 403
    lines = [record.getMessage() for record in caplog.records if record.name == "sigdesk.security"]
    assert lines == [
        "refused 203.0.113.9: not on the allow-list (server.allowed_networks)",
        "refused 198.51.100.7: not on the allow-list (server.allowed_networks)",
    ]


def test_the_refusal_log_forgets_an_address_after_a_minute_and_stays_bounded():
    refusals = RefusalLog(seconds=0.05, limit=2)
    assert refusals.due("203.0.113.9") and not refusals.due("203.0.113.9")
    assert refusals.due("203.0.113.10")
    assert not refusals.due("203.0.113.11")  # full for this minute
    time.sleep(0.06)
    assert refusals.due("203.0.113.9") and refusals.due("203.0.113.11")
