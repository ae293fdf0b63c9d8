"""How well would the predictions have come true? Score forecasts made "as of" a past day.

The caller passes each customer's full (non-cancelled) history; ``backtest`` fits and forecasts with
only the orders before the cut-off and compares with the order days in ``[cutoff, cutoff + h)``.
Scoring works on ranks and shares, so it needs no Flask or database either. Next to the model it
scores two naive baselines: "days since last order" (the more recent, the likelier; a ranking only) and
"average interval" (next order = last order + the customer's mean gap, not before the cut-off; orders
in the window = h / mean gap).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
from scipy import stats

from sigdesk.predictions.model import Forecast, History, Model, fit, forecast

MIN_REPEAT_CUSTOMERS = 50
MIN_HISTORY_DAYS = 90
CALIBRATION_EDGES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


@dataclass(frozen=True)
class HistoryCheck:
    """Whether there is enough history to predict, and in plain words why not."""

    enough: bool
    repeat_customers: int
    customers: int
    days_of_orders: int
    reason: str | None


def enough_history(histories: Sequence[History], as_of: date) -> HistoryCheck:
    """At least ``MIN_REPEAT_CUSTOMERS`` customers with two order days and ``MIN_HISTORY_DAYS`` of orders."""
    firsts: list[date] = []
    repeat = 0
    for h in histories:
        days = {d for d in h.days if d < as_of}
        if days:
            firsts.append(min(days))
            repeat += len(days) >= 2
    span = (as_of - min(firsts)).days if firsts else 0
    problems = []
    if repeat < MIN_REPEAT_CUSTOMERS:
        problems.append(
            f"only {repeat} customer{'s' if repeat != 1 else ''} ordered more than once "
            f"(predictions need at least {MIN_REPEAT_CUSTOMERS})"
        )
    if span < MIN_HISTORY_DAYS:
        problems.append(f"orders cover only {span} days (predictions need at least {MIN_HISTORY_DAYS})")
    reason = ("Too little history to predict reliably: " + "; ".join(problems) + ".") if problems else None
    return HistoryCheck(not problems, repeat, len(firsts), span, reason)


@dataclass(frozen=True)
class CalibrationBin:
    lower: float
    upper: float
    customers: int
    mean_predicted: float
    observed_share: float


@dataclass(frozen=True)
class Ranking:
    """How well a score ranks the customers who did order above those who did not."""

    auc: float | None
    precision_at_k: float | None


@dataclass(frozen=True)
class HorizonScore:
    """One horizon of a backtest: customers scored, buyers, and the model against the baselines."""

    horizon: int
    customers: int
    buyers: int
    model: Ranking
    bgnbd: Ranking
    days_since_last: Ranking
    expected_orders: float
    expected_orders_bgnbd: float
    expected_orders_average_interval: float
    actual_orders: int
    calibration: list[CalibrationBin]
    next_order_error_days: float | None
    next_order_error_days_average_interval: float | None
    next_order_scored: int
    product_error_days: float | None
    product_error_days_average_interval: float | None
    products_scored: int
    due_hit_rate: float | None
    due_customers: int


@dataclass(frozen=True)
class Backtest:
    cutoff: date
    check: HistoryCheck
    model: Model
    horizons: dict[int, HorizonScore]


def auc(scores: Sequence[float] | np.ndarray, labels: Sequence[bool] | np.ndarray) -> float | None:
    """Area under the ROC curve from average ranks (ties count half); None when one class is empty."""
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=bool)
    pos, neg = int(y.sum()), int((~y).sum())
    if pos == 0 or neg == 0:
        return None
    ranks = stats.rankdata(s)
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * neg))


def precision_at_k(scores: Sequence[float] | np.ndarray, labels: Sequence[bool] | np.ndarray) -> float | None:
    """Share of buyers among the k highest scores, k = the number of buyers; ties at the cut share evenly."""
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=bool)
    k = int(y.sum())
    if k == 0:
        return None
    order = np.argsort(-s, kind="stable")
    threshold = s[order[k - 1]]
    above = s > threshold
    tied = s == threshold
    slots = k - int(above.sum())
    hits = float(y[above].sum()) + slots * float(y[tied].mean())
    return hits / k


def calibration(
    predicted: np.ndarray, observed: np.ndarray, edges: Sequence[float] = CALIBRATION_EDGES
) -> list[CalibrationBin]:
    """Predicted probability against the observed share of buyers, in probability bins (empty bins left out)."""
    out = []
    bins = np.clip(np.searchsorted(edges, predicted, side="right") - 1, 0, len(edges) - 2)
    for i in range(len(edges) - 1):
        sel = bins == i
        if sel.any():
            out.append(
                CalibrationBin(
                    edges[i], edges[i + 1], int(sel.sum()), float(predicted[sel].mean()), float(observed[sel].mean())
                )
            )
    return out


def _median(values: list[int]) -> float | None:
    return float(np.median(values)) if values else None


def score(
    forecasts: Sequence[Forecast],
    histories: Sequence[History],
    cutoff: date,
    horizon: int,
    due_threshold: float = 0.5,
) -> HorizonScore:
    """Compare forecasts made as of ``cutoff`` with the orders of ``histories`` in ``[cutoff, cutoff + horizon)``.

    ``histories`` may hold orders on both sides of the cut-off and must be in the same order as the
    forecasts. Customers without an order before the cut-off are not scored (nothing was predicted).
    """
    end = cutoff.toordinal() + horizon
    cut = cutoff.toordinal()
    prob, prob_bg, recency, bought = [], [], [], []
    exp_model = exp_bg = exp_avg = 0.0
    actual = 0
    err, err_avg, perr, perr_avg = [], [], [], []
    for f, h in zip(forecasts, histories, strict=True):
        days = sorted({d.toordinal() for d in h.days})
        before = [d for d in days if d < cut]
        if not before:
            continue
        window = [d for d in days if cut <= d < end]
        prob.append(f.probability[horizon])
        prob_bg.append(f.probability_bgnbd.get(horizon, f.probability[horizon]))
        recency.append(-(cut - before[-1]))
        bought.append(bool(window))
        actual += len(window)
        exp_model += f.expected_orders[horizon]
        exp_bg += f.expected_orders_bgnbd.get(horizon, f.expected_orders[horizon])
        if len(before) >= 2:
            mean_gap = (before[-1] - before[0]) / (len(before) - 1)
            exp_avg += horizon / mean_gap
            if window:
                err_avg.append(abs(window[0] - max(before[-1] + round(mean_gap), cut)))
        if window and f.next_order_at is not None:
            err.append(abs(window[0] - f.next_order_at.toordinal()))
        for sku, due in f.products.items():
            pdays = sorted({d.toordinal() for d in h.products.get(sku, ())})
            pbefore = [d for d in pdays if d < cut]
            pwindow = [d for d in pdays if cut <= d < end]
            if not pwindow:
                continue
            perr.append(abs(pwindow[0] - due.toordinal()))
            if len(pbefore) >= 2:
                gap = (pbefore[-1] - pbefore[0]) / (len(pbefore) - 1)
                perr_avg.append(abs(pwindow[0] - max(pbefore[-1] + round(gap), cut)))
    p = np.asarray(prob, dtype=float)
    y = np.asarray(bought, dtype=bool)
    due = p >= due_threshold
    return HorizonScore(
        horizon=horizon,
        customers=len(prob),
        buyers=int(y.sum()),
        model=Ranking(auc(p, y), precision_at_k(p, y)),
        bgnbd=Ranking(auc(prob_bg, y), precision_at_k(prob_bg, y)),
        days_since_last=Ranking(auc(recency, y), precision_at_k(recency, y)),
        expected_orders=exp_model,
        expected_orders_bgnbd=exp_bg,
        expected_orders_average_interval=exp_avg,
        actual_orders=actual,
        calibration=calibration(p, y.astype(float)),
        next_order_error_days=_median(err),
        next_order_error_days_average_interval=_median(err_avg),
        next_order_scored=len(err),
        product_error_days=_median(perr),
        product_error_days_average_interval=_median(perr_avg),
        products_scored=len(perr),
        due_hit_rate=float(y[due].mean()) if due.any() else None,
        due_customers=int(due.sum()),
    )


def backtest(
    histories: Sequence[History],
    cutoff: date,
    horizons: Sequence[int] = (30, 90),
    *,
    weight: float | None = None,
) -> Backtest:
    """Fit and forecast as of ``cutoff`` from the orders before it, then score each horizon.

    The histories are the customers' full histories: the orders after the cut-off are what gets scored.
    """
    model = fit(histories, cutoff, weight=weight)
    forecasts = forecast(model, histories, cutoff, list(horizons))
    return Backtest(
        cutoff=cutoff,
        check=enough_history(histories, cutoff),
        model=model,
        horizons={h: score(forecasts, histories, cutoff, h) for h in horizons},
    )
