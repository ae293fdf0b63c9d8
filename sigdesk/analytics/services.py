"""The dashboard's figures: one function per chart, each answering a `Chart` (the table behind it), for a
`Scope` (the period, the one before it for comparison, and whose figures: everyone's or one agent's).

Sales are read straight from the orders through their (ordered_on, status) and (contact_id, ordered_on)
indexes; messages and conversation episodes come from the rollups (sigdesk.analytics.rollups), because
counting a quarter of a million messages per request is not fast enough. Contacts come from their
created_at index and the stage and consent histories.

Other features add panels without this package importing them: `register_panel(key, title, compute)`
(predictions plugs in its reorder-prediction accuracy this way).
"""

from __future__ import annotations

import calendar
import csv
import io
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, distinct, exists, func, literal, or_, select
from sqlalchemy.orm import Session, aliased

from sigdesk.errors import UserError
from sigdesk.exports.services import safe_cell
from sigdesk.models import (
    ConsentEvent,
    Contact,
    Order,
    OrderLine,
    OrderStatusChange,
    Product,
    Stage,
    StageChange,
    User,
)
from sigdesk.models.analytics import AnalyticsDaily, AnalyticsEpisode
from sigdesk.models.sales import NOT_SOLD
from sigdesk.sales.money import from_minor

PERIODS = ("7d", "30d", "90d", "this_month", "last_month", "custom")
BUCKETS = ("day", "week", "month")
MAX_DAYS = 366
EARLIEST_DAY = date(1970, 1, 1)  # custom periods run from here to a year ahead (beyond, the UTC bounds overflow)
TOP = 10

Cell = str | int | float | None


@dataclass(frozen=True)
class Scope:
    """What a chart shows: days `start`..`end` (inclusive, business days) against `previous_start`..
    `previous_end`; `agent_id` set means one agent's own figures only."""

    start: date
    end: date
    previous_start: date
    previous_end: date
    zone: ZoneInfo
    currency: str
    agent_id: int | None = None
    bucket: str = "day"

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def utc_bounds(self, start: date, end: date) -> tuple[datetime, datetime]:
        """The UTC moments at which business day `start` begins and the day after `end` begins."""
        low = datetime.combine(start, time(), self.zone).astimezone(timezone.utc)
        return low, datetime.combine(end + timedelta(days=1), time(), self.zone).astimezone(timezone.utc)


@dataclass
class Chart:
    """The table behind a chart: `columns` names, `rows` cells; `totals` for the period and `previous` for the
    one before; `notes` say what a reader must know (other currencies left out, too little data)."""

    key: str
    title: str
    kind: str  # line, bar, table, heatmap, funnel
    columns: list[str]
    rows: list[list[Cell]]
    totals: dict[str, float | int | None] = field(default_factory=dict)
    previous: dict[str, float | int | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "kind": self.kind,
            "columns": self.columns,
            "rows": self.rows,
            "totals": self.totals,
            "previous": self.previous,
            "notes": self.notes,
        }

    def csv(self) -> str:
        """The table as CSV; text cells that a spreadsheet would run as formulas are escaped."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow([safe_cell(name) for name in self.columns])
        for row in self.rows:
            writer.writerow([safe_cell(cell) for cell in row])
        return out.getvalue()


@dataclass(frozen=True)
class Panel:
    key: str
    title: str
    compute: Callable[[Session, Scope], Chart]
    section: str = "sales"
    order: int = 50
    everyone_only: bool = False  # shown to owners and admins only (figures that are not one agent's)


_panels: dict[str, Panel] = {}


def register_panel(
    key: str,
    title: str,
    compute: Callable[[Session, Scope], Chart],
    *,
    section: str = "sales",
    order: int = 50,
    everyone_only: bool = False,
) -> None:
    """Adds a chart to a section of the dashboard; `compute(session, scope)` answers its Chart and must honour
    `scope.agent_id` (or pass everyone_only=True). Registering a key again replaces it."""
    _panels[key] = Panel(key, title, compute, section, order, everyone_only)


def unregister_panel(key: str) -> None:
    """Takes a panel off the dashboard (a plug-in switched off; tests)."""
    _panels.pop(key, None)


def panels_for(agent_only: bool) -> list[Panel]:
    return sorted(
        (panel for panel in _panels.values() if not (agent_only and panel.everyone_only)),
        key=lambda panel: (SECTIONS.index(panel.section) if panel.section in SECTIONS else 99, panel.order),
    )


def panel(key: str) -> Panel | None:
    return _panels.get(key)


SECTIONS = ("sales", "conversations", "team", "contacts")

# --- the period -----------------------------------------------------------------------------------


def _parse_day(text: str | None, name: str) -> date:
    if not text:
        raise UserError(f"Give '{name}' as YYYY-MM-DD for a custom period", field=name)
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UserError(f"'{name}' must be a date as YYYY-MM-DD", field=name) from None


def _shift_month(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def period(today: date, name: str, start: str | None = None, end: str | None = None) -> tuple[date, date, date, date]:
    """(start, end, previous_start, previous_end) for a period name; months compare with the month before,
    the rest with as many days just before."""
    if name not in PERIODS:
        raise UserError(f"'period' must be one of {', '.join(PERIODS)}", field="period")
    if name in ("7d", "30d", "90d"):
        low, high = today - timedelta(days=int(name[:-1]) - 1), today
    elif name == "this_month":
        low, high = today.replace(day=1), today
        previous_low = _shift_month(low, -1)
        return low, high, previous_low, _shift_month(high, -1)
    elif name == "last_month":
        high = today.replace(day=1) - timedelta(days=1)
        low = high.replace(day=1)
        previous_low = _shift_month(low, -1)
        return low, high, previous_low, low - timedelta(days=1)
    else:
        low, high = _parse_day(start, "start"), _parse_day(end, "end")
        latest = _shift_month(today, 12)
        for day, name in ((low, "start"), (high, "end")):
            if not EARLIEST_DAY <= day <= latest:
                raise UserError(
                    f"'{name}' must be between {EARLIEST_DAY.isoformat()} and {latest.isoformat()}", field=name
                )
        if high < low:
            raise UserError("'end' must be on or after 'start'", field="end")
        if (high - low).days + 1 > MAX_DAYS:
            raise UserError(f"A custom period is at most {MAX_DAYS} days", field="start")
    span = high - low
    return low, high, low - span - timedelta(days=1), low - timedelta(days=1)


def bucket_of(day: date, bucket: str) -> date:
    if bucket == "week":
        return day - timedelta(days=day.weekday())
    if bucket == "month":
        return day.replace(day=1)
    return day


def buckets(start: date, end: date, bucket: str) -> list[date]:
    seen: list[date] = []
    day = start
    while day <= end:
        key = bucket_of(day, bucket)
        if not seen or seen[-1] != key:
            seen.append(key)
        day += timedelta(days=1)
    return seen


def _series(
    scope: Scope, per_day: dict[date, Sequence[float]], previous_per_day: dict[date, Sequence[float]], width: int
) -> list[list[Cell]]:
    """Rows of (bucket, values..., previous values...): the previous period lined up bucket by bucket."""
    current = _bucketed(per_day, scope.start, scope.end, scope.bucket, width)
    before = _bucketed(previous_per_day, scope.previous_start, scope.previous_end, scope.bucket, width)
    rows: list[list[Cell]] = []
    for index, (key, values) in enumerate(current):
        old = before[index][1] if index < len(before) else [None] * width
        rows.append([key.isoformat(), *values, *old])
    return rows


def _bucketed(
    per_day: dict[date, Sequence[float]], start: date, end: date, bucket: str, width: int
) -> list[tuple[date, list[float]]]:
    sums: dict[date, list[float]] = {key: [0] * width for key in buckets(start, end, bucket)}
    for day, values in per_day.items():
        if start <= day <= end:
            target = sums[bucket_of(day, bucket)]
            for index, value in enumerate(values):
                target[index] += value
    return list(sums.items())


def _money(minor: int | Decimal | None, currency: str) -> float:
    return float(from_minor(int(minor or 0), currency))


# --- sales ------------------------------------------------------------------------------------------


def _sold(scope: Scope, start: date, end: date) -> list:
    conditions = [
        Order.ordered_on >= start,
        Order.ordered_on <= end,
        Order.status.not_in(NOT_SOLD),
        Order.currency == scope.currency,
    ]
    if scope.agent_id is not None:
        conditions.append(credited_to(scope.agent_id))
    return conditions


def credited_to(agent_id: int) -> ColumnElement[bool]:
    """An agent's own sale: an order they created, or one whose first step away from "new" they made (a cart
    order arrives created by no one; the agent who confirms it made the sale). The first step is one index-only
    seek per order (ix_order_status_changes_first_step), within the orders the period's range already reads."""
    first_step_by = (
        select(OrderStatusChange.changed_by)
        .where(OrderStatusChange.order_id == Order.id, OrderStatusChange.from_status == "new")
        .order_by(OrderStatusChange.id)
        .limit(1)
        .correlate(Order)
        .scalar_subquery()
    )
    return or_(Order.created_by == agent_id, first_step_by == agent_id)


def _currency_note(scope: Scope, others: set[str]) -> list[str]:
    if not others:
        return []
    listed = ", ".join(sorted(others))
    return [f"Only orders in {scope.currency} are summed; this period also has orders in {listed}."]


def _only_currency(scope: Scope) -> list[str]:
    return [f"Orders in {scope.currency} only; the Revenue chart says when the period has others."]


def _per_day_sales(
    session: Session, scope: Scope, start: date, end: date
) -> tuple[dict[date, tuple[int, int]], set[str]]:
    """Orders and revenue per day in the shop's currency, and the other currencies seen, in one range scan."""
    conditions = [Order.ordered_on >= start, Order.ordered_on <= end, Order.status.not_in(NOT_SOLD)]
    if scope.agent_id is not None:
        conditions.append(credited_to(scope.agent_id))
    rows = session.execute(
        select(Order.ordered_on, Order.currency, func.count(), func.sum(Order.total_minor))
        .where(*conditions)
        .group_by(Order.ordered_on, Order.currency)
    )
    per_day: dict[date, tuple[int, int]] = {}
    others: set[str] = set()
    for day, currency, count, total in rows:
        if currency == scope.currency:
            per_day[day] = (count, int(total or 0))
        else:
            others.add(currency)
    return per_day, others


def revenue(session: Session, scope: Scope) -> Chart:
    current, others = _per_day_sales(session, scope, scope.start, scope.end)
    before, _ = _per_day_sales(session, scope, scope.previous_start, scope.previous_end)

    def as_values(per_day: dict[date, tuple[int, int]]) -> dict[date, list[float]]:
        return {day: [_money(total, scope.currency), count] for day, (count, total) in per_day.items()}

    def summary(per_day: dict[date, tuple[int, int]]) -> dict[str, float | int | None]:
        orders = sum(count for count, _ in per_day.values())
        total = sum(minor for _, minor in per_day.values())
        return {
            "revenue": _money(total, scope.currency),
            "orders": orders,
            "average_order_value": _money(total // orders, scope.currency) if orders else None,
        }

    cur = scope.currency
    return Chart(
        "revenue",
        f"Revenue and orders ({cur})",
        "line",
        [scope.bucket, f"Revenue ({cur})", "Orders", f"Revenue, previous period ({cur})", "Orders, previous period"],
        _series(scope, as_values(current), as_values(before), 2),
        summary(current),
        summary(before),
        _currency_note(scope, others),
    )


def top_products(session: Session, scope: Scope) -> Chart:
    name = func.coalesce(Product.name, OrderLine.description)
    rows = session.execute(
        select(
            OrderLine.sku,
            func.max(name),
            func.sum(OrderLine.quantity),
            func.sum(OrderLine.total_minor),
            func.count(distinct(OrderLine.order_id)),
        )
        .join(Order, Order.id == OrderLine.order_id)
        .outerjoin(Product, Product.id == OrderLine.product_id)
        .where(*_sold(scope, scope.start, scope.end))
        .group_by(OrderLine.sku, case((OrderLine.sku.is_(None), OrderLine.description), else_=None))
        .order_by(func.sum(OrderLine.total_minor).desc())
        .limit(TOP)
    ).all()
    return Chart(
        "top_products",
        "Top products",
        "bar",
        ["SKU", "Product", "Quantity", f"Revenue ({scope.currency})", "Orders"],
        [
            [sku or "", label or "", float(quantity or 0), _money(total, scope.currency), orders]
            for sku, label, quantity, total, orders in rows
        ],
        notes=_only_currency(scope),
    )


def top_customers(session: Session, scope: Scope) -> Chart:
    ranked = (
        select(Order.contact_id, func.sum(Order.total_minor).label("total"), func.count().label("orders"))
        .where(*_sold(scope, scope.start, scope.end))
        .group_by(Order.contact_id)
        .order_by(func.sum(Order.total_minor).desc())
        .limit(TOP)
        .subquery()
    )
    rows = session.execute(
        select(ranked.c.contact_id, Contact, ranked.c.total, ranked.c.orders)
        .join(Contact, Contact.id == ranked.c.contact_id)
        .order_by(ranked.c.total.desc())
    ).all()
    return Chart(
        "top_customers",
        "Top customers",
        "bar",
        ["Contact id", "Customer", f"Revenue ({scope.currency})", "Orders"],
        [[contact_id, who.name, _money(total, scope.currency), orders] for contact_id, who, total, orders in rows],
        notes=_only_currency(scope),
    )


def _customers_per_day(session: Session, scope: Scope, start: date, end: date) -> dict[date, list[float]]:
    """Per day, customers who bought for the first time ever and customers who had bought before; a customer
    counts once in a period, on their first order day in it."""
    earlier = aliased(Order)
    before_conditions = [
        earlier.contact_id == Order.contact_id,
        earlier.ordered_on < start,
        earlier.status.not_in(NOT_SOLD),
    ]
    returning = exists(select(earlier.id).where(*before_conditions))
    first_in_period = (
        select(Order.contact_id, func.min(Order.ordered_on).label("day"), returning.label("was_customer"))
        .where(*_sold(scope, start, end))
        .group_by(Order.contact_id)
        .subquery()
    )
    rows = session.execute(
        select(
            first_in_period.c.day,
            func.sum(case((first_in_period.c.was_customer, 0), else_=1)),
            func.sum(case((first_in_period.c.was_customer, 1), else_=0)),
        ).group_by(first_in_period.c.day)
    )
    return {day: [int(new or 0), int(old or 0)] for day, new, old in rows}


def new_vs_returning(session: Session, scope: Scope) -> Chart:
    current = _customers_per_day(session, scope, scope.start, scope.end)
    before = _customers_per_day(session, scope, scope.previous_start, scope.previous_end)

    def summary(per_day: dict[date, list[float]]) -> dict[str, float | int | None]:
        return {"new": sum(v[0] for v in per_day.values()), "returning": sum(v[1] for v in per_day.values())}

    return Chart(
        "customers",
        "New and returning customers",
        "line",
        [scope.bucket, "New", "Returning", "New, previous period", "Returning, previous period"],
        _series(scope, current, before, 2),
        summary(current),
        summary(before),
        ["A customer is new when the period holds their first order ever (cancelled and returned ones aside)."],
    )


# --- conversations ------------------------------------------------------------------------------------


def _daily(session: Session, metric: str, dimension: str, start: date, end: date) -> dict[date, int]:
    rows = session.execute(
        select(AnalyticsDaily.day, AnalyticsDaily.value).where(
            AnalyticsDaily.metric == metric,
            AnalyticsDaily.day >= start,
            AnalyticsDaily.day <= end,
            AnalyticsDaily.dimension == dimension,
        )
    )
    return {day: int(value) for day, value in rows}


def _agent_dimension(scope: Scope) -> str:
    return f"a{scope.agent_id}" if scope.agent_id is not None else ""


def messages(session: Session, scope: Scope) -> Chart:
    dimension = _agent_dimension(scope)

    def per_day(start: date, end: date) -> dict[date, list[float]]:
        inbound = _daily(session, "messages_in", dimension, start, end)
        outbound = _daily(session, "messages_out", dimension, start, end)
        return {day: [inbound.get(day, 0), outbound.get(day, 0)] for day in set(inbound) | set(outbound)}

    current, before = per_day(scope.start, scope.end), per_day(scope.previous_start, scope.previous_end)

    def summary(values: dict[date, list[float]]) -> dict[str, float | int | None]:
        return {"in": sum(v[0] for v in values.values()), "out": sum(v[1] for v in values.values())}

    notes = ["Your conversations' messages in, and the messages you sent."] if scope.agent_id is not None else []
    return Chart(
        "messages",
        "Messages in and out",
        "line",
        [scope.bucket, "In", "Out", "In, previous period", "Out, previous period"],
        _series(scope, current, before, 2),
        summary(current),
        summary(before),
        notes,
    )


def _episodes(scope: Scope, column, start: date, end: date) -> list:
    conditions = [column >= start, column <= end]
    if scope.agent_id is not None:
        conditions.append(AnalyticsEpisode.agent_id == scope.agent_id)
    return conditions


def _count_by_day(session: Session, scope: Scope, column, start: date, end: date) -> dict[date, int]:
    rows = session.execute(select(column, func.count()).where(*_episodes(scope, column, start, end)).group_by(column))
    return {day: count for day, count in rows}


def _backlog(session: Session, scope: Scope, start: date, end: date) -> dict[date, int]:
    """Conversations still open at the end of each day. Open before `start` is all started before it less all
    resolved before it (a conversation is resolved on or after the day it started): two index-only counts."""
    mine = [AnalyticsEpisode.agent_id == scope.agent_id] if scope.agent_id is not None else []
    started_before = session.scalar(select(func.count()).where(AnalyticsEpisode.started_on < start, *mine))
    resolved_before = session.scalar(select(func.count()).where(AnalyticsEpisode.resolved_on < start, *mine))
    started = _count_by_day(session, scope, AnalyticsEpisode.started_on, start, end)
    resolved = _count_by_day(session, scope, AnalyticsEpisode.resolved_on, start, end)
    open_now = int(started_before or 0) - int(resolved_before or 0)
    backlog: dict[date, int] = {}
    day = start
    while day <= end:
        open_now += started.get(day, 0) - resolved.get(day, 0)
        backlog[day] = open_now
        day += timedelta(days=1)
    return backlog


def conversations(session: Session, scope: Scope) -> Chart:
    def per_day(start: date, end: date) -> dict[date, list[float]]:
        new = _count_by_day(session, scope, AnalyticsEpisode.started_on, start, end)
        done = _count_by_day(session, scope, AnalyticsEpisode.resolved_on, start, end)
        return {day: [new.get(day, 0), done.get(day, 0)] for day in set(new) | set(done)}

    current, before = per_day(scope.start, scope.end), per_day(scope.previous_start, scope.previous_end)
    backlog = _backlog(session, scope, scope.start, scope.end)
    rows = _series(scope, current, before, 2)
    for row in rows:  # the backlog is a level, not a sum: the last day of the bucket
        day = date.fromisoformat(str(row[0]))
        last = min(scope.end, _bucket_end(day, scope.bucket))
        row.insert(3, backlog.get(last, 0))

    def summary(values: dict[date, list[float]]) -> dict[str, float | int | None]:
        return {"new": sum(v[0] for v in values.values()), "resolved": sum(v[1] for v in values.values())}

    totals = summary(current) | {"open_backlog": backlog.get(scope.end, 0)}
    return Chart(
        "conversations",
        "Conversations: new, resolved, open backlog",
        "line",
        [scope.bucket, "New", "Resolved", "Open at end", "New, previous period", "Resolved, previous period"],
        rows,
        totals,
        summary(before),
        ["A conversation runs from the customer's first message after it was resolved to its next resolution."],
    )


def _bucket_end(day: date, bucket: str) -> date:
    if bucket == "week":
        return day + timedelta(days=6)
    if bucket == "month":
        return day.replace(day=calendar.monthrange(day.year, day.month)[1])
    return day


def percentile(values: Sequence[int], share: float) -> int | None:
    """The nearest-rank percentile (share 0.5: the median), or None without values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-int(share * 1000) * len(ordered) // 1000))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True)
class Spread:
    """How many values, and their nearest-rank median and 90th percentile (None without values)."""

    count: int = 0
    median: int | None = None
    p90: int | None = None


def _at_rank(rank, count, tenths: int):
    """True for the row whose 1-based rank is the nearest rank of tenths/10 of count: ceil(tenths * count / 10),
    in integer comparisons both databases read the same way."""
    return and_(rank * 10 >= count * tenths, (rank - 1) * 10 < count * tenths)


def spreads(session: Session, column, conditions: list, by=None) -> dict[Any, Spread]:
    """Median and p90 of `column` over the rows matching `conditions`, per value of `by` (or one, keyed None),
    ranked by a window function in the database: only two rows per group come back, not every value."""
    if session.get_bind().dialect.name == "sqlite":
        return _spreads_in_python(session, column, conditions, by)
    partition = [by] if by is not None else None
    ranked = (
        select(
            (by if by is not None else literal(0)).label("part"),
            column.label("value"),
            func.row_number().over(partition_by=partition, order_by=column).label("rank"),
            func.count().over(partition_by=partition).label("total"),
        )
        .where(*conditions, column.is_not(None))
        .subquery()
    )
    rows = session.execute(
        select(ranked.c.part, ranked.c.value, ranked.c.total, ranked.c.rank).where(
            or_(_at_rank(ranked.c.rank, ranked.c.total, 5), _at_rank(ranked.c.rank, ranked.c.total, 9))
        )
    )
    found: dict[Any, dict[str, Any]] = {}
    for part, value, total, rank in rows:
        key = part if by is not None else None
        entry = found.setdefault(key, {"count": int(total)})
        if rank * 10 >= total * 5 and (rank - 1) * 10 < total * 5:
            entry["median"] = int(value)
        if rank * 10 >= total * 9 and (rank - 1) * 10 < total * 9:
            entry["p90"] = int(value)
    return {key: Spread(**entry) for key, entry in found.items()}


def _spreads_in_python(session: Session, column, conditions: list, by=None) -> dict[Any, Spread]:
    """SQLite runs in-process: reading the (group, value) pairs straight from its cursor and ranking them here is
    several times faster than a window function, an ORDER BY per rank, or the ORM's row handling (measured by
    tests/perf/bench_dashboard.py)."""
    part = by if by is not None else literal(0)
    statement = select(part, column).where(*conditions, column.is_not(None))
    compiled = statement.compile(dialect=session.get_bind().dialect, compile_kwargs={"render_postcompile": True})
    parameters = [_plain(compiled.params[name]) for name in compiled.positiontup or ()]
    cursor = session.connection().connection.dbapi_connection.cursor()
    try:
        values: dict[Any, list[int]] = defaultdict(list)
        for key, value in cursor.execute(str(compiled), parameters):
            values[key if by is not None else None].append(int(value))
    finally:
        cursor.close()
    return {key: Spread(len(found), percentile(found, 0.5), percentile(found, 0.9)) for key, found in values.items()}


def _plain(value: Any) -> Any:
    """A bound value as SQLAlchemy's SQLite dialect stores it (dates as ISO text)."""
    return value.isoformat() if type(value) is date else value


def _times(session: Session, scope: Scope, start: date, end: date) -> tuple[Spread, Spread]:
    first = spreads(
        session,
        AnalyticsEpisode.first_response_seconds,
        _episodes(scope, AnalyticsEpisode.started_on, start, end),
    ).get(None, Spread())
    resolution = spreads(
        session,
        AnalyticsEpisode.resolution_seconds,
        _episodes(scope, AnalyticsEpisode.resolved_on, start, end),
    ).get(None, Spread())
    return first, resolution


def _time_summary(first: Spread, resolution: Spread) -> dict[str, float | int | None]:
    return {
        "first_response_median_s": first.median,
        "first_response_p90_s": first.p90,
        "resolution_median_s": resolution.median,
        "resolution_p90_s": resolution.p90,
        "answered": first.count,
        "resolved": resolution.count,
    }


def response_times(session: Session, scope: Scope) -> Chart:
    current = _time_summary(*_times(session, scope, scope.start, scope.end))
    before = _time_summary(*_times(session, scope, scope.previous_start, scope.previous_end))
    labels = {
        "first_response_median_s": "First response, median (seconds)",
        "first_response_p90_s": "First response, p90 (seconds)",
        "resolution_median_s": "Resolution, median (seconds)",
        "resolution_p90_s": "Resolution, p90 (seconds)",
        "answered": "Conversations answered",
        "resolved": "Conversations resolved",
    }
    return Chart(
        "response_times",
        "First response and resolution times",
        "table",
        ["Measure", "This period", "Previous period"],
        [[label, current[key], before[key]] for key, label in labels.items()],
        current,
        before,
        [
            "Counted around the clock: SigDesk has no business hours setting yet.",
            "First response: the first message a person of the team wrote after the customer's first message.",
        ],
    )


def heatmap(session: Session, scope: Scope) -> Chart:
    """Customer messages by weekday and hour of the business's clock."""
    rows = session.execute(
        select(AnalyticsDaily.day, AnalyticsDaily.dimension, AnalyticsDaily.value).where(
            AnalyticsDaily.metric == "inbound_hour",
            AnalyticsDaily.day >= scope.start,
            AnalyticsDaily.day <= scope.end,
            AnalyticsDaily.dimension.like("h__" + _agent_dimension(scope)),
        )
    )
    suffix = _agent_dimension(scope)
    grid = [[0] * 24 for _ in range(7)]
    for day, dimension, value in rows:
        if dimension[3:] != suffix:
            continue
        grid[day.weekday()][int(dimension[1:3])] += int(value)
    names = list(calendar.day_abbr)
    return Chart(
        "heatmap",
        "Busiest hours (customer messages)",
        "heatmap",
        ["Weekday", *(f"{hour:02d}" for hour in range(24))],
        [[names[weekday], *grid[weekday]] for weekday in range(7)],
        {"messages": sum(map(sum, grid))},
        notes=[f"Hours in the business's time zone ({scope.zone.key})."],
    )


# --- team ---------------------------------------------------------------------------------------------


def team(session: Session, scope: Scope) -> Chart:
    started = [*_episodes(scope, AnalyticsEpisode.started_on, scope.start, scope.end)]
    handled = dict(
        session.execute(
            select(AnalyticsEpisode.agent_id, func.count())
            .where(*started, AnalyticsEpisode.agent_id.is_not(None))
            .group_by(AnalyticsEpisode.agent_id)
        ).all()
    )
    first = spreads(session, AnalyticsEpisode.first_response_seconds, started, AnalyticsEpisode.agent_id)
    resolution = spreads(
        session,
        AnalyticsEpisode.resolution_seconds,
        _episodes(scope, AnalyticsEpisode.resolved_on, scope.start, scope.end),
        AnalyticsEpisode.agent_id,
    )
    first.pop(None, None)
    resolution.pop(None, None)
    sent: dict[int, int] = defaultdict(int)
    for dimension, value in session.execute(
        select(AnalyticsDaily.dimension, func.sum(AnalyticsDaily.value))
        .where(
            AnalyticsDaily.metric == "messages_out",
            AnalyticsDaily.day >= scope.start,
            AnalyticsDaily.day <= scope.end,
            AnalyticsDaily.dimension != "",
        )
        .group_by(AnalyticsDaily.dimension)
    ):
        agent_id = int(dimension[1:])
        if scope.agent_id is None or agent_id == scope.agent_id:
            sent[agent_id] += int(value or 0)
    agents = set(handled) | set(resolution) | set(sent)
    names = dict(session.execute(select(User.id, User.name).where(User.id.in_(agents))).all()) if agents else {}
    rows: list[list[Cell]] = []
    for agent_id in sorted(agents, key=lambda agent: (-handled.get(agent, 0), names.get(agent, ""))):
        answered, closed = first.get(agent_id, Spread()), resolution.get(agent_id, Spread())
        rows.append(
            [
                names.get(agent_id, f"User {agent_id}"),
                handled.get(agent_id, 0),
                answered.median,
                answered.p90,
                closed.count,
                closed.median,
                sent.get(agent_id, 0),
            ]
        )
    return Chart(
        "team",
        "Team",
        "table",
        [
            "Agent",
            "Conversations handled",
            "First response, median (s)",
            "First response, p90 (s)",
            "Resolved",
            "Resolution, median (s)",
            "Messages sent",
        ],
        rows,
        {"agents": len(rows)},
        notes=["A conversation is handled by whoever first answered it (or its assignee when nobody has yet)."],
    )


# --- contacts ----------------------------------------------------------------------------------------


def _owned(scope: Scope) -> list:
    return [Contact.owner_id == scope.agent_id] if scope.agent_id is not None else []


def _new_contacts(session: Session, scope: Scope, start: date, end: date) -> dict[date, list[float]]:
    low, high = scope.utc_bounds(start, end)
    per_day: dict[date, list[float]] = defaultdict(lambda: [0])
    for (created_at,) in session.execute(
        select(Contact.created_at).where(Contact.created_at >= low, Contact.created_at < high, *_owned(scope))
    ):
        per_day[_local_day(created_at, scope.zone)][0] += 1
    return dict(per_day)


def _local_day(moment: datetime, zone: ZoneInfo) -> date:
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(zone).date()


def new_contacts(session: Session, scope: Scope) -> Chart:
    current = _new_contacts(session, scope, scope.start, scope.end)
    before = _new_contacts(session, scope, scope.previous_start, scope.previous_end)
    return Chart(
        "contacts",
        "New contacts",
        "line",
        [scope.bucket, "New contacts", "New contacts, previous period"],
        _series(scope, current, before, 1),
        {"new": sum(v[0] for v in current.values())},
        {"new": sum(v[0] for v in before.values())},
        ["Only the contacts you own."] if scope.agent_id is not None else [],
    )


def funnel(session: Session, scope: Scope) -> Chart:
    """Contacts who reached each stage in the period, in the stages' order, and the share of those who reached
    the stage before that went on to this one."""
    low, high = scope.utc_bounds(scope.start, scope.end)
    stages = session.execute(select(Stage.id, Stage.name).order_by(Stage.position, Stage.id)).all()
    conditions = [StageChange.changed_at >= low, StageChange.changed_at < high, StageChange.stage_id.is_not(None)]
    query = select(StageChange.stage_id, func.count(distinct(StageChange.contact_id))).where(*conditions)
    if scope.agent_id is not None:
        query = query.join(Contact, Contact.id == StageChange.contact_id).where(*_owned(scope))
    reached = dict(session.execute(query.group_by(StageChange.stage_id)).all())
    rows: list[list[Cell]] = []
    previous: int | None = None
    for stage_id, name in stages:
        count = int(reached.get(stage_id, 0))
        rate = round(100 * count / previous, 1) if previous else None
        rows.append([name, count, rate])
        previous = count
    return Chart(
        "funnel",
        "Stage funnel",
        "funnel",
        ["Stage", "Contacts who reached it", "Conversion from the stage before (%)"],
        rows,
        {"stages": len(rows)},
        notes=["Counts contacts moved into each stage during the period."],
    )


def consent(session: Session, scope: Scope) -> Chart:
    def per_day(start: date, end: date) -> dict[date, list[float]]:
        low, high = scope.utc_bounds(start, end)
        query = select(ConsentEvent.at, ConsentEvent.status).where(ConsentEvent.at >= low, ConsentEvent.at < high)
        if scope.agent_id is not None:
            query = query.join(Contact, Contact.id == ConsentEvent.contact_id).where(*_owned(scope))
        days: dict[date, list[float]] = defaultdict(lambda: [0, 0])
        for at, status in session.execute(query):
            days[_local_day(at, scope.zone)][0 if status == "opted_in" else 1] += 1
        return dict(days)

    current, before = per_day(scope.start, scope.end), per_day(scope.previous_start, scope.previous_end)

    def summary(values: dict[date, list[float]]) -> dict[str, float | int | None]:
        return {"opted_in": sum(v[0] for v in values.values()), "opted_out": sum(v[1] for v in values.values())}

    return Chart(
        "consent",
        "Opt-ins and opt-outs",
        "line",
        [scope.bucket, "Opt-ins", "Opt-outs", "Opt-ins, previous period", "Opt-outs, previous period"],
        _series(scope, current, before, 2),
        summary(current),
        summary(before),
    )


for _key, _title, _compute, _section, _order in (
    ("revenue", "Revenue and orders", revenue, "sales", 10),
    ("top_products", "Top products", top_products, "sales", 20),
    ("top_customers", "Top customers", top_customers, "sales", 30),
    ("customers", "New and returning customers", new_vs_returning, "sales", 40),
    ("conversations", "Conversations", conversations, "conversations", 10),
    ("response_times", "Response times", response_times, "conversations", 20),
    ("messages", "Messages in and out", messages, "conversations", 30),
    ("heatmap", "Busiest hours", heatmap, "conversations", 40),
    ("team", "Team", team, "team", 10),
    ("contacts", "New contacts", new_contacts, "contacts", 10),
    ("funnel", "Stage funnel", funnel, "contacts", 20),
    ("consent", "Opt-ins and opt-outs", consent, "contacts", 30),
):
    register_panel(_key, _title, _compute, section=_section, order=_order)


def chart(session: Session, key: str, scope: Scope) -> Chart:
    found = _panels.get(key)
    if found is None or (scope.agent_id is not None and found.everyone_only):
        raise UserError(f"No chart named {key!r}", 404, field="chart")
    return found.compute(session, scope)
