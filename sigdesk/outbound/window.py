"""WhatsApp's customer-service window: free-form messages only within 24 hours of the customer's last message."""

from __future__ import annotations

from datetime import datetime, timedelta

from sigdesk.db import utcnow
from sigdesk.models import Conversation

SERVICE_WINDOW = timedelta(hours=24)


def window_closes_at(conversation: Conversation) -> datetime | None:
    """The customer-service window: free-form messages only until 24 h after their last message."""
    if conversation.last_inbound_at is None:
        return None
    return conversation.last_inbound_at + SERVICE_WINDOW


def window_open(conversation: Conversation, now: datetime | None = None) -> bool:
    closes = window_closes_at(conversation)
    return closes is not None and (now or utcnow()) < closes
