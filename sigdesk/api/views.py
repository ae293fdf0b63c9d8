"""REST API under /api/v1, authenticated by personal API tokens (or the browser session)."""

from flask import Blueprint, jsonify

from sigdesk.api.openapi import document
from sigdesk.web import actor, public, requires

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.get("/openapi.json")
@public
def openapi():
    return jsonify(document())


@bp.get("/me")
@requires("api.use")
def me():
    user = actor()
    return jsonify(id=user.id, email=user.email, name=user.name, role=user.role, two_factor=user.totp_enabled)
