from sigdesk.inbound.intake import PATH


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
