"""The Analytics section: the dashboard page, one JSON call per chart, and each chart's table as CSV.

Who sees what is decided here, on the server, for every request: with "analytics.view_all" (owners and
admins) the whole team's figures, otherwise the signed-in agent's own (scope.agent_id), whatever the page asks.
"""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, Response, jsonify, render_template, request
from flask_login import current_user

from sigdesk.analytics import services
from sigdesk.analytics.schemas import ChartData, ChartPath, PeriodQuery
from sigdesk.general.clock import business_zone
from sigdesk.openapi import ui_call
from sigdesk.roles import can
from sigdesk.sales.money import shop_currency
from sigdesk.errors import UserError
from sigdesk.web import db_session, requires, wants_json

bp = Blueprint("analytics", __name__, url_prefix="/analytics")


def _scope(query: PeriodQuery) -> services.Scope:
    session = db_session()
    zone = business_zone(session)
    today = datetime.now(zone).date()
    start, end, previous_start, previous_end = services.period(today, query.period, query.start, query.end)
    everyone = can(current_user.role, "analytics.view_all")
    return services.Scope(
        start,
        end,
        previous_start,
        previous_end,
        zone,
        shop_currency(session),
        None if everyone else current_user.id,
        query.bucket,
    )


@bp.get("/")
@requires("analytics.view")
@ui_call("analyticsPage", query=PeriodQuery)
def index():
    query: PeriodQuery = request.context.query  # type: ignore[attr-defined]
    try:
        scope = _scope(query)
    except UserError as refused:
        if wants_json():
            raise
        # the period form keeps what was typed and says what is wrong; no chart asks for the refused days
        scope = _scope(PeriodQuery(bucket=query.bucket))
        return render_template(
            "analytics/index.html",
            scope=scope,
            query=query,
            everyone=scope.agent_id is None,
            sections=[],
            periods=services.PERIODS,
            refused=refused.message,
        ), refused.status
    everyone = scope.agent_id is None
    sections = [
        (section, [panel for panel in services.panels_for(not everyone) if panel.section == section])
        for section in services.SECTIONS
    ]
    return render_template(
        "analytics/index.html",
        scope=scope,
        query=query,
        everyone=everyone,
        sections=[(name, panels) for name, panels in sections if panels],
        periods=services.PERIODS,
    )


@bp.get("/charts/<chart>")
@requires("analytics.view")
@ui_call("analyticsChart", (200, ChartData), path=ChartPath, query=PeriodQuery, errors=(404,))
def chart(chart: str):
    query: PeriodQuery = request.context.query  # type: ignore[attr-defined]
    scope = _scope(query)
    found = services.chart(db_session(), chart, scope)
    data = ChartData(
        **found.as_dict(),
        start=scope.start.isoformat(),
        end=scope.end.isoformat(),
        previous_start=scope.previous_start.isoformat(),
        previous_end=scope.previous_end.isoformat(),
        everyone=scope.agent_id is None,
    )
    response = jsonify(data.model_dump(mode="json"))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/charts/<chart>/csv")
@requires("analytics.view")
@ui_call("analyticsChartCsv", path=ChartPath, query=PeriodQuery, errors=(404,))
def chart_csv(chart: str):
    query: PeriodQuery = request.context.query  # type: ignore[attr-defined]
    scope = _scope(query)
    found = services.chart(db_session(), chart, scope)
    name = f"{found.key}-{scope.start.isoformat()}-{scope.end.isoformat()}.csv"
    return Response(
        found.csv(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )
