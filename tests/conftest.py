"""Shared fixtures: a real database (SQLite file, or MariaDB), the app, clients and users."""

from __future__ import annotations

import os
import re
import shutil
import uuid
from datetime import datetime
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from flask import Flask
from jinja2.bccache import BytecodeCache, Bucket
from werkzeug.routing.rules import Rule

from sigdesk.app import create_app
from sigdesk.auth import services as accounts
from sigdesk.config import Config
from sigdesk.db import Base, Database, upgrade_to_head
from sigdesk.server import ServerThread
from tests.mysql import drop_database, recreate_database

_compile = Rule.compile
_compiled: dict[tuple, tuple] = {}


def _shared_compile(rule: Rule) -> None:
    """Werkzeug parses each URL rule of each app and writes and compiles Python source to build its URLs:
    most of the time a test spends creating its app. What it makes depends only on the rule, its defaults
    and the map's settings, the same in every test's app, so each test process does it once per rule.
    Everything compile() sets is set again from the first one (its converters keep a reference to the
    first map, which none of them reads)."""
    rule_map = rule.map
    try:
        key = (
            rule.rule,
            rule.host if rule_map.host_matching else rule.subdomain,
            rule.merge_slashes,
            tuple(sorted((rule.defaults or {}).items())),
            rule_map.host_matching,
            tuple(sorted((name, id(kind)) for name, kind in rule_map.converters.items())),
        )
        hash(key)
    except TypeError:  # a default that cannot be a key
        _compile(rule)
        return
    made = _compiled.get(key)
    if made is None:
        _compile(rule)
        made = _compiled[key] = (
            rule._parts,
            rule._trace,
            rule._converters,
            rule._build.__func__,
            rule._build_unknown.__func__,
            frozenset(rule.arguments),
        )
    parts, trace, converters, build, build_unknown, arguments = made
    rule._parts, rule._trace, rule._converters = list(parts), list(trace), dict(converters)
    rule.arguments = set(arguments)  # parsing adds the rule's variables to those of its defaults
    rule._build, rule._build_unknown = build.__get__(rule, None), build_unknown.__get__(rule, None)


Rule.compile = _shared_compile


class _SharedTemplates(BytecodeCache):
    """Each test's app has its own Jinja environment, which parsed and compiled every template it
    rendered again: a third of the time of a test that renders pages. Jinja's own bytecode cache, kept in
    memory for the test process, compiles each template once; a changed source has another checksum."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        if (code := self._code.get(bucket.key)) is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


Flask.jinja_options = {**Flask.jinja_options, "bytecode_cache": _SharedTemplates()}

MYSQL_ENV = "SIGDESK_TEST_DATABASE_URL"
BACKENDS = ["sqlite"] + (["mysql"] if os.environ.get(MYSQL_ENV) else [])
PASSWORD = "correct horse battery"
SHARED_DIR = Path(__file__).resolve().parents[2] / "shared"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database_url" in metafunc.fixturenames and metafunc.definition.get_closest_marker("database"):
        metafunc.parametrize("database_url", BACKENDS, indirect=True)


@pytest.fixture(scope="session")
def mysql_url(worker_id: str) -> Iterator[str]:
    """A database of this test worker's own on the MariaDB server, emptied before each test."""
    tag = re.sub(r"[^a-z0-9]", "", os.environ.get("SIGDESK_TEST_DB_TAG", "").lower())  # parallel runs on one server
    name = f"sigdesk_test_{tag}{re.sub(r'[^a-z0-9]', '', worker_id)}"
    url = make_url(os.environ[MYSQL_ENV]).set(database=name).render_as_string(hide_password=False)
    recreate_database(url)
    yield url
    emptier = _emptiers.pop(url, None)
    if emptier is not None:
        emptier.dispose()
    drop_database(url)


_emptiers: dict[str, Engine] = {}


def empty_mysql(url: str) -> None:
    """Every table emptied, in one transaction. One question finds the tables with rows (most tests write
    to few), and the connection is kept for the next test: a new one costs 50 ms on a slow machine."""
    engine = _emptiers.get(url) or _emptiers.setdefault(url, create_engine(url, pool_size=1))
    with engine.begin() as connection:
        existing = {row[0] for row in connection.execute(text("SHOW TABLES"))}
        tables = [table.name for table in reversed(Base.metadata.sorted_tables) if table.name in existing]
        probe = " UNION ALL ".join(f"(SELECT '{name}' FROM `{name}` LIMIT 1)" for name in tables)
        filled = set(connection.execute(text(probe)).scalars()) if tables else set()
        connection.execute(text("SET FOREIGN_KEY_CHECKS=0"))
        for name in tables:
            if name in filled:
                connection.execute(text(f"DELETE FROM `{name}`"))
        connection.execute(text("SET FOREIGN_KEY_CHECKS=1"))


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    backend = getattr(request, "param", "sqlite")
    if backend == "mysql":
        url = request.getfixturevalue("mysql_url")
        empty_mysql(url)
        return url
    return f"sqlite:///{tmp_path / 'data' / 'sigdesk.db'}"


@pytest.fixture
def config(tmp_path: Path, database_url: str) -> Config:
    return Config(data_dir=tmp_path / "data", database_url=database_url, bcrypt_rounds=4, testing=True)


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite database migrated to head once per test process. Migrating takes a third of a second and most
    tests start an app on a new database, so each begins from a copy of this one instead (the app still runs
    its upgrade check, and tests of the migrations themselves build their own databases)."""
    path = tmp_path_factory.mktemp("migrated") / "sigdesk.db"
    database = Database(f"sqlite:///{path}")
    try:
        upgrade_to_head(database, Config(data_dir=path.parent, database_url=database.url).migrations_dir)
        with database.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        database.dispose()
    return path


@pytest.fixture
def app(config: Config, migrated_sqlite: Path):
    if config.database_url.startswith("sqlite:///"):
        target = Path(config.database_url.removeprefix("sqlite:///"))
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            shutil.copyfile(migrated_sqlite, target)
            target.chmod(0o600)
    application = create_app(config)
    yield application
    application.extensions["sigdesk"].database.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner():
    from click.testing import CliRunner

    return CliRunner()


@dataclass
class Person:
    email: str
    name: str
    role: str
    password: str = PASSWORD
    totp_secret: str | None = None

    def totp(self, step_offset: int = 0) -> str:
        """A code for the current 30 s step, or a neighbouring one (SigDesk accepts one step of drift)."""
        totp = pyotp.TOTP(self.totp_secret)
        return totp.generate_otp(totp.timecode(datetime.now()) + step_offset)


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "page has no CSRF token"
    return match.group(1)


class Auth:
    """Drives the app the way a person does: forms with their CSRF tokens."""

    def __init__(self, app, client) -> None:
        self.app = app
        self.client = client

    def csrf(self, path: str = "/login") -> str:
        return csrf_from(self.client.get(path).get_data(as_text=True))

    def post(self, path: str, data: dict | None = None, form_page: str | None = None, **kwargs):
        payload = dict(data or {})
        payload.setdefault("csrf_token", self.csrf(form_page or path))
        return self.client.post(path, data=payload, **kwargs)

    def setup_owner(self, email: str = "owner@example.com", name: str = "Olive Owner") -> Person:
        response = self.post(
            "/setup", {"email": email, "name": name, "password": PASSWORD, "password_confirm": PASSWORD}
        )
        assert response.status_code == 302, response.get_data(as_text=True)
        return Person(email, name, "owner")

    def create_user(self, role: str, email: str | None = None, name: str | None = None) -> Person:
        email = email or f"{role}-{uuid.uuid4().hex[:6]}@example.com"
        name = name or f"{role.title()} {email[:4]}"
        with self.app.extensions["sigdesk"].database.session() as session:
            accounts.create_user(session, email, name, role, PASSWORD, rounds=4)
        return Person(email, name, role)

    def login(self, person: Person, code: str | None = None):
        response = self.post("/login", {"email": person.email, "password": person.password})
        if code is not None or (response.status_code == 302 and "/login/verify" in response.headers["Location"]):
            response = self.post("/login/verify", {"code": code or person.totp(1)}, form_page="/login/verify")
        return response

    def logout(self):
        return self.post("/logout", form_page="/account/")

    def enrol_totp(self, person: Person) -> list[str]:
        page = self.client.get("/account/two-factor").get_data(as_text=True)
        person.totp_secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page).group(1)
        response = self.client.post("/account/two-factor", data={"code": person.totp(), "csrf_token": csrf_from(page)})
        assert response.status_code == 200, response.get_data(as_text=True)
        return re.findall(r"<code>([0-9A-F]{5}-[0-9A-F]{5})</code>", response.get_data(as_text=True))


@pytest.fixture
def auth(app, client) -> Auth:
    return Auth(app, client)


@pytest.fixture
def owner(auth) -> Person:
    """An owner who has completed first-run setup and is signed in."""
    return auth.setup_owner()


@pytest.fixture
def live_server(app) -> Iterator[ServerThread]:
    """The app under a real waitress server on a free loopback port."""
    server = ServerThread(app).start()
    yield server
    server.stop()


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED_DIR.is_dir():
        pytest.skip(f"shared material not present at {SHARED_DIR}")
    return SHARED_DIR


@pytest.fixture
def fake_graph():
    """Meta's Graph API, faked over real HTTP on a loopback port."""
    from tests.fakes.graph import FakeGraph

    fake = FakeGraph().start()
    yield fake
    fake.stop()


@pytest.fixture
def api(app, owner, live_server, fake_graph):
    """The owner's API token against the running server (and its worker), connected to the fake Graph API."""
    import httpx

    from tests import factories

    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        factories.whatsapp_connection(session, state.cipher, fake_graph.url)
        token = accounts.create_api_token(session, accounts.find_user(session, owner.email), "e2e")
    with httpx.Client(base_url=f"{live_server.url}/api/v1", headers={"Authorization": f"Bearer {token}"}) as client:
        client.live_server = live_server
        yield client
