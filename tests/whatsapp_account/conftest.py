"""The relay fixtures, so Meta's handshake can reach a real relay on a loopback port."""

from tests.relay.conftest import make_install, relay_app, relay_db_url, relay_server, relay_store  # noqa: F401
