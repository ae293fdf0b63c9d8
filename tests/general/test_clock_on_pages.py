"""The pages that list moments show them on the business's clock (Settings → General → time zone) in the one
24-hour format: the backups list and the last automatic backup, the team's last sign-ins, the audit log and the
API tokens. A shop owner reads these tables to answer "when did that happen?"; an ISO string or UTC (here 14
hours and a calendar day away) answers it wrongly.

Each moment is stored as SigDesk stores it (UTC in the database, a file's modification time on disk, the
scheduler's ISO text) and read back from the page over real requests, signed in as the owner."""

from __future__ import annotations

import os
import re
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from sigdesk.backup.schedule import LAST_RUN
from sigdesk.models import ApiToken, AuditEvent, LoginEvent, Setting, User
from sigdesk.settings import services as settings
from tests import factories

pytestmark = pytest.mark.database

ZONE = "Pacific/Kiritimati"  # UTC+14: the business's wall clock is on another calendar day than UTC
MOMENT = datetime(2026, 11, 23, 20, 5, 7, tzinfo=timezone.utc)
LOCAL = MOMENT.astimezone(ZoneInfo(ZONE))  # 2026-11-24 10:05:07


def shown(style: str = "%Y-%m-%d %H:%M") -> str:
    return LOCAL.strftime(style)


def assert_no_utc_or_iso(page: str) -> None:
    """Neither the stored UTC wall clock nor an ISO string reaches the reader (a <time datetime> attribute
    may carry ISO for scripts, but never the text shown)."""
    text = re.sub(r'datetime="[^"]*"', "", page)
    for raw in (f"{MOMENT:%Y-%m-%d %H:%M}", f"{MOMENT:%Y-%m-%dT%H:%M}", f"{LOCAL:%Y-%m-%dT%H:%M}", "+00:00", "+14:00"):
        assert raw not in text, raw


@pytest.fixture
def business_clock(app, owner):
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        settings.set_text(session, state.cipher, "general.timezone", ZONE)
    return state


def test_the_backups_page_shows_files_and_the_last_automatic_backup_on_the_business_clock(
    business_clock, auth, tmp_path
):
    folder = tmp_path / "usb"
    folder.mkdir()
    made = folder / "sigdesk-20261124-100507.sigdesk-backup"
    made.write_bytes(b"not opened by the list")
    os.utime(made, (MOMENT.timestamp(), MOMENT.timestamp()))
    with business_clock.database.session() as session:
        settings.set_text(session, business_clock.cipher, "backup.folder", str(folder))
        session.add(Setting(key=LAST_RUN, value=MOMENT.isoformat(), is_secret=False))  # as the scheduler writes it

    page = auth.client.get("/admin/backups/").get_data(as_text=True)

    assert f"Last automatic backup: {shown()}</p>" in page
    assert f"<td>{shown()}</td>" in page
    assert_no_utc_or_iso(page)


def test_the_team_table_shows_last_sign_ins_on_the_business_clock(business_clock, auth):
    with business_clock.database.session() as session:
        session.execute(update(User).values(last_login_at=MOMENT))

    page = auth.client.get("/admin/team").get_data(as_text=True)

    assert f"<td>{shown()}</td>" in page
    assert_no_utc_or_iso(page)


def test_the_audit_log_shows_events_and_sign_ins_on_the_business_clock(business_clock, auth):
    with business_clock.database.session() as session:
        session.execute(update(AuditEvent).values(at=MOMENT))
        owner = session.scalar(select(User))
        session.add(LoginEvent(at=MOMENT, user_id=owner.id, email=owner.email, success=True))

    page = auth.client.get("/admin/audit").get_data(as_text=True)

    assert page.count(f">{shown('%Y-%m-%d %H:%M:%S')}</time>") >= 2  # an event and a sign-in
    assert_no_utc_or_iso(page)


def test_the_api_tokens_show_when_they_were_last_used_on_the_business_clock(business_clock, auth):
    with business_clock.database.session() as session:
        factories.api_token(session, session.scalar(select(User)), "till script")
        session.execute(update(ApiToken).values(last_used_at=MOMENT))

    page = auth.client.get("/account/").get_data(as_text=True)

    assert f"<td>{shown()}</td>" in page
    assert_no_utc_or_iso(page)
