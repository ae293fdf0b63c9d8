"""Browser-only fixtures: Debian's Chromium driven by Playwright, one context per test, traffic kept on loopback."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

CHROMIUM = Path(os.environ.get("SIGDESK_CHROMIUM", "/usr/lib/chromium/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
REQUIRE_ENV = "SIGDESK_REQUIRE_BROWSER"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
LOOPBACK_HOSTS = frozenset({"127.0.0.1"})
TIMEOUT_MS = 10_000


def _unavailable(reason: str) -> None:
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1 makes this an error)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser() -> Iterator:
    """One Chromium per test process; never a downloaded browser (`playwright install` is not used)."""
    if not CHROMIUM.is_file():
        _unavailable(f"Chromium not found at {CHROMIUM}; install Debian's chromium package or set SIGDESK_CHROMIUM")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright Python package is not installed (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@dataclass
class Watch:
    """What the pages did: every request URL they made and every console error or uncaught exception."""

    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def foreign_requests(self) -> list[str]:
        return [
            url
            for url in self.requests
            if urlsplit(url).scheme not in ("data", "blob") and urlsplit(url).hostname not in LOOPBACK_HOSTS
        ]

    def assert_clean(self) -> None:
        assert self.requests, "no requests were recorded"
        assert self.foreign_requests() == [], "pages tried to reach beyond loopback"
        assert self.errors == [], "the browser console reported errors"


@dataclass
class Browse:
    page: object
    base_url: str
    watch: Watch

    def goto(self, path: str):
        return self.page.goto(self.base_url + path)

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        target = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(target), full_page=True)
        return target


def _is_loopback(url: str) -> bool:
    return urlsplit(url).hostname in LOOPBACK_HOSTS


@pytest.fixture
def browse(browser, live_server) -> Iterator[Browse]:
    """A fresh context (cookies, localStorage) at desktop size; anything not bound for loopback is recorded and aborted."""
    context = browser.new_context(viewport=DESKTOP, color_scheme="light", locale="en-GB", service_workers="block")
    context.set_default_timeout(TIMEOUT_MS)
    watch = Watch()
    context.on("request", lambda request: watch.requests.append(request.url))
    context.route(lambda url: not _is_loopback(url), lambda route: route.abort())
    page = context.new_page()
    page.on("console", lambda message: message.type == "error" and watch.errors.append(message.text))
    page.on("pageerror", lambda error: watch.errors.append(f"uncaught: {error}"))
    yield Browse(page=page, base_url=live_server.url, watch=watch)
    context.close()
