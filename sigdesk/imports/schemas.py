"""What the contact import operations of the API take and answer (pydantic), documented by sigdesk/openapi.py."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from sigdesk.imports.services import ImportData
from sigdesk.schemas import Id, Text, UploadedFile

__all__ = ["ImportData", "ImportPath", "ImportUpload"]


class ImportPath(BaseModel):
    import_id: Id = Field(description="A contact import's id")


class ImportUpload(BaseModel):
    """multipart/form-data: the file and how to read it."""

    file: UploadedFile = Field(description="A CSV (.csv, .txt, .tsv) or Excel (.xlsx) file, at most 50 MB")
    mapping: Text | None = Field(
        None,
        max_length=20_000,
        description=(
            "JSON object of column name -> field: phone, name, email, company, city, country, language, notes, "
            'owner (a user\'s email), tags, stage, consent, "field:<key>" or ignore. Columns not named are '
            "ignored; left out, the mapping is suggested from the column names"
        ),
    )
    mode: Literal["create", "update", "upsert"] = Field(
        "upsert", description="create: only new contacts; update: only existing ones; upsert: both"
    )
    country: Text | None = Field(
        None, max_length=2, description="Two-letter country for numbers without a country code (default: the setting)"
    )
    consent_confirmed: bool = Field(
        False, description="Confirms where the consent column's words come from; without it a consent column is refused"
    )
    consent_source: Text | None = Field(None, max_length=500, description="Where the consent comes from (evidence)")
