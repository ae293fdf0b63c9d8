"""The rules the lead score is made of (admins define them in Settings → Lead score).

Each contact's score and its reasons are kept on the contact (contacts.lead_score, lead_score_reasons),
recomputed by the worker whenever something a rule reads changes (sigdesk.lead_score.scoring).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from sigdesk.db import MYSQL_TABLE_OPTIONS, Base, UTCDateTime, utcnow


class LeadScoreRule(Base):
    """`kind` says what the rule looks at; `argument` is what it needs (a tag or stage name, a custom field
    key, `key=value`, a number of days), `points` what a match adds (-100 to 100), `label` the short "why"
    shown with the score; `position` orders the rules and their reasons (1 first)."""

    __tablename__ = "lead_score_rules"
    __table_args__ = MYSQL_TABLE_OPTIONS

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    argument: Mapped[str | None] = mapped_column(String(255), default=None)
    points: Mapped[int] = mapped_column(default=0)
    label: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
