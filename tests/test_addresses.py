"""Addresses SigDesk sends a secret to: never a link-local or metadata one, however they are set."""

import pytest
from click.testing import CliRunner

from sigdesk.addresses import check_outbound_url
from sigdesk.cli import main
from sigdesk.errors import UserError


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data",
        "http://[fe80::1]:8080",
        "http://[::ffff:169.254.169.254]/",
        "http://metadata.google.internal/computeMetadata",
        "http://[fd00:ec2::254]/",
        "http://0.0.0.0:80",
        "ftp://graph.example.com",
        "http://user:pw@graph.example.com",
        "graph.facebook.com",
    ],
)
def test_metadata_link_local_and_odd_addresses_are_refused_naming_the_field(url):
    with pytest.raises(UserError) as refused:
        check_outbound_url(url, "graph_base_url", resolve=False)
    assert refused.value.field == "graph_base_url" and str(refused.value).startswith("graph_base_url: ")


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/", "https://graph.facebook.com", "http://10.0.0.5:3128"])
def test_loopback_and_office_addresses_stay_allowed_for_test_doubles_and_proxies(url):
    assert check_outbound_url(url, "graph_base_url", resolve=False) == url.rstrip("/")


def test_a_name_is_checked_by_what_it_resolves_to():
    assert check_outbound_url("http://localhost:9", "relay_url") == "http://localhost:9"


def test_the_cli_refuses_a_metadata_graph_or_relay_address_and_keeps_the_old_one(tmp_path, monkeypatch):
    monkeypatch.delenv("SIGDESK_DATABASE_URL", raising=False)

    def cli(*args):
        return CliRunner().invoke(main, ["--data-dir", str(tmp_path / "data"), *args])

    assert cli("db", "upgrade").exit_code == 0
    assert cli("settings", "set", "whatsapp.graph_base_url", "http://127.0.0.1:9").exit_code == 0
    for key in ("whatsapp.graph_base_url", "relay.url"):
        refused = cli("settings", "set", key, "http://169.254.169.254")
        assert refused.exit_code != 0 and "link-local or metadata" in refused.output
    assert cli("settings", "get", "whatsapp.graph_base_url").output.strip().endswith("http://127.0.0.1:9")
