"""The landing page after login: the team inbox, where people spend their day."""

from flask import Blueprint

from sigdesk.inbox.views import index as inbox
from sigdesk.web import requires

bp = Blueprint("home", __name__)


@bp.get("/")
@requires("app.use")
def index():
    return inbox()


def init_app(app) -> None:
    app.register_blueprint(bp)
