"""Where every page lives: the primary sections of the top bar and the grouped Settings menu.

Features add themselves here (one `register_section` or `register_setting` call each) instead of
editing the page header, so the header never grows by hand and shows only what a role may open.
Endpoints are names, not view functions: this module imports no views.
"""

from __future__ import annotations

from dataclasses import dataclass

from sigdesk.roles import can


@dataclass(frozen=True)
class Entry:
    """A link to a page: shown to roles with `permission`, current when the endpoint matches `matches`.

    A match ending in "." covers a whole blueprint ("whatsapp_account."); anything else is one endpoint.
    """

    key: str
    label: str
    endpoint: str
    permission: str
    order: int = 50
    group: str = ""
    matches: tuple[str, ...] = ()

    def is_current(self, endpoint: str | None) -> bool:
        if not endpoint:
            return False
        return any(
            endpoint == match or (match.endswith(".") and endpoint.startswith(match))
            for match in (self.endpoint, *self.matches)
        )


SETTINGS_GROUPS = ("Workspace", "WhatsApp", "Data and security")
_sections: dict[str, Entry] = {}
_settings: dict[str, Entry] = {}


def register_section(entry: Entry) -> None:
    """A primary section of the top bar (Inbox, Contacts, Sales...); registering a key again replaces it."""
    _sections[entry.key] = entry


def register_setting(entry: Entry) -> None:
    """A page of the Settings area, listed under `entry.group` in the side menu."""
    if entry.group not in SETTINGS_GROUPS:
        raise ValueError(f"unknown settings group {entry.group!r} (use one of {', '.join(SETTINGS_GROUPS)})")
    _settings[entry.key] = entry


def sections_for(role: str | None) -> list[Entry]:
    """The top bar for this role; Settings appears only when at least one settings page is open to it."""
    visible = [entry for entry in _sections.values() if can(role, entry.permission)]
    if settings_for(role):
        visible.append(SETTINGS_SECTION)
    return sorted(visible, key=lambda entry: entry.order)


def settings_for(role: str | None) -> list[Entry]:
    return sorted(
        (entry for entry in _settings.values() if can(role, entry.permission)),
        key=lambda entry: (SETTINGS_GROUPS.index(entry.group), entry.order),
    )


def settings_groups_for(role: str | None) -> list[tuple[str, list[Entry]]]:
    entries = settings_for(role)
    return [
        (group, [entry for entry in entries if entry.group == group])
        for group in SETTINGS_GROUPS
        if any(entry.group == group for entry in entries)
    ]


def current_setting(endpoint: str | None) -> Entry | None:
    """The settings page an endpoint belongs to (None outside Settings)."""
    return next((entry for entry in _settings.values() if entry.is_current(endpoint)), None)


def current_section(endpoint: str | None) -> str | None:
    """The key of the section a page belongs to; a settings page wins over its blueprint's section."""
    if current_setting(endpoint) is not None:
        return SETTINGS_SECTION.key
    return next((entry.key for entry in _sections.values() if entry.is_current(endpoint)), None)


SETTINGS_SECTION = Entry("settings", "Settings", "general.index", "app.use", order=1000)

register_section(Entry("inbox", "Inbox", "inbox.index", "app.use", order=10, matches=("home.index", "inbox.")))

for _entry in (
    Entry("general", "General", "general.general", "settings.manage", 10, "Workspace"),
    Entry("team", "Team", "admin.team", "team.manage", 20, "Workspace"),
    Entry("inbox", "Inbox", "inbox.inbox_settings", "canned.manage", 30, "Workspace"),
    Entry("access", "Security and access", "admin.general_settings", "settings.manage", 40, "Workspace"),
    Entry("tags", "Tags", "lifecycle.tags", "tags.manage", 50, "Workspace"),
    Entry("stages", "Stages", "lifecycle.stages", "stages.manage", 60, "Workspace"),
    Entry(
        "contact_fields", "Contact fields", "custom_fields.index", "fields.manage", 65, "Workspace", ("custom_fields.",)
    ),
    Entry(
        "whatsapp", "Connection", "whatsapp_account.index", "settings.manage", 10, "WhatsApp", ("whatsapp_account.",)
    ),
    Entry("inbound", "Inbound", "relay.index", "settings.manage", 20, "WhatsApp", ("relay.",)),
    Entry("webhooks", "Webhooks", "deliveries.index", "settings.manage", 30, "WhatsApp", ("deliveries.",)),
    Entry(
        "templates", "Templates", "message_templates.index", "settings.manage", 40, "WhatsApp", ("message_templates.",)
    ),
    Entry("exports", "Exports", "exports.index", "conversations.view_all", 10, "Data and security", ("exports.",)),
    Entry("backups", "Backups", "backups.index", "security.manage", 20, "Data and security", ("backups.",)),
    Entry("audit", "Audit log", "admin.audit_log", "audit.view", 30, "Data and security"),
    Entry("imports", "Import", "imports.index", "contacts.import", 15, "Data and security", ("imports.",)),
):
    register_setting(_entry)
