"""Column types shared by several models: MySQL's TEXT and BLOB stop at 64 KB, Meta's payloads do not."""

from sqlalchemy import LargeBinary, Text
from sqlalchemy.dialects import mysql

BigText = Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")
BigBinary = LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")
