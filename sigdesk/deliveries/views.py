"""Admin → Webhooks: is Meta reaching SigDesk, and did anything go wrong?"""

from flask import Blueprint, render_template

from sigdesk.deliveries import services as deliveries
from sigdesk.web import db_session, requires

bp = Blueprint("deliveries", __name__, url_prefix="/admin/webhooks")


@bp.get("/")
@requires("settings.manage")
def index():
    session = db_session()
    return render_template(
        "deliveries/index.html",
        health=deliveries.health(session),
        problems=deliveries.problems(session),
        events=deliveries.account_events(session),
    )
