"""All tables, imported here so Alembic and the app see one complete metadata."""

from sigdesk.models.audit import AuditEvent, LoginEvent
from sigdesk.models.setting import Setting
from sigdesk.models.user import ApiToken, RecoveryCode, Role, User

__all__ = ["ApiToken", "AuditEvent", "LoginEvent", "RecoveryCode", "Role", "Setting", "User"]
