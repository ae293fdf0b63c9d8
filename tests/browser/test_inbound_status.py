"""The header's relay indicator, in headless Chromium against the real server (its script must pass the CSP)."""

from __future__ import annotations

import re
import socket

import pytest
from playwright.sync_api import expect

from sigdesk.settings import services as settings
from tests.browser.conftest import Browse
from tests.browser.test_auth_flow import set_up_owner

pytestmark = pytest.mark.browser


def test_admins_see_the_relay_state_in_the_header(browse: Browse, app):
    set_up_owner(browse)
    page = browse.page
    assert page.is_hidden("#inbound-status"), "direct mode: no relay indicator"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        for key, value in (
            ("whatsapp.app_secret", "s"),
            ("relay.url", f"http://127.0.0.1:{closed}"),
            ("relay.token", "sdr_x"),
            ("relay.install", "i" * 32),
            ("inbound.mode", "relay"),
        ):
            settings.set_value(session, state.cipher, key, value)
    app.extensions["sigdesk.relay"].wake()  # the running puller notices the new settings now
    browse.goto("/")
    badge = page.locator("#inbound-status")
    badge.wait_for(state="visible")
    # a locator assertion polls without eval, which the CSP (rightly) forbids
    expect(badge).to_contain_text(re.compile("reconnecting|offline"), timeout=15000)
    assert "Relay: " in badge.text_content() and "no events yet" in badge.text_content()
    assert "warn" in badge.get_attribute("class")
    with page.expect_navigation():
        badge.click()
    assert page.url.endswith("/admin/inbound/")
    browse.watch.assert_clean()
