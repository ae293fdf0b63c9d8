"""The signed-in user as the API shows them."""

from __future__ import annotations

from pydantic import BaseModel

from sigdesk.models import User
from sigdesk.models.user import Role


class MeData(BaseModel):
    id: int
    email: str
    name: str
    role: Role
    two_factor: bool

    @classmethod
    def of(cls, user: User) -> "MeData":
        return cls(id=user.id, email=user.email, name=user.name, role=user.role, two_factor=bool(user.totp_enabled))
