"""Saving settings is one command: the settings pages, the wizard, the inbox page and `sigdesk settings set`
leave the same audit entries and the same settings.changed event, and caches follow that event."""

from __future__ import annotations

import pytest

from sigdesk.actor import Actor
from sigdesk.settings import commands
from tests.commanding import audit, cli, events, everything_recorded

pytestmark = pytest.mark.database

SECRET = "app-secret-0123456789"


def test_the_settings_page_and_the_cli_record_the_same_change(app, auth, owner):
    page = auth.post(
        "/admin/settings",
        {"general.business_name": "Rosa's Bakery", "server.allowed_networks": "127.0.0.1/32"},
        form_page="/admin/settings",
    )
    assert page.status_code == 302
    cli(app, "settings", "set", "general.business_name", "Rosa's Bakery and Cafe")

    named = [entry for entry in audit(app, "settings.changed") if entry.target == "general.business_name"]
    assert [(entry.actor, entry.channel) for entry in named] == [(owner.email, "web"), (None, "cli")]
    changed = events(app, "settings.changed")
    assert sorted(changed[0]["keys"]) == ["general.business_name", "server.allowed_networks"]
    assert changed[1]["keys"] == ["general.business_name"]


def test_the_wizard_and_the_inbox_page_save_through_the_same_command(app, auth, owner):
    wizard = auth.post(
        "/welcome/whatsapp",
        {"whatsapp.phone_number_id": "1234567", "whatsapp.access_token": "EAAG-x"},
        form_page="/welcome/whatsapp",
    )
    assert wizard.status_code == 302, wizard.get_data(as_text=True)
    by_key = {entry.target: entry for entry in audit(app, "settings.changed")}
    number = by_key["whatsapp.phone_number_id"]
    assert (number.actor, number.channel) == (owner.email, "wizard")
    assert set(events(app, "settings.changed")[-1]["keys"]) == {
        "whatsapp.phone_number_id",
        "whatsapp.access_token",
        "whatsapp.verify_token",
    }
    visible = auth.client.post(
        "/inbox/settings/visibility",
        json={"inbox.agents_see_all": True},
        headers={"X-CSRFToken": auth.csrf("/inbox/settings")},
    )
    assert visible.status_code == 200, visible.get_data(as_text=True)
    entry = audit(app, "settings.changed")[-1]
    assert (entry.target, entry.actor, entry.channel) == ("inbox.agents_see_all", owner.email, "web")
    assert events(app, "settings.changed")[-1]["keys"] == ["inbox.agents_see_all"]


def test_secret_values_reach_neither_the_audit_log_nor_the_event(app, auth, owner):
    cli(app, "settings", "set", "whatsapp.app_secret", "--stdin", input=SECRET + "\n")
    assert audit(app, "settings.changed")[-1].target == "whatsapp.app_secret"
    assert events(app, "settings.changed")[-1]["keys"] == ["whatsapp.app_secret"]
    assert SECRET not in everything_recorded(app)


def test_nothing_is_recorded_when_nothing_changes_and_a_bad_value_stores_nothing(app, auth, owner):
    cli(app, "settings", "set", "general.business_name", "Same")
    before = len(events(app, "settings.changed"))
    cli(app, "settings", "set", "general.business_name", "Same")
    refused = auth.post(
        "/admin/settings",
        {"general.business_name": "Other", "server.allowed_networks": "nope"},
        form_page="/admin/settings",
    )
    assert refused.status_code == 400 and "not an IP address" in refused.get_data(as_text=True)
    assert len(events(app, "settings.changed")) == before
    assert [entry.target for entry in audit(app, "settings.changed")].count("general.business_name") == 1


def test_requiring_two_factor_is_refused_to_someone_without_it(app, auth, owner):
    page = auth.post(
        "/admin/settings",
        {"general.business_name": "", "server.allowed_networks": "127.0.0.1/32", "security.require_2fa": "on"},
        form_page="/admin/settings",
    )
    assert page.status_code == 400 and "your own account first" in page.get_data(as_text=True)
    assert events(app, "settings.changed") == []


def test_a_saved_allow_list_counts_on_the_next_request_through_the_event(app, client, owner):
    office = {"REMOTE_ADDR": "192.168.1.20"}
    assert client.get("/login", environ_base=office).status_code != 403
    state = app.extensions["sigdesk"]
    with state.database.session() as session:  # no page involved: only the event can clear the cache
        commands.save(session, Actor.system("cli"), state.cipher, {"server.allowed_networks": "10.0.0.0/8"})
    assert client.get("/login", environ_base=office).status_code == 403
    assert client.get("/login", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code != 403


def test_a_saved_allow_list_from_the_settings_page_counts_at_once(app, auth, owner):
    office = {"REMOTE_ADDR": "192.168.1.20"}
    assert auth.client.get("/admin/settings", environ_base=office).status_code == 200
    auth.post(
        "/admin/settings",
        {"general.business_name": "", "server.allowed_networks": "10.0.0.0/8,127.0.0.1"},  # keeps the saver in
        form_page="/admin/settings",
    )
    assert auth.client.get("/admin/settings", environ_base=office).status_code == 403


def test_a_saved_app_secret_counts_on_the_next_webhook_through_the_event(app, owner):
    state = app.extensions["sigdesk"]
    intake = app.extensions["sigdesk.inbound.intake"]
    assert intake.secret.get() is None
    with state.database.session() as session:
        commands.save(session, Actor.system("cli"), state.cipher, {"whatsapp.app_secret": SECRET})
    assert intake.secret.get() == SECRET
