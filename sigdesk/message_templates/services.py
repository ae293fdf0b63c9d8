"""Templates live at Meta; SigDesk keeps a copy to list them and to check sends before calling Meta."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sigdesk.models import Template


def sync(session: Session, listed: list[dict[str, Any]]) -> int:
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
        row.components = json.dumps(item.get("components") or [], ensure_ascii=False)
        row.rejected_reason = item.get("rejected_reason") if item.get("rejected_reason") not in (None, "NONE") else None
    for key, row in existing.items():
        if key not in seen:
            row.status = "DELETED"
    session.flush()
    return len(seen)


def list_all(session: Session) -> list[Template]:
    return list(session.scalars(select(Template).order_by(Template.name, Template.language)))


def variables(template: Template) -> dict[str, int]:
    """How many {{n}} placeholders each component has, so forms and checks know what to ask for."""
    counts: dict[str, int] = {}
    for component in json.loads(template.components or "[]"):
        text = component.get("text") or ""
        count = sum(1 for n in range(1, 51) if f"{{{{{n}}}}}" in text)
        if count:
            counts[str(component.get("type", "")).lower()] = count
    return counts


def data(template: Template) -> dict[str, Any]:
    return {
        "id": template.id, "name": template.name, "language": template.language, "category": template.category,
        "status": template.status, "quality": template.quality, "rejected_reason": template.rejected_reason,
        "components": json.loads(template.components or "[]"), "variables": variables(template),
    }
