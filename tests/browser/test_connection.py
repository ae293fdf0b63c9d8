"""Settings → Connection in Chromium: connecting with a token against the fake Graph API, and the "Connected to"
sentences reading as one sentence at desktop and phone width. Screenshots go to test-artifacts/."""

from __future__ import annotations

import pytest

from sigdesk.settings import services as settings
from tests.browser.conftest import DESKTOP, PHONE, Browse
from tests.browser.test_auth_flow import set_up_owner
from tests.fakes.graph import TOKEN

pytestmark = pytest.mark.browser

# Each line fragment of each text node inside the box, in reading order: [left, top, right, bottom].
FRAGMENTS = """(selector) => {
  const box = document.querySelector(selector);
  const walker = document.createTreeWalker(box, NodeFilter.SHOW_TEXT);
  const out = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.textContent.trim()) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    for (const r of range.getClientRects()) if (r.width > 0) out.push([r.left, r.top, r.right, r.bottom]);
  }
  return out;
}"""


def assert_reads_as_one_sentence(browse: Browse, selector: str) -> None:
    """Text flows like a sentence: each piece goes on along the same line (a space apart, not a column gap)
    or starts a new line lower down at the left edge; it never jumps up and sideways into a new column."""
    fragments = browse.page.evaluate(FRAGMENTS, selector)
    assert len(fragments) >= 3, fragments
    edge = fragments[0][0]
    for before, after in zip(fragments, fragments[1:]):
        if abs(after[1] - before[1]) < 2:
            assert -1 <= after[0] - before[2] < 6, f"{selector}: a column gap inside the sentence {fragments}"
        else:
            assert after[1] > before[1], f"{selector}: the sentence goes back up, into a new column {fragments}"
            assert abs(after[0] - edge) < 2, f"{selector}: a new line does not start at the left edge {fragments}"


def test_the_connected_box_is_one_sentence_on_desktop_and_phone(browse: Browse, app, fake_graph):
    set_up_owner(browse)
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        settings.set_text(session, state.cipher, "whatsapp.graph_base_url", fake_graph.url)
    page = browse.page
    browse.goto("/admin/whatsapp/")
    page.fill("input[name='whatsapp.access_token']", TOKEN)
    page.fill("input[name='whatsapp.app_secret']", "app-secret-0123456789")
    with page.expect_navigation():
        page.click("#find-numbers")
    page.locator("#connected").wait_for()
    with page.expect_navigation():
        page.click("#test-connection")
    page.locator("#connection-result").wait_for()
    for size, name in ((DESKTOP, "connection-connected"), (PHONE, "phone-connection-connected")):
        page.set_viewport_size(size)
        assert_reads_as_one_sentence(browse, "#connection-result")
        browse.screenshot(name)
    browse.goto("/admin/whatsapp/")
    with page.expect_navigation():
        page.click("#find-numbers")  # the saved token is used when the field is left blank
    page.locator("#connected").wait_for()
    for size in (DESKTOP, PHONE):
        page.set_viewport_size(size)
        assert_reads_as_one_sentence(browse, "#connected")
    browse.screenshot("phone-connection-found")
    browse.watch.assert_clean()
