"""Export files hold personal data: written 0600 (a private 0700 folder in the data dir for downloads, never the
shared /tmp), gone once sent or when a download fails, and leftovers removed at start. Downloads go through a
real waitress server, so a cut connection is a real one."""

from __future__ import annotations

import io
import os
import stat
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from sigdesk.actor import Actor
from sigdesk.app import create_app
from sigdesk.exports import personal
from sigdesk.exports.services import run
from sigdesk.models import Contact
from tests import factories
from tests.commanding import cli
from tests.conftest import PASSWORD, csrf_from

pytestmark = pytest.mark.database
PRIVATE_DIR = "exports"  # in the data dir, as the README says


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The umask most systems run with, which leaves new files readable by everyone (0644)."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def temp_exports() -> set[str]:
    return {name for name in os.listdir(tempfile.gettempdir()) if name.startswith("sigdesk-")}


def many_contacts(app, count: int = 3000) -> None:
    with app.extensions["sigdesk"].database.session() as session:
        for n in range(count):
            factories.contact(session, f"44770{n:07d}", name=f"Customer {n}")


@pytest.fixture
def browser_like(app, owner, live_server) -> Iterator[httpx.Client]:
    """A signed-in session on the real server, as a browser holds it."""
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        page = client.get("/login").text
        signed = client.post("/login", data={"csrf_token": csrf_from(page), "email": owner.email, "password": PASSWORD})
        assert signed.status_code == 302, signed.text
        yield client


def form_token(client: httpx.Client) -> str:
    return csrf_from(client.get("/admin/exports/").text)


def private_folder(app) -> Path:
    return app.extensions["sigdesk"].config.data_dir / PRIVATE_DIR


def test_every_export_file_is_readable_by_its_owner_only(app, tmp_path, usual_umask):
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        who = factories.contact(session, "447700900001", name="Rosa")
        factories.message(session, factories.conversation(session, who))
    run(state.database, Actor.system("cli"), "contacts", "csv", tmp_path / "contacts.csv")
    run(state.database, Actor.system("cli"), "all", "json", tmp_path / "all.zip")
    personal.download_contact(state.database, Actor.system("cli"), who.id, tmp_path / "rosa.zip", tmp_path)
    cli(app, "export", "--what", "messages", "--format", "json", "--out", str(tmp_path / "messages.jsonl"))
    written = sorted(tmp_path.glob("*.*"))
    assert [path.name for path in written] == ["all.zip", "contacts.csv", "messages.jsonl", "rosa.zip"]
    assert {path.name: mode(path) for path in written} == {path.name: 0o600 for path in written}


def test_downloads_are_made_in_a_private_folder_in_the_data_dir_and_gone_once_sent(app, browser_like, usual_umask):
    many_contacts(app, 50)
    with app.extensions["sigdesk"].database.session() as session:
        contact_id = session.scalars(select(Contact.id).order_by(Contact.id)).first()
    in_tmp = temp_exports()
    token = form_token(browser_like)
    answers = [
        browser_like.post("/admin/exports/download", data={"csrf_token": token, "what": "contacts", "format": "csv"}),
        browser_like.post("/admin/exports/download", data={"csrf_token": token, "what": "all", "format": "json"}),
        browser_like.post("/admin/exports/contact", data={"csrf_token": token, "contact_id": str(contact_id)}),
    ]
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert answers[0].text.count("\n") == 51 and answers[0].headers["Cache-Control"] == "no-store"
    with zipfile.ZipFile(io.BytesIO(answers[2].content)) as archive:
        assert "contact.json" in archive.namelist()
    folder = private_folder(app)
    assert folder.parent == app.extensions["sigdesk"].config.data_dir and mode(folder) == 0o700
    assert list(folder.iterdir()) == []
    assert temp_exports() <= in_tmp


def wait_until_empty(folder: Path, seconds: float = 10) -> list[Path]:
    deadline = time.monotonic() + seconds
    while (left := list(folder.iterdir())) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def test_a_download_cut_short_or_refused_leaves_nothing_behind(app, browser_like):
    many_contacts(app)
    in_tmp = temp_exports()
    token = form_token(browser_like)
    with browser_like.stream(
        "POST", "/admin/exports/download", data={"csrf_token": token, "what": "contacts", "format": "json"}
    ) as response:
        assert response.status_code == 200
        first = next(response.iter_raw(1024))
        assert first.startswith(b"{")
    # the client went away after the first kilobyte; the file went with the download
    assert wait_until_empty(private_folder(app)) == []
    refused = browser_like.post(
        "/admin/exports/download", data={"csrf_token": form_token(browser_like), "what": "invoices", "format": "csv"}
    )
    missing = browser_like.post(
        "/admin/exports/contact", data={"csrf_token": form_token(browser_like), "contact_id": "99999999"}
    )
    assert (refused.status_code, missing.status_code) == (400, 404)
    assert list(private_folder(app).iterdir()) == []
    assert temp_exports() <= in_tmp


def test_leftover_downloads_are_removed_at_start(config):
    folder = config.data_dir / PRIVATE_DIR
    folder.mkdir(parents=True)
    folder.chmod(0o755)
    (folder / "download-cut-short.zip").write_bytes(b"PK personal data")
    (folder / "download-old.csv.partial").write_text("name\nRosa\n")
    app = create_app(config)
    try:
        assert list(folder.iterdir()) == [] and mode(folder) == 0o700
    finally:
        app.extensions["sigdesk"].database.dispose()
