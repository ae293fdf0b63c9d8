"""The reorder-prediction engine: pure numbers, no Flask, no database.

Two models, combined:

* **BG/NBD** (Fader, Hardie & Lee 2005): every customer buys at a personal Poisson rate and may drop
  out after any order. Four population parameters (r, alpha, a, b) are fitted by maximum likelihood
  with scipy over every customer at once. It answers "is this customer still with us?" (P(alive)) and
  gives an expected number of orders for a customer who buys irregularly.
* **A regularity-aware renewal model** of the gaps between a customer's order days (and, separately,
  between the days a customer bought one product): the log of a gap follows a Student t whose centre and
  spread are the customer's own, shrunk towards the population's (normal-inverse-gamma, empirical
  Bayes). A water customer who orders every 14 +- 3 days gets a sharp probability around the due day;
  a customer with two orders leans on the population.

The probability of at least one order in ``[as_of, as_of + h)`` is
``P(alive) * (w_i * P_renewal + (1 - w_i) * P_bgnbd_if_alive)`` with ``w_i = w * n_i / (n_i + 1)``
(``n_i`` = the customer's number of gaps). ``fit`` chooses ``w`` on held-out history, per horizon: it
refits on the orders before ``as_of - 90 days`` (``- 30`` for a shorter history) and keeps, for the 7,
30 and 90-day windows after that day, the ``w`` with the lowest log-loss on who actually ordered; a
forecast horizon uses the nearest one. With too little history to judge (fewer than 50 repeat
customers or 90 days) it uses ``DEFAULT_WEIGHT``. ``w = 0`` is BG/NBD alone.

The caller passes non-cancelled, non-returned orders only; order days on or after ``as_of`` are
ignored, so the same histories can be scored "as of" any past day. Several orders on one day count
once (one buying occasion).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np
from scipy import optimize, special

ONE_ORDER = "only one order so far: not enough history"
NO_ORDERS = "no orders before this date"
DEFAULT_WEIGHT = 0.5
WEIGHT_GRID = tuple(round(0.1 * i, 1) for i in range(11))
SELECTION_WINDOW_DAYS = 30
SELECTION_HORIZONS = (7, 30, 90)
MIN_SELECTION_REPEATERS = 50
AT_RISK_MIN_MARGIN_DAYS = 7
AT_RISK_MIN_P_ALIVE = 0.1
_QUADRATURE_NODES = 24


@dataclass(frozen=True)
class History:
    """One customer's orders, cancelled and returned ones left out by the caller.

    ``days`` holds every order day (the customer's order count comes from it alone); ``products`` the
    days each SKU was bought; ``reorder_days`` the owner's typical interval per SKU, where set.
    """

    contact_id: int
    days: Sequence[date]
    products: Mapping[str, Sequence[date]] = field(default_factory=dict)
    reorder_days: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Forecast:
    """What the engine expects of one customer as of a day (see the module docstring for the method).

    ``next_order_at`` is the last order day plus the customer's typical gap (the shrunk median), and
    never before ``as_of``: an overdue customer is due now (``at_risk`` says when it is by a margin).
    The conditional median given the silence so far was tried and lost on held-out data (CDNOW: 54 vs
    14 days median error over 30 days). ``products`` holds the same date per product bought on two
    days or more, or once when the owner set the product's reorder interval.
    The extra fields: ``p_alive`` (BG/NBD), the typical gap in days, the last order day, and the
    BG/NBD-alone figures for comparison.
    """

    contact_id: int
    probability: dict[int, float]
    expected_orders: dict[int, float]
    next_order_at: date | None
    at_risk: bool
    products: dict[str, date]
    reason: str | None
    p_alive: float = 0.0
    typical_interval_days: float | None = None
    last_order_at: date | None = None
    probability_bgnbd: dict[int, float] = field(default_factory=dict)
    expected_orders_bgnbd: dict[int, float] = field(default_factory=dict)


@dataclass(frozen=True)
class BGNBD:
    """Fitted BG/NBD population parameters (time unit: days)."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    converged: bool


@dataclass(frozen=True)
class GapPrior:
    """Normal-inverse-gamma prior on log gaps: centre ``mu`` worth ``kappa`` gaps, spread ``s2`` worth ``nu``."""

    mu: float
    kappa: float
    nu: float
    s2: float


@dataclass(frozen=True)
class Model:
    """Population parameters fitted as of a day; ``forecast`` applies them to each customer."""

    as_of: date
    bgnbd: BGNBD
    orders_prior: GapPrior
    products_prior: GapPrior
    sku_priors: Mapping[str, GapPrior]
    weight: float
    weight_scores: Mapping[int, Mapping[float, float]]
    weight_chosen_on_history: bool
    customers: int
    repeat_customers: int
    weights: Mapping[int, float] = field(default_factory=dict)


_DEFAULT_BGNBD = BGNBD(r=0.5, alpha=30.0, a=1.0, b=3.0, log_likelihood=0.0, converged=False)
_DEFAULT_PRIOR = GapPrior(mu=float(np.log(30.0)), kappa=1.0, nu=1.0, s2=0.5**2)


# ----------------------------------------------------------------------------------------------
# Flattening: Python objects -> numpy arrays, once.


@dataclass(frozen=True)
class _Groups:
    """Sorted distinct day ordinals of many groups (customers or customer x product), concatenated."""

    group: np.ndarray
    day: np.ndarray
    size: int


@dataclass(frozen=True)
class _Flat:
    customers: _Groups
    pairs: _Groups
    pair_customer: np.ndarray
    pair_sku: np.ndarray
    pair_reorder_days: np.ndarray
    skus: list[str]


_KEY = 4_000_000  # above any date ordinal (9999-12-31 is 3,652,059)


def _distinct(lengths: list[int], days: list[date], cut: int) -> _Groups:
    """Sorted distinct day ordinals before ``cut`` per group, from groups' raw days laid end to end."""
    size = len(lengths)
    if not days:
        return _Groups(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), size)
    ordinal = np.fromiter(map(date.toordinal, days), dtype=np.int64, count=len(days))
    group = np.repeat(np.arange(size, dtype=np.int64), lengths)
    keep = ordinal < cut
    key = np.sort(group[keep] * _KEY + ordinal[keep])
    key = key[np.r_[True, key[1:] != key[:-1]]] if len(key) else key
    return _Groups(key // _KEY, key % _KEY, size)


def _flatten(histories: Sequence[History], as_of: date) -> _Flat:
    """Distinct order days before ``as_of`` per customer and per (customer, product), as ordinals.

    The Python loop only lays the dates end to end; conversion, sorting and de-duplication are numpy's.
    """
    cut = as_of.toordinal()
    c_len: list[int] = []
    c_days: list[date] = []
    p_len: list[int] = []
    p_days: list[date] = []
    pair_customer: list[int] = []
    pair_sku: list[int] = []
    pair_rd: list[float] = []
    sku_index: dict[str, int] = {}
    for i, h in enumerate(histories):
        c_len.append(len(h.days))
        c_days.extend(h.days)
        for sku, ds in h.products.items():
            if not ds:
                continue
            p_len.append(len(ds))
            p_days.extend(ds)
            pair_customer.append(i)
            pair_sku.append(sku_index.setdefault(sku, len(sku_index)))
            rd = h.reorder_days.get(sku) if h.reorder_days else None
            pair_rd.append(float(rd) if rd else np.nan)
    return _Flat(
        customers=_distinct(c_len, c_days, cut),
        pairs=_distinct(p_len, p_days, cut),
        pair_customer=np.asarray(pair_customer, dtype=np.int64),
        pair_sku=np.asarray(pair_sku, dtype=np.int64),
        pair_reorder_days=np.asarray(pair_rd, dtype=float),
        skus=list(sku_index),
    )


@dataclass(frozen=True)
class _Stats:
    """Per group: first and last day, distinct days, gap count and log-gap mean / sum of squares."""

    first: np.ndarray
    last: np.ndarray
    count: np.ndarray
    n_gaps: np.ndarray
    mean_log: np.ndarray
    ss_log: np.ndarray


def _stats(groups: _Groups, cut: int) -> _Stats:
    keep = groups.day < cut
    g, d = groups.group[keep], groups.day[keep]
    n = groups.size
    count = np.bincount(g, minlength=n)
    first = np.zeros(n, dtype=np.int64)
    last = np.zeros(n, dtype=np.int64)
    if len(g):
        start = np.r_[True, g[1:] != g[:-1]]
        end = np.r_[g[1:] != g[:-1], True]
        first[g[start]] = d[start]
        last[g[end]] = d[end]
    same = g[1:] == g[:-1] if len(g) else np.zeros(0, dtype=bool)
    gaps = (d[1:] - d[:-1])[same]
    gg = g[1:][same]
    y = np.log(gaps.astype(float))
    n_gaps = np.bincount(gg, minlength=n)
    s1 = np.bincount(gg, weights=y, minlength=n)
    s2 = np.bincount(gg, weights=y * y, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n_gaps > 0, s1 / np.maximum(n_gaps, 1), 0.0)
    ss = np.maximum(s2 - n_gaps * mean * mean, 0.0)
    return _Stats(first, last, count, n_gaps, mean, ss)


# ----------------------------------------------------------------------------------------------
# BG/NBD


def _bgnbd_loglik(
    params: np.ndarray, xs: np.ndarray, xi: np.ndarray, tx: np.ndarray, t: np.ndarray, weights: np.ndarray
) -> tuple[float, np.ndarray]:
    """Weighted BG/NBD log-likelihood and its gradient in the log-parameters.

    ``xs`` are the distinct repeat counts and ``xi`` each triple's index into them, so the gamma
    functions run once per distinct count rather than once per customer.
    """
    r, alpha, a, b = np.exp(params)
    x = xs[xi]
    lg = special.gammaln
    dg = special.digamma
    c1 = (lg(r + xs) - lg(r) + lg(a + b) + lg(b + xs) - lg(b) - lg(a + b + xs))[xi]
    log_at = np.log(alpha + t)
    log_atx = np.log(alpha + tx)
    repeat = x > 0
    bx1 = np.maximum(b + x - 1, 1e-300)
    a3 = -(r + x) * log_at
    a4 = np.where(repeat, np.log(a) - np.log(bx1) - (r + x) * log_atx, -np.inf)
    mix = np.logaddexp(a3, a4)
    ll = c1 + r * np.log(alpha) + mix
    w3 = np.exp(a3 - mix)
    w4 = np.where(repeat, np.exp(np.minimum(np.where(repeat, a4, 0.0) - mix, 0.0)), 0.0)
    d_r = (dg(r + xs) - dg(r))[xi] + np.log(alpha) - w3 * log_at - w4 * log_atx
    d_alpha = r / alpha - (r + x) * (w3 / (alpha + t) + w4 / (alpha + tx))
    d_a = (dg(a + b) - dg(a + b + xs))[xi] + w4 / a
    d_b = (dg(a + b) + dg(b + xs) - dg(b) - dg(a + b + xs))[xi] - w4 / bx1
    grad = np.array(
        [_wsum(weights, d_r) * r, _wsum(weights, d_alpha) * alpha, _wsum(weights, d_a) * a, _wsum(weights, d_b) * b]
    )
    return _wsum(weights, ll), grad


def _wsum(weights: np.ndarray, values: np.ndarray) -> float:
    """Weighted sum without BLAS: a busy machine makes BLAS's spinning threads 10x slower than this."""
    return float(np.sum(weights * values))


def _fit_bgnbd(x: np.ndarray, tx: np.ndarray, t: np.ndarray, start: BGNBD | None = None) -> BGNBD:
    """Maximum likelihood of (r, alpha, a, b) over the distinct (x, t_x, T) triples, weighted by count.

    Three starting points, or only ``start`` when a nearby fit is known (the held-out refit).
    """
    if len(x) == 0 or not np.any(x > 0):
        return _DEFAULT_BGNBD
    key = np.sort((x.astype(np.int64) << 42) | (tx.astype(np.int64) << 21) | t.astype(np.int64))
    starts_at = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    counts = np.diff(np.r_[starts_at, len(key)])
    key = key[starts_at]
    ux, utx, ut = ((key >> 42).astype(float), ((key >> 21) & 0x1FFFFF).astype(float), (key & 0x1FFFFF).astype(float))
    xs, xi = np.unique(ux, return_inverse=True)
    total = float(counts.sum())
    weights = counts / total

    low, high = np.array([-9.0, -7.0, -9.0, -9.0]), np.array([7.0, 13.0, 7.0, 9.0])

    def objective(params: np.ndarray) -> tuple[float, np.ndarray]:
        inside = np.clip(params, low, high)
        value, grad = _bgnbd_loglik(inside, xs, xi, utx, ut, weights)
        if not np.isfinite(value) or not np.all(np.isfinite(grad)):
            return 1e10, np.zeros(4)
        return -value, np.where(inside == params, -grad, 0.0)

    scale = float(np.mean(ut / (ux + 1)))
    starts = [
        np.log([0.5, max(scale, 1.0), 0.8, 2.5]),
        np.log([1.0, max(float(np.median(ut)), 1.0), 1.0, 1.0]),
        np.log([0.2, max(scale / 3, 1.0), 0.3, 5.0]),
    ]
    if start is not None and start.converged:
        starts = [np.log([start.r, start.alpha, start.a, start.b])]
    best = None
    for start in starts:
        # BFGS rather than L-BFGS-B: the latter calls BLAS for 4-vectors, and on a busy machine BLAS's
        # spinning threads made a 60-customer fit take seconds. Bounds are kept by clipping.
        result = optimize.minimize(objective, start, jac=True, method="BFGS", options={"maxiter": 300})
        if best is None or result.fun < best.fun:
            best = result
    assert best is not None
    r, alpha, a, b = (float(v) for v in np.exp(np.clip(best.x, low, high)))
    return BGNBD(r, alpha, a, b, log_likelihood=-float(best.fun) * total, converged=bool(best.success))


def _p_alive(bg: BGNBD, x: np.ndarray, tx: np.ndarray, t: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        log_ratio = (
            np.log(bg.a)
            - np.log(np.maximum(bg.b + x - 1, 1e-300))
            + (bg.r + x) * (np.log(bg.alpha + t) - np.log(bg.alpha + tx))
        )
    return np.where(x > 0, special.expit(-log_ratio), 1.0)


def _beta_nodes(a: float, b: float) -> tuple[np.ndarray, np.ndarray]:
    """Quadrature nodes and weights for an expectation under Beta(a, b).

    Gauss-Jacobi while its normalisation cannot overflow; for a very large ``b`` Beta(a, b) is close to
    Gamma(a) / b, so generalised Gauss-Laguerre on p = u / (b + u); when ``a`` is large too it is close
    to a normal, so Gauss-Hermite.
    """
    if a < 100 and b < 300:
        nodes, weights = special.roots_jacobi(_QUADRATURE_NODES, b - 1, a - 1)
        return (nodes + 1) / 2, weights / weights.sum()
    if a < 100:
        u, weights = special.roots_genlaguerre(_QUADRATURE_NODES, a - 1)
        return u / (b + u), weights / weights.sum()
    mean = a / (a + b)
    sd = np.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
    z, weights = special.roots_hermitenorm(_QUADRATURE_NODES)
    return np.clip(mean + sd * z, 1e-12, 1.0), weights / weights.sum()


def _bgnbd_if_alive(bg: BGNBD, x: np.ndarray, t: np.ndarray, h: int) -> tuple[np.ndarray, np.ndarray]:
    """P(at least one order) and expected orders in the next ``h`` days for a customer still alive.

    Alive, the rate has posterior Gamma(r + x, alpha + T) and the drop-out probability Beta(a, b + x);
    deaths only follow orders, so P(none) = E[exp(-lambda h)] and E[orders] = E[(1 - exp(-lambda p h)) / p],
    the latter integrated over p by Gauss-Jacobi quadrature (stable where 2F1 is not, e.g. a < 1).
    """
    base = (bg.alpha + t) / (bg.alpha + t + h)
    prob = 1.0 - np.exp((bg.r + x) * np.log(base))
    expected = np.zeros_like(t, dtype=float)
    for xv in np.unique(x):
        sel = x == xv
        p, weights = _beta_nodes(bg.a, bg.b + xv)
        tt = t[sel][:, None]
        ratio = (bg.alpha + tt) / (bg.alpha + tt + p[None, :] * h)
        f = -np.expm1((bg.r + xv) * np.log(ratio)) / p[None, :]
        expected[sel] = np.sum(f * weights[None, :], axis=1)
    return prob, expected


# ----------------------------------------------------------------------------------------------
# Renewal model on log gaps


def _gap_prior(s: _Stats) -> GapPrior:
    """Empirical-Bayes prior from the groups with gaps: median within-group spread, between-group spread."""
    has = s.n_gaps > 0
    if not np.any(has):
        return _DEFAULT_PRIOR
    means = s.mean_log[has]
    mu = float(np.mean(means))
    several = s.n_gaps >= 2
    within = float(np.median(s.ss_log[several] / (s.n_gaps[several] - 1))) if np.any(several) else _DEFAULT_PRIOR.s2
    within = max(within, 0.01)
    between = float(np.var(means) - np.mean(within / s.n_gaps[has])) if means.size > 1 else 0.25
    between = max(between, 0.01)
    return GapPrior(mu=mu, kappa=float(np.clip(within / between, 0.05, 20.0)), nu=1.0, s2=within)


@dataclass(frozen=True)
class _Predictive:
    """Student-t predictive of the log of the next gap, per group."""

    mu: np.ndarray
    scale: np.ndarray
    df: np.ndarray

    def sf(self, gap: np.ndarray) -> np.ndarray:
        g = np.maximum(gap, 1e-9)
        return special.stdtr(self.df, -(np.log(g) - self.mu) / self.scale)

    def median(self) -> np.ndarray:
        return np.exp(self.mu)

    def mean(self) -> np.ndarray:
        """Mean gap of a log-normal with this centre and spread (the t's own mean is infinite)."""
        return np.exp(self.mu + 0.5 * np.minimum(self.scale, 1.5) ** 2)


def _predictive(s: _Stats, prior: GapPrior, mu0: np.ndarray | None = None) -> _Predictive:
    centre = np.full(s.n_gaps.shape, prior.mu) if mu0 is None else mu0
    n = s.n_gaps.astype(float)
    kn = prior.kappa + n
    mun = (prior.kappa * centre + n * s.mean_log) / kn
    nun = prior.nu + n
    s2n = (prior.nu * prior.s2 + s.ss_log + prior.kappa * n * (s.mean_log - centre) ** 2 / kn) / nun
    return _Predictive(mu=mun, scale=np.sqrt(s2n * (1 + 1 / kn)), df=nun)


def _renewal_window(pred: _Predictive, elapsed: np.ndarray, h: int) -> tuple[np.ndarray, np.ndarray]:
    """P(next order in the window) and expected orders, given ``elapsed`` days without one.

    Gaps are whole days, so the continuous gap is rounded (half-day correction). Orders after the
    first in the window are placed one median gap apart.
    """
    lo = elapsed - 0.5
    hi = elapsed + h - 0.5
    sf_lo = np.maximum(pred.sf(lo), 1e-300)
    prob = np.clip(1.0 - pred.sf(hi) / sf_lo, 0.0, 1.0)
    expected = prob.copy()
    step = np.maximum(pred.mean(), 1.0)
    more = step < h
    if np.any(more):
        idx = np.nonzero(more)[0]
        k_max = int(min(np.ceil(h / step[idx].min()), 400))
        k = np.arange(1, k_max + 1)[None, :]
        upper = hi[idx, None] - k * step[idx, None]
        valid = upper > lo[idx, None]
        sub = _Predictive(pred.mu[idx, None], pred.scale[idx, None], pred.df[idx, None])
        terms = np.where(valid, np.clip(1.0 - sub.sf(np.where(valid, upper, 1.0)) / sf_lo[idx, None], 0, 1), 0.0)
        expected[idx] += terms.sum(axis=1)
    return prob, expected


# ----------------------------------------------------------------------------------------------
# Fit and forecast


@dataclass(frozen=True)
class _Scores:
    """Everything forecast needs per customer, for one cut and one horizon set."""

    stats: _Stats
    p_alive: np.ndarray
    prob_bg: dict[int, np.ndarray]
    exp_bg: dict[int, np.ndarray]
    prob_renewal: dict[int, np.ndarray]
    exp_renewal: dict[int, np.ndarray]
    reliability: np.ndarray
    pred: _Predictive


def _bg_inputs(s: _Stats, cut: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.maximum(s.count - 1, 0).astype(float)
    tx = (s.last - s.first).astype(float)
    t = (cut - s.first).astype(float)
    return x, tx, t


def _score(flat: _Flat, cut: int, bg: BGNBD, prior: GapPrior, horizons: Sequence[int]) -> _Scores:
    s = _stats(flat.customers, cut)
    x, tx, t = _bg_inputs(s, cut)
    p_alive = _p_alive(bg, x, tx, t)
    pred = _predictive(s, prior)
    elapsed = (cut - s.last).astype(float)
    prob_bg, exp_bg, prob_rn, exp_rn = {}, {}, {}, {}
    for h in horizons:
        prob_bg[h], exp_bg[h] = _bgnbd_if_alive(bg, x, t, h)
        prob_rn[h], exp_rn[h] = _renewal_window(pred, elapsed, h)
    reliability = s.n_gaps / (s.n_gaps + 1.0)
    return _Scores(s, p_alive, prob_bg, exp_bg, prob_rn, exp_rn, reliability, pred)


def _combine(sc: _Scores, h: int, weight: float) -> tuple[np.ndarray, np.ndarray]:
    w = weight * sc.reliability
    prob = sc.p_alive * (w * sc.prob_renewal[h] + (1 - w) * sc.prob_bg[h])
    expected = sc.p_alive * (w * sc.exp_renewal[h] + (1 - w) * sc.exp_bg[h])
    return prob, expected


def _choose_weights(flat: _Flat, as_of: date, near: BGNBD) -> tuple[dict[int, float], dict[int, dict[float, float]]]:
    """Per selection horizon, the renewal weight with the lowest log-loss on held-out history.

    Refit on the orders before ``as_of - 90 days`` (or ``- 30`` when the history is shorter) and score
    each window that fits before ``as_of``. Empty when there is too little history to judge.
    """
    for back in (max(SELECTION_HORIZONS), SELECTION_WINDOW_DAYS):
        cut = as_of.toordinal() - back
        s = _stats(flat.customers, cut)
        known = s.count > 0
        span = int(cut - s.first[known].min()) if np.any(known) else 0
        if int(np.sum(s.count >= 2)) >= MIN_SELECTION_REPEATERS and span >= 90:
            break
    else:
        return {}, {}
    horizons = [h for h in SELECTION_HORIZONS if h <= back]
    x, tx, t = _bg_inputs(s, cut)
    bg = _fit_bgnbd(x[known], tx[known], t[known], near)
    sc = _score(flat, cut, bg, _gap_prior(s), horizons)
    g, d = flat.customers.group, flat.customers.day
    weights: dict[int, float] = {}
    scores: dict[int, dict[float, float]] = {}
    for h in horizons:
        in_window = (d >= cut) & (d < cut + h)
        y = (np.bincount(g[in_window], minlength=flat.customers.size) > 0)[known]
        scores[h] = {}
        for w in WEIGHT_GRID:
            p = np.clip(_combine(sc, h, w)[0][known], 1e-6, 1 - 1e-6)
            scores[h][w] = float(-np.mean(y * np.log(p) + (~y) * np.log(1 - p)))
        weights[h] = min(scores[h], key=lambda w, h=h: (scores[h][w], w))
    return weights, scores


def _weight_for(model: Model, horizon: int) -> float:
    """The weight chosen for the selection horizon nearest ``horizon`` (on a log scale)."""
    if not model.weights:
        return model.weight
    nearest = min(model.weights, key=lambda h: (abs(np.log(h) - np.log(max(horizon, 1))), h))
    return model.weights[nearest]


def fit(histories: Sequence[History], as_of: date, *, weight: float | None = None) -> Model:
    """Fit the population parameters on the orders dated before ``as_of``.

    ``weight`` fixes the renewal weight for every horizon (0 = BG/NBD alone); by default it is chosen
    per horizon on held-out history (``Model.weights``; ``Model.weight`` is the 30-day one).
    """
    flat = _flatten(histories, as_of)
    return _fit_flat(flat, as_of, weight)


def _fit_flat(flat: _Flat, as_of: date, weight: float | None) -> Model:
    cut = as_of.toordinal()
    s = _stats(flat.customers, cut)
    known = s.count > 0
    x, tx, t = _bg_inputs(s, cut)
    bg = _fit_bgnbd(x[known], tx[known], t[known])
    ps = _stats(flat.pairs, cut)
    base = _gap_prior(ps)
    n_skus = len(flat.skus)
    has = ps.n_gaps > 0
    gaps_per_sku = np.bincount(flat.pair_sku, weights=ps.n_gaps, minlength=n_skus)
    pairs_per_sku = np.bincount(flat.pair_sku, weights=has.astype(float), minlength=n_skus)
    log_sum = np.bincount(flat.pair_sku, weights=ps.mean_log * ps.n_gaps, minlength=n_skus)
    sku_priors = {
        sku: GapPrior(mu=float(log_sum[k] / gaps_per_sku[k]), kappa=base.kappa, nu=base.nu, s2=base.s2)
        for k, sku in enumerate(flat.skus)
        if gaps_per_sku[k] >= 5 and pairs_per_sku[k] >= 2
    }
    weights, scores = _choose_weights(flat, as_of, bg) if weight is None else ({}, {})
    chosen = float(weight) if weight is not None else weights.get(SELECTION_WINDOW_DAYS, DEFAULT_WEIGHT)
    return Model(
        as_of=as_of,
        bgnbd=bg,
        orders_prior=_gap_prior(s),
        products_prior=base,
        sku_priors=sku_priors,
        weight=chosen,
        weight_scores=scores,
        weight_chosen_on_history=bool(weights),
        weights=weights,
        customers=int(known.sum()),
        repeat_customers=int(np.sum(s.count >= 2)),
    )


def _product_dates(model: Model, flat: _Flat, cut: int) -> np.ndarray:
    """Expected next reorder day (ordinal, 0 = none) per (customer, product) pair."""
    ps = _stats(flat.pairs, cut)
    if flat.pairs.size == 0:
        return np.zeros(0, dtype=np.int64)
    prior = model.products_prior
    by_sku = np.array([model.sku_priors[sku].mu if sku in model.sku_priors else prior.mu for sku in flat.skus])
    centre = by_sku[flat.pair_sku]
    owner = ~np.isnan(flat.pair_reorder_days)
    centre[owner] = np.log(flat.pair_reorder_days[owner])
    pred = _predictive(ps, prior, centre)
    gap = pred.median()
    due = ps.last + np.rint(gap).astype(np.int64)
    due = np.maximum(due, cut)
    usable = (ps.count > 0) & ((ps.n_gaps > 0) | owner)
    return np.where(usable, due, 0)


def forecast(
    model: Model, histories: Sequence[History], as_of: date, horizons: Sequence[int], *, margin_days: int = 0
) -> list[Forecast]:
    """One forecast per history, from the orders dated before ``as_of``, for each horizon in days.

    A repeat customer still likely alive is ``at_risk`` when more than their typical gap plus ``margin_days``
    has passed since the last order; ``margin_days`` 0 (the owner set none) is half the typical gap, at least
    ``AT_RISK_MIN_MARGIN_DAYS``. The rule lives here only, so stored and on-the-fly forecasts agree."""
    return _forecast_flat(model, _flatten(histories, as_of), histories, as_of, horizons, margin_days)


def _forecast_flat(
    model: Model,
    flat: _Flat,
    histories: Sequence[History],
    as_of: date,
    horizons: Sequence[int],
    margin_days: int = 0,
) -> list[Forecast]:
    horizons = [int(h) for h in horizons]
    cut = as_of.toordinal()
    sc = _score(flat, cut, model.bgnbd, model.orders_prior, horizons)
    s = sc.stats
    combined = {h: _combine(sc, h, _weight_for(model, h)) for h in horizons}
    bg_only = {h: (sc.p_alive * sc.prob_bg[h], sc.p_alive * sc.exp_bg[h]) for h in horizons}
    elapsed = (cut - s.last).astype(float)
    typical = sc.pred.median()
    next_gap = sc.pred.median()
    next_day = np.maximum(s.last + np.rint(next_gap).astype(np.int64), cut)
    margin = float(margin_days) if margin_days > 0 else np.maximum(0.5 * typical, AT_RISK_MIN_MARGIN_DAYS)
    at_risk = (s.n_gaps > 0) & (elapsed > typical + margin) & (sc.p_alive >= AT_RISK_MIN_P_ALIVE)
    product_due = _product_dates(model, flat, cut)
    per_customer: list[dict[str, date]] = [{} for _ in histories]
    for j in np.nonzero(product_due)[0]:
        per_customer[flat.pair_customer[j]][flat.skus[flat.pair_sku[j]]] = date.fromordinal(int(product_due[j]))

    out: list[Forecast] = []
    prob = {h: combined[h][0].tolist() for h in horizons}
    expd = {h: combined[h][1].tolist() for h in horizons}
    prob_bg = {h: bg_only[h][0].tolist() for h in horizons}
    exp_bg = {h: bg_only[h][1].tolist() for h in horizons}
    count, n_gaps, last = s.count.tolist(), s.n_gaps.tolist(), s.last.tolist()
    p_alive, typ, nxt, risk = sc.p_alive.tolist(), typical.tolist(), next_day.tolist(), at_risk.tolist()
    for i, h_ in enumerate(histories):
        if count[i] == 0:
            zero = {h: 0.0 for h in horizons}
            out.append(
                Forecast(
                    h_.contact_id,
                    zero,
                    dict(zero),
                    None,
                    False,
                    {},
                    NO_ORDERS,
                    probability_bgnbd=dict(zero),
                    expected_orders_bgnbd=dict(zero),
                )
            )
            continue
        repeat = n_gaps[i] > 0
        out.append(
            Forecast(
                contact_id=h_.contact_id,
                probability={h: prob[h][i] for h in horizons},
                expected_orders={h: expd[h][i] for h in horizons},
                next_order_at=date.fromordinal(nxt[i]) if repeat else None,
                at_risk=bool(risk[i]),
                products=per_customer[i],
                reason=None if repeat else ONE_ORDER,
                p_alive=p_alive[i],
                typical_interval_days=typ[i] if repeat else None,
                last_order_at=date.fromordinal(last[i]),
                probability_bgnbd={h: prob_bg[h][i] for h in horizons},
                expected_orders_bgnbd={h: exp_bg[h][i] for h in horizons},
            )
        )
    return out


def fit_and_forecast(
    histories: Sequence[History], as_of: date, horizons: Sequence[int], *, margin_days: int = 0
) -> tuple[Model, list[Forecast]]:
    """``fit`` then ``forecast`` on the same histories, flattening them once."""
    flat = _flatten(histories, as_of)
    model = _fit_flat(flat, as_of, None)
    return model, _forecast_flat(model, flat, histories, as_of, horizons, margin_days)


def truncate(history: History, as_of: date) -> History:
    """The same history with only the days before ``as_of`` (for "as of" backtests)."""
    return History(
        contact_id=history.contact_id,
        days=[d for d in history.days if d < as_of],
        products={k: [d for d in v if d < as_of] for k, v in history.products.items()},
        reorder_days=dict(history.reorder_days),
    )
