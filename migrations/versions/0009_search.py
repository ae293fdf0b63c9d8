"""search tokenizer for Chinese and Japanese, contact cards and file names

SQLite: messages_fts now reads a view (messages_search) that adds the file name and the names on shared
contact cards; a second FTS5 table, messages_cjk (trigram tokenizer), holds the messages written in a
script without spaces between words (Chinese, Japanese, Korean, Thai, ...), found inside a sentence.
MySQL/MariaDB: the FULLTEXT index covers the file name too. The names on contact cards are kept, one row
per message, in message_grams.words with a FULLTEXT index of its own (never the details JSON, whose keys
would match every card and template); MariaDB has no ngram parser, so SigDesk also cuts the words of those
scripts into n-grams itself, in message_grams.grams with its own index (sigdesk/search/fts.py). Both
index the rows already stored.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 20:30:00.000000
"""

import json
import re

from alembic import op
from sqlalchemy import text

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

OPTIONS = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci", "mysql_engine": "InnoDB"}

LATIN = "tokenize = 'unicode61 remove_diacritics 2'"
# A copy of sigdesk.search.fts.UNSPACED_GLOB as it was when this migration was written.
UNSPACED_GLOB = (
    "*[\u0e00-\u0eff\u1000-\u109f\u1100-\u11ff\u1780-\u17ff\u2e80-\u2fdf\u3040-\u30ff\u3100-\u318f"
    "\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f]*"
)
COLUMNS = "text, caption, filename, cards"
CARDS = 10  # contact cards per message whose names are indexed


def _cards(row: str) -> str:
    """The names on the first contact cards in a message's details, as one text (NULL for other messages).

    json_each cannot serve here: FTS5 refuses a content view that uses a table-valued function.
    """
    details = f"{row}details"
    names = " || ".join(
        f"coalesce(json_extract({details}, '$.contacts.cards[{n}].name.formatted_name') || ' ', '')"
        for n in range(CARDS)
    )
    return (
        f"(CASE WHEN json_valid({details}) AND json_type({details}, '$.contacts.cards') = 'array' "
        f"THEN rtrim({names}) END)"
    )


def _unspaced(row: str, cards: str) -> str:
    words = " || ' ' || ".join(f"coalesce({value}, '')" for value in (f"{row}text", f"{row}caption", f"{row}filename"))
    return f"({words} || ' ' || coalesce({cards}, '')) GLOB '{UNSPACED_GLOB}'"


def _values(row: str) -> str:
    """id and the indexed columns of a message row (`new.`, `old.` or the table's own)."""
    plain = ", ".join(f"{row}{name} AS {name}" for name in ("id", "text", "caption", "filename"))
    return f"{plain}, {_cards(row)} AS cards"


def _sqlite_upgrade() -> None:
    for action in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER IF EXISTS messages_fts_{action}")
    op.execute("DROP TABLE IF EXISTS messages_fts")
    op.execute(f"CREATE VIEW messages_search AS SELECT {_values('')} FROM messages")
    op.execute(
        f"CREATE VIEW messages_search_cjk AS SELECT id, {COLUMNS} FROM messages_search WHERE {_unspaced('', 'cards')}"
    )
    op.execute(
        f"CREATE VIRTUAL TABLE messages_fts USING fts5({COLUMNS}, content='messages_search', "
        f"content_rowid='id', {LATIN})"
    )
    op.execute(
        f"CREATE VIRTUAL TABLE messages_cjk USING fts5({COLUMNS}, content='messages_search_cjk', "
        "content_rowid='id', tokenize='trigram')"
    )
    add = (
        f"INSERT INTO messages_fts(rowid, {COLUMNS}) SELECT id, {COLUMNS} FROM messages_search WHERE id = new.id; "
        f"INSERT INTO messages_cjk(rowid, {COLUMNS}) SELECT id, {COLUMNS} FROM messages_search_cjk WHERE id = new.id; "
    )
    # The index is told exactly what it holds for the old row, computed the way the views compute it.
    remove = (
        f"INSERT INTO messages_fts(messages_fts, rowid, {COLUMNS}) SELECT 'delete', {_values('old.')}; "
        f"INSERT INTO messages_cjk(messages_cjk, rowid, {COLUMNS}) "
        f"SELECT 'delete', id, {COLUMNS} FROM (SELECT {_values('old.')}) "
        f"WHERE {_unspaced('', 'cards')}; "
    )
    op.execute(f"CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN {add}END")
    op.execute(f"CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN {remove}END")
    # only when an indexed column is written: status ticks update messages all the time
    op.execute(
        "CREATE TRIGGER messages_fts_update AFTER UPDATE OF text, caption, filename, details ON messages "
        f"BEGIN {remove}{add}END"
    )
    op.execute("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')")
    op.execute("INSERT INTO messages_cjk(messages_cjk) VALUES ('rebuild')")


def _sqlite_downgrade() -> None:
    for action in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER IF EXISTS messages_fts_{action}")
    op.execute("DROP TABLE IF EXISTS messages_cjk")
    op.execute("DROP TABLE IF EXISTS messages_fts")
    op.execute("DROP VIEW IF EXISTS messages_search_cjk")
    op.execute("DROP VIEW IF EXISTS messages_search")
    # as 0005 made it
    op.execute(
        f"CREATE VIRTUAL TABLE messages_fts USING fts5(text, caption, content='messages', content_rowid='id', {LATIN})"
    )
    op.execute(
        "CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN "
        "INSERT INTO messages_fts(rowid, text, caption) VALUES (new.id, new.text, new.caption); END"
    )
    op.execute(
        "CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN "
        "INSERT INTO messages_fts(messages_fts, rowid, text, caption) VALUES ('delete', old.id, old.text, old.caption); END"
    )
    op.execute(
        "CREATE TRIGGER messages_fts_update AFTER UPDATE OF text, caption ON messages BEGIN "
        "INSERT INTO messages_fts(messages_fts, rowid, text, caption) VALUES ('delete', old.id, old.text, old.caption); "
        "INSERT INTO messages_fts(rowid, text, caption) VALUES (new.id, new.text, new.caption); END"
    )
    op.execute("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')")


# Copies of sigdesk.search.fts.grams and card_names as they were when this migration was written.
RUN = re.compile(r"[^\W_]+")
UNSPACED = re.compile(UNSPACED_GLOB[1:-1])


def _grams(value):
    found = []
    for run in RUN.findall(value or ""):
        if UNSPACED.search(run):
            found.extend(run[start : start + 3].ljust(3, "_") for start in range(len(run)))
    return found


def _card_names(details):
    try:
        found = json.loads(details) if details else None
    except ValueError:
        return None
    contacts = found.get("contacts") if isinstance(found, dict) else None
    cards = contacts.get("cards") if isinstance(contacts, dict) else None
    if not isinstance(cards, list):
        return None
    names = [
        card["name"]["formatted_name"]
        for card in cards[:CARDS]
        if isinstance(card, dict)
        and isinstance(card.get("name"), dict)
        and isinstance(card["name"].get("formatted_name"), str)
    ]
    return " ".join(names) or None


def _mysql_grams() -> None:
    op.execute(
        "CREATE TABLE message_grams (message_id INTEGER NOT NULL PRIMARY KEY, grams MEDIUMTEXT NULL, words MEDIUMTEXT NULL, "
        "CONSTRAINT fk_message_grams_message_id FOREIGN KEY (message_id) REFERENCES messages (id) ON DELETE CASCADE) "
        "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci"
    )
    connection = op.get_bind()
    last = 0
    while True:
        rows = connection.execute(
            text(
                "SELECT id, type, text, caption, filename, details FROM messages "
                "WHERE id > :last AND revoked_at IS NULL ORDER BY id LIMIT 2000"
            ),
            {"last": last},
        ).all()
        if not rows:
            break
        last = rows[-1].id
        values = []
        for row in rows:
            cards = _card_names(row.details) if row.type == "contacts" else None
            found = [gram for value in (row.text, row.caption, row.filename, cards) for gram in _grams(value)]
            if found or cards:
                values.append({"message_id": row.id, "grams": " ".join(found) or None, "words": cards})
        if values:
            connection.execute(
                text("INSERT INTO message_grams (message_id, grams, words) VALUES (:message_id, :grams, :words)"),
                values,
            )
    op.execute("CREATE FULLTEXT INDEX ftx_message_grams ON message_grams (grams)")
    op.execute("CREATE FULLTEXT INDEX ftx_message_grams_words ON message_grams (words)")


def _mysql_index(columns: str) -> None:
    op.execute("DROP INDEX ftx_messages_text_caption ON messages")
    # drop InnoDB's hidden FTS_DOC_ID too: MariaDB 10.11 leaves rows out of a FULLTEXT index re-created over it
    op.execute("ALTER TABLE messages FORCE")
    op.execute(f"CREATE FULLTEXT INDEX ftx_messages_text_caption ON messages ({columns})")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_upgrade()
    else:
        _mysql_index("text, caption, filename")
        _mysql_grams()


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_downgrade()
    else:
        op.execute("DROP TABLE IF EXISTS message_grams")
        _mysql_index("text, caption")
