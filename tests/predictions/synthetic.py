"""Generated order histories with known behaviour, for the engine's tests and benchmark.

Three kinds of customer: *regulars* who buy water every 14 +- 3 days (a share of them stop for good at
a random day), *random* buyers who order as a Poisson process with a personal rate, and *one-off*
customers with a single order. Everything comes from one seeded numpy generator, so a seed gives the
same histories every time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from sigdesk.predictions.model import History


@dataclass(frozen=True)
class Truth:
    """What the generator knows about a customer that the model must infer."""

    kind: str
    churn_day: date | None


def generate(
    seed: int,
    *,
    start: date,
    end: date,
    regulars: int = 300,
    random_buyers: int = 300,
    one_off: int = 100,
    churn_share: float = 0.3,
    interval: float = 14.0,
    jitter: float = 3.0,
) -> tuple[list[History], dict[int, Truth]]:
    """Histories of orders dated in [start, end), ids from 1, with each customer's kind."""
    rng = np.random.default_rng(seed)
    span = (end - start).days
    histories: list[History] = []
    truth: dict[int, Truth] = {}
    cid = 0

    def add(kind: str, offsets: list[int], churn: int | None, sku: str) -> None:
        nonlocal cid
        cid += 1
        days = [start + timedelta(days=int(o)) for o in offsets if 0 <= o < span]
        if not days:
            days = [start + timedelta(days=int(rng.integers(0, span)))]
        histories.append(History(cid, days, {sku: list(days)}, {}))
        truth[cid] = Truth(kind, start + timedelta(days=churn) if churn is not None else None)

    for _ in range(regulars):
        first = int(rng.integers(0, min(120, span)))
        churn = int(rng.integers(first + 30, span + 120)) if rng.random() < churn_share else None
        offsets, day = [], float(first)
        while day < span and (churn is None or day < churn):
            offsets.append(round(day))
            day += max(1.0, rng.normal(interval, jitter))
        add("regular", offsets, churn, "WATER-20L")
    for _ in range(random_buyers):
        first = int(rng.integers(0, span))
        rate = rng.gamma(1.5, 1 / 60)
        gaps = rng.exponential(1 / rate, size=int(span * rate * 3) + 5)
        offsets = [round(first + g) for g in np.concatenate([[0.0], np.cumsum(gaps)]) if first + g < span]
        add("random", offsets, None, "SNACKS")
    for _ in range(one_off):
        add("one_off", [int(rng.integers(0, span))], None, "GIFT")
    return histories, truth
