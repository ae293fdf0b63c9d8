"""The one error type for everything a user is told: the message is safe to show as it is.

Services raise it (or a subclass) without knowing who called them; the app answers every one of them
in one place, as JSON or a page, with `status`, so the inbox, the API, the wizard and the CLI say the
same words for the same refusal.
"""

from __future__ import annotations


class UserError(ValueError):
    """A request SigDesk will not carry out as asked; `field` names the input at fault, if one is."""

    status = 400

    def __init__(self, message: str, status: int | None = None, field: str | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status
        self.field = field

    @property
    def message(self) -> str:
        return str(self)


class NotFound(UserError):
    status = 404


class Conflict(UserError):
    status = 409


class Refused(UserError):
    """Well-formed but against a rule (WhatsApp's, or the business's): 422."""

    status = 422
