"""Settings → General: the business name and the time zone every page shows times in."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from flask import g

from sigdesk.general.views import localtime


def test_the_settings_link_opens_the_first_page_the_role_may_see(auth, client, owner):
    assert client.get("/settings/").headers["Location"] == "/settings/general"
    auth.logout()
    auth.login(auth.create_user("agent"))
    assert client.get("/settings/").headers["Location"] == "/account/"
    assert client.get("/settings/general").status_code == 403


def test_a_wrong_time_zone_is_refused_and_what_was_typed_stays(auth, client, owner):
    response = auth.post(
        "/settings/general",
        {"general.business_name": "Bakery", "general.timezone": "Mars/Olympus"},
        form_page="/settings/general",
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "not a time zone name" in page and 'value="Mars/Olympus"' in page and 'value="Bakery"' in page


def test_times_on_pages_follow_the_time_zone(app, auth, client, owner):
    response = auth.post(
        "/settings/general",
        {"general.business_name": "", "general.timezone": "Asia/Kathmandu"},
        form_page="/settings/general",
    )
    assert response.status_code == 302
    assert 'data-timezone="Asia/Kathmandu"' in client.get("/settings/general").get_data(as_text=True)
    assert "general.timezone" in client.get("/admin/audit").get_data(as_text=True)
    with app.test_request_context():
        g.sigdesk_zone = ZoneInfo("Asia/Kathmandu")
        assert localtime(datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)) == "2026-01-01 17:45"
        assert localtime("2026-01-01T12:00:00+00:00", "time") == "17:45"
        assert localtime(None) == ""


def test_the_owner_sets_the_default_country_and_the_consent_keywords_on_the_general_page(app, auth, client, owner):
    from sigdesk.settings import services as settings

    response = auth.post(
        "/settings/general",
        {
            "general.business_name": "Bakery",
            "general.timezone": "Europe/Berlin",
            "contacts.default_country": "br",
            "consent.stop_keywords": "STOP, sair ,  PARAR",
            "consent.start_keywords": "START, voltar",
        },
        form_page="/settings/general",
    )
    assert response.status_code == 302
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        assert settings.get(session, state.cipher, "contacts.default_country") == "BR"
        assert settings.get(session, state.cipher, "consent.stop_keywords") == "STOP, sair, PARAR"


def test_a_wrong_default_country_is_refused_naming_it_and_nothing_is_saved(app, auth, client, owner):
    response = auth.post(
        "/settings/general",
        {
            "general.business_name": "Bakery",
            "general.timezone": "Europe/Berlin",
            "contacts.default_country": "Narnia",
            "consent.stop_keywords": "HALT",
        },
        form_page="/settings/general",
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "not a two-letter country code" in page and 'value="Narnia"' in page
    assert "HALT" in page
