import pytest
from sqlalchemy import text

from sigdesk.config import ConfigError
from sigdesk.db import Database, parse_url, write_lock
from sigdesk.models import User


def test_malformed_database_url_is_a_clear_error():
    with pytest.raises(ConfigError, match="malformed"):
        Database("not a url at all")


def test_unsupported_database_is_named():
    with pytest.raises(ConfigError, match="Unsupported database 'postgresql'"):
        Database("postgresql://localhost/x")


def test_mysql_urls_get_pymysql_and_utf8mb4():
    url = parse_url("mysql://root@127.0.0.1:3306/test")
    assert url.drivername == "mysql+pymysql"
    assert url.query["charset"] == "utf8mb4"


def test_sqlite_runs_in_wal_mode_with_foreign_keys(app):
    engine = app.extensions["sigdesk"].database.engine
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 30000


def test_sqlite_file_is_private_to_its_owner(app, config):
    path = config.data_dir / "sigdesk.db"
    assert path.stat().st_mode & 0o077 == 0


@pytest.mark.database
def test_emoji_and_non_latin_text_round_trip(app):
    database = app.extensions["sigdesk"].database
    name = "Zoë 🙂 عربى 中文 👩‍👩‍👧"
    with database.session() as session:
        session.add(User(email="emoji@example.com", name=name, role="agent", password_hash="x"))
    with database.session() as session:
        stored = session.query(User).filter_by(email="emoji@example.com").one()
        assert stored.name == name


def test_every_writer_to_one_sqlite_database_queues_on_the_same_lock(app):
    database = app.extensions["sigdesk"].database
    if database.engine.dialect.name != "sqlite":
        pytest.skip("MySQL locks rows; there is no process-wide write lock")
    reader, writer = database.sessionmaker(), database.writer()
    with database.writer_engine.connect() as connection:
        locks = {
            id(write_lock(database.engine)),
            id(write_lock(database.writer_engine)),
            id(write_lock(reader)),
            id(write_lock(writer)),
            id(write_lock(connection)),
        }
    reader.close()
    writer.close()
    assert len(locks) == 1
    assert write_lock(Database("sqlite://").engine) is not write_lock(database.engine)
