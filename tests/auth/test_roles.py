import pytest

from sigdesk.roles import can, may_manage


def test_agents_cannot_do_admin_things():
    for permission in ("team.manage", "audit.view", "settings.manage", "security.manage"):
        assert not can("agent", permission)
    assert can("agent", "app.use")


def test_only_owners_manage_security():
    assert can("owner", "security.manage")
    assert not can("admin", "security.manage")


def test_unknown_permissions_are_a_programming_error():
    with pytest.raises(ValueError):
        can("owner", "launch.missiles")


def test_unknown_roles_can_do_nothing():
    assert not can("intern", "app.use")
    assert not can(None, "app.use")


def test_admins_cannot_manage_owners():
    assert not may_manage("admin", "owner")
    assert not may_manage("admin", "agent", "owner")
    assert may_manage("owner", "admin", "owner")
    assert not may_manage("agent", "agent")
