"""What the dashboard's page asks for each chart (GET /analytics/charts/<chart>) and is answered, declared once
(pydantic v2): `ui_call()` checks both and documents them with the other page calls."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from sigdesk.schemas import Query

CHART_KEY = r"^[a-z][a-z0-9_]{0,39}$"


class ChartPath(BaseModel):
    chart: str = Field(pattern=CHART_KEY, description="The chart's key, e.g. revenue, team, funnel")


class PeriodQuery(Query):
    """Which days: a named period, or `custom` with start and end (business days, inclusive)."""

    period: Literal["7d", "30d", "90d", "this_month", "last_month", "custom"] = Field(
        "30d", description="The period; the previous period of the same kind is shown beside it"
    )
    start: str | None = Field(None, max_length=10, description="First day (YYYY-MM-DD) of a custom period")
    end: str | None = Field(None, max_length=10, description="Last day (YYYY-MM-DD) of a custom period")
    bucket: Literal["day", "week", "month"] = Field("day", description="How the time series are grouped")


Cell = str | int | float | None


class ChartData(BaseModel):
    """The table behind one chart, its totals for the period and the previous one, and notes for the reader."""

    key: str
    title: str
    kind: Literal["line", "bar", "table", "heatmap", "funnel"]
    columns: list[str]
    rows: list[list[Cell]]
    totals: dict[str, float | int | None]
    previous: dict[str, float | int | None]
    notes: list[str]
    start: str = Field(description="First day of the period")
    end: str = Field(description="Last day of the period")
    previous_start: str
    previous_end: str
    everyone: bool = Field(description="True: the whole team's figures; false: only yours")
