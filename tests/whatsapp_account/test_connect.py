"""Connecting with only the token and the app secret, over real HTTP to the fake Graph API:
find the numbers, pick one, subscribe the webhooks with the callback URL; and who may move the Graph address."""

from __future__ import annotations

import socket

import pytest

from sigdesk.actor import Actor
from sigdesk.errors import Refused
from sigdesk.models import Setting
from sigdesk.settings import services as settings
from sigdesk.whatsapp_account import commands, services as account
from tests import factories
from tests.commanding import audit, events, everything_recorded
from tests.fakes.graph import MANAGEMENT, PHONE_NUMBER_ID, TOKEN, VERIFIED_NAME, WABA_ID

APP_SECRET = "app-secret-0123456789"
PAGE = "/admin/whatsapp/"
PUBLIC = "https://desk.example.com"


def setting(app, key):
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        return settings.get(session, state.cipher, key)


def store(app, **values):
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        for key, value in values.items():
            settings.set_text(session, state.cipher, key.replace("__", "."), value)


@pytest.fixture
def graph_at_fake(app, fake_graph):
    """The Graph address points at the fake, as `sigdesk settings set whatsapp.graph_base_url` would."""
    store(app, whatsapp__graph_base_url=fake_graph.url)
    return fake_graph


def html(response) -> str:
    return response.get_data(as_text=True)


def find(auth, token=TOKEN, secret=APP_SECRET, **extra):
    return auth.post(
        f"{PAGE}find", {"whatsapp.access_token": token, "whatsapp.app_secret": secret, **extra}, form_page=PAGE
    )


def test_a_token_and_app_secret_are_enough_to_connect(app, auth, owner, graph_at_fake):
    response = find(auth)
    page = html(response)
    assert response.status_code == 200, page
    assert 'id="connected"' in page and VERIFIED_NAME.replace("'", "&#39;") in page
    assert 'id="number-quality">GREEN<' in page and "1,000 new customers a day" in page
    assert setting(app, "whatsapp.phone_number_id") == PHONE_NUMBER_ID
    assert setting(app, "whatsapp.waba_id") == WABA_ID
    assert setting(app, "whatsapp.access_token") == TOKEN and setting(app, "whatsapp.app_secret") == APP_SECRET
    assert setting(app, "whatsapp.verify_token"), "the webhook handshake needs a verify token"
    paths = [request.path for request in graph_at_fake.requests]
    assert paths == ["/v26.0/debug_token", f"/v26.0/{WABA_ID}", f"/v26.0/{WABA_ID}/phone_numbers"]
    [entry] = audit(app, "whatsapp.connected")
    assert entry.target == PHONE_NUMBER_ID and entry.channel == "web" and entry.detail["waba"] == WABA_ID
    assert events(app, "whatsapp.connected") == [{"waba_id": WABA_ID, "phone_number_id": PHONE_NUMBER_ID}]
    assert TOKEN not in everything_recorded(app) and APP_SECRET not in everything_recorded(app)


def test_with_several_numbers_the_owner_picks_one(app, auth, owner, graph_at_fake):
    other = graph_at_fake.number("109999999999999", "+44 20 7946 0000", "Rosa's London", "YELLOW", "TIER_250")
    graph_at_fake.add_waba("203333333333333", "London WABA", [other])
    page = html(find(auth))
    assert 'id="choose-form"' in page and "Rosa&#39;s London" in page and "250 new customers a day" in page
    assert setting(app, "whatsapp.phone_number_id") is None and setting(app, "whatsapp.access_token") == TOKEN
    chosen = auth.post(f"{PAGE}choose", {"phone_number_id": "109999999999999"}, form_page=PAGE)
    assert chosen.status_code == 200 and 'id="number-quality">YELLOW<' in html(chosen)
    assert setting(app, "whatsapp.phone_number_id") == "109999999999999"
    assert setting(app, "whatsapp.waba_id") == "203333333333333"


def test_a_number_the_token_cannot_see_is_refused(app, auth, owner, graph_at_fake):
    store(app, whatsapp__access_token=TOKEN)
    response = auth.post(f"{PAGE}choose", {"phone_number_id": "555"}, form_page=PAGE)
    assert response.status_code == 400 and "not one the access token can use" in html(response)
    assert setting(app, "whatsapp.phone_number_id") is None


def test_a_missing_permission_is_named_and_nothing_is_stored(app, auth, owner, graph_at_fake):
    graph_at_fake.scopes = ["whatsapp_business_messaging"]
    response = find(auth)
    page = html(response)
    assert response.status_code == 400
    assert f"lacks the permission {MANAGEMENT}" in page and "System users" in page
    assert setting(app, "whatsapp.access_token") is None and audit(app, "whatsapp.connected") == []


def test_an_expired_token_is_explained(app, auth, owner, graph_at_fake):
    graph_at_fake.expire_token()
    response = find(auth)
    assert response.status_code == 400 and "access token has expired" in html(response)
    assert setting(app, "whatsapp.access_token") is None


def test_a_token_that_expires_soon_connects_with_a_warning(app, auth, owner, graph_at_fake):
    import time

    graph_at_fake.token_expires_at = int(time.time()) + 3 * 86400
    page = html(find(auth))
    assert 'id="connected"' in page and "WhatsApp stops working then" in page


def test_a_token_without_any_account_says_what_to_assign(app, auth, owner, graph_at_fake):
    graph_at_fake.granted_wabas = []
    response = find(auth)
    assert response.status_code == 400 and "Assign assets" in html(response)


def test_the_account_id_can_still_be_typed_when_the_token_lists_none(app, auth, owner, graph_at_fake):
    graph_at_fake.granted_wabas = []
    response = find(auth, **{"whatsapp.waba_id": WABA_ID})
    assert response.status_code == 400  # the fake, like Meta, refuses an account the token was not given
    graph_at_fake.granted_wabas = None
    assert 'id="connected"' in html(find(auth, **{"whatsapp.waba_id": WABA_ID}))


def test_subscribing_sets_the_callback_and_meta_verifies_it_over_http(app, auth, owner, graph_at_fake, live_server):
    graph_at_fake.tunnel(PUBLIC, live_server.url)
    find(auth)
    callback = f"{PUBLIC}/webhooks/whatsapp"
    response = auth.post(f"{PAGE}subscribe", {"whatsapp.callback_url": callback}, form_page=PAGE)
    assert response.status_code == 302, html(response)
    assert graph_at_fake.subscriptions[WABA_ID] == {
        "override_callback_uri": callback,
        "verify_token": setting(app, "whatsapp.verify_token"),
    }
    assert setting(app, "whatsapp.callback_url") == callback
    [entry] = audit(app, "whatsapp.subscribed")
    assert entry.target == WABA_ID and entry.detail == {"host": "desk.example.com"}
    assert events(app, "whatsapp.subscribed") == [{"waba_id": WABA_ID, "host": "desk.example.com"}]
    page = html(auth.client.get(PAGE))
    assert f'<code id="callback-url">{callback}</code>' in page


def test_a_callback_meta_cannot_verify_is_explained(app, auth, owner, graph_at_fake, live_server):
    graph_at_fake.tunnel(PUBLIC, live_server.url + "/nowhere")
    find(auth)
    response = auth.post(f"{PAGE}subscribe", {"whatsapp.callback_url": f"{PUBLIC}/webhooks/whatsapp"}, form_page=PAGE)
    assert response.status_code == 400 and "Meta could not verify" in html(response)
    assert setting(app, "whatsapp.callback_url") is None and audit(app, "whatsapp.subscribed") == []


ELSEWHERE = "https://collector.example.net"


def test_an_admin_cannot_tell_meta_to_send_the_webhooks_elsewhere(app, auth, client, owner, fake_graph, live_server):
    with app.extensions["sigdesk"].database.session() as session:
        factories.whatsapp_connection(session, app.extensions["sigdesk"].cipher, fake_graph.url)
    fake_graph.tunnel(ELSEWHERE, live_server.url)  # a server the admin runs, answering Meta's handshake
    admin = auth.create_user("admin")
    auth.logout()
    auth.login(admin)
    page = html(client.get(PAGE))
    assert 'id="subscribe-form"' not in page and 'id="subscribe-owner-only"' in page
    response = auth.post(
        f"{PAGE}subscribe", {"whatsapp.callback_url": f"{ELSEWHERE}/webhooks/whatsapp"}, form_page=PAGE
    )
    assert response.status_code == 403 and "Only the owner" in html(response)
    assert fake_graph.requests == [] and fake_graph.subscriptions == {}, "nothing was sent to Meta"
    assert setting(app, "whatsapp.callback_url") is None and audit(app, "whatsapp.subscribed") == []


def admin_actor(app, channel):
    with app.extensions["sigdesk"].database.session() as session:
        admin = factories.user(session, "admin")
        session.expunge(admin)
    return Actor(admin, channel)


@pytest.mark.parametrize("channel", ["web", "wizard", "api"])
def test_the_subscribe_command_refuses_anyone_but_the_owner_whichever_way_they_come(app, fake_graph, channel):
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        factories.whatsapp_connection(session, state.cipher, fake_graph.url)
    actor = admin_actor(app, channel)
    url = f"{ELSEWHERE}/webhooks/whatsapp"
    with pytest.raises(Refused) as refused:
        commands.subscribe(state.database.session, actor, state.cipher, url, None, "https://desk.example.com/")
    assert refused.value.status == 403 and refused.value.field == "whatsapp.callback_url"
    with state.database.session() as session:
        for step in (commands.subscribed, commands.set_callback_url):
            with pytest.raises(Refused):
                step(session, actor, state.cipher, *([WABA_ID] if step is commands.subscribed else []), url)
    assert fake_graph.requests == [] and setting(app, "whatsapp.callback_url") is None


@pytest.mark.parametrize(
    "callback",
    [
        "http://127.0.0.1:8765/webhooks/whatsapp",
        "https://127.0.0.1:8765/webhooks/whatsapp",
        "https://192.168.1.20/webhooks/whatsapp",
        "https://localhost/webhooks/whatsapp",
        "https://desk.local/webhooks/whatsapp",
        "http://desk.example.com/webhooks/whatsapp",
    ],
)
def test_loopback_private_and_plain_http_callbacks_are_refused(app, auth, owner, graph_at_fake, callback):
    find(auth)
    before = len(graph_at_fake.requests)
    response = auth.post(f"{PAGE}subscribe", {"whatsapp.callback_url": callback}, form_page=PAGE)
    assert response.status_code == 400
    assert "can never reach" in html(response) or "only calls https://" in html(response)
    assert len(graph_at_fake.requests) == before, "nothing was sent to Meta"


def test_a_public_https_page_address_is_offered_as_the_callback_and_a_local_one_never(app):
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        public = account.callback_suggestion(session, state.cipher, "https://desk.example.com/")
        local = account.callback_suggestion(session, state.cipher, "http://127.0.0.1:8765/")
        lan = account.callback_suggestion(session, state.cipher, "https://192.168.1.20:8765/")
    assert public == {"kind": "public", "url": "https://desk.example.com/webhooks/whatsapp", "suggested": True}
    assert local["url"] is None and lan["url"] is None


def test_when_paired_with_a_relay_the_relay_address_is_offered(app, auth, owner):
    store(app, relay__url="https://relay.example.com", relay__token="t0k", relay__install="i1", inbound__mode="relay")
    page = html(auth.client.get(PAGE))
    assert "https://relay.example.com/hook/" in page and "sigdesk relay add-install" in page
    assert "127.0.0.1" not in page and "http://localhost/webhooks" not in page


def test_through_a_relay_the_relays_verify_token_is_given_to_meta(
    app, auth, owner, graph_at_fake, relay_server, make_install
):
    install = make_install(pair=False)
    store(app, relay__url=relay_server.url, relay__token="t0k", relay__install=install.uid, inbound__mode="relay")
    hook = f"https://relay.example.com/hook/{install.credentials.hook_path}"
    graph_at_fake.tunnel("https://relay.example.com", relay_server.url)
    find(auth)
    response = auth.post(
        f"{PAGE}subscribe",
        {"whatsapp.callback_url": hook, "relay_verify_token": install.credentials.verify_token},
        form_page=PAGE,
    )
    assert response.status_code == 302, html(response)
    assert graph_at_fake.subscriptions[WABA_ID]["override_callback_uri"] == hook


def test_the_graph_version_is_shown_and_a_deprecation_is_noted(app, auth, owner, graph_at_fake):
    store(app, whatsapp__access_token=TOKEN, whatsapp__phone_number_id=PHONE_NUMBER_ID, whatsapp__api_version="v21.0")
    graph_at_fake.deprecate("v21.0", "v26.0")
    assert 'id="graph-version">Graph API <strong>v21.0</strong>' in html(auth.client.get(PAGE))
    page = html(auth.post(f"{PAGE}test", form_page=PAGE))
    assert 'id="version-warning"' in page and "v21.0 is deprecated" in page and "auto-upgraded to v26.0" in page
    store(app, whatsapp__api_version="v26.0")
    assert 'id="version-warning"' not in html(auth.post(f"{PAGE}test", form_page=PAGE))


def test_the_new_verify_token_page_is_not_cached_and_has_a_copy_button(auth, client, owner):
    response = auth.post(f"{PAGE}verify-token", form_page=PAGE)
    assert "no-store" in response.headers["Cache-Control"]
    assert 'data-copy="verify-token"' in html(response) and "js/copy.js" in html(response)


# --- the Graph API address receives the token: only the owner (token re-entered) or the CLI ----------


def graph_form(url, token=""):
    return {"whatsapp.graph_base_url": url, "whatsapp.access_token": token, "whatsapp.read_receipts": "true"}


def test_an_admin_cannot_point_the_graph_address_elsewhere(app, auth, client, owner, fake_graph):
    admin = auth.create_user("admin")
    auth.logout()
    auth.login(admin)
    page = html(client.get(PAGE))
    assert 'name="whatsapp.graph_base_url"' not in page and 'id="graph-address"' in page
    response = auth.post(PAGE, graph_form(fake_graph.url, TOKEN), form_page=PAGE)
    assert response.status_code == 403 and "Only the owner" in html(response)
    assert setting(app, "whatsapp.graph_base_url") == "https://graph.facebook.com"
    assert setting(app, "whatsapp.access_token") is None, "the refused form stored nothing"


def test_the_owner_must_re_enter_the_token_to_change_it(app, auth, owner, fake_graph):
    store(app, whatsapp__access_token=TOKEN)
    response = auth.post(PAGE, graph_form(fake_graph.url), form_page=PAGE)
    assert response.status_code == 400 and "Re-enter the access token" in html(response)
    assert setting(app, "whatsapp.graph_base_url") == "https://graph.facebook.com"
    assert auth.post(PAGE, graph_form(fake_graph.url, TOKEN), form_page=PAGE).status_code == 302
    assert setting(app, "whatsapp.graph_base_url") == fake_graph.url
    assert [entry.target for entry in audit(app, "settings.changed")] == ["whatsapp.graph_base_url"]


@pytest.mark.parametrize(
    "address",
    [
        "http://169.254.169.254",
        "http://169.254.169.254/latest/meta-data",
        "http://metadata.google.internal",
        "http://[fe80::1]",
    ],
)
def test_metadata_and_link_local_addresses_are_refused(app, auth, owner, address):
    response = auth.post(PAGE, graph_form(address, TOKEN), form_page=PAGE)
    assert response.status_code == 400 and "SigDesk will not send secrets there" in html(response)
    assert setting(app, "whatsapp.graph_base_url") == "https://graph.facebook.com"


def test_a_metadata_address_stored_some_other_way_never_gets_the_token(app, auth, owner):
    store(app, whatsapp__access_token=TOKEN, whatsapp__phone_number_id=PHONE_NUMBER_ID)
    state = app.extensions["sigdesk"]
    with state.database.session() as session:  # as an older SigDesk, or a hand-edited database, might hold it
        session.merge(Setting(key="whatsapp.graph_base_url", value="http://169.254.169.254", is_secret=False))
    page = html(auth.post(f"{PAGE}test", form_page=PAGE))
    assert "link-local or metadata address" in page
    with state.database.session() as session:
        assert account.client_or_none(session, state.cipher) is None


def test_the_check_names_a_permission_the_saved_token_lost(app, auth, owner, graph_at_fake):
    store(app, whatsapp__access_token=TOKEN, whatsapp__phone_number_id=PHONE_NUMBER_ID)
    graph_at_fake.scopes = [MANAGEMENT]
    page = html(auth.post(f"{PAGE}test", form_page=PAGE))
    assert "lacks the permission whatsapp_business_messaging" in page and 'id="connection-result"' in page


def test_the_check_shows_the_numbers_name_quality_and_messaging_limit(app, auth, owner, graph_at_fake):
    """The fake, like Meta, answers only the fields asked for: the limit shows because SigDesk asks for it."""
    store(app, whatsapp__access_token=TOKEN, whatsapp__phone_number_id=PHONE_NUMBER_ID)
    page = html(auth.post(f"{PAGE}test", form_page=PAGE))
    result = page.split('id="connection-result"', 1)[1].split("</p>", 1)[0]
    assert VERIFIED_NAME.replace("'", "&#39;") in result and "quality GREEN" in result
    assert "messaging limit 1,000 new customers a day" in result


def test_the_check_warns_of_a_token_that_expires_soon(app, auth, owner, graph_at_fake):
    import time

    store(app, whatsapp__access_token=TOKEN, whatsapp__phone_number_id=PHONE_NUMBER_ID)
    graph_at_fake.token_expires_at = int(time.time()) + 86400
    page = html(auth.post(f"{PAGE}test", form_page=PAGE))
    assert "Connected to" in page and "WhatsApp stops working then" in page


def test_finding_numbers_without_a_network_says_what_happened_and_what_to_check(app, auth, owner):
    """Nothing retries a form: the page names the failure in words and what to do, not an exception class."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    store(app, whatsapp__graph_base_url=f"http://127.0.0.1:{closed}")
    response = find(auth)
    page = html(response)
    assert response.status_code == 400
    assert "could not reach WhatsApp&#39;s servers: no connection could be made" in page
    assert (
        "Check this computer&#39;s internet connection (and the proxy, if your network uses one), then try again"
        in page
    )
    assert "ConnectError" not in page and "will try again" not in page
    assert setting(app, "whatsapp.access_token") is None


def test_after_finding_the_number_the_details_show_the_ids_found(app, auth, owner, graph_at_fake):
    """The connect form's empty account-ID hint must not blank the WhatsApp Business Account ID below (a blank
    there keeps what is stored, so the page shows what is stored)."""
    page = html(find(auth, **{"whatsapp.waba_id": ""}))  # the browser sends the empty hint field
    assert f'name="whatsapp.waba_id" value="{WABA_ID}"' in page
    assert f'name="whatsapp.phone_number_id" value="{PHONE_NUMBER_ID}"' in page
