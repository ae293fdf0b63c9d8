"""The first-run wizard after the owner account: WhatsApp, inbound mode, backups; skippable, resumable, shown once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select

import sigdesk.onboarding
from sigdesk.models import AuditEvent
from sigdesk.settings import services as settings
from tests.conftest import PASSWORD

BACKUP_PASSPHRASE = "correct horse battery"


def setting(app, key):
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        return settings.get(session, state.cipher, key)


def step(auth, name: str, data: dict | None = None, **kwargs):
    return auth.post(f"/welcome/{name}", data or {}, form_page=f"/welcome/{name}", **kwargs)


def skip(auth, name: str):
    return step(auth, name, {"action": "skip"})


def html(response) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def backup_dir(tmp_path):
    folder = tmp_path / "usb"
    folder.mkdir()
    return folder


def test_creating_the_owner_leads_into_the_wizard(auth, client):
    response = auth.post(
        "/setup", {"email": "o@example.com", "name": "O", "password": PASSWORD, "password_confirm": PASSWORD}
    )
    assert response.status_code == 302 and response.headers["Location"].endswith("/welcome/")
    start = client.get("/welcome/")
    assert start.status_code == 302 and start.headers["Location"].endswith("/welcome/welcome")
    page = client.get("/welcome/welcome")
    assert page.status_code == 200
    assert "Your owner account is ready" in html(page)
    assert 'aria-current="step">Welcome<' in html(page)


@pytest.mark.database
def test_the_whole_first_run_stores_every_setting_through_the_existing_stores(app, auth, client, owner, backup_dir):
    assert step(auth, "welcome").headers["Location"].endswith("/welcome/whatsapp")
    response = step(
        auth,
        "whatsapp",
        {
            "whatsapp.phone_number_id": "1234567890",
            "whatsapp.waba_id": "987654321",
            "whatsapp.access_token": "EAAG-token",
            "whatsapp.app_secret": "app-secret",
        },
    )
    assert response.status_code == 302 and response.headers["Location"].endswith("/welcome/inbound")
    assert setting(app, "whatsapp.phone_number_id") == "1234567890"
    assert setting(app, "whatsapp.access_token") == "EAAG-token"
    assert setting(app, "whatsapp.verify_token"), "direct mode needs a verify token for Meta's dashboard"

    assert step(auth, "inbound", {"mode": "direct"}).headers["Location"].endswith("/welcome/backup")
    assert setting(app, "inbound.mode") == "direct"

    done = step(
        auth,
        "backup",
        {
            "passphrase": BACKUP_PASSPHRASE,
            "passphrase_confirm": BACKUP_PASSPHRASE,
            "backup.folder": str(backup_dir),
            "backup.schedule": "weekly",
        },
    )
    assert done.status_code == 302 and done.headers["Location"].endswith("/")
    assert setting(app, "backup.passphrase") == BACKUP_PASSPHRASE
    assert setting(app, "backup.folder") == str(backup_dir)
    assert setting(app, "backup.schedule") == "weekly"
    assert setting(app, "onboarding.step") == "done"
    assert "SigDesk is set up" in html(client.get("/"))
    with app.extensions["sigdesk"].database.session() as session:
        actions = set(session.scalars(select(AuditEvent.target).where(AuditEvent.action == "settings.changed")))
    assert {"whatsapp.access_token", "backup.passphrase", "backup.folder"} <= actions  # direct was already the mode


def test_it_is_not_shown_again_once_finished(app, auth, client, owner):
    step(auth, "welcome")
    skip(auth, "whatsapp")
    skip(auth, "inbound")
    assert skip(auth, "backup").headers["Location"].endswith("/")
    assert setting(app, "onboarding.step") == "done"
    for path in ("/welcome/", "/welcome/whatsapp", "/welcome/backup"):
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"].endswith("/"), path
    assert "onboarding-resume" not in html(client.get("/"))
    again = auth.post("/welcome/backup", {"passphrase": "x"}, form_page="/account/")
    assert again.status_code == 302 and setting(app, "backup.passphrase") is None


def test_skipping_a_step_changes_nothing_and_moves_on(app, auth, owner):
    step(auth, "welcome")
    response = skip(auth, "whatsapp")
    assert response.headers["Location"].endswith("/welcome/inbound")
    assert setting(app, "whatsapp.access_token") is None
    assert setting(app, "onboarding.step") == "inbound"


def test_skip_the_rest_finishes_at_once(app, auth, client, owner):
    response = auth.post("/welcome/skip", {}, form_page="/welcome/welcome")
    assert response.status_code == 302 and response.headers["Location"].endswith("/")
    assert setting(app, "onboarding.step") == "done"
    assert "First-run setup skipped" in html(client.get("/"))


def test_it_resumes_where_the_owner_left_off_after_signing_in_again(app, auth, client, owner):
    step(auth, "welcome")
    skip(auth, "whatsapp")
    auth.logout()
    auth.login(owner)
    home = html(client.get("/"))
    assert 'id="onboarding-resume"' in home and 'href="/welcome/inbound"' in home
    resumed = client.get("/welcome/")
    assert resumed.headers["Location"].endswith("/welcome/inbound")
    page = html(client.get("/welcome/inbound"))
    assert 'class="done">WhatsApp<' in page and 'aria-current="step">Inbound messages<' in page


def test_going_back_to_an_earlier_step_does_not_lose_progress(app, auth, owner):
    step(auth, "welcome")
    skip(auth, "whatsapp")
    skip(auth, "inbound")
    assert skip(auth, "whatsapp").headers["Location"].endswith("/welcome/inbound")
    assert setting(app, "onboarding.step") == "backup"


def test_weak_and_mismatched_backup_passphrases_are_refused(app, auth, owner, backup_dir):
    mismatched = step(
        auth,
        "backup",
        {
            "passphrase": BACKUP_PASSPHRASE,
            "passphrase_confirm": BACKUP_PASSPHRASE + "!",
            "backup.folder": str(backup_dir),
        },
    )
    assert mismatched.status_code == 400 and "The two backup passphrases do not match" in html(mismatched)
    weak = step(
        auth, "backup", {"passphrase": "short", "passphrase_confirm": "short", "backup.folder": str(backup_dir)}
    )
    assert weak.status_code == 400 and "at least 8 characters" in html(weak)
    assert setting(app, "backup.passphrase") is None and setting(app, "backup.folder") is None
    assert setting(app, "onboarding.step") == "welcome"


def test_a_missing_or_relative_backup_folder_is_refused(app, auth, owner, tmp_path):
    gone = tmp_path / "unplugged-drive"
    data = {"passphrase": BACKUP_PASSPHRASE, "passphrase_confirm": BACKUP_PASSPHRASE}
    missing = step(auth, "backup", {**data, "backup.folder": str(gone)})
    assert missing.status_code == 400 and f"The folder {gone} does not exist" in html(missing)
    assert not gone.exists()
    relative = step(auth, "backup", {**data, "backup.folder": "backups"})
    assert relative.status_code == 400 and "full path" in html(relative)
    empty = step(auth, "backup", {**data, "backup.folder": ""})
    assert empty.status_code == 400 and "Choose a folder" in html(empty)
    assert setting(app, "backup.passphrase") is None


def test_bad_input_is_a_json_error_for_json_callers(auth, owner, tmp_path):
    response = step(
        auth,
        "backup",
        {"passphrase": BACKUP_PASSPHRASE, "passphrase_confirm": "other-passphrase", "backup.folder": str(tmp_path)},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 400
    assert response.get_json() == {"error": "The two backup passphrases do not match", "status": 400}


def test_the_suggested_backup_folder_is_created_when_missing(app, auth, owner, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    suggested = tmp_path / "SigDesk Backups"
    page = html(client_get(auth, "/welcome/backup"))
    assert str(suggested) in page
    response = step(
        auth,
        "backup",
        {"passphrase": BACKUP_PASSPHRASE, "passphrase_confirm": BACKUP_PASSPHRASE, "backup.folder": str(suggested)},
    )
    assert response.status_code == 302
    assert suggested.is_dir() and setting(app, "backup.folder") == str(suggested)


def client_get(auth, path):
    return auth.client.get(path)


def test_whatsapp_step_refuses_bad_ids_and_an_incomplete_connection(app, auth, owner):
    bad = step(auth, "whatsapp", {"whatsapp.phone_number_id": "not-a-number", "whatsapp.access_token": "t"})
    assert bad.status_code == 400 and "is not a numeric ID" in html(bad)
    incomplete = step(auth, "whatsapp", {"whatsapp.phone_number_id": "123"})
    assert incomplete.status_code == 400 and "or skip this step" in html(incomplete)
    assert setting(app, "whatsapp.phone_number_id") is None


def test_inbound_step_refuses_unknown_modes_and_bad_relay_details(app, auth, owner):
    unknown = step(auth, "inbound", {"mode": "sideways"})
    assert unknown.status_code == 400 and "not an inbound mode" in html(unknown)
    bad_url = step(auth, "inbound", {"mode": "relay", "relay_url": "ftp://relay", "code": "X"})
    assert bad_url.status_code == 400 and "not an http(s) address" in html(bad_url)
    no_code = step(auth, "inbound", {"mode": "relay", "relay_url": "https://relay.example.com"})
    assert no_code.status_code == 400 and "pairing code" in html(no_code)
    unreachable = step(auth, "inbound", {"mode": "relay", "relay_url": "http://127.0.0.1:9", "code": "ABCD-EFGH"})
    assert unreachable.status_code == 400 and "Pairing failed" in html(unreachable)
    assert 'value="ABCD-EFGH"' in html(unreachable)  # the typed code comes back
    assert "Errno" not in html(unreachable) and "Traceback" not in html(unreachable)
    metadata = step(auth, "inbound", {"mode": "relay", "relay_url": "http://169.254.169.254", "code": "ABCD"})
    assert metadata.status_code == 400 and "link-local or metadata" in html(metadata)
    assert setting(app, "inbound.mode") == "direct" and setting(app, "relay.url") is None


def test_inbound_step_pairs_with_a_real_relay(app, auth, owner, relay_server, make_install):
    install = make_install(pair=False)
    response = step(
        auth, "inbound", {"mode": "relay", "relay_url": relay_server.url, "code": install.credentials.pairing_code}
    )
    assert response.status_code == 302 and response.headers["Location"].endswith("/welcome/backup")
    assert setting(app, "inbound.mode") == "relay"
    assert setting(app, "relay.install") == install.uid


def test_only_the_owner_runs_the_wizard(app, auth, client, owner):
    admin = auth.create_user("admin")
    auth.logout()
    auth.login(admin)
    assert client.get("/welcome/whatsapp").status_code == 403
    assert "onboarding-resume" not in html(client.get("/"))


def test_unknown_steps_are_not_found(auth, client, owner):
    assert client.get("/welcome/nowhere").status_code == 404


def test_installs_older_than_the_wizard_do_not_get_it_pushed_on_them(app, auth, client):
    with app.extensions["sigdesk"].database.session() as session:
        from sigdesk.auth.services import create_user

        create_user(session, "old@example.com", "Old Owner", "owner", PASSWORD, rounds=4)
    from tests.conftest import Person

    auth.login(Person("old@example.com", "Old Owner", "owner"))
    assert setting(app, "onboarding.step") is None
    assert "onboarding-resume" not in html(client.get("/"))


def test_after_skipping_every_step_the_flash_says_where_to_do_them_later(auth, client, owner):
    step(auth, "welcome")
    skip(auth, "whatsapp")
    skip(auth, "inbound")
    skip(auth, "backup")
    page = html(client.get("/"))
    assert "SigDesk is set up" not in page
    later = "What you skipped can be done later under Settings → Connection, Settings → Inbound and Settings → Backups"
    assert later in page


def test_after_skipping_only_inbound_the_flash_names_only_inbound(auth, client, owner, backup_dir):
    step(auth, "welcome")
    step(auth, "whatsapp", {"whatsapp.phone_number_id": "1234567890", "whatsapp.access_token": "EAAG-token"})
    skip(auth, "inbound")
    passphrase = {"passphrase": BACKUP_PASSPHRASE, "passphrase_confirm": BACKUP_PASSPHRASE}
    step(auth, "backup", {**passphrase, "backup.folder": str(backup_dir), "backup.schedule": "daily"})
    assert "What you skipped can be done later under Settings → Inbound." in html(client.get("/"))


# --- connecting with only the token and the app secret ----------------------------------------------


def test_the_wizard_connects_with_only_the_token_and_shows_the_verify_token(app, auth, owner, fake_graph):
    from tests.commanding import audit, events
    from tests.fakes.graph import PHONE_NUMBER_ID, TOKEN, WABA_ID

    with app.extensions["sigdesk"].database.session() as session:
        settings.set_text(session, app.extensions["sigdesk"].cipher, "whatsapp.graph_base_url", fake_graph.url)
    step(auth, "welcome")
    response = step(
        auth, "whatsapp", {"action": "find", "whatsapp.access_token": TOKEN, "whatsapp.app_secret": "s3cret"}
    )
    page = html(response)
    assert response.status_code == 200 and 'id="connected"' in page
    assert 'id="number-quality">GREEN<' in page and "1,000 new customers a day" in page
    assert "no-store" in response.headers["Cache-Control"]
    token = setting(app, "whatsapp.verify_token")
    assert f'<code id="verify-token" class="secret">{token}</code>' in page and 'data-copy="verify-token"' in page
    assert (
        setting(app, "whatsapp.phone_number_id") == PHONE_NUMBER_ID and setting(app, "whatsapp.app_secret") == "s3cret"
    )
    [entry] = audit(app, "whatsapp.connected")
    assert entry.channel == "wizard" and entry.target == PHONE_NUMBER_ID
    assert events(app, "whatsapp.connected") == [{"waba_id": WABA_ID, "phone_number_id": PHONE_NUMBER_ID}]
    assert step(auth, "whatsapp", {"action": "continue"}).headers["Location"].endswith("/welcome/inbound")


def test_the_wizard_lets_the_owner_pick_among_several_numbers(app, auth, owner, fake_graph):
    from tests.fakes.graph import TOKEN

    with app.extensions["sigdesk"].database.session() as session:
        settings.set_text(session, app.extensions["sigdesk"].cipher, "whatsapp.graph_base_url", fake_graph.url)
    fake_graph.add_waba("203333333333333", "London", [fake_graph.number("109999999999999", "+44 20 7946 0000")])
    page = html(step(auth, "whatsapp", {"action": "find", "whatsapp.access_token": TOKEN}))
    assert 'id="choose-form"' in page and "+44 20 7946 0000" in page
    chosen = step(auth, "whatsapp", {"action": "choose", "phone_number_id": "109999999999999"})
    assert chosen.status_code == 200 and 'id="connected"' in html(chosen)
    assert setting(app, "whatsapp.waba_id") == "203333333333333"


def test_the_wizard_explains_a_token_without_permission(app, auth, owner, fake_graph):
    from tests.fakes.graph import TOKEN

    with app.extensions["sigdesk"].database.session() as session:
        settings.set_text(session, app.extensions["sigdesk"].cipher, "whatsapp.graph_base_url", fake_graph.url)
    fake_graph.scopes = ["whatsapp_business_management"]
    response = step(auth, "whatsapp", {"action": "find", "whatsapp.access_token": TOKEN})
    assert response.status_code == 400 and "lacks the permission whatsapp_business_messaging" in html(response)
    assert setting(app, "whatsapp.access_token") is None and setting(app, "onboarding.step") != "inbound"


def test_the_inbound_step_never_offers_a_local_callback_and_shows_the_verify_token(app, auth, owner):
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        for key, value in {
            "whatsapp.waba_id": "102290129340398",
            "whatsapp.verify_token": "vt-0123456789abcdef",
        }.items():
            settings.set_text(session, state.cipher, key, value)
    response = auth.client.get("/welcome/inbound")
    page = html(response)
    assert "no-store" in response.headers["Cache-Control"]
    assert 'id="callback-url"' not in page and 'id="callback-unreachable"' in page
    assert 'name="whatsapp.callback_url" type="url" value=""' in page, "the local address is not offered as Meta's"
    assert '<code id="verify-token" class="secret">vt-0123456789abcdef</code>' in page


def test_the_wizard_subscribes_the_webhooks_through_a_public_address(app, auth, owner, fake_graph, live_server):
    from tests.fakes.graph import TOKEN, WABA_ID

    with app.extensions["sigdesk"].database.session() as session:
        settings.set_text(session, app.extensions["sigdesk"].cipher, "whatsapp.graph_base_url", fake_graph.url)
    fake_graph.tunnel("https://desk.example.com", live_server.url)
    step(auth, "whatsapp", {"action": "find", "whatsapp.access_token": TOKEN})
    response = auth.post(
        "/welcome/webhooks",
        {"whatsapp.callback_url": "https://desk.example.com/webhooks/whatsapp"},
        form_page="/welcome/inbound",
    )
    assert response.status_code == 302, html(response)
    assert fake_graph.subscriptions[WABA_ID]["verify_token"] == setting(app, "whatsapp.verify_token")
    from tests.commanding import audit

    assert [entry.channel for entry in audit(app, "whatsapp.subscribed")] == ["wizard"]


def test_the_wizard_and_the_connection_page_call_the_same_commands_and_neither_imports_the_others_view():
    """The subscribe steps (verify token, Meta, remembering the callback) live in one command; views parse and render."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "sigdesk"
    steps = {
        "ensure_verify_token",
        "subscribe_webhooks",
        "subscribed",
        "token_client",
        "discover",
        "check_callback_url",
    }
    for view in ("onboarding/views.py", "whatsapp_account/views.py"):
        tree = ast.parse((root / view).read_text(encoding="utf-8"))
        modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert not [module for module in modules if module and module.endswith(".views")], view
        used = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
        used |= {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
        assert not used & steps, f"{view} runs {sorted(used & steps)} itself"


def test_the_welcome_step_asks_for_what_the_whatsapp_step_needs(auth, client, owner):
    """The next step takes the token and the app secret; the IDs are found by SigDesk (or typed by hand later)."""
    page = html(client.get("/welcome/welcome"))
    assert "an access token and the app secret from Meta" in page
    assert "IDs" not in page


def test_the_resume_link_is_decided_by_permission_not_by_role_name():
    """sigdesk/roles.py is the one place that says what a role may do; the wizard asks it."""
    folder = Path(sigdesk.onboarding.__file__).parent
    for source in folder.glob("*.py"):
        assert not re.search(r"role\s*[!=]=\s*['\"]", source.read_text()), source.name


@pytest.mark.database
def test_the_welcome_step_asks_where_the_business_is_and_keeps_what_was_typed_when_refused(app, auth, client, owner):
    page = html(client.get("/welcome/welcome"))
    for key in ("general.business_name", "general.timezone", "contacts.default_country", "sales.currency"):
        assert f'name="{key}"' in page
    typed = {
        "general.business_name": "Padaria Sol",
        "general.timezone": "America/Sao_Paulo",
        "contacts.default_country": "br",
        "sales.currency": "REAL",
    }
    refused = step(auth, "welcome", typed)
    assert refused.status_code == 400 and "not a currency" in html(refused)
    assert 'value="Padaria Sol"' in html(refused) and 'value="REAL"' in html(refused)
    assert setting(app, "onboarding.step") == "welcome" and setting(app, "general.business_name") == ""

    moved = step(auth, "welcome", {**typed, "sales.currency": "brl"})
    assert moved.headers["Location"].endswith("/welcome/whatsapp")
    assert (setting(app, "contacts.default_country"), setting(app, "sales.currency")) == ("BR", "BRL")
    assert setting(app, "general.timezone") == "America/Sao_Paulo"
