"""Liveness for monitors and for the desktop launcher waiting on its server."""

from flask import Blueprint, jsonify

from sigdesk import __version__
from sigdesk.web import public

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@public
def healthz():
    return jsonify(status="ok", version=__version__)


def init_app(app) -> None:
    app.register_blueprint(bp)
