"""Scoring forecasts made as of a past day against what the customers then did."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from sigdesk.predictions.backtest import (
    MIN_HISTORY_DAYS,
    MIN_REPEAT_CUSTOMERS,
    auc,
    backtest,
    calibration,
    enough_history,
    precision_at_k,
)
from sigdesk.predictions.model import History
from tests.predictions.synthetic import generate

START, END, CUT = date(2025, 1, 1), date(2026, 2, 1), date(2025, 11, 1)


def test_auc_counts_ties_as_half_and_needs_both_classes():
    assert auc([0.9, 0.8, 0.1, 0.2], [True, True, False, False]) == 1.0
    assert auc([0.1, 0.2, 0.9, 0.8], [True, True, False, False]) == 0.0
    assert auc([0.5, 0.5, 0.5, 0.5], [True, False, True, False]) == 0.5
    assert auc([0.9, 0.5, 0.5, 0.1], [True, True, False, False]) == pytest.approx(0.875)
    assert auc([0.3, 0.4], [False, False]) is None
    assert auc([], []) is None


def test_precision_at_k_takes_as_many_as_there_were_buyers_and_shares_ties():
    assert precision_at_k([0.9, 0.8, 0.7, 0.1], [True, False, True, False]) == 0.5
    assert precision_at_k([0.9, 0.5, 0.5, 0.5], [True, True, False, False]) == pytest.approx((1 + 1 / 3) / 2)
    assert precision_at_k([0.1, 0.2], [False, False]) is None


def test_calibration_bins_compare_predicted_with_observed_share():
    predicted = np.array([0.05, 0.05, 0.95, 0.95, 0.95, 1.0])
    observed = np.array([0.0, 1.0, 1.0, 1.0, 0.0, 1.0])
    bins = calibration(predicted, observed)
    assert [(b.lower, b.upper, b.customers) for b in bins] == [(0.0, 0.1, 2), (0.9, 1.0, 4)]
    assert bins[0].observed_share == 0.5
    assert bins[1].mean_predicted == pytest.approx(0.9625)
    assert bins[1].observed_share == 0.75


def regulars(count: int, first: date, days: int) -> list[History]:
    return [History(i, [first + timedelta(days=k) for k in range(0, days, 14)], {}, {}) for i in range(count)]


def test_too_few_repeat_customers_is_said_plainly():
    check = enough_history(regulars(MIN_REPEAT_CUSTOMERS - 1, date(2025, 1, 1), 200), date(2025, 9, 1))
    assert not check.enough
    assert check.repeat_customers == MIN_REPEAT_CUSTOMERS - 1
    assert f"only {MIN_REPEAT_CUSTOMERS - 1} customers ordered more than once" in check.reason
    assert f"at least {MIN_REPEAT_CUSTOMERS}" in check.reason


def test_too_short_a_history_is_said_plainly():
    check = enough_history(regulars(80, date(2025, 6, 1), 60), date(2025, 8, 1))
    assert not check.enough
    assert check.days_of_orders == 61
    assert f"orders cover only 61 days (predictions need at least {MIN_HISTORY_DAYS})" in check.reason


def test_enough_history_only_counts_orders_before_the_day():
    histories = regulars(80, date(2025, 1, 1), 300)
    assert enough_history(histories, date(2025, 10, 1)).enough
    assert enough_history(histories, date(2025, 1, 10)).reason.startswith("Too little history")
    assert not enough_history([], date(2025, 1, 1)).enough


@pytest.fixture(scope="module")
def scored():
    histories, _ = generate(5, start=START, end=END, regulars=250, random_buyers=250, one_off=60)
    return backtest(histories, CUT, [7, 30, 90])


def test_the_model_ranks_next_week_buyers_better_than_days_since_last_order(scored):
    week = scored.horizons[7]
    assert week.model.auc > week.days_since_last.auc + 0.1
    assert week.model.precision_at_k > week.days_since_last.precision_at_k


def test_every_horizon_scores_the_customers_known_before_the_cut_off(scored):
    assert scored.check.enough
    for h, s in scored.horizons.items():
        assert s.horizon == h
        assert 0 < s.buyers < s.customers
        assert s.actual_orders >= s.buyers
        assert s.model.auc > 0.8
        assert sum(b.customers for b in s.calibration) == s.customers
        assert s.due_customers > 0 and s.due_hit_rate > 0.6


def test_regular_reorder_days_are_no_worse_than_the_average_interval(scored):
    s = scored.horizons[30]
    assert s.products_scored > 100
    assert s.product_error_days <= s.product_error_days_average_interval
    assert s.next_order_error_days <= s.next_order_error_days_average_interval


def test_a_backtest_with_no_customers_reports_nothing_to_score():
    result = backtest([], CUT, [30])
    assert not result.check.enough
    s = result.horizons[30]
    assert (s.customers, s.buyers, s.model.auc, s.next_order_error_days) == (0, 0, None, None)
