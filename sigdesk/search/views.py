"""GET /api/v1/search: the search box (browser session) and API clients (bearer token)."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from sigdesk.search import services
from sigdesk.web import actor, db_session, error_response, requires

bp = Blueprint("search", __name__, url_prefix="/api/v1")


@bp.get("/search")
@requires("app.use")
def search():
    raw_limit = request.args.get("limit", "20")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= services.MAX_LIMIT:
        return error_response(400, f"'limit' must be a whole number from 1 to {services.MAX_LIMIT}")
    query = request.args.get("q", "")
    try:
        found = services.search(db_session(), actor(), query, int(raw_limit))
    except services.InvalidQuery as exc:
        return error_response(400, str(exc))
    return jsonify(query=query.strip(), **found)
