"""What the header's inbound indicator is answered (GET /admin/inbound/status.json), declared once
(pydantic v2): `ui_call()` checks the answer and documents it with the other page calls, at /inbox/openapi.json.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from sigdesk.relay_client.client import STATES


class InboundStatus(BaseModel):
    """How webhooks reach SigDesk and how the relay connection is doing; the ages are in seconds."""

    mode: Literal["direct", "relay"]
    state: Literal[STATES]  # type: ignore[valid-type]
    label: str = Field(description="The state as the page words it")
    message: str = Field(description="What to do about the state, when something is to be done")
    relay_url: str | None
    paired: bool
    last_event_at: datetime | None
    last_event_age_seconds: int | None
    last_contact_at: datetime | None
    backlog: int | None = Field(description="Events the relay holds that SigDesk has not taken yet")
    oldest_unacked_age_seconds: float | None
    quarantined: int = Field(description="Relayed events kept aside because their signature did not verify")
