"""The Settings area's front door and its General page, plus what every page's frame needs:
the navigation for the signed-in role and dates shown in the business's time zone."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from flask import Blueprint, flash, g, has_request_context, redirect, render_template, request, url_for
from flask_login import current_user

from sigdesk import navigation
from sigdesk.general import clock
from sigdesk.settings import commands as settings_commands, services as settings
from sigdesk.settings.specs import SPECS, machine_timezone
from sigdesk.web import acting, cipher, db_session, requires, writing
from sigdesk.words import counted

bp = Blueprint("general", __name__, url_prefix="/settings")

GENERAL_SETTINGS = (
    "general.business_name",
    "general.timezone",
    "contacts.default_country",
    "sales.currency",
    "consent.stop_keywords",
    "consent.start_keywords",
)


@bp.get("/")
@requires("app.use")
def index():
    """The top bar's Settings link: the first settings page this person may open."""
    entries = navigation.settings_for(current_user.role)
    return redirect(url_for(entries[0].endpoint) if entries else url_for("account.index"))


@bp.route("/general", methods=["GET", "POST"])
@requires("settings.manage")
def general():
    errors: dict[str, str] = {}
    if request.method == "POST":
        try:
            with writing() as dbs:
                changed = settings_commands.save(
                    dbs, acting(), cipher(), settings_commands.from_form(GENERAL_SETTINGS, request.form)
                )
        except settings_commands.SettingsRejected as rejected:
            errors = rejected.errors
        else:
            flash("Settings saved." if changed else "Nothing changed.", "success" if changed else "info")
            return redirect(url_for("general.general"))
    dbs = db_session()
    values = {
        key: request.form.get(key, "") if errors else settings.get(dbs, cipher(), key) for key in GENERAL_SETTINGS
    }
    page = render_template(
        "general/index.html",
        specs=SPECS,
        values=values,
        errors=errors,
        zones=_zone_names(),
        machine_zone=machine_timezone(),
    )
    return page, (400 if errors else 200)


@lru_cache(maxsize=1)
def _zone_names() -> list[str]:
    return sorted(name for name in available_timezones() if "/" in name and not name.startswith(("Etc/", "SystemV/")))


def business_zone() -> ZoneInfo:
    """The zone set in Settings → General, read once per request."""
    if not has_request_context():
        return ZoneInfo(machine_timezone())
    if "sigdesk_zone" not in g:
        g.sigdesk_zone = clock.business_zone(db_session())
    return g.sigdesk_zone


@bp.app_template_filter("localtime")
def localtime(value: datetime | str | None, style: str = "datetime") -> str:
    """A stored UTC moment as the business's wall clock (sigdesk.general.clock formats it)."""
    return clock.format_moment(value, business_zone(), style)


bp.add_app_template_filter(counted, "counted")


@bp.app_context_processor
def frame() -> dict[str, Any]:
    """The top bar and Settings menu for whoever is signed in; nothing for anonymous pages."""
    if not current_user.is_authenticated:
        return {"nav_sections": [], "settings_groups": [], "current_setting": None, "current_section": None}
    endpoint = request.endpoint
    return {
        "nav_sections": navigation.sections_for(current_user.role),
        "settings_groups": navigation.settings_groups_for(current_user.role),
        "current_setting": navigation.current_setting(endpoint),
        "current_section": navigation.current_section(endpoint),
        "business_zone_name": lambda: business_zone().key,
    }
