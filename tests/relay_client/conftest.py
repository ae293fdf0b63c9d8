"""The desktop's side talks to a real relay: the relay's fixtures (its database, app, waitress thread, installs)."""

from tests.relay.conftest import (  # noqa: F401
    make_install,
    relay_app,
    relay_client,
    relay_db_url,
    relay_server,
    relay_store,
)
