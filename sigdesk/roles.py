"""The one place that decides who may do what.

Views declare the permission they need; the app refuses any view that declares none, so a
forgotten check fails closed.
"""

from __future__ import annotations

from sigdesk.models import Role

AGENT_PERMISSIONS = frozenset(
    {
        "app.use",
        "account.manage",
        "api.use",
        "contacts.classify",
        "consent.record",
        "contacts.view",
        "contacts.edit",
        # saved filters are shared with the team, so anyone who works the contacts may keep one
        "segments.manage",
        # the dashboard: agents see their own figures; "analytics.view_all" shows everyone's
        "analytics.view",
        "orders.manage",
    }
)
ADMIN_PERMISSIONS = AGENT_PERMISSIONS | {
    "team.manage",
    "audit.view",
    "settings.manage",
    "conversations.view_all",
    "canned.manage",
    "labels.manage",
    "contacts.delete",
    "tags.manage",
    "stages.manage",
    "fields.manage",
    "leadscore.manage",
    "contacts.import",
    "contacts.merge",
    "contacts.export",
    "analytics.view_all",
    "products.manage",
    "products.import",
    "orders.import",
    # creating, starting and stopping broadcasts (campaigns message many customers at once)
    "broadcasts.manage",
}
# "connections.redirect": pointing the Graph API or relay address elsewhere, which sends secrets there.
OWNER_PERMISSIONS = ADMIN_PERMISSIONS | {"security.manage", "connections.redirect"}

PERMISSIONS: dict[str, frozenset[str]] = {
    Role.AGENT.value: AGENT_PERMISSIONS,
    Role.ADMIN.value: frozenset(ADMIN_PERMISSIONS),
    Role.OWNER.value: frozenset(OWNER_PERMISSIONS),
}

ALL_PERMISSIONS = frozenset().union(*PERMISSIONS.values())
RANK = {Role.AGENT.value: 1, Role.ADMIN.value: 2, Role.OWNER.value: 3}


def can(role: str | None, permission: str) -> bool:
    if permission not in ALL_PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")
    return permission in PERMISSIONS.get(role or "", frozenset())


def may_manage(actor_role: str, target_role: str, new_role: str | None = None) -> bool:
    """Admins manage agents and admins; only an owner manages or creates owners."""
    if not can(actor_role, "team.manage"):
        return False
    highest = max(RANK[target_role], RANK[new_role] if new_role else 0)
    return RANK[actor_role] >= highest
