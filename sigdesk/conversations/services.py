"""Who sees which conversations, and the pages of conversations and messages the API lists."""

from __future__ import annotations


from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from sigdesk.roles import can
from sigdesk.outbound.window import SERVICE_WINDOW, window_closes_at, window_open  # noqa: F401 - re-exported
from sigdesk.models import Contact, Conversation, Message, Reaction, User
from sigdesk.paging import Cursor, Page, newest_first, page
from sigdesk.settings import services as settings

MAX_PAGE = 200


AGENTS_SEE_ALL = "inbox.agents_see_all"


def agents_see_all(session: Session) -> bool:
    """The setting that widens what agents see to every conversation (a plain setting: no cipher needed)."""
    return bool(settings.get(session, None, AGENTS_SEE_ALL))  # type: ignore[arg-type]


def sees_all(user: User, widened: bool = False) -> bool:
    """`widened` is agents_see_all(session): pass it wherever a session is at hand."""
    return widened or can(user.role, "conversations.view_all")


def may_see(user: User, assignee_id: int | None, widened: bool = False) -> bool:
    """The visibility rule for one conversation, for code that has no query (live events); visible() is the same rule."""
    return sees_all(user, widened) or assignee_id is None or assignee_id == user.id


def visible(user: User, widened: bool = False) -> Select:
    """Agents see their own and unassigned conversations (all of them when the setting widens it); admins and owners see all."""
    query = select(Conversation)
    if not sees_all(user, widened):
        query = query.where(or_(Conversation.assignee_id == user.id, Conversation.assignee_id.is_(None)))
    return query


def get_visible(session: Session, user: User, conversation_id: int) -> Conversation | None:
    return session.scalar(visible(user, agents_see_all(session)).where(Conversation.id == conversation_id))


def list_conversations(
    session: Session, user: User, limit: int = 50, cursor: Cursor | None = None
) -> Page[tuple[Conversation, Contact]]:
    """Latest activity first; paged by (last activity, id), the order the rows are in."""
    query = (
        visible(user, agents_see_all(session)).join(Contact, Contact.id == Conversation.contact_id).add_columns(Contact)
    )
    limit = min(max(limit, 1), MAX_PAGE)
    query = newest_first(query, Conversation.last_message_at, Conversation.id, cursor, limit)
    rows = [(row[0], row[1]) for row in session.execute(query)]
    return page(rows, limit, lambda row: Cursor(row[0].last_message_at, row[0].id))


def list_messages(
    session: Session, conversation: Conversation, limit: int = 50, cursor: Cursor | None = None
) -> Page[Message]:
    """Newest first, so a thread opens at its latest messages and pages back in time."""
    query = select(Message).where(Message.conversation_id == conversation.id)
    limit = min(max(limit, 1), MAX_PAGE)
    found = list(session.scalars(newest_first(query, Message.timestamp, Message.id, cursor, limit)))
    return page(found, limit, lambda message: Cursor(message.timestamp, message.id))


def reactions_for(session: Session, wamids: list[str]) -> dict[str, list[str]]:
    if not wamids:
        return {}
    found: dict[str, list[str]] = {}
    rows = session.execute(
        select(Reaction.target_wamid, Reaction.emoji).where(
            Reaction.target_wamid.in_(wamids), Reaction.emoji.is_not(None)
        )
    )
    for target, emoji in rows:
        found.setdefault(target, []).append(emoji)
    return found
