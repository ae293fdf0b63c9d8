"""Search message text and contacts, newest first, within the conversations the user may see.

User input never reaches the full-text engine as syntax: it is cut into words (letters and digits),
each quoted; the last word matches as a prefix, so results appear while someone is still typing.
A word in a script written without spaces (Chinese, Japanese, ...) matches anywhere inside a sentence.

A message is found by its text, caption, file name and the names on the contact cards it shares; the
notices about other messages (edits, deletions, reactions) are never hits: the message they change is,
with its current text.
"""

from __future__ import annotations

import html
import re
import threading
import unicodedata
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, column, func, literal_column, or_, select, table, text
from sqlalchemy.dialects.mysql import match
from sqlalchemy.orm import Session

from sigdesk.contacts.services import COLUMNS, ContactData, contact_name
from sigdesk.conversations.schemas import MESSAGE_COLUMNS as MESSAGE_DATA_COLUMNS
from sigdesk.conversations.schemas import MessageData
from sigdesk.conversations.services import agents_see_all, reactions_for, visible
from sigdesk.models import Contact, Conversation, Message, User
from sigdesk.search.fts import MYSQL_GRAMS_TABLE, TRIGRAM, UNSPACED, card_names, grams_query

MAX_QUERY_LENGTH = 200
MAX_TERMS = 8
MAX_LIMIT = 50
SNIPPET_CONTEXT = 60

WORD = re.compile(r"[^\W_]+")
PHONE = re.compile(r"^\+?[\d\s().-]{3,}$")
GRAMS = table(MYSQL_GRAMS_TABLE, column("message_id"), column("grams"), column("words"))
# Rows that describe a change to another message: their words are the changed message's.
NOTICE_TYPES = ("edit", "revoke", "reaction")


@dataclass(frozen=True)
class Query:
    terms: list[str]
    digits: str | None  # the query read as (part of) a phone number

    @classmethod
    def parse(cls, raw: str) -> "Query":
        terms = WORD.findall(raw)[:MAX_TERMS]
        digits = re.sub(r"\D", "", raw) if PHONE.match(raw.strip()) else None
        return cls(terms, digits if digits and len(digits) >= 3 else None)

    @property
    def spaced(self) -> list[str]:
        """Words of scripts that separate words with spaces: matched at the start of a word."""
        return [term for term in self.terms if not unspaced(term)]

    @property
    def unspaced(self) -> list[str]:
        """Words of scripts without spaces (Chinese, Japanese, ...): matched anywhere."""
        return [term for term in self.terms if unspaced(term)]


def unspaced(term: str) -> bool:
    return UNSPACED.search(term) is not None


class InvalidQuery(ValueError):
    pass


# What JSON Schema's `\s` (ECMA-262) calls white space; Python's str.strip() also drops the separators
# U+001C-U+001F and U+0085, which the API document's pattern counts as content.
WHITE_SPACE = "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"


def check_query(raw: str | None) -> str:
    """A query the API document calls valid (a non-space character, ECMA-262's sense) is searched."""
    query = (raw or "").strip(WHITE_SPACE)
    if not query:
        raise InvalidQuery("Type something to search for.")
    if len(query) > MAX_QUERY_LENGTH:
        raise InvalidQuery(f"The search is too long: at most {MAX_QUERY_LENGTH} characters.")
    return query


def search(session: Session, user: User, query: str, limit: int = 20) -> dict[str, list[dict[str, Any]]]:
    """Message hits (with highlighted, HTML-escaped snippets) and contact hits, for the search box."""
    parsed = Query.parse(check_query(query))
    limit = min(max(limit, 1), MAX_LIMIT)
    if not parsed.terms:
        return {"messages": [], "contacts": []}
    backend = _backend(session)
    widened = agents_see_all(session)
    return {
        "messages": backend.messages(session, user, widened, parsed, limit),
        "contacts": backend.contacts(session, user, widened, parsed, limit),
    }


# ---- results ----------------------------------------------------------------------------------


# The message's serializer's columns, then what names its contact
MESSAGE_COLUMNS = (
    *MESSAGE_DATA_COLUMNS,
    Contact.id.label("named_contact_id"),
    Contact.display_name,
    Contact.profile_name,
    Contact.wa_id,
    Contact.user_id,
)
CONTACT_COLUMNS = (*COLUMNS, Conversation.id)  # the contact's serializer's columns, then its conversation


def _message_hits(session: Session, rows: list, terms: list[str]) -> list[dict[str, Any]]:
    reactions = reactions_for(session, [row.wamid for row in rows if row.wamid])
    return [_message_hit(row, terms, reactions.get(row.wamid)) for row in rows]


def searched_texts(row) -> list[str]:
    """What a message is found by, in the order a snippet prefers them."""
    texts = [row.text, row.caption, row.filename, card_names(row.details) if row.type == "contacts" else None]
    return [value for value in texts if value]


def _message_hit(row, terms: list[str], reactions: list[str] | None) -> dict[str, Any]:
    texts = searched_texts(row)
    # the text with the most of the words, the first of those
    source = max(texts, key=lambda value: sum(_find(value, [term]) for term in terms), default="")
    return {
        "message_id": row.id,
        "conversation_id": row.conversation_id,
        "contact_name": contact_name(row.named_contact_id, row.display_name, row.profile_name, row.wa_id, row.user_id),
        "snippet_html": snippet_html(source, terms),
        "timestamp": row.timestamp.isoformat() if row.timestamp else None,
        "message": MessageData.of(row, reactions).model_dump(),
    }


def _contact_hit(row) -> dict[str, Any]:
    contact = ContactData.of_row(row[: len(COLUMNS)])
    return {
        "contact_id": contact.id,
        "conversation_id": row[len(COLUMNS)],
        "name": contact.name,
        "wa_id": contact.wa_id,
        "contact": contact.model_dump(),
    }


def _visible_messages(user: User, widened: bool):
    """visible() is the one visibility rule; these queries only add columns and joins to it."""
    return (
        visible(user, widened)
        .with_only_columns(*MESSAGE_COLUMNS)
        .join_from(Message, Conversation, Conversation.id == Message.conversation_id)
        .join(Contact, Contact.id == Conversation.contact_id)
        .where(Message.revoked_at.is_(None), Message.type.not_in(NOTICE_TYPES))
    )


def _contains(term: str):
    """A message with `term` anywhere in what it is found by (for words no index can look up). A card
    message's details also match their JSON keys: callers check each row (_row_matches)."""
    return or_(
        Message.text.contains(term, autoescape=True),
        Message.caption.contains(term, autoescape=True),
        Message.filename.contains(term, autoescape=True),
        (Message.type == "contacts") & Message.details.contains(term, autoescape=True),
    )


def _contact_contains(term: str):
    return or_(
        Contact.display_name.contains(term, autoescape=True),
        Contact.profile_name.contains(term, autoescape=True),
        Contact.wa_id.contains(term, autoescape=True),
    )


def _visible_contacts(user: User, widened: bool):
    return (
        visible(user, widened)
        .with_only_columns(*CONTACT_COLUMNS)
        .join_from(Contact, Conversation, Conversation.contact_id == Contact.id)
    )


# ---- SQLite: FTS5 -----------------------------------------------------------------------------


class SQLiteSearch:
    """FTS5: unicode61 (messages_fts, contacts_fts) for words between spaces, trigram (messages_cjk) for
    words of scripts without spaces. A word of those shorter than a trigram is looked for with LIKE,
    newest messages first, which stops as soon as the page is full."""

    messages_fts = table("messages_fts", column("rowid"))
    messages_cjk = table("messages_cjk", column("rowid"))
    contacts_fts = table("contacts_fts", column("rowid"))

    @staticmethod
    def expression(terms: list[str], prefix_last: bool = True) -> str:
        quoted = ['"' + term.replace('"', '""') + '"' for term in terms]
        if prefix_last:
            quoted[-1] += "*"
        return " ".join(quoted)

    def messages(self, session: Session, user: User, widened: bool, query: Query, limit: int) -> list[dict[str, Any]]:
        statement = _visible_messages(user, widened)
        order = Message.id.desc()
        if query.spaced:
            fts = self.messages_fts
            last_is_spaced = not unspaced(query.terms[-1])
            statement = statement.join(fts, fts.c.rowid == Message.id).where(
                literal_column("messages_fts").op("MATCH")(self.expression(query.spaced, last_is_spaced))
            )
            order = fts.c.rowid.desc()
        long_words = [term for term in query.unspaced if len(term) >= TRIGRAM]
        if long_words:
            cjk = self.messages_cjk
            statement = statement.join(cjk, cjk.c.rowid == Message.id).where(
                literal_column("messages_cjk").op("MATCH")(self.expression(long_words, False))
            )
            order = cjk.c.rowid.desc()
        for term in query.unspaced:
            if len(term) < TRIGRAM:
                statement = statement.where(_contains(term))
        statement = statement.order_by(order).limit(limit)
        return _message_hits(session, list(session.execute(statement)), query.terms)

    def contacts(self, session: Session, user: User, widened: bool, query: Query, limit: int) -> list[dict[str, Any]]:
        statement = _visible_contacts(user, widened)
        if query.spaced:
            fts = self.contacts_fts
            statement = statement.join(fts, fts.c.rowid == Contact.id).where(
                literal_column("contacts_fts").op("MATCH")(self.expression(query.spaced, not unspaced(query.terms[-1])))
            )
        for term in query.unspaced:  # contacts are few: LIKE finds a name's part without an index
            statement = statement.where(_contact_contains(term))
        statement = statement.order_by(Conversation.last_message_at.desc(), Contact.id.desc()).limit(limit)
        rows = list(session.execute(statement))
        return _with_phone_matches(session, user, widened, query, rows, limit)


def _with_phone_matches(
    session: Session, user: User, widened: bool, query: Query, rows: list, limit: int
) -> list[dict[str, Any]]:
    """A number typed in any format finds the contact whose number contains it."""
    if query.digits and len(rows) < limit:
        seen = {row[0] for row in rows}
        statement = (
            _visible_contacts(user, widened)
            .where(Contact.wa_id.contains(query.digits, autoescape=True))
            .order_by(Conversation.last_message_at.desc(), Contact.id.desc())
            .limit(limit)
        )
        rows += [row for row in session.execute(statement) if row[0] not in seen][: limit - len(rows)]
    return [_contact_hit(row) for row in rows]


# ---- MySQL / MariaDB: FULLTEXT ----------------------------------------------------------------


class MySQLSearch:
    """InnoDB indexes no word shorter than innodb_ft_min_token_size (3) and none of its stopwords;
    a required word it never indexed would match nothing, so such words are checked with LIKE.

    MariaDB has no ngram parser (MySQL's is a plugin MariaDB does not ship), and its parser takes a whole
    sentence of Chinese or Japanese for one word. SigDesk cuts the words of scripts without spaces into
    n-grams itself (fts.grams, kept in message_grams by an outbox consumer): the newest messages are
    scanned with LIKE as for any word, older ones found through the n-grams' FULLTEXT index (or, if the
    server indexes no word as short as a gram, with LIKE).

    The names on contact cards have a FULLTEXT index of their own (message_grams.words), never the
    details JSON. LIKE matches inside words, and the cards' JSON keys in the newest messages: every row
    is checked against what a message is found by, and more are read until the page is full.

    InnoDB's FULLTEXT cannot give the newest hits first without fetching every matching row (seconds
    for a common word over a million messages), so the newest messages are scanned first: a common
    word fills the page there at once, and only a rarer one, cheap for FULLTEXT, goes to the index.
    """

    RECENT_WINDOW = 20_000

    def __init__(self, min_token: int, stopwords: frozenset[str]) -> None:
        self.min_token = min_token
        self.stopwords = stopwords

    def split(self, terms: list[str]) -> tuple[str, list[str]]:
        indexed, unindexed = [], []
        for position, term in enumerate(terms):
            last = position == len(terms) - 1
            if len(term) < self.min_token or term.casefold() in self.stopwords or unspaced(term):
                unindexed.append(term)
            else:
                indexed.append(f"+{term}*" if last else f"+{term}")
        return " ".join(indexed), unindexed

    def messages(self, session: Session, user: User, widened: bool, query: Query, limit: int) -> list[dict[str, Any]]:
        recent, complete = self.recent_messages(session, user, widened, query, limit)
        if complete:
            return _message_hits(session, recent, query.terms)
        against, unindexed = self.split(query.terms)
        statement = _visible_messages(user, widened)
        by_grams = [term for term in unindexed if unspaced(term) and self.min_token <= TRIGRAM]
        if by_grams:
            against_grams = " ".join(grams_query(term) for term in by_grams)
            statement = statement.where(
                Message.id.in_(
                    select(GRAMS.c.message_id).where(match(GRAMS.c.grams, against=against_grams).in_boolean_mode())
                )
            )
        for term in unindexed:
            if term not in by_grams:
                statement = statement.where(_contains(term))
        if against:
            # a message's own words, or the names on the cards it shares (never the rest of its details)
            searches = [
                statement.where(
                    match(Message.text, Message.caption, Message.filename, against=against).in_boolean_mode()
                ),
                statement.where(
                    Message.id.in_(
                        select(GRAMS.c.message_id).where(match(GRAMS.c.words, against=against).in_boolean_mode())
                    )
                ),
            ]
        else:
            searches = [statement]
        # the newest messages' hits too: the consumer that writes message_grams may not have reached them yet
        found = recent + [row for search in searches for row in _first_matches(session, search, query.terms, limit)[0]]
        newest_first = sorted({row.id: row for row in found}.values(), key=lambda row: row.id, reverse=True)
        return _message_hits(session, newest_first[:limit], query.terms)

    def recent_messages(
        self, session: Session, user: User, widened: bool, query: Query, limit: int
    ) -> tuple[list, bool]:
        """The hits among the newest messages, and whether they are all there is to show: they fill the
        page, or the window holds every message."""
        newest = session.scalar(select(func.max(Message.id)))
        if newest is None:
            return [], True
        statement = _visible_messages(user, widened).where(Message.id > newest - self.RECENT_WINDOW)
        for term in query.terms:
            statement = statement.where(_contains(term))
        # LIKE finds the words anywhere; keep those where they start a word, as the index would
        found, exhausted = _first_matches(session, statement, query.terms, limit)
        return found, len(found) >= limit or (exhausted and newest <= self.RECENT_WINDOW)

    def contacts(self, session: Session, user: User, widened: bool, query: Query, limit: int) -> list[dict[str, Any]]:
        against, unindexed = self.split(query.terms)
        statement = _visible_contacts(user, widened)
        if against:
            statement = statement.where(
                match(Contact.display_name, Contact.profile_name, Contact.wa_id, against=against).in_boolean_mode()
            )
        for term in unindexed:
            statement = statement.where(_contact_contains(term))
        statement = statement.order_by(Conversation.last_message_at.desc(), Contact.id.desc()).limit(limit)
        return _with_phone_matches(session, user, widened, query, list(session.execute(statement)), limit)


def _first_matches(session: Session, statement, terms: list[str], limit: int) -> tuple[list, bool]:
    """The newest `limit` rows of `statement` that really hold the words (_row_matches), read a page at a
    time by id, so rows that only seemed to match (LIKE inside a word) never push a real hit off the page.
    Also says whether every row was read."""
    page = 4 * limit
    found: list = []
    before = None
    while True:
        paged = statement if before is None else statement.where(Message.id < before)
        rows = list(session.execute(paged.order_by(Message.id.desc()).limit(page)))
        found += [row for row in rows if _row_matches(row, terms)]
        if len(rows) < page:
            return found[:limit], True
        if len(found) >= limit:
            return found[:limit], False
        before = rows[-1].id


_mysql_settings: dict[str, tuple[int, frozenset[str]]] = {}
_mysql_settings_lock = threading.Lock()


def _backend(session: Session):
    bind: Engine = session.get_bind()
    if bind.dialect.name == "sqlite":
        return SQLiteSearch()
    key = bind.url.render_as_string(hide_password=True)
    with _mysql_settings_lock:
        if key not in _mysql_settings:
            _mysql_settings[key] = _read_mysql_settings(session)
    return MySQLSearch(*_mysql_settings[key])


def _read_mysql_settings(session: Session) -> tuple[int, frozenset[str]]:
    min_token, enabled, custom = session.execute(
        text("SELECT @@innodb_ft_min_token_size, @@innodb_ft_enable_stopword, @@innodb_ft_server_stopword_table")
    ).one()
    stopwords: frozenset[str] = frozenset()
    if enabled:
        if custom:
            schema, _, name = str(custom).partition("/")
            rows = session.execute(text(f"SELECT value FROM `{schema}`.`{name}`"))
        else:
            rows = session.execute(text("SELECT value FROM information_schema.INNODB_FT_DEFAULT_STOPWORD"))
        stopwords = frozenset(str(value).casefold() for (value,) in rows)
    return int(min_token), stopwords


# ---- snippets ---------------------------------------------------------------------------------


def _fold(value: str) -> tuple[str, list[int]]:
    """Lower case without accents, with each folded character's index in the original, so a
    match found the way the search engines compare (cafe = Café) is highlighted in the original."""
    folded: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(value):
        base = "".join(
            part for part in unicodedata.normalize("NFD", char) if not unicodedata.combining(part)
        ).casefold()
        for part in base or char:
            folded.append(part)
            origin.append(index)
    return "".join(folded), origin


def _pattern(terms: list[str]) -> re.Pattern[str]:
    """A word between spaces matches at the start of a word, up to its end; one of a script without
    spaces matches wherever it is."""
    words = sorted({_fold(term)[0] for term in terms}, key=len, reverse=True)
    spaced = [re.escape(word) for word in words if not unspaced(word)]
    anywhere = [re.escape(word) for word in words if unspaced(word)]
    choices = ([r"(?<![^\W_])(?:" + "|".join(spaced) + r")[^\W_]*"] if spaced else []) + anywhere
    return re.compile("|".join(choices))


def _find(value: str, terms: list[str]) -> bool:
    return bool(terms) and _pattern(terms).search(_fold(value)[0]) is not None


def _row_matches(row, terms: list[str]) -> bool:
    """Every word is in something the message is found by (as the index matches across its columns)."""
    texts = searched_texts(row)
    return all(any(_find(value, [term]) for value in texts) for term in terms)


def snippet_html(value: str, terms: list[str], context: int = SNIPPET_CONTEXT) -> str:
    """A short excerpt around the first hit, HTML-escaped, with every hit wrapped in <mark>."""
    folded, origin = _fold(value)
    spans = (
        [(origin[m.start()], origin[m.end() - 1] + 1) for m in _pattern(terms).finditer(folded)]
        if terms and value
        else []
    )
    first = spans[0][0] if spans else 0
    start = max(0, first - context)
    end = min(len(value), first + 2 * context)
    if start > 0:
        space = value.rfind(" ", start, first)
        start = space + 1 if space != -1 else start
    if end < len(value):
        space = value.find(" ", max(end - 15, first), end + 15)
        end = space if space != -1 else end
    parts = ["…" if start > 0 else ""]
    position = start
    for begin, finish in spans:
        if finish <= start or begin >= end:
            continue
        begin, finish = max(begin, start), min(finish, end)
        parts.append(html.escape(value[position:begin]))
        parts.append("<mark>" + html.escape(value[begin:finish]) + "</mark>")
        position = finish
    parts.append(html.escape(value[position:end]))
    parts.append("…" if end < len(value) else "")
    return "".join(parts)
