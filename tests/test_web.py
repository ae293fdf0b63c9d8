import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import select, text

from sigdesk.db import write_lock
from sigdesk.models import Setting
from sigdesk.web import db_session, writing


def test_a_views_write_waits_for_a_background_writer_instead_of_failing(app):
    database = app.extensions["sigdesk"].database
    with app.test_request_context("/"):
        session = db_session()
        session.scalar(select(Setting.key).limit(1))  # the request has read: its snapshot is open
        background = database.writer()
        background.execute(text("CREATE TABLE IF NOT EXISTS scratch (n INTEGER)"))  # holds SQLite's write lock
        release = threading.Timer(0.3, lambda: (background.commit(), background.close()))
        release.start()
        with writing() as writer:
            writer.execute(text("INSERT INTO scratch (n) VALUES (1)"))
        release.join()
        assert db_session().scalar(text("SELECT count(*) FROM scratch")) == 1


def test_a_write_decides_on_rows_as_they_are_now_not_as_the_request_first_read_them(app):
    database = app.extensions["sigdesk"].database
    with database.session() as session:
        session.add(Setting(key="general.business_name", value="Old", is_secret=False))
    with app.test_request_context("/"):
        row = db_session().get(Setting, "general.business_name")
        assert row.value == "Old"
        with database.session() as background:
            background.get(Setting, "general.business_name").value = "New"
        with writing():
            assert row.value == "New"


def test_a_failed_write_is_rolled_back(app):
    with app.test_request_context("/"):
        db_session().execute(text("CREATE TABLE scratch (n INTEGER)"))
        db_session().commit()
        try:
            with writing() as writer:
                writer.execute(text("INSERT INTO scratch (n) VALUES (1)"))
                raise ValueError("the view changed its mind")
        except ValueError:
            pass
        assert db_session().scalar(text("SELECT count(*) FROM scratch")) == 0


@contextmanager
def background_writer(app) -> Iterator[list[int]]:
    """Commits small writes in a tight loop, the way the media fetcher and webhook ingest do."""
    database = app.extensions["sigdesk"].database
    with database.session() as session:
        session.execute(text("CREATE TABLE IF NOT EXISTS scratch (n INTEGER)"))
    stop = threading.Event()
    commits = [0]

    def run() -> None:
        while not stop.is_set():
            with write_lock(database.engine):
                session = database.writer()
                try:
                    session.execute(text("INSERT INTO scratch (n) VALUES (1)"))
                    session.commit()
                finally:
                    session.close()
            commits[0] += 1
            time.sleep(0.0005)  # between its writes, like a real writer; a tight re-lock would starve the views

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield commits
    finally:
        stop.set()
        thread.join()


def test_logins_and_settings_changes_succeed_while_a_background_writer_commits(app, auth, client):
    with background_writer(app) as commits:
        owner = auth.setup_owner()
        for _ in range(4):
            auth.logout()
            response = auth.login(owner)
            assert response.status_code == 302 and response.headers["Location"] == "/", response.get_data(as_text=True)
            response = auth.post(
                "/admin/settings",
                {"general.business_name": f"Bakery {commits[0]}", "server.allowed_networks": "127.0.0.1/32"},
                form_page="/admin/settings",
            )
            assert response.status_code == 302, response.get_data(as_text=True)
            response = auth.post("/account/tokens", {"name": "CI"}, form_page="/account/")
            assert response.status_code == 200 and "sdk_" in response.get_data(as_text=True)
            response = auth.post("/admin/inbound/mode", {"mode": "direct"}, form_page="/admin/inbound/")
            assert response.status_code == 302, response.get_data(as_text=True)
    assert commits[0] > 10
