"""Relay fixtures: the relay's own database (beside SigDesk's), its WSGI app, and a real waitress thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy.engine import make_url
from waitress import wasyncore
from waitress.server import create_server
from werkzeug.test import Client

from sigdesk.relay import installs
from sigdesk.relay.schema import open_relay_database
from sigdesk.relay.server import RelayApp
from sigdesk.relay.store import RelayStore
from tests.mysql import drop_database, recreate_database


@pytest.fixture
def relay_db_url(database_url: str, tmp_path) -> Iterator[str]:
    """The relay's own database: a file beside SigDesk's, or on MariaDB a database beside the test one."""
    if database_url.startswith("sqlite"):
        (tmp_path / "relay").mkdir(exist_ok=True)
        yield f"sqlite:///{tmp_path / 'relay' / 'relay.db'}"
        return
    url = make_url(database_url)
    relay_url = url.set(database=f"{url.database}_relay").render_as_string(hide_password=False)
    recreate_database(relay_url)
    yield relay_url
    drop_database(relay_url)


@pytest.fixture
def relay_store(relay_db_url: str) -> Iterator[RelayStore]:
    store = RelayStore(open_relay_database(relay_db_url))
    yield store
    store.close()


@pytest.fixture
def relay_app(relay_store: RelayStore) -> RelayApp:
    return RelayApp(relay_store, max_body_bytes=256 * 1024, threads=8)


@pytest.fixture
def relay_client(relay_app: RelayApp) -> Client:
    return Client(relay_app)


@dataclass
class Paired:
    credentials: installs.Credentials
    token: str

    @property
    def hook(self) -> str:
        return f"/hook/{self.credentials.hook_path}"

    @property
    def uid(self) -> str:
        return self.credentials.install.uid

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def make_install(relay_store: RelayStore):
    """Add an install and pair it, the way `add-install` and the desktop's pairing do."""

    def make(name: str = "Rosa's Bakery", pair: bool = True, **quota) -> Paired:
        with relay_store.database.session() as session:
            credentials = installs.create_install(session, name, **quota)
        token = ""
        if pair:
            with relay_store.database.session() as session:
                _install, token = installs.pair(session, credentials.pairing_code)
        return Paired(credentials, token)

    return make


class RelayThread:
    """The relay app under a real waitress server on a free loopback port."""

    def __init__(self, app: RelayApp) -> None:
        self.server = create_server(
            app, host="127.0.0.1", port=0, threads=8, max_request_body_size=app.max_body_bytes + 65536
        )
        self.url = f"http://127.0.0.1:{self.server.effective_port}"
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.stopped = threading.Event()

    def _run(self) -> None:
        try:
            self.server.run()
        except OSError:
            pass
        finally:
            self.stopped.set()

    def start(self) -> "RelayThread":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.task_dispatcher.shutdown(timeout=1)
        self.server.trigger.pull_trigger(lambda: wasyncore.close_all(self.server._map))
        self.stopped.wait(timeout=10)


@pytest.fixture
def relay_server(relay_app: RelayApp) -> Iterator[RelayThread]:
    server = RelayThread(relay_app).start()
    yield server
    server.stop()
