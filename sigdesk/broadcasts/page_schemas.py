"""What the broadcast pages' own JSON calls take and answer (the campaign page's live progress, the draft page's
per-recipient preview). Declared once with `ui_call()`: documented at /inbox/openapi.json beside the other page
calls, never in the public API (that is sigdesk.api.broadcasts, with sigdesk.broadcasts.schemas)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from sigdesk.schemas import Id, Query


class PreviewQuery(Query):
    contact_id: Id = Field(description="The audience's contact to fill the template for")


class PreviewData(BaseModel):
    """The words this contact would read, or why they would be skipped."""

    contact_id: int
    text: str | None
    reason: str | None


class ProgressSeries(BaseModel):
    """Cumulative counts at the end of each time bucket; `at` in seconds since 1970 (UTC)."""

    at: list[int]
    sent: list[int]
    delivered: list[int]
    read: list[int]
    replied: list[int]
    failed: list[int]
    skipped: list[int]


class FailureGroup(BaseModel):
    code: int | None = Field(description="Meta's error code, when Meta said no")
    reason: str
    count: int


class ProgressData(BaseModel):
    """A campaign as the page shows it live: read from the server's state on every poll, so leaving the page
    and coming back (or another admin's window) shows the same."""

    status: str
    final: bool = Field(description="Completed or cancelled: nothing will change any more")
    pause_kind: str | None
    banner: str | None = Field(description="Why it is paused and what happens next, in words")
    recipient_count: int
    done: int = Field(description="Recipients with an outcome (everything but pending and sending)")
    counts: dict[str, int]
    series: ProgressSeries
    failures: list[FailureGroup]
