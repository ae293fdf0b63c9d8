"""What the backups page's progress bar is answered (GET /admin/backups/status), declared once (pydantic v2):
`ui_call()` checks the answer and documents it with the other page calls, at /inbox/openapi.json.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class BackupProgress(BaseModel):
    """The backup started from the page: idle, running (phase, done of total), done, or failed (error)."""

    state: Literal["idle", "running", "done", "failed"]
    file: str | None = Field(None, description="The backup file's name in the backup folder")
    phase: str | None = Field(None, description="While running: the step under way")
    done: int | None = Field(None, description="While running: how far the step is, out of total")
    total: int | None = None
    error: str | None = Field(None, description="When failed: what went wrong, fit to show")
