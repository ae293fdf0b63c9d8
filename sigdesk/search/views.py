"""GET /api/v1/search: the search box (browser session) and API clients (bearer token)."""

from __future__ import annotations

from typing import Annotated

from flask import Blueprint, request
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema

from sigdesk.openapi import operation
from sigdesk.schemas import PageSize, limit
from sigdesk.search import services
from sigdesk.search.schemas import SearchResults
from sigdesk.web import actor, db_session, requires

bp = Blueprint("search", __name__, url_prefix="/api/v1")


def _searchable(value: str) -> str:
    if len(value) > services.MAX_QUERY_LENGTH:
        raise services.InvalidQuery(f"The search is too long: at most {services.MAX_QUERY_LENGTH} characters.")
    return services.check_query(value)  # its refusals are ValueErrors: pydantic words them as the field's


class SearchQuery(BaseModel):
    model_config = ConfigDict(json_schema_extra={"required": ["q"]})  # missing q is refused with check_query's words

    q: Annotated[
        str,
        AfterValidator(_searchable),
        WithJsonSchema(
            {
                "type": "string",
                "minLength": 1,
                "maxLength": services.MAX_QUERY_LENGTH,
                "pattern": r"\S",
                "description": "Plain words; every word must match, the last one as a prefix",
            }
        ),
    ] = Field("", validate_default=True)
    limit: PageSize = limit(20, services.MAX_LIMIT)


@bp.get("/search")
@requires("app.use")
@operation("search", (200, SearchResults), query=SearchQuery)
def search():
    """Full-text search of message text and contacts you may see, newest first

    Message hits (snippet_html is HTML-escaped, hits in <mark>) and contact hits.
    """
    query: SearchQuery = request.context.query  # type: ignore[attr-defined]
    found = services.search(db_session(), actor(), query.q, query.limit)
    return SearchResults(query=query.q.strip(), **found)
