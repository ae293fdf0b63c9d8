"""A message template as the API and the templates page show it: the one serializer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from sigdesk.message_templates.services import components, problem, variables
from sigdesk.models import Template


class TemplateData(BaseModel):
    id: int
    name: str
    language: str
    category: str | None
    status: str | None
    quality: str | None
    rejected_reason: str | None
    components: list[Any] = Field(description="As Meta describes them")
    variables: dict[str, int] = Field(description="How many values each component needs (header, body, button_<index>)")
    problem: str | None = Field(None, description="Why the template cannot be sent (malformed placeholders), if so")
    meta_id: str | None = Field(description="Meta's id of the template")
    created_at: datetime | None = Field(description="When SigDesk first synced it")
    updated_at: datetime | None

    @classmethod
    def of(cls, template: Template) -> "TemplateData":
        return cls(
            id=template.id,
            name=template.name,
            language=template.language,
            category=template.category,
            status=template.status,
            quality=template.quality,
            rejected_reason=template.rejected_reason,
            components=components(template),
            variables=variables(template),
            problem=problem(template),
            meta_id=template.meta_id,
            created_at=template.created_at,
            updated_at=template.updated_at,
        )
