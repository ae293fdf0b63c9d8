import threading

from sqlalchemy import select, text

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
