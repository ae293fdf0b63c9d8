"""Addresses SigDesk sends a secret to: never a link-local or metadata one, however they are set."""

import ipaddress
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner

from sigdesk import addresses
from sigdesk.addresses import check_outbound_url
from sigdesk.cli import main
from sigdesk.errors import UserError
from sigdesk.relay_client.client import RelayClient, RelayRefused
from sigdesk.security import _ip_allowed
from sigdesk.whatsapp.client import GraphClient
from sigdesk.whatsapp.errors import GraphError
from tests.fakes.dns import FakeDNS
from tests.fakes.graph import PHONE_NUMBER_ID, TOKEN


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data",
        "http://[fe80::1]:8080",
        "http://[::ffff:169.254.169.254]/",
        "http://metadata.google.internal/computeMetadata",
        "http://[fd00:ec2::254]/",
        "http://0.0.0.0:80",
        "http://100.100.100.200/latest/meta-data",  # Alibaba Cloud's metadata service
        "http://[::ffff:100.100.100.200]/",
        "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 to 169.254.169.254
        "http://[64:ff9b::6464:64c8]/",  # NAT64 to 100.100.100.200
        "http://[2002:a9fe:a9fe::1]/",  # 6to4 from 169.254.169.254
        "ftp://graph.example.com",
        "http://user:pw@graph.example.com",
        "graph.facebook.com",
    ],
)
def test_metadata_link_local_and_odd_addresses_are_refused_naming_the_field(url):
    with pytest.raises(UserError) as refused:
        check_outbound_url(url, "graph_base_url", resolve=False)
    assert refused.value.field == "graph_base_url" and str(refused.value).startswith("graph_base_url: ")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/",
        "https://graph.facebook.com",
        "http://10.0.0.5:3128",
        "http://100.100.100.1",  # the rest of the carrier-grade NAT range (Tailscale) is an office network
        "https://[64:ff9b::808:808]",  # a public address through NAT64, as an IPv6-only network with DNS64 sees it
        "http://[2002:a00:5::1]",  # 6to4 from 10.0.0.5
    ],
)
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


def test_one_helper_reads_an_ipv4_address_written_the_ipv6_way_for_the_allow_list_and_the_guard():
    mapped = ipaddress.ip_address("::ffff:10.0.0.5")
    assert addresses.unmapped(mapped) == ipaddress.ip_address("10.0.0.5")
    assert addresses.unmapped(ipaddress.ip_address("fe80::1")) == ipaddress.ip_address("fe80::1")
    assert _ip_allowed("::ffff:10.0.0.5", (ipaddress.ip_network("10.0.0.0/8"),))


# --- at connection time: what the name points at when the secret is sent, not when it was saved -----------


def rebinding_name(dns: FakeDNS, url: str, name: str) -> str:
    """`url` spelled with a host name that resolved to loopback when it was saved (and checked)."""
    port = urlsplit(url).port
    dns.answer(name, "127.0.0.1")
    return check_outbound_url(f"http://{name}:{port}", "whatsapp.graph_base_url")


@pytest.mark.parametrize("answer", ["169.254.169.254", "100.100.100.200", "64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::1"])
def test_the_graph_token_never_goes_where_the_name_points_by_the_time_it_is_sent(fake_graph, monkeypatch, answer):
    dns = FakeDNS(monkeypatch)
    address = rebinding_name(dns, fake_graph.url, "graph.rebind.test")
    dns.answer("graph.rebind.test", "127.0.0.1", answer)  # the name server now also names a metadata address
    with GraphClient(address, "v21.0", TOKEN, PHONE_NUMBER_ID) as client:
        with pytest.raises(GraphError) as refused:
            client.phone_number_info()
    assert f"points at {answer}" in str(refused.value) and "will not send secrets there" in refused.value.human
    assert fake_graph.requests == [], "not a byte of the request (nor the token) left SigDesk"


def test_the_relay_token_never_goes_where_the_name_points_by_the_time_it_is_sent(fake_graph, monkeypatch):
    dns = FakeDNS(monkeypatch)
    address = rebinding_name(dns, fake_graph.url, "relay.rebind.test")  # the fake records whatever reaches it
    dns.answer("relay.rebind.test", "127.0.0.1", "169.254.169.254")
    with RelayClient(address, token="relay-secret") as client:
        with pytest.raises(RelayRefused, match="points at 169.254.169.254"):
            client.status()
    assert fake_graph.requests == []


def test_a_name_that_still_points_at_loopback_reaches_the_test_double(fake_graph, monkeypatch):
    dns = FakeDNS(monkeypatch)
    address = rebinding_name(dns, fake_graph.url, "graph.stays.test")
    with GraphClient(address, "v21.0", TOKEN, PHONE_NUMBER_ID) as client:
        assert client.phone_number_info()["id"] == PHONE_NUMBER_ID
    assert dns.lookups.count("graph.stays.test") == 2, "looked up once when saved and once to connect, no more"
