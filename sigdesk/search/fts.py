"""What migrations 0005 and 0009 add to the schema outside the models, for code that must know about it
(the migrations test, backup and restore), the repair for a full-text index that drifted, and the
compaction that leaves no erased words in the index's old pages."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
import time

from sqlalchemy import Connection, Engine, column, delete, func, insert, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy import table as sql_table
from sqlalchemy.orm import Session

from sigdesk.db import read_json, write_lock
from sigdesk.models import Message

log = logging.getLogger(__name__)

# SQLite: FTS5 tables over messages and contacts (external content, kept in sync by triggers).
# messages_fts reads the view messages_search (text, caption, file name, contact-card names);
# messages_cjk (trigram tokenizer) holds the messages written in a script without spaces.
SQLITE_FTS_TABLES = ("messages_fts", "messages_cjk", "contacts_fts")
SQLITE_VIEWS = ("messages_search", "messages_search_cjk")
SQLITE_TRIGGERS = (
    "messages_fts_insert",
    "messages_fts_delete",
    "messages_fts_update",
    "contacts_fts_insert",
    "contacts_fts_delete",
    "contacts_fts_update",
)
# MySQL/MariaDB: FULLTEXT indexes on the tables themselves; the messages' covers (text, caption, filename).
MYSQL_FULLTEXT_INDEXES = (
    "ftx_messages_text_caption",
    "ftx_contacts_names",
    "ftx_message_grams",
    "ftx_message_grams_words",
)
# Not a model: one row per message that shares contact cards or has words of a script without spaces.
# `words` holds the card names (never the details JSON, whose keys "name", "type", ... every card and
# template has); `grams` the n-grams SigDesk cuts those scripts into (MariaDB has no ngram parser: grams()).
# Each has a FULLTEXT index of its own.
MYSQL_GRAMS_TABLE = "message_grams"

# Scripts written without spaces between words (Chinese, Japanese, Korean, Thai, Lao, Myanmar, Khmer):
# a word there is found anywhere inside a sentence, not only at the start of a space-separated token.
UNSPACED_RANGES = (
    "\u0e00-\u0eff\u1000-\u109f\u1100-\u11ff\u1780-\u17ff\u2e80-\u2fdf\u3040-\u30ff\u3100-\u318f"
    "\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f"
)
UNSPACED = re.compile(f"[{UNSPACED_RANGES}]")
UNSPACED_GLOB = f"*[{UNSPACED_RANGES}]*"  # what migration 0009's view and triggers test, in SQLite's GLOB
CARDS = 10  # contact cards per message whose names are indexed (migration 0009's copy says the same)
# The trigram tokenizer indexes three characters at a time: a shorter word cannot use the index.
TRIGRAM = 3
RUN = re.compile(r"[^\W_]+")


def grams(value: str | None) -> list[str]:
    """MariaDB's stand-in for an ngram parser: each run of letters that holds a character of a script
    without spaces becomes the three characters starting at each of its positions, the last two padded
    with "_" (so a word of one or two characters is a prefix of some gram). A word of three or more is
    then the phrase of its grams; a shorter one a prefix search. Migration 0009 keeps a copy."""
    found: list[str] = []
    for run in RUN.findall(value or ""):
        if UNSPACED.search(run):
            found.extend(run[start : start + TRIGRAM].ljust(TRIGRAM, "_") for start in range(len(run)))
    return found


def card_names(details: str | None) -> str | None:
    """The names on the contact cards a message shares, as one text (as migration 0009's view reads them)."""
    found = read_json(details, dict, "messages.details") if details else None
    contacts = found.get("contacts") if isinstance(found, dict) else None
    cards = contacts.get("cards") if isinstance(contacts, dict) else None
    if not isinstance(cards, list):
        return None
    names = []
    for card in cards[:CARDS]:
        name = card.get("name") if isinstance(card, dict) else None
        if isinstance(name, dict) and isinstance(name.get("formatted_name"), str):
            names.append(name["formatted_name"])
    return " ".join(names) or None


_grams = sql_table(MYSQL_GRAMS_TABLE, column("message_id"), column("grams"), column("words"))


def _dialect(session: Session | Connection) -> str:
    return session.dialect.name if isinstance(session, Connection) else session.get_bind().dialect.name


def index_grams(session: Session | Connection, message_ids: Iterable[int], changed: Iterable[int] = ()) -> int:
    """(MySQL) Write the n-grams and card names of these messages as they are now: none for a message
    gone, revoked or erased. `changed` are messages whose stored row may be stale (edited, revoked): theirs
    is rewritten even when they now have none. Idempotent, so the outbox may offer the same message again.
    Most messages have no such words and cost one read, no write. Returns the messages written for."""
    changed = set(changed)
    ids = sorted(set(message_ids) | changed)
    if _dialect(session) == "sqlite" or not ids:
        return 0
    rows = session.execute(
        select(Message.id, Message.type, Message.text, Message.caption, Message.filename, Message.details).where(
            Message.id.in_(ids), Message.revoked_at.is_(None)
        )
    ).all()
    values = []
    for row in rows:
        cards = card_names(row.details) if row.type == "contacts" else None
        found = [gram for value in (row.text, row.caption, row.filename, cards) for gram in grams(value)]
        if found or cards:
            values.append({"message_id": row.id, "grams": " ".join(found) or None, "words": cards})
    stale = changed | {value["message_id"] for value in values}
    if stale:
        session.execute(delete(_grams).where(_grams.c.message_id.in_(sorted(stale))))
    if values:
        session.execute(insert(_grams), values)
    return len(stale)


def forget_contact_grams(session: Session, contact_id: int) -> None:
    """(MySQL) Drop the n-grams of an erased contact's messages."""
    if _dialect(session) == "sqlite":
        return
    session.execute(
        delete(_grams).where(_grams.c.message_id.in_(select(Message.id).where(Message.contact_id == contact_id)))
    )


def grams_query(term: str) -> str:
    """The boolean-mode FULLTEXT expression (against grams()) that requires `term` (one run of letters)."""
    if len(term) < TRIGRAM:
        return f"+{term}*"
    return '+"' + " ".join(term[start : start + TRIGRAM] for start in range(len(term) - TRIGRAM + 1)) + '"'


# The tables with FULLTEXT indexes (MySQL): after an erasure only these indexes are optimised.
FULLTEXT_TABLES = ("messages", "contacts", MYSQL_GRAMS_TABLE)
# OPTIMIZE TABLE merges innodb_ft_num_word_optimize words per pass and resumes where it stopped.
MAX_OPTIMIZE_PASSES = 200
# SQLite: a checkpoint that a reader holds up is tried again a few times, releasing the write lock between tries.
CHECKPOINT_ATTEMPTS = 4
CHECKPOINT_WAIT_MS = 500
CHECKPOINT_PAUSE_SECONDS = 0.25


def is_search_table(name: str) -> bool:
    """True for the FTS5 tables and their shadow tables (messages_fts_data, _idx, _docsize, _config)."""
    return any(name == table or name.startswith(table + "_") for table in SQLITE_FTS_TABLES)


def rebuild(connection: Connection) -> None:
    """Re-index from the rows themselves, e.g. after rows were loaded with the triggers missing.
    MySQL's FULLTEXT indexes are maintained by InnoDB; its n-grams are written again."""
    if connection.dialect.name != "sqlite":
        connection.execute(delete(_grams))
        last, newest = 0, connection.scalar(select(func.max(Message.id))) or 0
        while last < newest:
            index_grams(connection, list(range(last + 1, min(last + 2000, newest) + 1)))
            last += 2000
        return
    for table in SQLITE_FTS_TABLES:
        connection.exec_driver_sql(f"INSERT INTO {table}({table}) VALUES ('rebuild')")


def compact(engine: Engine) -> None:
    """Leave none of an erased contact's words in the search index, after the erasure committed.

    SQLite: the triggers only add delete markers to the FTS5 index; 'optimize' merges every segment into
    one without the deleted entries. With secure_delete on, the pages that frees are zeroed (so are the
    cells the erasure itself rewrote: see contacts.commands.anonymise), and the WAL is checkpointed and
    truncated, so neither the file nor a later backup (the online backup API copies free pages too)
    holds them. This is cheaper than VACUUM, needs no second copy of the file on disk and keeps the
    database usable meanwhile.

    MySQL/MariaDB: see _compact_fulltext.
    """
    if engine.dialect.name != "sqlite":
        _compact_fulltext(engine)
        return
    with write_lock(engine):
        raw = engine.raw_connection()  # autocommit: the pragmas run outside a transaction
        try:
            cursor = raw.cursor()
            (previous,) = cursor.execute("PRAGMA secure_delete").fetchone()
            cursor.execute("PRAGMA secure_delete = ON")
            try:
                cursor.execute("BEGIN IMMEDIATE")
                for table in SQLITE_FTS_TABLES:
                    cursor.execute(f"INSERT INTO {table}({table}) VALUES ('optimize')")
                cursor.execute("COMMIT")
            finally:
                if raw.in_transaction:
                    cursor.execute("ROLLBACK")
                cursor.execute(f"PRAGMA secure_delete = {int(previous)}")
                cursor.close()
        finally:
            raw.close()
    _truncate_wal(engine)


def _truncate_wal(engine: Engine) -> None:
    """Copy the WAL into the database file and empty it, so the erased words' old frames are gone.

    A reader still using the WAL makes the checkpoint answer busy (its first column) without truncating:
    it is tried again a few times, each with a short wait and without the write lock in between, so
    SigDesk's writers are not held up by a long export; if it still cannot, a warning says so (the
    next checkpoint after that reader ends overwrites the frames)."""
    for attempt in range(CHECKPOINT_ATTEMPTS):
        if attempt:
            time.sleep(CHECKPOINT_PAUSE_SECONDS * 2 ** (attempt - 1))
        with write_lock(engine):
            raw = engine.raw_connection()
            try:
                cursor = raw.cursor()
                (wait,) = cursor.execute("PRAGMA busy_timeout").fetchone()
                cursor.execute(f"PRAGMA busy_timeout = {CHECKPOINT_WAIT_MS}")
                try:
                    busy, _frames, _copied = cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                finally:
                    cursor.execute(f"PRAGMA busy_timeout = {int(wait)}")
                    cursor.close()
            finally:
                raw.close()
        if not busy:
            return
    log.warning(
        "search: after an erasure the write-ahead log could not be truncated in %d tries (a reader held it); "
        "its old frames stay until the next checkpoint",
        CHECKPOINT_ATTEMPTS,
    )


def _compact_fulltext(engine: Engine) -> None:
    """MySQL/MariaDB: merge the FULLTEXT indexes without the erased rows' words, and nothing more.

    A plain OPTIMIZE TABLE on InnoDB copies the whole table (blocking writes, so ingest stalls, and
    doubling its disk use) just to drop freed pages. Those pages never reach a backup: SigDesk's MySQL
    backups are logical dumps of the rows, and InnoDB reuses the pages. What does outlive the rows is the
    FULLTEXT index, which keeps a deleted row's words until it is optimised; with
    innodb_optimize_fulltext_only, OPTIMIZE TABLE merges only that index, in place, a bounded number of
    words per pass (resuming where the last stopped), until no deleted document is left in it. The
    variable is global and needs the SUPER privilege: without it nothing is optimised (the index keeps
    the words until someone runs it) and a warning says so, naming no one."""
    with engine.connect() as connection:
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        schema, only, aux = connection.exec_driver_sql(
            "SELECT DATABASE(), @@GLOBAL.innodb_optimize_fulltext_only, @@GLOBAL.innodb_ft_aux_table"
        ).one()
        try:
            connection.exec_driver_sql("SET GLOBAL innodb_optimize_fulltext_only = ON")
        except DBAPIError as exc:
            log.warning(
                "search: the full-text index was not optimised after an erasure: setting "
                "innodb_optimize_fulltext_only was refused (%s); grant SUPER or run OPTIMIZE with it set",
                type(exc.orig).__name__,
            )
            return
        try:
            for table in FULLTEXT_TABLES:
                _optimise_fulltext(connection, schema, table)
        finally:
            connection.exec_driver_sql("SET GLOBAL innodb_optimize_fulltext_only = %s", (int(only),))
            connection.exec_driver_sql("SET GLOBAL innodb_ft_aux_table = %s", (aux,))


def _optimise_fulltext(connection: Connection, schema: str, table: str) -> None:
    connection.exec_driver_sql("SET GLOBAL innodb_ft_aux_table = %s", (f"{schema}/{table}",))
    for _ in range(MAX_OPTIMIZE_PASSES):
        for row in connection.exec_driver_sql(f"OPTIMIZE TABLE `{table}`").all():
            if "recreate" in str(row[-1]):  # the setting did not apply: never copy a table twice
                log.warning("search: OPTIMIZE TABLE %s rebuilt the table, not only its full-text index", table)
                return
        if not _deleted_documents(connection):
            return
    log.warning("search: the full-text index of %s still lists erased rows after %d passes", table, MAX_OPTIMIZE_PASSES)


def _deleted_documents(connection: Connection) -> int:
    """Rows deleted from the index innodb_ft_aux_table names whose words it may still hold."""
    return connection.exec_driver_sql(
        "SELECT (SELECT COUNT(*) FROM information_schema.INNODB_FT_DELETED)"
        " + (SELECT COUNT(*) FROM information_schema.INNODB_FT_BEING_DELETED)"
    ).scalar_one()


def integrity_ok(connection: Connection) -> bool:
    if connection.dialect.name != "sqlite":
        return True
    try:
        for table in SQLITE_FTS_TABLES:
            connection.execute(text(f"INSERT INTO {table}({table}, rank) VALUES ('integrity-check', 1)"))
    except Exception:  # noqa: BLE001 - any failure means the index does not match the rows
        return False
    return True
