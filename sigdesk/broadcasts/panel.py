"""The Analytics dashboard's "Broadcasts" panel, next to the sales charts: each campaign started in the period,
how many it reached and how many answered, and the orders its recipients placed within
broadcasts.attribution_days after their message was sent.

An order counts once, for the newest of the period's campaigns that reached that customer before it (the
rule replies follow too), so two campaigns a day apart do not both claim the same order. Shop-wide figures:
the panel is for owners and admins (`everyone_only`), whatever agent filter the dashboard has.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from sigdesk.analytics.services import Chart, Scope
from sigdesk.broadcasts import audience
from sigdesk.general.clock import as_utc, format_moment
from sigdesk.models import Order
from sigdesk.models.broadcast import Broadcast, BroadcastRecipient
from sigdesk.models.sales import NOT_SOLD
from sigdesk.sales.money import from_minor

KEY = "broadcasts"
TITLE = "Broadcasts"
ATTRIBUTION_DAYS = "broadcasts.attribution_days"
# "Sent" is the recipients Meta took and did not fail later: a 131026 arrives as a failed status after the send.
REACHED = ("sent", "delivered", "read", "replied")


def attribution_days(session: Session) -> int:
    return int(audience.setting(session, ATTRIBUTION_DAYS))


def broadcasts_chart(session: Session, scope: Scope) -> Chart:
    days = attribution_days(session)
    low, high = scope.utc_bounds(scope.start, scope.end)
    campaigns = list(
        session.execute(
            select(Broadcast.id, Broadcast.name, Broadcast.started_at, Broadcast.status)
            .where(Broadcast.started_at >= low, Broadcast.started_at < high)
            .order_by(Broadcast.started_at, Broadcast.id)
        )
    )
    ids = [row.id for row in campaigns]
    reached: dict[int, tuple[int, int]] = {}
    if ids:
        reached = {
            broadcast_id: (sent or 0, replied or 0)
            for broadcast_id, sent, replied in session.execute(
                select(
                    BroadcastRecipient.broadcast_id,
                    func.count(case((BroadcastRecipient.state.in_(REACHED), 1))),
                    func.count(BroadcastRecipient.replied_at),
                )
                .where(BroadcastRecipient.broadcast_id.in_(ids))
                .group_by(BroadcastRecipient.broadcast_id)
            )
        }
    orders = _attributed_orders(session, ids, days, scope.currency, high)
    rows: list[list[str | int | float | None]] = []
    for campaign in campaigns:
        sent, replied = reached.get(campaign.id, (0, 0))
        count, minor = orders.get(campaign.id, (0, 0))
        rows.append(
            [
                campaign.name,
                format_moment(campaign.started_at, scope.zone),
                campaign.status,
                sent,
                replied,
                count,
                float(from_minor(minor, scope.currency)),
            ]
        )
    totals: dict[str, float | int | None] = {
        "campaigns": len(rows),
        "sent": sum(int(row[3] or 0) for row in rows),
        "replied": sum(int(row[4] or 0) for row in rows),
        "orders": sum(int(row[5] or 0) for row in rows),
        "revenue": float(from_minor(sum(minor for _, minor in orders.values()), scope.currency)),
    }
    return Chart(
        KEY,
        TITLE,
        "table",
        ["Campaign", "Started", "Status", "Sent", "Replied", "Orders", f"Revenue ({scope.currency})"],
        rows,
        totals,
        notes=[
            f"Orders in {scope.currency} placed by a recipient within {days} days after the campaign's message "
            "was sent, each counted for the newest campaign that reached the customer before it "
            "(Settings → Broadcasts sets the days)."
        ],
    )


def _attributed_orders(
    session: Session, broadcast_ids: list[int], days: int, currency: str, high: datetime
) -> dict[int, tuple[int, int]]:
    """Per campaign, (orders, revenue in minor units) of the sold orders in `currency` that its recipients
    placed within `days` after their message was sent; an order goes to the newest campaign before it."""
    if not broadcast_ids:
        return {}
    window = timedelta(days=days)
    pairs = session.execute(
        select(
            BroadcastRecipient.broadcast_id,
            BroadcastRecipient.sent_at,
            Order.id,
            Order.ordered_at,
            Order.total_minor,
        )
        .join(Order, Order.contact_id == BroadcastRecipient.contact_id)
        .where(
            BroadcastRecipient.broadcast_id.in_(broadcast_ids),
            BroadcastRecipient.sent_at.is_not(None),
            Order.ordered_at >= BroadcastRecipient.sent_at,
            Order.ordered_at < high + window,  # no campaign of the period can claim a later one
            Order.status.not_in(NOT_SOLD),
            Order.currency == currency,
        )
    )
    best: dict[int, tuple[datetime, int, int]] = {}
    for broadcast_id, sent_at, order_id, ordered_at, total in pairs:
        if as_utc(ordered_at) > as_utc(sent_at) + window:
            continue
        current = best.get(order_id)
        if current is None or (as_utc(sent_at), broadcast_id) > (current[0], current[1]):
            best[order_id] = (as_utc(sent_at), broadcast_id, int(total or 0))
    result: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for _, broadcast_id, total in best.values():
        result[broadcast_id][0] += 1
        result[broadcast_id][1] += total
    return {broadcast_id: (count, minor) for broadcast_id, (count, minor) in result.items()}
