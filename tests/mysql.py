"""Creating and dropping whole MariaDB databases, for the test workers, the relay tests and the benchmarks."""

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


def _admin(url: str):
    return create_engine(make_url(url).set(database="", query={"charset": "utf8mb4"}), isolation_level="AUTOCOMMIT")


def recreate_database(url: str) -> None:
    """The database the URL names, empty, in utf8mb4 as SigDesk's migrations expect."""
    name = make_url(url).database
    admin = _admin(url)
    try:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
            connection.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
    finally:
        admin.dispose()


def drop_database(url: str) -> None:
    admin = _admin(url)
    try:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS `{make_url(url).database}`"))
    finally:
        admin.dispose()
