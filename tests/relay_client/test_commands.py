"""Pairing with a relay is one command: the Inbound page and `sigdesk relay pair` audit it alike and record
relay.paired with the relay's host (the stored credentials go through the settings command, keys only)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.commanding import audit, cli, events, everything_recorded

pytestmark = pytest.mark.database


def test_the_inbound_page_and_the_cli_pair_the_same_way(app, auth, owner, relay_server, make_install):
    first, second = make_install("Front desk", pair=False), make_install("Back office", pair=False)
    page = auth.post(
        "/admin/inbound/pair",
        {"relay_url": relay_server.url, "code": first.credentials.pairing_code},
        form_page="/admin/inbound/",
    )
    assert page.status_code == 302
    cli(app, "relay", "pair", "--url", relay_server.url, "--code", second.credentials.pairing_code)

    paired = audit(app, "relay.paired")
    assert [(entry.actor, entry.channel, entry.detail) for entry in paired] == [
        (owner.email, "web", {"relay": relay_server.url}),
        (None, "cli", {"relay": relay_server.url}),
    ]
    host = urlsplit(relay_server.url).hostname
    assert events(app, "relay.paired") == [{"relay_host": host}, {"relay_host": host}]
    assert {"relay.token", "relay.install"} <= set(events(app, "settings.changed")[-1]["keys"])
    assert "sdr_" not in everything_recorded(app)


def test_the_cli_refuses_a_link_local_relay_address_before_sending_the_code(app):
    from click.testing import CliRunner

    from sigdesk.cli import main

    config = app.extensions["sigdesk"].config
    where = ["--data-dir", str(config.data_dir), "--database-url", config.database_url]
    for address in ("http://169.254.169.254", "http://metadata.google.internal"):
        result = CliRunner().invoke(main, [*where, "relay", "pair", "--url", address, "--code", "ABCD-EFGH"])
        assert result.exit_code == 2
        assert "SigDesk will not send secrets there" in result.output
    assert audit(app, "relay.paired") == []
