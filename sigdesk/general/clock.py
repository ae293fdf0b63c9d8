"""Moments shown as the business's wall clock (Settings → General → time zone), without Flask,
so pages, activity notes and scheduled jobs all speak the same time and the same 24-hour format."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from sigdesk.models import Setting
from sigdesk.settings.specs import SettingError, parse_timezone, spec_for

TIMEZONE = "general.timezone"
# kept in step with format() in ui/static/js/inbox.js
FORMATS = {"datetime": "%Y-%m-%d %H:%M", "seconds": "%Y-%m-%d %H:%M:%S", "date": "%Y-%m-%d", "time": "%H:%M"}


def business_zone(session: Session) -> ZoneInfo:
    """The zone set in Settings → General; the time zone is never a secret, so no data key is needed."""
    row = session.get(Setting, TIMEZONE)
    try:
        return ZoneInfo(parse_timezone(row.value) if row is not None else spec_for(TIMEZONE).default)
    except SettingError:
        return ZoneInfo(spec_for(TIMEZONE).default)


def as_utc(value: datetime) -> datetime:
    """Naive datetimes are UTC, as SigDesk stores them."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def format_moment(value: datetime | str | None, zone: ZoneInfo, style: str = "datetime") -> str:
    """A stored moment as the wall clock in `zone`, e.g. "2026-12-06 21:34"; unparseable text is shown as is."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    return as_utc(value).astimezone(zone).strftime(FORMATS[style])
