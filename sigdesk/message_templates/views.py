"""Admin → Templates: Meta's approved templates, with a sync button."""

from flask import Blueprint, flash, redirect, render_template, url_for

from sigdesk.whatsapp_account.services import NotConnected, graph_client
from sigdesk.message_templates import services as templates
from sigdesk.web import acting, cipher, db_session, requires, writing
from sigdesk.whatsapp.errors import GraphError

bp = Blueprint("message_templates", __name__, url_prefix="/admin/templates")


@bp.get("/")
@requires("settings.manage")
def index():
    rows = templates.list_all(db_session())
    return render_template("message_templates/index.html", templates=[templates.data(row) for row in rows])


@bp.post("/sync")
@requires("settings.manage")
def sync():
    try:
        with graph_client(db_session(), cipher()) as client:
            listed = client.list_templates()
    except (NotConnected, GraphError) as exc:
        flash(exc.human if isinstance(exc, GraphError) else str(exc), "error")
        return redirect(url_for("message_templates.index"))
    with writing() as session:
        count = templates.sync(session, acting(), listed)
    flash(f"{count} templates synced from Meta.")
    return redirect(url_for("message_templates.index"))
