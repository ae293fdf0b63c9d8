"""What an import can bring in, one `Kind` each: contacts (sigdesk.imports.commands), products
(sigdesk.imports.products) and historical orders (sigdesk.imports.orders).

The upload, the mapping page, the worker's batches with their progress, the error report and undo are
written once (sigdesk.imports.commands); a kind says which fields its columns map to, how a batch of rows
is read (outside the write lock) and written (inside it, set-based), what it announces when the file is
done, and how undo takes back its own records (import_records) before the contacts it created. What is
particular to a kind (its permission, its options on the page, the events of its undo) is a hook here, so
the generic code never asks for a kind by name.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from sigdesk.errors import UserError
from sigdesk.roles import can

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from sigdesk.actor import Actor
    from sigdesk.events.catalogue import DomainEvent
    from sigdesk.imports.mapping import Spec
    from sigdesk.imports.reading import Row
    from sigdesk.models import ImportJob

# Kind name -> the module that registers it, imported when first asked for.
MODULES = {
    "contacts": "sigdesk.imports.commands",
    "products": "sigdesk.imports.products",
    "orders": "sigdesk.imports.orders",
}
KIND_NAMES = tuple(MODULES)
# Kind name -> the permission (sigdesk.roles) an import of it needs: known without importing the kind, so
# the upload hook can judge a request before its body is read.
PERMISSIONS = {"contacts": "contacts.import", "products": "products.import", "orders": "orders.import"}
_kinds: dict[str, Kind] = {}


class Kind:
    """One kind of import. `mode` is what its jobs store as their mode (contacts choose theirs)."""

    name: str
    label: str
    spec: Spec
    mode: str = "upsert"

    @property
    def permission(self) -> str:
        return PERMISSIONS[self.name]

    def require(self, actor: Actor) -> None:
        """Refuse an actor whose role may not import this kind (the CLI's system actor may)."""
        if actor.user is not None and not can(actor.user.role, self.permission):
            raise UserError(f"Your role does not allow importing {self.name}", status=403)

    def options(self, session: Session, given: dict[str, Any]) -> dict[str, Any]:
        """The kind's options, checked (each refusal names its field), as kept on the job."""
        return {}

    def form_options(self) -> tuple[str, ...]:
        """The names of the mapping page's fields that are this kind's options."""
        return ()

    def form_defaults(self, session: Session) -> dict[str, str]:
        """What the mapping page's option fields show before anything is typed."""
        return {}

    def undone_events(self, job: ImportJob) -> list[DomainEvent]:
        """Events of this kind's own, recorded beside contacts.import_undone when its undo is done."""
        return []

    def context(self, session: Session, job: ImportJob) -> Any:
        """What a step's batches are read against, loaded once per step."""
        raise NotImplementedError

    def prepare(self, ctx: Any, session: Session, rows: list[Row]) -> Any:
        """A batch's rows read and checked, before the write lock."""
        raise NotImplementedError

    def write(self, session: Session, actor: Actor, ctx: Any, prepared: Any) -> dict[str, int]:
        """Write a prepared batch (rejections included); returns the job counters to add to."""
        raise NotImplementedError

    def finished(self, session: Session, actor: Actor, job: ImportJob, state: str) -> None:
        """The import's one audit entry and event, when the file is done (or failed)."""
        raise NotImplementedError

    def undo_records(self, session: Session, actor: Actor, job: ImportJob, limit: int) -> int:
        """Take back up to `limit` of the job's own records; 0 when none are left."""
        return 0


def register(kind: Kind) -> None:
    _kinds[kind.name] = kind


def may_import_any(role: str | None) -> bool:
    """Whether the role may import something, whatever the kind (the upload's size limit is raised for it)."""
    return any(can(role, permission) for permission in PERMISSIONS.values())


def kind_of(name: str) -> Kind:
    """The kind by name, or a refusal naming the field `kind`."""
    if name not in MODULES:
        raise UserError(f"'{name}' is not something to import (use one of {', '.join(KIND_NAMES)})", field="kind")
    if name not in _kinds:
        import_module(MODULES[name])
    return _kinds[name]
