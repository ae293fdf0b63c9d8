"""Reorder predictions in SigDesk: refreshing every customer's forecast in the background, and reading them.

A refresh is a row in prediction_refreshes (sigdesk.models.predictions) so its progress shows on the page and
in `sigdesk predictions status`, and survives leaving the page. Order events ask for one (debounced: the worker
waits until the orders have been quiet for DEBOUNCE), the business day turning asks for one ("nightly"), and
`sigdesk predictions refresh` runs one in its own process. The worker runs it a batch of customers per call
(`Refresher.step`), so sending and ingest take turns with it; the fitted model and the histories stay in the
process between steps, and a run interrupted by a restart is failed and asked for again.

Reading: the stored forecasts serve the page, and the API when asked for today with a stored horizon and
nothing newer pending; any other day is computed on the fly from the orders dated before it, the fitted model
kept a few minutes (FitCache) so the pages of one day cost one fit.
"""

from __future__ import annotations

import logging
import threading
import time
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine, and_, delete, func, select, update
from sqlalchemy.orm import Session

from sigdesk.db import dump_json, read_json, utcnow, write_lock
from sigdesk.actor import Actor
from sigdesk.analytics.services import Chart, Scope
from sigdesk.contacts.services import NAME_COLUMNS, contact_name
from sigdesk.conversations import commands as conversation_commands
from sigdesk.errors import NotFound, Refused, UserError
from sigdesk.message_templates import services as message_templates
from sigdesk.outbound.window import window_open
from sigdesk.general.clock import business_zone
from sigdesk.models import (
    Contact,
    Conversation,
    Message,
    Order,
    PredictionRefresh,
    ReorderChance,
    ReorderForecast,
    ReorderProduct,
    Template,
)
from sigdesk.predictions import store
from sigdesk.predictions.backtest import backtest, enough_history
from sigdesk.predictions.model import History, Model, fit, forecast
from sigdesk.words import counted
from sigdesk.settings import services as settings

log = logging.getLogger(__name__)

HORIZONS = "predictions.horizons"
MARGIN = "predictions.at_risk_margin"
DEBOUNCE = timedelta(seconds=10)  # orders quiet this long before a refresh starts: an import is one refresh
READ_RANGE = 10000  # contact ids whose histories one worker step reads
STEP = 10000  # customers forecast and written per worker step (about a second at most)
NIGHTLY_CHECK = 60.0  # seconds between looks at whether the business day turned
KEEP_RUNS = 20  # refresh rows kept for the status history (their forecasts are deleted when superseded)
STALE_RUN = timedelta(minutes=30)  # a "running" run not heard of for this long was left by a stopped process
ORDER_EVENTS = (
    "order.created",
    "order.changed",
    "order.status_changed",
    "order.deleted",
    "orders.imported",
    "orders.import_undone",
)
ACTIVE = ("queued", "running")
FIT_CACHE_SECONDS = 300.0  # an on-the-fly fit serves the pages of one as_of this long
FIT_CACHE_SIZE = 2  # on-the-fly fits kept (each holds every customer's history)


def horizons(session: Session) -> list[int]:
    return [int(part) for part in str(settings.get(session, None, HORIZONS)).split(",")]  # type: ignore[arg-type]


def margin_days(session: Session) -> int:
    return int(settings.get(session, None, MARGIN))  # type: ignore[arg-type]


def today(session: Session) -> date:
    """The business's day now: forecasts as of today use every order dated before it."""
    return datetime.now(business_zone(session)).date()


# --- refresh runs ------------------------------------------------------------------------------------


def request_refresh(session: Session, reason: str, now: datetime | None = None) -> PredictionRefresh:
    """Ask for a refresh: the queued one, if there is one, is asked again (its quiet period starts over).
    The caller holds the write lock and commits."""
    now = now or utcnow()
    queued = session.scalar(select(PredictionRefresh).where(PredictionRefresh.state == "queued").limit(1))
    if queued is not None:
        queued.requested_at = now
        return queued
    run = PredictionRefresh(state="queued", reason=reason, requested_at=now)
    session.add(run)
    session.flush()
    return run


def current_run(session: Session) -> PredictionRefresh | None:
    """The run whose forecasts are current: the latest finished one."""
    return session.scalar(
        select(PredictionRefresh)
        .where(PredictionRefresh.state == "done")
        .order_by(PredictionRefresh.id.desc())
        .limit(1)
    )


def active_run(session: Session) -> PredictionRefresh | None:
    """The refresh running, else the one waiting to start."""
    return session.scalar(
        select(PredictionRefresh)
        .where(PredictionRefresh.state.in_(ACTIVE))
        .order_by((PredictionRefresh.state == "running").desc(), PredictionRefresh.id)
        .limit(1)
    )


def last_failure(session: Session) -> PredictionRefresh | None:
    """The latest run, when it failed (a later success hides older failures)."""
    latest = session.scalar(
        select(PredictionRefresh)
        .where(PredictionRefresh.state.in_(("done", "failed")))
        .order_by(PredictionRefresh.id.desc())
        .limit(1)
    )
    return latest if latest is not None and latest.state == "failed" else None


@dataclass(frozen=True)
class RefreshStatus:
    """What the page and `sigdesk predictions status` show."""

    state: str  # "none" (never ran), "queued", "running", "done", "failed"
    processed: int = 0
    total: int = 0
    as_of: date | None = None
    finished_at: datetime | None = None
    started_at: datetime | None = None
    error: str | None = None
    customers: int = 0
    horizons: list[int] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "processed": self.processed,
            "total": self.total,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "error": self.error,
            "customers": self.customers,
        }


def status(session: Session) -> RefreshStatus:
    current = current_run(session)
    active = active_run(session)
    failed = last_failure(session)
    customers = (
        session.scalar(select(func.count()).select_from(ReorderForecast).where(ReorderForecast.run_id == current.id))
        if current is not None
        else 0
    )
    base: dict[str, Any] = {
        "as_of": current.as_of if current else None,
        "finished_at": current.finished_at if current else None,
        "customers": customers or 0,
        "horizons": _run_horizons(current) if current else horizons(session),
        "error": failed.error if failed is not None else None,
    }
    if active is not None:
        return RefreshStatus(
            state=active.state, processed=active.processed, total=active.total, started_at=active.started_at, **base
        )
    if failed is not None:
        return RefreshStatus(state="failed", **base)
    if current is None:
        return RefreshStatus(state="none", **base)
    return RefreshStatus(state="done", processed=current.processed, total=current.total, **base)


def _run_horizons(run: PredictionRefresh) -> list[int]:
    return [int(part) for part in run.horizons.split(",") if part]


def requeue_interrupted(session: Session) -> int:
    """At the worker's start: a run left "running" by a stopped process is failed and asked for again."""
    with write_lock(session):
        stopped = list(session.scalars(select(PredictionRefresh.id).where(PredictionRefresh.state == "running")))
        if stopped:
            session.execute(
                update(PredictionRefresh)
                .where(PredictionRefresh.id.in_(stopped))
                .values(state="failed", finished_at=utcnow(), error="Interrupted: SigDesk stopped during the refresh")
            )
            request_refresh(session, "restart")
        session.commit()
    if stopped:
        store.delete_run_rows(session, stopped)
    return len(stopped)


@dataclass
class _Work:
    run_id: int
    as_of: date
    horizons: list[int]
    margin: int
    model: Any
    histories: list[History]
    read_from: int = 1  # the next contact id to read histories from
    last: int = 0  # the highest contact id with an order to read
    reading: bool = True
    position: int = 0
    done: bool = False  # forecasts current; the accuracy step remains
    started: float = field(default_factory=time.monotonic)
    orders_version: str = ""  # store.orders_version before the histories were read


class Refresher:
    """Runs refreshes a step at a time: the first steps read the histories a range of contacts at a time and
    then fit the population model, the next ones forecast and write STEP customers each, then the run becomes
    current, and a last step measures the accuracy. The worker calls it
    as a task; the CLI loops over it with a progress callback."""

    def __init__(self, progress: Callable[[int, int], None] | None = None) -> None:
        self.work: _Work | None = None
        self.progress = progress

    def claim(self, session: Session, run_id: int) -> bool:
        """Take a queued run; False when someone else took it first."""
        with write_lock(session):
            taken = session.execute(
                update(PredictionRefresh)
                .where(PredictionRefresh.id == run_id, PredictionRefresh.state == "queued")
                .values(state="running", started_at=utcnow(), processed=0, total=0)
            ).rowcount
            session.commit()
        if not taken:
            return False
        try:
            self._start(session, run_id)
        except Exception as exc:  # noqa: BLE001 - a broken run must not retry forever; it records why
            log.exception("reorder prediction refresh %s failed to start", run_id)
            self._fail(session, run_id, exc)
        return True

    def _start(self, session: Session, run_id: int) -> None:
        as_of = today(session)
        wanted = horizons(session)
        version = str(store.orders_version(session))
        low, high = session.execute(
            select(func.min(Order.contact_id), func.max(Order.contact_id)).where(store.sold_before(as_of))
        ).one()
        session.commit()
        with write_lock(session):
            session.execute(
                update(PredictionRefresh)
                .where(PredictionRefresh.id == run_id)
                .values(as_of=as_of, horizons=",".join(map(str, wanted)))
            )
            session.commit()
        self.work = _Work(
            run_id,
            as_of,
            wanted,
            margin_days(session),
            None,
            [],
            read_from=low or 1,
            last=high or 0,
            orders_version=version,
        )

    def _read(self, session: Session, work: _Work) -> None:
        """Histories of the next READ_RANGE contact ids; after the last, the population model is fitted."""
        high = work.read_from + READ_RANGE - 1
        work.histories.extend(store.read_histories(session, work.as_of, between=(work.read_from, high)))
        session.commit()
        work.read_from = high + 1
        if work.read_from <= work.last:
            return
        work.reading = False
        work.model = fit(work.histories, work.as_of) if work.histories else None
        with write_lock(session):
            session.execute(
                update(PredictionRefresh).where(PredictionRefresh.id == work.run_id).values(total=len(work.histories))
            )
            session.commit()
        if self.progress is not None:
            self.progress(0, len(work.histories))

    def step(self, session: Session) -> int:
        """One step of the run in hand; returns how many customers it handled (1 for starting or finishing)."""
        work = self.work
        if work is None:
            return 0
        if work.done:
            self._score(session, work)
            return 1
        try:
            if work.reading:
                self._read(session, work)
                return 1
            chunk = work.histories[work.position : work.position + STEP]
            if chunk:
                forecasts = forecast(work.model, chunk, work.as_of, work.horizons, margin_days=work.margin)
                with write_lock(session):
                    store.write_forecasts(session, work.run_id, chunk, forecasts)
                    work.position += len(chunk)
                    session.execute(
                        update(PredictionRefresh)
                        .where(PredictionRefresh.id == work.run_id)
                        .values(processed=work.position)
                    )
                    session.commit()
                if self.progress is not None:
                    self.progress(work.position, len(work.histories))
                return len(chunk)
            self._finish(session, work)
            return 1
        except Exception as exc:  # noqa: BLE001 - a broken run must not retry forever; it records why
            log.exception("reorder prediction refresh %s failed", work.run_id)
            self._fail(session, work.run_id, exc)
            return 1

    def _finish(self, session: Session, work: _Work) -> None:
        """The run's forecasts become current; its accuracy is the next step (the forecasts need not wait)."""
        with write_lock(session):
            session.execute(
                update(PredictionRefresh)
                .where(PredictionRefresh.id == work.run_id)
                .values(state="done", finished_at=utcnow(), processed=len(work.histories), error=None)
            )
            session.commit()
        work.done = True
        work.model = None
        log.info(
            "reorder predictions: refreshed %s customers in %.1f s",
            len(work.histories),
            time.monotonic() - work.started,
        )
        _drop_superseded(session, work.run_id)

    def _score(self, session: Session, work: _Work) -> None:
        """Measure how the predictions of the last 30 and 90 days came true: once per business day, carried
        over by the day's later runs while the orders are the same (the backtests refit the model twice, the
        slowest part of a refresh); an import or a new order since means measuring again."""
        self.work = None
        try:
            carried = session.scalar(
                select(PredictionRefresh.accuracy)
                .where(
                    PredictionRefresh.state == "done",
                    PredictionRefresh.as_of == work.as_of,
                    PredictionRefresh.accuracy.is_not(None),
                )
                .order_by(PredictionRefresh.id.desc())
                .limit(1)
            )
            session.commit()
            kept = read_json(carried, dict, "prediction_refreshes.accuracy") if carried else {}
            if kept.get("orders_version") != work.orders_version:
                carried = dump_json({**accuracy(work.histories, work.as_of), "orders_version": work.orders_version})
            scored = carried
            with write_lock(session):
                session.execute(
                    update(PredictionRefresh).where(PredictionRefresh.id == work.run_id).values(accuracy=scored)
                )
                session.commit()
        except Exception:  # noqa: BLE001 - the forecasts stand; the page keeps the accuracy measured before
            session.rollback()
            log.exception("measuring the accuracy of reorder predictions failed (run %s)", work.run_id)

    def _fail(self, session: Session, run_id: int, exc: Exception) -> None:
        session.rollback()
        self.work = None
        with write_lock(session):
            session.execute(
                update(PredictionRefresh)
                .where(PredictionRefresh.id == run_id)
                .values(
                    state="failed",
                    finished_at=utcnow(),
                    error=f"The refresh stopped on an error ({type(exc).__name__})",
                )
            )
            session.commit()
        store.delete_run_rows(session, [run_id])


def _drop_superseded(session: Session, current_id: int) -> None:
    """Delete the forecasts of every run before the current one, then all but the latest KEEP_RUNS rows."""
    older = list(
        session.scalars(
            select(ReorderForecast.run_id).where(ReorderForecast.run_id < current_id).group_by(ReorderForecast.run_id)
        )
    )
    session.commit()
    store.delete_run_rows(session, older)
    keep = list(session.scalars(select(PredictionRefresh.id).order_by(PredictionRefresh.id.desc()).limit(KEEP_RUNS)))
    session.commit()
    if len(keep) == KEEP_RUNS:
        with write_lock(session):
            session.execute(
                delete(PredictionRefresh).where(
                    PredictionRefresh.id < min(keep), PredictionRefresh.state.not_in(ACTIVE)
                )
            )
            session.commit()


def due_run(session: Session, now: datetime | None = None) -> int | None:
    """The queued run whose orders have been quiet for DEBOUNCE, if any (never while another runs)."""
    now = now or utcnow()
    running = session.scalar(select(PredictionRefresh.id).where(PredictionRefresh.state == "running").limit(1))
    if running is not None:
        return None
    return session.scalar(
        select(PredictionRefresh.id)
        .where(PredictionRefresh.state == "queued", PredictionRefresh.requested_at <= now - DEBOUNCE)
        .order_by(PredictionRefresh.id)
        .limit(1)
    )


def ask_nightly(session: Session) -> bool:
    """Ask for a refresh when the business day turned since the current forecasts (or there are none yet and
    there are orders); a run that failed today waits for new orders or tomorrow. Commits what it asked."""
    day = today(session)
    if active_run(session) is not None:
        session.commit()
        return False
    latest = session.scalar(
        select(PredictionRefresh.as_of)
        .where(PredictionRefresh.state.in_(("done", "failed")), PredictionRefresh.as_of.is_not(None))
        .order_by(PredictionRefresh.id.desc())
        .limit(1)
    )
    has_orders = session.scalar(select(Order.id).limit(1)) is not None
    session.commit()
    if (latest is not None and latest >= day) or not has_orders:
        return False
    with write_lock(session):
        request_refresh(session, "nightly", utcnow() - DEBOUNCE)
        session.commit()
    return True


class RefreshTask:
    """The worker's task: a step of the run in hand, else the next due run; once a minute, the nightly look."""

    def __init__(self) -> None:
        self.refresher = Refresher()
        self.next_nightly = 0.0

    def __call__(self, session: Session, clock: Callable[[], float] | None = None) -> int:
        if self.refresher.work is not None:
            return self.refresher.step(session)
        now = (clock or time.monotonic)()
        if now >= self.next_nightly:
            self.next_nightly = now + NIGHTLY_CHECK
            ask_nightly(session)
        run_id = due_run(session)
        session.commit()
        if run_id is None:
            return 0
        return 1 if self.refresher.claim(session, run_id) else 0


class OrdersConsumer:
    """The outbox consumer: order events ask for a (debounced) refresh; it does no forecasting itself."""

    @property
    def events(self) -> list[str]:
        from sigdesk.events.catalogue import CATALOGUE

        # Order events come with the sales feature: listen only to those that exist.
        return sorted(name for name in ORDER_EVENTS if name in CATALOGUE)

    def __call__(self, session: Session, events: Sequence[Any]) -> int:
        if not events:
            return 0
        session.commit()  # ends the reading transaction the outbox opened; the write takes the lock
        with write_lock(session):
            request_refresh(session, "orders")
            session.commit()
        return len(events)


def refresh_now(session: Session, reason: str, progress: Callable[[int, int], None] | None = None) -> PredictionRefresh:
    """Run a whole refresh here and now (the CLI), with progress; refused while another process runs one."""
    running = session.scalar(select(PredictionRefresh).where(PredictionRefresh.state == "running").limit(1))
    if running is not None:
        if running.started_at is not None and utcnow() - running.started_at < STALE_RUN:
            raise UserError(
                f"A refresh is running already ({running.processed} of {running.total}); "
                "see `sigdesk predictions status`",
                409,
            )
    session.commit()
    with write_lock(session):
        if running is not None:
            session.execute(
                update(PredictionRefresh)
                .where(PredictionRefresh.id == running.id)
                .values(state="failed", finished_at=utcnow(), error="Interrupted: its process stopped")
            )
        run = request_refresh(session, reason)
        run_id = run.id
        session.commit()
    refresher = Refresher(progress)
    if not refresher.claim(session, run_id):
        raise UserError("The server's worker started this refresh first; see `sigdesk predictions status`", 409)
    while refresher.work is not None:
        refresher.step(session)
    session.expire_all()
    found = session.get(PredictionRefresh, run_id)
    assert found is not None
    return found


# --- reading ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reorder:
    """One customer's forecast for one horizon, as the API and the page read it."""

    contact_id: int
    phone: str | None
    probability: float
    expected_orders: float
    next_order_at: date | None
    at_risk: bool
    reason: str | None


def check_sku(session: Session, sku: str | None) -> None:
    if sku is not None and not store.known_sku(session, sku):
        raise UserError(f"'product': no product has the SKU '{sku[:100]}'", 422, "product")


def check_as_of(session: Session, as_of: date | None) -> date:
    day = today(session)
    if as_of is None:
        return day
    if as_of > day:
        raise UserError(
            f"'as_of': {as_of.isoformat()} is in the future; predictions use the orders dated before it", 422, "as_of"
        )
    return as_of


def _stored_fits(session: Session, as_of: date, horizon: int) -> PredictionRefresh | None:
    """The current run, when its forecasts answer for this day and horizon and no newer orders wait."""
    current = current_run(session)
    if current is None or current.as_of != as_of or horizon not in _run_horizons(current):
        return None
    newer = session.scalar(
        select(PredictionRefresh.id)
        .where(PredictionRefresh.id > current.id, PredictionRefresh.state.in_(ACTIVE))
        .limit(1)
    )
    return current if newer is None else None


def reorders(
    session: Session, as_of: date, horizon: int, sku: str | None = None, after: int = 0, limit: int | None = 100
) -> tuple[list[Reorder], int | None]:
    """The customers with an order dated before `as_of` (who bought `sku`, when given), by contact id after
    `after`; with the contact id to continue after when more follow. `limit` None: all of them."""
    check_sku(session, sku)
    stored = _stored_fits(session, as_of, horizon)
    if stored is not None:
        return _stored_reorders(session, stored.id, as_of, horizon, sku, after, limit)
    return _computed_reorders(session, as_of, horizon, sku, after, limit)


def _stored_reorders(
    session: Session, run_id: int, as_of: date, horizon: int, sku: str | None, after: int, limit: int | None
) -> tuple[list[Reorder], int | None]:
    next_day = ReorderForecast.next_order_on
    query = (
        select(
            ReorderForecast.contact_id,
            Contact.wa_id,
            ReorderChance.probability,
            ReorderChance.expected_orders,
            next_day,
            ReorderForecast.at_risk,
            ReorderForecast.reason,
        )
        .join(Contact, Contact.id == ReorderForecast.contact_id)
        .join(
            ReorderChance,
            and_(
                ReorderChance.run_id == ReorderForecast.run_id,
                ReorderChance.contact_id == ReorderForecast.contact_id,
                ReorderChance.horizon_days == horizon,
            ),
        )
        .where(ReorderForecast.run_id == run_id, ReorderForecast.contact_id > after)
        .order_by(ReorderForecast.contact_id)
    )
    if sku is not None:
        product_day = (
            select(ReorderProduct.next_on)
            .where(
                ReorderProduct.run_id == run_id,
                ReorderProduct.contact_id == ReorderForecast.contact_id,
                ReorderProduct.sku == sku,
            )
            .scalar_subquery()
        )
        query = query.with_only_columns(
            *query.selected_columns[:4], func.coalesce(product_day, next_day), *query.selected_columns[5:]
        ).where(ReorderForecast.contact_id.in_(store.buyers_of(sku, as_of)))
    if limit is not None:
        query = query.limit(limit + 1)
    rows = [Reorder(*row) for row in session.execute(query)]
    return _paged(rows, limit)


def _paged(rows: list[Reorder], limit: int | None) -> tuple[list[Reorder], int | None]:
    if limit is not None and len(rows) > limit:
        rows = rows[:limit]
        return rows, rows[-1].contact_id
    return rows, None


@dataclass(frozen=True)
class Fitted:
    """The histories as of a day (by contact id) and the population model fitted on them."""

    model: Model | None
    histories: list[History]
    contact_ids: list[int]
    at: float


class FitCache:
    """The fits of on-the-fly answers (an `as_of` the stored forecasts do not answer), so paging through one
    day costs one fit (seconds at 50,000 customers), not one per page. Keyed by the day and a fingerprint of
    the orders and products (store.orders_version), so a written order is seen at the next page; an entry
    lives FIT_CACHE_SECONDS and at most FIT_CACHE_SIZE are kept (each holds every customer's history).
    `fits` counts the fits made (a public counter: diagnostics and tests). The version and the histories are
    read in one transaction, so an entry never pairs a fingerprint with older orders."""

    def __init__(self, size: int = FIT_CACHE_SIZE, seconds: float = FIT_CACHE_SECONDS) -> None:
        self.size = size
        self.seconds = seconds
        self.fits = 0
        self._entries: OrderedDict[tuple, Fitted] = OrderedDict()
        self._lock = threading.Lock()

    def fitted(self, session: Session, as_of: date) -> Fitted:
        key = (as_of, store.orders_version(session))
        now = time.monotonic()
        with self._lock:
            for old in [old for old, entry in self._entries.items() if now - entry.at >= self.seconds]:
                del self._entries[old]
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                return found
        histories = list(store.read_histories(session, as_of))
        session.commit()
        model = fit(histories, as_of) if histories else None
        entry = Fitted(model, histories, [history.contact_id for history in histories], time.monotonic())
        with self._lock:
            self.fits += 1 if model is not None else 0
            self._entries[key] = entry
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return entry


_fit_caches: WeakKeyDictionary[Engine, FitCache] = WeakKeyDictionary()
_fit_caches_lock = threading.Lock()


def fit_cache(session: Session) -> FitCache:
    """The on-the-fly fits of this session's database (one cache per engine: an app, or a test's database)."""
    bind = session.get_bind()
    engine = bind.engine if isinstance(bind, Connection) else bind
    with _fit_caches_lock:
        found = _fit_caches.get(engine)
        if found is None:
            found = _fit_caches[engine] = FitCache()
        return found


def _computed_reorders(
    session: Session, as_of: date, horizon: int, sku: str | None, after: int, limit: int | None
) -> tuple[list[Reorder], int | None]:
    fitted = fit_cache(session).fitted(session, as_of)
    if fitted.model is None:
        return [], None
    start = bisect_right(fitted.contact_ids, after)
    wanted: list[History] = []
    for history in fitted.histories[start:]:
        if sku is None or sku in history.products:
            wanted.append(history)
            if limit is not None and len(wanted) > limit:
                break
    forecasts = forecast(fitted.model, wanted, as_of, [horizon], margin_days=margin_days(session))
    contacts = select(Contact.id, Contact.wa_id).where(Contact.id.in_([h.contact_id for h in wanted] or [0]))
    phones = {contact_id: wa_id for contact_id, wa_id in session.execute(contacts)}
    rows = [
        Reorder(
            contact_id=item.contact_id,
            phone=phones.get(item.contact_id),
            probability=item.probability[horizon],
            expected_orders=item.expected_orders[horizon],
            next_order_at=(item.products.get(sku) if sku else None) or item.next_order_at,
            at_risk=item.at_risk,
            reason=item.reason,
        )
        for item in forecasts
    ]
    return _paged(rows, limit)


# --- the "Due to reorder" list -------------------------------------------------------------------------


@dataclass(frozen=True)
class DueRow:
    contact_id: int
    name: str  # as every page names the contact (sigdesk.contacts.services.contact_name)
    phone: str | None
    probability: float
    expected_orders: float
    next_order_at: date | None
    at_risk: bool
    reason: str | None
    consent: str
    opted_out: bool
    conversation_id: int | None
    last_inbound_at: datetime | None
    last_order_on: date
    product_day: date | None
    first_name: str = ""  # from the name the business or the customer gave, for the greeting; else empty


@dataclass(frozen=True)
class DueFilters:
    horizon: int
    sku: str | None = None
    min_probability: float = 0.0
    at_risk_only: bool = False


def due_list(
    session: Session, filters: DueFilters, limit: int = 100, after: tuple[float, int] | None = None
) -> tuple[list[DueRow], tuple[float, int] | None, int]:
    """The current forecasts, most likely first: rows, where the next page starts, and how many match."""
    current = current_run(session)
    if current is None or filters.horizon not in _run_horizons(current):
        return [], None, 0
    product_day: Any = None
    if filters.sku:
        product_day = (
            select(ReorderProduct.next_on)
            .where(
                ReorderProduct.run_id == current.id,
                ReorderProduct.contact_id == ReorderForecast.contact_id,
                ReorderProduct.sku == filters.sku,
            )
            .scalar_subquery()
        )
    conditions = [
        ReorderForecast.run_id == current.id,
        ReorderChance.probability >= filters.min_probability,
    ]
    if filters.sku:
        conditions.append(ReorderForecast.contact_id.in_(store.buyers_of(filters.sku, current.as_of or today(session))))
    if filters.at_risk_only:
        conditions.append(ReorderForecast.at_risk.is_(True))
    joined = (
        select(ReorderForecast.contact_id)
        .join(
            ReorderChance,
            and_(
                ReorderChance.run_id == ReorderForecast.run_id,
                ReorderChance.contact_id == ReorderForecast.contact_id,
                ReorderChance.horizon_days == filters.horizon,
            ),
        )
        .where(*conditions)
    )
    total = session.scalar(select(func.count()).select_from(joined.subquery())) or 0
    query = (
        joined.with_only_columns(
            *NAME_COLUMNS,
            ReorderChance.probability,
            ReorderChance.expected_orders,
            ReorderForecast.next_order_on,
            ReorderForecast.at_risk,
            ReorderForecast.reason,
            Contact.marketing_consent,
            Contact.opted_out_marketing,
            Conversation.id,
            Contact.last_inbound_at,
            ReorderForecast.last_order_on,
            product_day if product_day is not None else ReorderForecast.next_order_on.label("product_day"),
        )
        .join(Contact, Contact.id == ReorderForecast.contact_id)
        .outerjoin(Conversation, Conversation.contact_id == ReorderForecast.contact_id)
        .order_by(ReorderChance.probability.desc(), ReorderForecast.contact_id)
        .limit(limit + 1)
    )
    if after is not None:
        probability, contact_id = after
        query = query.where(
            (ReorderChance.probability < probability)
            | ((ReorderChance.probability == probability) & (ReorderForecast.contact_id > contact_id))
        )
    rows = [
        DueRow(
            row[0],
            contact_name(*row[:5]),
            row[3],
            *row[5:-1],
            row[-1] if filters.sku else None,
            first_name(row[1], row[2]),
        )
        for row in session.execute(query)
    ]
    following = None
    if len(rows) > limit:
        rows = rows[:limit]
        following = (rows[-1].probability, rows[-1].contact_id)
    return rows, following, total


def product_choices(session: Session) -> list[tuple[str, str]]:
    """(sku, name) of the catalogue, for the list's product filter."""
    from sigdesk.models import Product

    return [(sku, name) for sku, name in session.execute(select(Product.sku, Product.name).order_by(Product.name))]


def first_name(display_name: str | None, profile_name: str | None) -> str:
    """The first word of the name the business or the customer gave (never their number or user id)."""
    return (display_name or profile_name or "").strip().split(" ")[0]


def suggested_message(row: DueRow, product_name: str | None = None) -> str:
    """A friendly reminder the agent can edit; names no one the agent does not see already."""
    hello = f"Hi {row.first_name}!" if row.first_name else "Hi!"
    what = f"your {product_name}" if product_name else "your next order"
    return f"{hello} Just checking in: would you like us to prepare {what}? Reply here and we'll sort it out."


# --- accuracy -------------------------------------------------------------------------------------------

ACCURACY_WINDOWS = (30, 90)


def accuracy(histories: Sequence[History], as_of: date) -> dict[str, Any]:
    """How the predictions made 30 and 90 days ago came true, on the shop's own orders (the engine's backtest:
    fitted on the orders before each cut-off, scored on the orders after it, before `as_of`)."""
    check = enough_history(histories, as_of)
    result: dict[str, Any] = {
        "as_of": as_of.isoformat(),
        "enough": check.enough,
        "reason": check.reason,
        "repeat_customers": check.repeat_customers,
        "customers": check.customers,
        "days_of_orders": check.days_of_orders,
        "windows": [],
    }
    for days in ACCURACY_WINDOWS:
        cutoff = as_of - timedelta(days=days)
        if not any(history.days and history.days[0] < cutoff for history in histories):
            continue
        found = backtest(histories, cutoff, [days])
        scored = found.horizons[days]
        result["windows"].append(
            {
                "days": days,
                "cutoff": cutoff.isoformat(),
                "enough": found.check.enough,
                "reason": found.check.reason,
                "customers": scored.customers,
                "buyers": scored.buyers,
                "due_customers": scored.due_customers,
                "due_hit_rate": scored.due_hit_rate,
                "auc": scored.model.auc,
                "auc_days_since_last": scored.days_since_last.auc,
                "expected_orders": scored.expected_orders,
                "actual_orders": scored.actual_orders,
                "next_order_error_days": scored.next_order_error_days,
                "next_order_error_days_average_interval": scored.next_order_error_days_average_interval,
                "next_order_scored": scored.next_order_scored,
                "product_error_days": scored.product_error_days,
                "products_scored": scored.products_scored,
                "calibration": [
                    {
                        "lower": item.lower,
                        "upper": item.upper,
                        "customers": item.customers,
                        "predicted": item.mean_predicted,
                        "observed": item.observed_share,
                    }
                    for item in scored.calibration
                ],
            }
        )
    return result


def latest_accuracy(session: Session) -> dict[str, Any] | None:
    """The accuracy the latest finished refresh computed (None before the first one)."""
    text = session.scalar(
        select(PredictionRefresh.accuracy)
        .where(PredictionRefresh.state == "done", PredictionRefresh.accuracy.is_not(None))
        .order_by(PredictionRefresh.id.desc())
        .limit(1)
    )
    return read_json(text, dict, "prediction_refreshes.accuracy") if text else None


NO_ACCURACY = "Nothing to show yet: accuracy is measured on your own orders at each day's first refresh."
TOO_SHORT = "Your orders do not go back far enough to check the predictions of the last 30 days yet."


def _percent(share: float | None) -> float | None:
    return None if share is None else round(100 * share, 1)


def _rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def accuracy_chart(session: Session, scope: Scope | None = None) -> Chart:
    """The dashboard's "Reorder-prediction accuracy" panel: the latest stored accuracy (how the predictions of
    the last 30 and 90 days came true), a column per window, or why there is none. Shop-wide, and measured
    as of the latest refresh whatever period the dashboard shows."""
    found = latest_accuracy(session)
    windows = (found or {}).get("windows", [])
    columns = ["Measure", *(f"Last {window['days']} days" for window in windows)]
    measures: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
        ("Predicted as of", lambda window: window["cutoff"]),
        ("Customers predicted", lambda window: window["customers"]),
        ("Customers due (chance of 50 % or more)", lambda window: window["due_customers"]),
        ("Due customers who ordered (%)", lambda window: _percent(window["due_hit_rate"])),
        ("Customers who ordered", lambda window: window["buyers"]),
        ("Orders expected", lambda window: _rounded(window["expected_orders"])),
        ("Orders real", lambda window: window["actual_orders"]),
        ("Error of the next-order day, median (days)", lambda window: _rounded(window["next_order_error_days"])),
        ("Ranking quality (AUC)", lambda window: _rounded(window["auc"], 2)),
    ]
    rows: list[list[Any]] = [[label, *(value(window) for window in windows)] for label, value in measures]
    edges = sorted({(item["lower"], item["upper"]) for window in windows for item in window["calibration"]})
    for lower, upper in edges:
        row: list[Any] = [f"Calibration {round(100 * lower)}–{round(100 * upper)} %: predicted / really ordered"]
        for window in windows:
            item = next((i for i in window["calibration"] if (i["lower"], i["upper"]) == (lower, upper)), None)
            row.append(
                None
                if item is None
                else f"{_percent(item['predicted'])} % / {_percent(item['observed'])} % ({counted(item['customers'], 'customer')})"
            )
        rows.append(row)
    notes: list[str] = []
    if found is None:
        notes.append(NO_ACCURACY)
    else:
        if not found.get("enough"):
            notes.append(f"Not enough history yet. {found.get('reason') or ''} The figures are rough until then.")
        if not windows:
            notes.append(TOO_SHORT)
        notes.append(
            f"Measured on {found['as_of']} from the orders before it, whatever the period above: each check "
            "predicts as of an earlier day and compares with what customers really ordered after it."
        )
    return Chart(
        "reorder_accuracy",
        "Reorder-prediction accuracy",
        "table",
        columns if windows else ["Measure"],
        rows if windows else [],
        {
            f"due_customers_who_ordered_within_{window['days']}_days_pct": _percent(window["due_hit_rate"])
            for window in windows
        },
        notes=notes,
    )


# --- reminders ---------------------------------------------------------------------------------------------


def reminder_templates(session: Session) -> list[Template]:
    """Approved templates a reminder can send in one click: no placeholders but at most one in the body (the
    customer's first name goes there)."""
    usable = []
    for template in message_templates.approved(session):
        wanted = message_templates.variables(template)
        if message_templates.problem(template) is None and set(wanted) <= {"body"} and wanted.get("body", 0) <= 1:
            usable.append(template)
    return usable


def may_remind(template: Template, consent: str, opted_out: bool) -> bool:
    """A marketing template only to a customer who opted in (and has not opted out since); a utility one to
    anyone who has not opted out."""
    if opted_out:
        return False
    return (template.category or "").upper() != "MARKETING" or consent == "opted_in"


def send_reminder(session: Session, actor: Actor, contact_id: int, template_id: int) -> Message:
    """Queue an approved template as a reorder reminder, within consent and the 24-hour window's rules: inside
    the window the agent writes in the thread instead. Audited and announced by the send itself."""
    conversation = session.scalar(select(Conversation).where(Conversation.contact_id == contact_id))
    contact = session.get(Contact, contact_id)
    if contact is None:
        raise NotFound("No such contact", field="contact_id")
    if conversation is None:
        raise Refused(
            "This customer has no conversation yet; open their contact page to write first", field="contact_id"
        )
    if window_open(conversation):
        raise Refused("The 24-hour window is open: write to them in the thread instead", field="contact_id")
    template = next((item for item in reminder_templates(session) if item.id == template_id), None)
    if template is None:
        raise UserError("Choose an approved template with at most one placeholder", 422, "template_id")
    if not may_remind(template, contact.marketing_consent, contact.opted_out_marketing):
        raise Refused(
            "This customer has not opted in to marketing messages: choose a utility template", field="template_id"
        )
    name = first_name(contact.display_name, contact.profile_name) or "there"
    params = {"body": [name]} if message_templates.variables(template).get("body") else {}
    return conversation_commands.send_template(session, actor, conversation.id, template.id, params)
