import json
import logging
import os
from datetime import datetime, timezone

import pytest
from sqlalchemy import event, select, text

from sigdesk.config import ConfigError
from sigdesk.db import Database, dump_json, mysql_connect_args, parse_url, read_json, update_rows, write_lock
from sigdesk.models import Contact, Template, User
from tests import factories
from tests.conftest import MYSQL_ENV


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


def test_mysql_on_this_machine_skips_tls_and_elsewhere_or_when_asked_keeps_it():
    """pymysql builds a TLS context for each new connection unless told not to (44 ms of CPU each)."""
    assert mysql_connect_args(parse_url("mysql://root@127.0.0.1:3306/x")) == {"ssl_disabled": True}
    assert mysql_connect_args(parse_url("mysql://root@localhost/x")) == {"ssl_disabled": True}
    assert mysql_connect_args(parse_url("mysql://root@[::1]/x")) == {"ssl_disabled": True}
    assert mysql_connect_args(parse_url("mysql://root@127.0.1.1/x")) == {"ssl_disabled": True}
    assert mysql_connect_args(parse_url("mysql://sigdesk:pw@192.168.1.20/x")) == {}
    assert mysql_connect_args(parse_url("mysql://sigdesk:pw@db.office.lan/x")) == {}
    assert mysql_connect_args(parse_url("mysql://root@127.0.0.1/x?ssl_ca=/etc/ca.pem")) == {}


@pytest.mark.skipif(MYSQL_ENV not in os.environ, reason="needs the MariaDB server")
def test_a_new_mariadb_connection_on_this_machine_is_made_without_tls(mysql_url):
    database = Database(mysql_url)
    try:
        with database.engine.connect() as connection:
            assert connection.connection.dbapi_connection.ssl is False
    finally:
        database.dispose()


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


# --- stored JSON columns -------------------------------------------------------------------------


@pytest.mark.database
def test_json_columns_round_trip_compact_utf8_text_with_emoji_and_scripts_kept(app):
    components = [{"type": "BODY", "text": "Grüße 👋 {{1}} — مرحبا, 你好"}, {"type": "FOOTER", "text": None}]
    database = app.extensions["sigdesk"].database
    with database.session() as session:
        session.add(Template(name="greeting", language="de", components=dump_json(components)))
    with database.session() as session:
        stored = session.scalar(select(Template.components))
    assert stored == '[{"type":"BODY","text":"Grüße 👋 {{1}} — مرحبا, 你好"},{"type":"FOOTER","text":null}]'
    assert read_json(stored, list, "templates.components") == components


def test_rows_written_before_in_another_spacing_or_escaping_read_back_the_same():
    value = {"text": "Grüße 👋", "n": [1, 2.5, True, None]}
    for older in (json.dumps(value), json.dumps(value, ensure_ascii=False, indent=1), dump_json(value)):
        assert read_json(older) == value


def test_stored_json_that_does_not_parse_reads_as_empty_and_is_logged_once_by_column_never_by_content(caplog):
    with caplog.at_level(logging.WARNING, logger="sigdesk.db"):
        assert read_json('{"text": "secret body"', dict, "test.broken") == {}
        assert read_json("not json at all", dict, "test.broken") == {}
        assert read_json('["a list"]', dict, "test.shape") == {}
        assert read_json('{"a": 1}', list, "test.shape") == []
        assert read_json("{broken", None, "test.any") is None
    assert [record.getMessage().split()[1] for record in caplog.records] == ["test.broken", "test.shape", "test.any"]
    assert "secret" not in caplog.text and "a list" not in caplog.text


def test_empty_or_null_json_is_no_value_without_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="sigdesk.db"):
        assert read_json(None) == {} and read_json("") == {} and read_json("null", list) == []
        assert read_json(None, None) is None and read_json("0", None) == 0 and read_json(b'{"a":1}') == {"a": 1}
    assert caplog.records == []


# --- one statement for a batch of rows with values of their own -----------------------------------


@pytest.mark.database
def test_update_rows_sets_each_rows_own_values_in_one_statement_and_leaves_the_rest(app):
    database = app.extensions["sigdesk"].database
    table = Contact.__table__
    wrote = datetime(2026, 3, 1, 9, 30, tzinfo=timezone.utc)
    with database.session() as session:
        first, second, third, other = (factories.contact(session, display_name=f"Before {n}") for n in range(4))
        session.commit()
        statements: list[str] = []

        def count(_conn, _cursor, statement, _params, _context, _many) -> None:
            if statement.lstrip().upper().startswith("UPDATE"):
                statements.append(statement)

        event.listen(database.engine, "before_cursor_execute", count)
        try:
            matched = update_rows(
                session,
                table,
                "id",
                [
                    {"id": first.id, "display_name": "Zoë 🙂", "last_inbound_at": wrote},
                    {"id": second.id, "display_name": "Second", "last_inbound_at": None},
                    {"id": third.id, "display_name": "Not this one", "last_inbound_at": wrote},
                    {"id": second.id, "display_name": "Second, given last", "last_inbound_at": None},
                ],
                table.c.id != third.id,
                notes="batch",
            )
        finally:
            event.remove(database.engine, "before_cursor_execute", count)
        session.commit()
        assert matched == 2
        assert len(statements) == 1
    with database.session() as session:
        rows = {
            row.id: row
            for row in session.execute(select(table).where(table.c.id.in_([first.id, second.id, third.id, other.id])))
        }
    assert (rows[first.id].display_name, rows[first.id].last_inbound_at, rows[first.id].notes) == (
        "Zoë 🙂",
        wrote,
        "batch",
    )
    assert (rows[second.id].display_name, rows[second.id].last_inbound_at) == ("Second, given last", None)
    assert rows[third.id].display_name == "Before 2" and rows[third.id].notes != "batch"
    assert rows[other.id].display_name == "Before 3" and rows[other.id].notes != "batch"
