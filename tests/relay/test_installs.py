import pytest
from sqlalchemy import select

from sigdesk.relay import installs
from sigdesk.relay.models import Install


def test_secrets_are_kept_only_as_hashes(relay_store):
    with relay_store.database.session() as session:
        credentials = installs.create_install(session, "Rosa's Bakery")
        _install, token = installs.pair(session, credentials.pairing_code)
    with relay_store.database.session() as session:
        row = session.scalars(select(Install)).one()
        stored = " ".join(str(value) for value in row.__dict__.values())
    for secret in (credentials.verify_token, credentials.pairing_code, token):
        assert secret not in stored
    assert row.token_hash == installs.digest(token) and row.pairing_hash is None


def test_names_are_unique_and_required(relay_store):
    with relay_store.database.session() as session:
        installs.create_install(session, "  Rosa's   Bakery ")
        with pytest.raises(installs.RelayError, match="already exists"):
            installs.create_install(session, "Rosa's Bakery")
        with pytest.raises(installs.RelayError, match="name"):
            installs.create_install(session, "   ")


def test_rotating_ends_the_old_token_and_gives_a_new_pairing_code(relay_store):
    with relay_store.database.session() as session:
        credentials = installs.create_install(session, "Rosa")
        _install, old_token = installs.pair(session, credentials.pairing_code)
        rotated = installs.rotate_tokens(session, "Rosa", verify_token=True)
        assert rotated.verify_token and rotated.verify_token != credentials.verify_token
        assert rotated.hook_path == credentials.hook_path
    assert relay_store.reader(old_token) is None
    with relay_store.database.session() as session:
        _install, new_token = installs.pair(session, rotated.pairing_code)
    assert relay_store.reader(new_token).name == "Rosa"


def test_revoked_install_cannot_pair_or_be_rotated(relay_store):
    with relay_store.database.session() as session:
        credentials = installs.create_install(session, "Gone")
        installs.revoke_install(session, "Gone")
        with pytest.raises(installs.PairingRefused):
            installs.pair(session, credentials.pairing_code)
        with pytest.raises(installs.RelayError, match="revoked"):
            installs.rotate_tokens(session, "Gone")
        with pytest.raises(installs.RelayError, match="already revoked"):
            installs.revoke_install(session, "Gone")
        with pytest.raises(installs.RelayError, match="No install named"):
            installs.find_install(session, "Nobody")
