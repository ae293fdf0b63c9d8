"""Who acts: a person through a page, an API token, the CLI, or SigDesk itself.

Every command takes one, so the audit log, activity notes and events say the same thing about an
action whichever way it came in, and the permission rules see the same user.
"""

from __future__ import annotations

from dataclasses import dataclass

from sigdesk.models import User

CHANNELS = ("web", "api", "cli", "wizard", "worker", "webhook")


@dataclass(frozen=True)
class Actor:
    user: User | None
    channel: str
    ip: str | None = None
    token_id: int | None = None

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS:
            raise ValueError(f"unknown channel {self.channel!r}")

    @classmethod
    def system(cls, channel: str = "worker") -> "Actor":
        return cls(None, channel)

    @property
    def kind(self) -> str:
        return "token" if self.token_id is not None else "user" if self.user is not None else "system"

    @property
    def user_id(self) -> int | None:
        return self.user.id if self.user is not None else None

    @property
    def name(self) -> str:
        """How activity notes name who did it."""
        return self.user.name if self.user is not None else "SigDesk"
