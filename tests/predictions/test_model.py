"""The reorder-prediction engine on generated histories whose intervals are known."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest
from scipy import special

from sigdesk.predictions.backtest import auc, backtest
from sigdesk.predictions.model import (
    BGNBD,
    NO_ORDERS,
    ONE_ORDER,
    History,
    _bgnbd_if_alive,
    _p_alive,
    fit,
    fit_and_forecast,
    forecast,
)
from tests.predictions.synthetic import generate

START, END, CUT = date(2025, 1, 1), date(2026, 2, 1), date(2025, 11, 1)


@pytest.fixture(scope="module")
def population():
    return generate(11, start=START, end=END, regulars=250, random_buyers=250, one_off=60)


@pytest.fixture(scope="module")
def predicted(population):
    histories, _ = population
    model, forecasts = fit_and_forecast(histories, CUT, [7, 30, 90])
    return model, forecasts


def every(start: date, step: int, count: int) -> list[date]:
    return [start + timedelta(days=step * i) for i in range(count)]


def test_regulars_due_in_the_next_week_rank_above_everyone_else(population, predicted):
    histories, truth = population
    _, forecasts = predicted
    probs, due = [], []
    for h, f in zip(histories, forecasts, strict=True):
        before = [d for d in h.days if d < CUT]
        if not before:
            continue
        next_day = min((d for d in h.days if d >= CUT), default=None)
        probs.append(f.probability[7])
        due.append(truth[h.contact_id].kind == "regular" and next_day is not None and next_day < CUT + timedelta(7))
    assert sum(due) >= 30
    assert auc(probs, due) >= 0.9


def test_next_reorder_day_per_product_is_within_a_few_days_for_regular_buyers(population):
    histories, _ = population
    score = backtest(histories, CUT, [30]).horizons[30]
    assert score.products_scored >= 150
    assert score.product_error_days is not None and score.product_error_days <= 3
    assert score.next_order_error_days is not None and score.next_order_error_days <= 3


def test_probabilities_are_calibrated_and_order_counts_add_up(population):
    histories, _ = population
    score = backtest(histories, CUT, [30]).horizons[30]
    total = sum(b.customers for b in score.calibration)
    gap = sum(b.customers * abs(b.mean_predicted - b.observed_share) for b in score.calibration) / total
    assert gap <= 0.1
    assert score.expected_orders == pytest.approx(score.actual_orders, rel=0.2)


def test_one_order_customers_get_no_date_and_say_why():
    regular = [History(i, every(date(2025, 1, 1 + i % 10), 14, 20), {}, {}) for i in range(60)]
    once = History(999, [date(2025, 6, 1)], {"JUG": [date(2025, 6, 1)]}, {})
    model, (*_, f) = fit_and_forecast([*regular, once], date(2025, 10, 1), [30])
    assert f.next_order_at is None
    assert f.reason == ONE_ORDER
    assert f.products == {}
    assert not f.at_risk
    assert 0.0 < f.probability[30] < 1.0


def test_owner_reorder_interval_dates_a_product_bought_once():
    as_of = date(2025, 3, 1)
    h = History(1, [date(2025, 2, 20)], {"JUG-20L": [date(2025, 2, 20)]}, {"JUG-20L": 30})
    (f,) = forecast(fit([h], as_of), [h], as_of, [30])
    assert f.products == {"JUG-20L": date(2025, 3, 22)}


def test_owner_reorder_interval_gives_way_to_the_customers_own_rhythm():
    days = every(date(2025, 1, 5), 10, 14)
    as_of = days[-1] + timedelta(3)
    h = History(1, days, {"JUG-20L": days}, {"JUG-20L": 30})
    (f,) = forecast(fit([h], as_of), [h], as_of, [30])
    assert abs((f.products["JUG-20L"] - (days[-1] + timedelta(10))).days) <= 1


def test_a_regular_customer_gone_quiet_is_at_risk_and_one_long_gone_is_not():
    as_of = date(2025, 9, 1)
    histories = [History(i, every(date(2025, 1, 1), 14, 14 + i % 3), {}, {}) for i in range(60)]
    recent = History(100, every(as_of - timedelta(days=14 * 11 + 5), 14, 12), {}, {})
    quiet = History(101, every(as_of - timedelta(days=14 * 11 + 28), 14, 12), {}, {})
    gone = History(102, every(date(2024, 1, 1), 14, 12), {}, {})
    fs = forecast(fit([*histories, recent, quiet, gone], as_of), [recent, quiet, gone], as_of, [30])
    assert [f.at_risk for f in fs] == [False, True, False]
    assert fs[0].next_order_at == recent.days[-1] + timedelta(14)
    assert fs[1].next_order_at == as_of
    assert fs[0].p_alive > fs[1].p_alive > fs[2].p_alive


def test_the_owners_margin_replaces_the_engines_own_at_risk_margin():
    as_of = date(2025, 9, 1)
    histories = [History(i, every(date(2025, 1, 1), 14, 14 + i % 3), {}, {}) for i in range(60)]
    late = History(100, every(as_of - timedelta(days=14 * 11 + 18), 14, 12), {}, {})  # 4 days overdue
    quiet = History(101, every(as_of - timedelta(days=14 * 11 + 28), 14, 12), {}, {})  # 14 days overdue
    model = fit([*histories, late, quiet], as_of)
    assert [f.at_risk for f in forecast(model, [late, quiet], as_of, [30])] == [False, True]
    assert [f.at_risk for f in forecast(model, [late, quiet], as_of, [30], margin_days=0)] == [False, True]
    assert [f.at_risk for f in forecast(model, [late, quiet], as_of, [30], margin_days=2)] == [True, True]
    assert [f.at_risk for f in forecast(model, [late, quiet], as_of, [30], margin_days=30)] == [False, False]


def test_several_orders_on_one_day_count_once():
    as_of = date(2025, 6, 1)
    base = [History(i, every(date(2025, 1, 1 + i % 20), 9, 15), {}, {}) for i in range(60)]
    once = History(500, [date(2025, 3, 1), date(2025, 4, 1), date(2025, 5, 1)], {}, {})
    twice = History(
        500, [date(2025, 3, 1), date(2025, 3, 1), date(2025, 4, 1), date(2025, 5, 1), date(2025, 5, 1)], {}, {}
    )
    model = fit(base, as_of)
    assert forecast(model, [once], as_of, [30]) == forecast(model, [twice], as_of, [30])


def test_orders_on_or_after_the_as_of_day_are_ignored(population):
    histories, _ = population
    truncated = [
        History(
            h.contact_id,
            [d for d in h.days if d < CUT],
            {k: [d for d in v if d < CUT] for k, v in h.products.items()},
            {},
        )
        for h in histories
    ]
    a = fit_and_forecast(histories, CUT, [30])
    b = fit_and_forecast(truncated, CUT, [30])
    assert a == b


def test_customers_without_orders_before_the_day_get_zero_and_the_reason():
    h = History(7, [date(2025, 5, 1)], {}, {})
    (f,) = forecast(fit([h], date(2025, 4, 1)), [h], date(2025, 4, 1), [7, 30])
    assert f.probability == {7: 0.0, 30: 0.0}
    assert f.reason == NO_ORDERS


def test_empty_input_gives_an_empty_forecast():
    model = fit([], date(2025, 1, 1))
    assert forecast(model, [], date(2025, 1, 1), [7, 30, 90]) == []
    assert model.customers == 0


def test_the_same_histories_give_the_same_numbers(population):
    histories, _ = population
    assert fit_and_forecast(histories, CUT, [7, 30]) == fit_and_forecast(histories, CUT, [7, 30])


def test_probabilities_and_counts_grow_with_the_horizon(predicted):
    _, forecasts = predicted
    for f in forecasts:
        assert 0.0 <= f.probability[7] <= f.probability[30] <= f.probability[90] <= 1.0
        assert f.expected_orders[7] <= f.expected_orders[30] <= f.expected_orders[90]


def test_held_out_history_picks_more_renewal_weight_for_regular_shops_than_for_random_ones():
    regular, _ = generate(3, start=START, end=CUT, regulars=300, random_buyers=0, one_off=0, churn_share=0.0)
    random_, _ = generate(3, start=START, end=CUT, regulars=0, random_buyers=400, one_off=0)
    m_regular, m_random = fit(regular, CUT), fit(random_, CUT)
    assert set(m_regular.weights) == set(m_random.weights) == {7, 30, 90}
    assert m_regular.weights[7] > m_random.weights[7]
    assert m_regular.weight > m_random.weight


def test_a_fixed_weight_applies_to_every_horizon_and_zero_is_bgnbd_alone(population):
    histories, _ = population
    model = fit(histories, CUT, weight=0.0)
    assert model.weights == {} and not model.weight_chosen_on_history
    for f in forecast(model, histories, CUT, [7, 30, 90]):
        assert f.probability == f.probability_bgnbd
        assert f.expected_orders == f.expected_orders_bgnbd


def test_bgnbd_expected_orders_match_the_closed_form():
    bg = BGNBD(r=0.24, alpha=4.41, a=1.79, b=2.43, log_likelihood=0.0, converged=True)
    x = np.array([0.0, 2, 5, 40])
    tx = np.array([0.0, 30, 100, 200])
    t = np.array([50.0, 150, 200, 210])
    h = 39
    z = h / (bg.alpha + t + h)
    hyp = special.hyp2f1(bg.r + x, bg.b + x, bg.a + bg.b + x - 1, z)
    num = 1 - ((bg.alpha + t) / (bg.alpha + t + h)) ** (bg.r + x) * hyp
    den = 1 + (x > 0) * bg.a / (bg.b + x - 1) * ((bg.alpha + t) / (bg.alpha + tx)) ** (bg.r + x)
    closed = (bg.a + bg.b + x - 1) / (bg.a - 1) * num / den
    _, expected_if_alive = _bgnbd_if_alive(bg, x, t, h)
    assert expected_if_alive * _p_alive(bg, x, tx, t) == pytest.approx(closed, rel=1e-6)
