"""Reorder-prediction benchmark: quality on a public retail data set, on synthetic regulars, and speed.

Run from the project root:

    .venv/bin/python tests/perf/bench_prediction_quality.py

1. CDNOW (23,570 customers of a CD shop, Jan 1997 - Jun 1998, the "master" file shipped inside the
   `lifetimes` package on PyPI). The wheel is fetched once with `pip download lifetimes==0.11.3 --no-deps`
   into ~/.cache/sigdesk-bench (lifetimes is NOT installed: its pins are old) and the file is read out of
   the wheel with zipfile. Cut-off 1998-04-01 (15 of 18 months before it), horizons 30 and 90 days:
   AUC of `probability`, precision at k (k = actual buyers), total expected vs actual orders, for the
   combined model, BG/NBD alone and the "days since last order" baseline, all from the same fit.
2. Synthetic regular reorderers (water every 14 +- 3 days, 30 % churning, plus random buyers and
   one-off customers): per-product next reorder day, median absolute error in days against the
   "average interval" baseline, and the same ranking figures.
3. Speed: fit + forecast (horizons 7, 30, 90) for 50,000 synthetic customers / ~300,000 orders over
   two years, in a child process; wall time and that process's peak RSS.

Readable lines go to stdout; the last line is the same numbers as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import zipfile
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np

from sigdesk.predictions.backtest import HorizonScore, backtest
from sigdesk.predictions.model import History, fit, forecast
from tests.predictions.synthetic import generate

CACHE = Path.home() / ".cache" / "sigdesk-bench"
WHEEL = "Lifetimes-0.11.3-py3-none-any.whl"
CDNOW = "lifetimes/datasets/CDNOW_master.txt"
CDNOW_CUTOFF = date(1998, 4, 1)
HORIZONS = (30, 90)


def cdnow_histories() -> list[History]:
    wheel = CACHE / WHEEL
    if not wheel.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "lifetimes==0.11.3", "--no-deps", "-d", str(CACHE)],
            check=True,
            capture_output=True,
        )
    days: dict[int, list[date]] = defaultdict(list)
    with zipfile.ZipFile(wheel) as z:
        for line in z.read(CDNOW).decode().splitlines()[1:]:
            parts = line.split()
            if len(parts) < 4:
                continue
            d = parts[1]
            days[int(parts[0])].append(date(int(d[:4]), int(d[4:6]), int(d[6:])))
    return [History(cid, sorted(ds), {}, {}) for cid, ds in sorted(days.items())]


def fmt(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def ranking_table(title: str, scores: dict[int, HorizonScore]) -> dict:
    print(title)
    out = {}
    for h, s in scores.items():
        print(f"  next {h} days: {s.customers} customers, {s.buyers} bought, {s.actual_orders} order days")
        print(f"    {'method':<26}{'AUC':>8}{'prec@k':>9}{'expected orders':>18}")
        rows = [
            ("combined model", s.model.auc, s.model.precision_at_k, s.expected_orders),
            ("BG/NBD alone", s.bgnbd.auc, s.bgnbd.precision_at_k, s.expected_orders_bgnbd),
            ("days since last order", s.days_since_last.auc, s.days_since_last.precision_at_k, None),
            ("average interval", None, None, s.expected_orders_average_interval),
        ]
        for name, a, p, e in rows:
            print(f"    {name:<26}{fmt(a):>8}{fmt(p):>9}{fmt(e, 0):>18}")
        print(f"    actual orders {s.actual_orders}")
        cal = ", ".join(f"{c.mean_predicted:.2f}->{c.observed_share:.2f} (n={c.customers})" for c in s.calibration)
        print(f"    calibration (predicted->observed): {cal}")
        print(
            f"    next order day, median abs error: model {fmt(s.next_order_error_days, 1)} d, "
            f"average interval {fmt(s.next_order_error_days_average_interval, 1)} d (n={s.next_order_scored})"
        )
        out[h] = {
            "customers": s.customers,
            "buyers": s.buyers,
            "actual_orders": s.actual_orders,
            "auc": {"combined": s.model.auc, "bgnbd": s.bgnbd.auc, "days_since_last": s.days_since_last.auc},
            "precision_at_k": {
                "combined": s.model.precision_at_k,
                "bgnbd": s.bgnbd.precision_at_k,
                "days_since_last": s.days_since_last.precision_at_k,
            },
            "expected_orders": {
                "combined": s.expected_orders,
                "bgnbd": s.expected_orders_bgnbd,
                "average_interval": s.expected_orders_average_interval,
            },
            "next_order_error_days": {
                "combined": s.next_order_error_days,
                "average_interval": s.next_order_error_days_average_interval,
            },
            "product_error_days": {
                "combined": s.product_error_days,
                "average_interval": s.product_error_days_average_interval,
                "n": s.products_scored,
            },
        }
    return out


def quality() -> dict:
    result: dict = {}
    histories = cdnow_histories()
    t0 = time.perf_counter()
    bt = backtest(histories, CDNOW_CUTOFF, HORIZONS)
    elapsed = time.perf_counter() - t0
    m = bt.model
    print(f"CDNOW master (lifetimes 0.11.3 wheel): {len(histories)} customers, cut-off {CDNOW_CUTOFF}")
    print(
        f"  BG/NBD r={m.bgnbd.r:.3f} alpha={m.bgnbd.alpha:.2f} a={m.bgnbd.a:.3f} b={m.bgnbd.b:.3f}; "
        f"renewal weight chosen on held-out history per horizon: {m.weights}; {elapsed:.1f} s"
    )
    for h, scores in m.weight_scores.items():
        print(f"    held-out log-loss, {h} d window: " + ", ".join(f"w={w}: {v:.4f}" for w, v in scores.items()))
    result["cdnow"] = {
        "cutoff": CDNOW_CUTOFF.isoformat(),
        "customers": len(histories),
        "weights": m.weights,
        "horizons": ranking_table("  CDNOW", bt.horizons),
    }
    for w in (0.0, 1.0):
        alt = backtest(histories, CDNOW_CUTOFF, HORIZONS, weight=w)
        line = "; ".join(
            f"{h} d AUC {fmt(s.model.auc)} prec@k {fmt(s.model.precision_at_k)} expected {s.expected_orders:.0f}"
            for h, s in alt.horizons.items()
        )
        print(f"  CDNOW with the renewal weight forced to {w}: {line}")

    start, end, cut = date(2024, 1, 1), date(2025, 6, 1), date(2025, 3, 1)
    histories, _ = generate(7, start=start, end=end, regulars=600, random_buyers=600, one_off=200)
    bt = backtest(histories, cut, (7, *HORIZONS))
    print(
        f"Synthetic: 600 regulars (14 +- 3 d, 30 % churn), 600 random buyers, 200 one-off; cut-off {cut}; "
        f"renewal weights chosen: {bt.model.weights}"
    )
    result["synthetic"] = {"weights": bt.model.weights, "horizons": ranking_table("  synthetic", bt.horizons)}
    for h, s in bt.horizons.items():
        print(
            f"  per-product next reorder day ({h} d window), median abs error: model {fmt(s.product_error_days, 1)} d, "
            f"average-interval baseline {fmt(s.product_error_days_average_interval, 1)} d (n={s.products_scored})"
        )
    return result


def big_histories(seed: int, customers: int, orders: int) -> list[History]:
    """~``orders`` orders over two years among ``customers``: mixed regular and random buyers, 3 products."""
    rng = np.random.default_rng(seed)
    start = date(2024, 1, 1)
    span = 730
    per = orders / customers
    out = []
    skus = ["WATER-20L", "FILTER", "CUPS"]
    for cid in range(1, customers + 1):
        n = max(1, int(rng.poisson(per)))
        if rng.random() < 0.4:
            gap = rng.uniform(7, 60)
            first = rng.uniform(0, max(1.0, span - gap * n))
            offsets = first + np.cumsum(np.r_[0, rng.normal(gap, gap * 0.2, n - 1).clip(1)])
        else:
            offsets = np.sort(rng.uniform(0, span, n))
        days = [start + timedelta(days=int(o)) for o in offsets if o < span]
        products: dict[str, list[date]] = defaultdict(list)
        for d in days:
            products[skus[int(rng.integers(0, 3))]].append(d)
        out.append(History(cid, days, dict(products), {"WATER-20L": 14} if cid % 10 == 0 else {}))
    return out


def speed(customers: int, orders: int) -> dict:
    histories = big_histories(3, customers, orders)
    n_orders = sum(len(h.days) for h in histories)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    as_of = date(2026, 1, 1)
    c0, t0 = time.process_time(), time.perf_counter()
    model = fit(histories, as_of)
    t1 = time.perf_counter()
    forecasts = forecast(model, histories, as_of, [7, 30, 90])
    c2, t2 = time.process_time(), time.perf_counter()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert len(forecasts) == customers
    return {
        "customers": customers,
        "orders": n_orders,
        "fit_s": t1 - t0,
        "forecast_s": t2 - t1,
        "total_s": t2 - t0,
        "cpu_s": c2 - c0,
        "load_average_1min": os.getloadavg()[0],
        "peak_rss_mb": rss,
        "rss_after_building_histories_mb": rss_before,
        "weights": model.weights,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--speed-only", action="store_true", help="(internal) the child process of part 3")
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--orders", type=int, default=300_000)
    args = parser.parse_args()
    if args.speed_only:
        print(json.dumps(speed(args.customers, args.orders)))
        return
    result = quality()
    child = subprocess.run(
        [sys.executable, __file__, "--speed-only", "--customers", str(args.customers), "--orders", str(args.orders)],
        check=True,
        capture_output=True,
        text=True,
    )
    sp = json.loads(child.stdout.strip().splitlines()[-1])
    print(
        f"Speed: {sp['customers']} customers / {sp['orders']} orders: fit {sp['fit_s']:.1f} s + forecast "
        f"{sp['forecast_s']:.1f} s = {sp['total_s']:.1f} s wall ({sp['cpu_s']:.1f} s CPU, "
        f"load average {sp['load_average_1min']:.1f} on {os.cpu_count()} CPUs); peak RSS {sp['peak_rss_mb']:.0f} MB "
        f"({sp['rss_after_building_histories_mb']:.0f} MB after building the histories)"
    )
    result["speed"] = sp
    print(json.dumps(result))


if __name__ == "__main__":
    main()
