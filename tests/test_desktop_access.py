"""The desktop window talks to its own server on 127.0.0.1: it always gets through, whatever the
allow-list and the trusted proxies say, while `sigdesk serve` keeps applying them to loopback."""

from __future__ import annotations

import httpx
import pytest

from sigdesk import desktop
from sigdesk.server import ServerThread
from sigdesk.settings import services as settings

pytestmark = pytest.mark.database


def leave_loopback_out(app) -> None:
    """What an owner does who took loopback out of the allow-list and trusts a tunnel on this machine."""
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        settings.set_text(session, state.cipher, "server.allowed_networks", "192.168.0.0/16")
        settings.set_text(session, state.cipher, "server.trusted_proxies", "127.0.0.1")
    state.policy.invalidate()


@pytest.fixture
def loopback_left_out(app, owner):
    leave_loopback_out(app)


def test_the_desktop_window_gets_through_when_loopback_is_not_in_the_allow_list(app, loopback_left_out, monkeypatch):
    """desktop.run as `sigdesk desktop` runs it, without a screen: the "browser" it opens is the window."""
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    seen: dict[str, int] = {}

    def browser(url: str) -> bool:
        with httpx.Client(base_url=url.rstrip("/")) as window:
            seen["login"] = window.get("/login").status_code
            seen["events"] = window.get("/events").status_code  # signed out: sent to sign in, not refused
        raise KeyboardInterrupt  # the person closes it

    monkeypatch.setattr(desktop.webbrowser, "open", browser)
    assert desktop.run(app, echo=lambda _line: None) == 0
    assert seen == {"login": 200, "events": 302}


def test_only_the_desktops_own_server_lets_loopback_past_the_allow_list(app, owner):
    server = ServerThread(app).start()
    window = ServerThread(app, wsgi=desktop.window_wsgi(app)).start()
    try:
        leave_loopback_out(app)
        assert httpx.get(f"{server.url}/login").status_code == 403
        assert httpx.get(f"{window.url}/login").status_code == 200
        assert httpx.get(f"{window.url}/login", headers={"X-Forwarded-For": "203.0.113.7"}).status_code == 200
    finally:
        window.stop()
        server.stop()


def test_a_header_cannot_claim_to_be_the_desktop_window(app, client, loopback_left_out):
    headers = {"Sigdesk.Desktop-Window": "1", "X-Sigdesk-Desktop-Window": "1"}
    assert client.get("/login", headers=headers).status_code == 403
