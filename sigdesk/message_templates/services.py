"""Templates live at Meta; SigDesk keeps a copy to list them and to check sends before calling Meta."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sigdesk.db import dump_json, read_json
from sigdesk.errors import NotFound
from sigdesk.message_templates import placeholders
from sigdesk.message_templates.placeholders import Layout, TemplateMalformed
from sigdesk.actor import Actor
from sigdesk.audit.services import record_by
from sigdesk.models import Template
from sigdesk.paging import Cursor, Page, newest_first, page


def sync(session: Session, actor: Actor, listed: list[dict[str, Any]]) -> int:
    """Insert or update every template the WABA has; ones deleted at Meta are marked DELETED.

    `listed` is GraphClient.list_templates(), fetched before the write: Meta can take seconds to answer.
    """
    seen: set[tuple[str, str]] = set()
    existing = {(row.name, row.language): row for row in session.scalars(select(Template))}
    for item in listed:
        key = (str(item.get("name", ""))[:255], str(item.get("language", ""))[:32])
        if not all(key):
            continue
        seen.add(key)
        row = existing.get(key)
        if row is None:
            row = Template(name=key[0], language=key[1])
            session.add(row)
        row.meta_id = str(item.get("id") or "")[:64] or row.meta_id
        row.category = item.get("category") or row.category
        row.status = item.get("status") or row.status
        row.quality = ((item.get("quality_score") or {}).get("score")) or row.quality
        row.components = dump_json(item.get("components") or [])
        row.rejected_reason = item.get("rejected_reason") if item.get("rejected_reason") not in (None, "NONE") else None
    for key, row in existing.items():
        if key not in seen:
            row.status = "DELETED"
    session.flush()
    record_by(session, actor, "templates.synced", detail={"count": len(seen)})
    return len(seen)


def list_all(session: Session) -> list[Template]:
    return list(session.scalars(select(Template).order_by(Template.name, Template.language)))


def list_page(session: Session, limit: int, cursor: Cursor | None = None) -> Page[Template]:
    """Newest first by when SigDesk first synced them: a stable order for the API's cursor."""
    found = list(session.scalars(newest_first(select(Template), Template.created_at, Template.id, cursor, limit)))
    return page(found, limit, lambda template: Cursor(template.created_at, template.id))


def approved(session: Session) -> list[Template]:
    return list(
        session.scalars(
            select(Template).where(func.upper(Template.status) == "APPROVED").order_by(Template.name, Template.language)
        )
    )


def layout(template: Template) -> Layout:
    """The template's placeholders; raises TemplateMalformed (a UserError naming the component) on Meta's rules."""
    return placeholders.parse(template.components)


def variables(template: Template) -> dict[str, int]:
    """How many values each component needs; none for a malformed template (data() says why)."""
    try:
        return layout(template).variables()
    except TemplateMalformed:
        return {}


def problem(template: Template) -> str | None:
    """Why a stored template cannot be sent, shown beside it instead of a crash page."""
    try:
        layout(template)
    except TemplateMalformed as exc:
        return str(exc)
    return None


def texts(template: Template) -> dict[str, str]:
    """Header and body words for the composer's preview."""
    try:
        parts = layout(template).parts
    except TemplateMalformed:
        return {}
    return {part.name: part.text for part in parts if part.index is None and part.text}


def option(template: Template) -> dict[str, Any]:
    """What the inbox's template composer needs about one template."""
    words = texts(template)
    return {
        "id": template.id,
        "name": template.name,
        "language": template.language,
        "category": template.category,
        "variables": variables(template),
        "body": words.get("body") or "",
        "header": words.get("header") or "",
        "problem": problem(template),
    }


def template_content(session: Session, template_id: int, params: placeholders.Values) -> dict[str, Any]:
    """Meta's template object for a send, with every placeholder filled from `params` (per component)."""
    template = session.get(Template, template_id)
    if template is None:
        raise NotFound("No such template; sync templates from Meta first", field="template_id")
    components = placeholders.fill(layout(template), params)
    result: dict[str, Any] = {"name": template.name, "language": {"code": template.language}}
    if components:
        result["components"] = components
    return result


def check(template: Template, sent: dict[str, Any]) -> None:
    """Refuse a send (from any entry point) that leaves one of the template's variables empty."""
    placeholders.check(layout(template), sent.get("components"))


def sent_text(template: Template | None, sent: dict[str, Any]) -> str | None:
    """The words a sent template showed the customer; None when the template is unknown or malformed."""
    if template is None:
        return None
    try:
        return placeholders.render(layout(template), sent.get("components"))
    except TemplateMalformed:
        return None


def data(template: Template) -> dict[str, Any]:
    return {
        "id": template.id,
        "name": template.name,
        "language": template.language,
        "category": template.category,
        "status": template.status,
        "quality": template.quality,
        "rejected_reason": template.rejected_reason,
        "components": components(template),
        "variables": variables(template),
        "problem": problem(template),
    }


def components(template: Template) -> list[Any]:
    """Meta's components as stored; an empty list when they are not a JSON list (problem() says why)."""
    return read_json(template.components, list, "templates.components")
