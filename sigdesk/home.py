"""The landing page after login."""

from flask import Blueprint, render_template

from sigdesk.web import requires

bp = Blueprint("home", __name__)


@bp.get("/")
@requires("app.use")
def index():
    return render_template("home/index.html")
