import pytest

from tests.fakes.graph import PHONE_NUMBER_ID, TOKEN, VERIFIED_NAME, WABA_ID


def connect_form(fake_graph, **overrides):
    form = {
        "whatsapp.phone_number_id": PHONE_NUMBER_ID,
        "whatsapp.waba_id": WABA_ID,
        "whatsapp.api_version": "v21.0",
        "whatsapp.graph_base_url": fake_graph.url,
        "whatsapp.read_receipts": "true",
        "whatsapp.access_token": TOKEN,
        "whatsapp.app_secret": "app-secret-0123456789",
    }
    form.update(overrides)
    return form


def test_admin_connects_and_the_check_shows_the_number(auth, client, owner, fake_graph):
    response = auth.post("/admin/whatsapp/", connect_form(fake_graph), form_page="/admin/whatsapp/")
    assert response.status_code == 302
    page = auth.post("/admin/whatsapp/test", form_page="/admin/whatsapp/").get_data(as_text=True)
    assert VERIFIED_NAME.replace("'", "&#39;") in page and "+1 555-010-0199" in page


def test_an_expired_token_is_explained(auth, client, owner, fake_graph):
    auth.post(
        "/admin/whatsapp/",
        connect_form(fake_graph, **{"whatsapp.access_token": "old-token"}),
        form_page="/admin/whatsapp/",
    )
    page = auth.post("/admin/whatsapp/test", form_page="/admin/whatsapp/").get_data(as_text=True)
    assert "access token has expired" in page and "190" in page


def test_the_check_names_what_is_missing_by_the_labels_on_the_connection_page(auth, client, owner):
    page = auth.post("/admin/whatsapp/test", form_page="/admin/whatsapp/").get_data(as_text=True)
    assert "not connected yet: fill in Access token and Phone number ID under Settings → Connection." in page
    assert "whatsapp.access_token" not in page.split("not connected yet")[1].split("</")[0]
    assert "Settings → WhatsApp" not in page


def test_secrets_are_never_shown_back_and_are_encrypted_in_the_file(auth, client, owner, fake_graph, app, config):
    auth.post("/admin/whatsapp/", connect_form(fake_graph), form_page="/admin/whatsapp/")
    page = client.get("/admin/whatsapp/").get_data(as_text=True)
    assert TOKEN not in page and "app-secret-0123456789" not in page
    app.extensions["sigdesk"].database.dispose()
    raw = b"".join(path.read_bytes() for path in config.data_dir.glob("sigdesk.db*"))
    assert TOKEN.encode() not in raw and b"app-secret-0123456789" not in raw


def test_blank_secret_fields_keep_the_stored_secret(auth, client, owner, fake_graph):
    auth.post("/admin/whatsapp/", connect_form(fake_graph), form_page="/admin/whatsapp/")
    auth.post(
        "/admin/whatsapp/", connect_form(fake_graph, **{"whatsapp.access_token": ""}), form_page="/admin/whatsapp/"
    )
    page = auth.post("/admin/whatsapp/test", form_page="/admin/whatsapp/").get_data(as_text=True)
    assert "Connected to" in page


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("whatsapp.api_version", "21", "not a Graph API version"),
        ("whatsapp.graph_base_url", "ftp://graph", "give a full http:// or https:// address"),
        ("whatsapp.phone_number_id", "12ab", "not a numeric ID"),
    ],
)
def test_bad_values_are_refused_and_nothing_changes(auth, client, owner, fake_graph, key, value, message):
    auth.post("/admin/whatsapp/", connect_form(fake_graph), form_page="/admin/whatsapp/")
    response = auth.post(
        "/admin/whatsapp/",
        connect_form(fake_graph, **{key: value, "whatsapp.waba_id": "999"}),
        form_page="/admin/whatsapp/",
    )
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert 'value="999"' not in client.get("/admin/whatsapp/").get_data(as_text=True)


def test_verify_token_is_generated_and_shown_once(auth, client, owner):
    page = auth.post("/admin/whatsapp/verify-token", form_page="/admin/whatsapp/").get_data(as_text=True)
    token = page.split('id="verify-token" class="secret">')[1].split("<")[0]
    assert len(token) >= 24
    response = client.get(f"/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=1158201444")
    assert response.status_code == 200 and response.get_data(as_text=True) == "1158201444"
    assert token not in client.get("/admin/whatsapp/").get_data(as_text=True)


def test_settings_changes_are_audited_without_values(auth, client, owner, fake_graph):
    auth.post("/admin/whatsapp/", connect_form(fake_graph), form_page="/admin/whatsapp/")
    audit = client.get("/admin/audit?action=settings.changed").get_data(as_text=True)
    assert "whatsapp.access_token" in audit and TOKEN not in audit


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/admin/whatsapp/"),
        ("POST", "/admin/whatsapp/"),
        ("POST", "/admin/whatsapp/test"),
        ("POST", "/admin/whatsapp/verify-token"),
        ("POST", "/admin/whatsapp/find"),
        ("POST", "/admin/whatsapp/choose"),
        ("POST", "/admin/whatsapp/subscribe"),
    ],
)
def test_agents_get_403_and_change_nothing(auth, client, owner, fake_graph, method, path):
    agent = auth.create_user("agent")
    auth.logout()
    auth.login(agent)
    form = connect_form(fake_graph, **{"whatsapp.waba_id": "999"})
    response = client.open(path, method=method, data={**form, "csrf_token": auth.csrf("/account/")})
    assert response.status_code == 403
    assert "WhatsApp</a>" not in client.get("/account/").get_data(as_text=True)
    assert fake_graph.requests == []


def test_admins_may_connect_too(auth, client, owner, fake_graph):
    admin = auth.create_user("admin")
    auth.logout()
    auth.login(admin)
    form = connect_form(fake_graph)
    del form["whatsapp.graph_base_url"]  # only the owner may point the token elsewhere
    assert auth.post("/admin/whatsapp/", form, form_page="/admin/whatsapp/").status_code == 302
    page = client.get("/admin/whatsapp/").get_data(as_text=True)
    assert f'value="{WABA_ID}"' in page and 'href="/admin/whatsapp/"' in page


def test_the_page_never_offers_a_local_address_as_metas_callback(auth, client, owner):
    page = client.get("/admin/whatsapp/").get_data(as_text=True)
    assert 'id="callback-url"' not in page and 'id="callback-unreachable"' in page
    assert "Pair with a relay" in page and "public HTTPS address" in page
    assert 'value="v26.0"' in page and 'value="https://graph.facebook.com"' in page


def test_the_check_talks_to_meta_with_the_saved_settings(auth, client, owner, fake_graph):
    auth.post(
        "/admin/whatsapp/", connect_form(fake_graph, **{"whatsapp.api_version": "v22.0"}), form_page="/admin/whatsapp/"
    )
    auth.post("/admin/whatsapp/test", form_page="/admin/whatsapp/")
    request = fake_graph.requests[-1]
    assert request.path == f"/v22.0/{PHONE_NUMBER_ID}" and request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_an_unreachable_graph_api_is_explained(auth, client, owner, fake_graph):
    auth.post("/admin/whatsapp/", connect_form(fake_graph), form_page="/admin/whatsapp/")
    fake_graph.fail_next(2, status=503)
    page = auth.post("/admin/whatsapp/test", form_page="/admin/whatsapp/").get_data(as_text=True)
    assert "temporarily unavailable" in page and "code 2" in page
