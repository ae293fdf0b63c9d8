import json

import pytest
from click.testing import CliRunner

from sigdesk.cli import main

PUBLIC = "https://relay.example.com"


@pytest.fixture
def relay_cli(tmp_path, monkeypatch):
    for name in ("SIGDESK_DATABASE_URL", "SIGDESK_RELAY_DATABASE_URL", "SIGDESK_RELAY_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()

    def run(*args, input=None):
        return runner.invoke(main, ["--data-dir", str(tmp_path / "data"), "relay", *args], input=input)

    return run


def test_add_install_prints_the_webhook_url_verify_token_and_pairing_code(relay_cli):
    result = relay_cli("add-install", "--name", "Rosa's Bakery", "--public-url", PUBLIC + "/")
    assert result.exit_code == 0, result.output
    assert f"Callback URL:  {PUBLIC}/hook/" in result.output
    assert "Verify token:" in result.output and "Pairing code:" in result.output
    data = json.loads(relay_cli("add-install", "--name", "Other", "--public-url", PUBLIC, "--json").output)
    assert data["webhook_url"].startswith(f"{PUBLIC}/hook/") and len(data["webhook_url"]) > len(PUBLIC) + 30
    assert data["verify_token"] and data["pairing_code"].count("-") == 5


def test_list_rotate_and_revoke(relay_cli):
    relay_cli("add-install", "--name", "Rosa", "--public-url", PUBLIC)
    listed = json.loads(relay_cli("list-installs", "--json").output)
    assert [(row["name"], row["state"]) for row in listed] == [("Rosa", "waiting for pairing")]
    rotated = relay_cli("rotate-token", "--name", "Rosa", "--public-url", PUBLIC, "--json")
    assert rotated.exit_code == 0 and json.loads(rotated.output)["verify_token"] is None
    assert relay_cli("revoke-install", "--name", "Rosa", "--yes").exit_code == 0
    assert "[revoked]" in relay_cli("list-installs").output


def test_bad_input_gives_one_line_and_a_non_zero_exit(relay_cli):
    relay_cli("add-install", "--name", "Rosa", "--public-url", PUBLIC)
    duplicate = relay_cli("add-install", "--name", "Rosa", "--public-url", PUBLIC)
    assert duplicate.exit_code == 1 and "already exists" in duplicate.output
    missing = relay_cli("revoke-install", "--name", "Nobody", "--yes")
    assert missing.exit_code == 1 and "No install named" in missing.output
    bad_url = relay_cli("add-install", "--name", "X", "--public-url", "relay.example.com")
    assert bad_url.exit_code == 2 and "--public-url" in bad_url.output
    bad_db = relay_cli("list-installs", "--db", "postgresql://nowhere/x")
    assert bad_db.exit_code == 1 and "Unsupported database" in bad_db.output
    unreachable = relay_cli("pair", "--url", "http://127.0.0.1:9", "--code", "X")
    assert unreachable.exit_code == 1 and "Pairing failed" in unreachable.output
    for result in (duplicate, missing, bad_db, unreachable):
        assert "Traceback" not in result.output
