"""TFMA metrics read off the calibration histogram that TFMA already builds for the AUC.

TFMA computes BinaryAccuracy (one threshold: an exact confusion matrix), MeanLabel,
MeanPrediction and Calibration (weighted sums) with two combiners of their own, each of which
unpacks the label, prediction and weight of every example in every slice for every model in
Python, as the histogram's combiner does. Profiled on the Evaluator (55,403 Nov-Dec rows,
4 slicings, candidate and baseline), those two combiners took two thirds of the metrics work.
The histogram (10,000 buckets of the prediction on [0, 1], each holding the weighted count,
label sum and prediction sum; tensorflow_model_analysis/metrics/calibration_histogram.py) has
all they need, so these classes derive them from it: same names, same values.

- MeanLabel = sum of labels / examples, MeanPrediction = sum of predictions / examples,
  Calibration = sum of predictions / sum of labels (TFMA's definitions, metrics/calibration.py;
  NaN where the divisor is ~0, as there). The sums are the same sums in another order.
- BinaryAccuracy at 0.5 = (TP + TN) / examples, with predictions in the buckets at or above
  0.5 counted positive. 0.5 is a bucket boundary, so this equals TFMA's exact matrix except for
  a prediction of exactly 0.5, which TFMA counts negative (prediction > threshold) and this
  counts positive.

Named by module path in the EvalConfig (`MetricConfig(class_name=..., module=__name__)`); each
stores its value under TFMA's key for the metric ("binary_accuracy", "calibration", ...).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from tensorflow_model_analysis.metrics import calibration_histogram, metric_types, metric_util

THRESHOLD = 0.5
"""BinaryAccuracy's threshold (TFMA's default); must be a bucket boundary of the histogram."""


def _ratio(numerator: float, denominator: float) -> float:
    return float("nan") if math.isclose(denominator, 0.0) else numerator / denominator


def _totals(histogram: calibration_histogram.Histogram) -> tuple[float, float, float]:
    """(weighted labels, weighted predictions, weighted examples) over all buckets."""
    return (
        sum(b.weighted_labels for b in histogram),
        sum(b.weighted_predictions for b in histogram),
        sum(b.weighted_examples for b in histogram),
    )


def mean_label(histogram: calibration_histogram.Histogram) -> float:
    labels, _, examples = _totals(histogram)
    return _ratio(labels, examples)


def mean_prediction(histogram: calibration_histogram.Histogram) -> float:
    _, predictions, examples = _totals(histogram)
    return _ratio(predictions, examples)


def calibration(histogram: calibration_histogram.Histogram) -> float:
    labels, predictions, _ = _totals(histogram)
    return _ratio(predictions, labels)


def binary_accuracy(histogram: calibration_histogram.Histogram) -> float:
    """(TP + TN) / examples at THRESHOLD, from a histogram of DEFAULT_NUM_BUCKETS on [0, 1]
    (bucket 0 below 0, bucket i in [(i-1)/n, i/n), bucket n+1 at or above 1)."""
    first_positive = round(THRESHOLD * calibration_histogram.DEFAULT_NUM_BUCKETS) + 1
    correct = sum(
        b.weighted_labels
        if b.bucket_id >= first_positive
        else b.weighted_examples - b.weighted_labels
        for b in histogram
    )
    return _ratio(correct, _totals(histogram)[2])


def _derived(
    value: Callable[[calibration_histogram.Histogram], float],
) -> Callable[..., metric_types.MetricComputations]:
    """TFMA computations of one metric: the shared default histogram (deduplicated by name
    with the AUC's) and a derived computation applying `value` to it."""

    def computations(
        name: str,
        eval_config=None,
        model_name: str = "",
        output_name: str = "",
        sub_key=None,
        aggregation_type=None,
        class_weights=None,
        example_weighted: bool = False,
    ) -> metric_types.MetricComputations:
        of_output = {
            "model_name": model_name,
            "output_name": output_name,
            "sub_key": sub_key,
            "example_weighted": example_weighted,
        }
        key = metric_types.MetricKey(name=name, **of_output)
        found = calibration_histogram.calibration_histogram(
            eval_config=eval_config,
            aggregation_type=aggregation_type,
            class_weights=class_weights,
            **of_output,
        )
        histogram_key = found[-1].keys[-1]
        found.append(
            metric_types.DerivedMetricComputation(
                keys=[key], result=lambda metrics: {key: value(metrics[histogram_key])}
            )
        )
        return found

    return computations


class _HistogramMetric(metric_types.Metric):
    NAME: str
    VALUE: Callable[[calibration_histogram.Histogram], float]

    def __init__(self, name: str | None = None):
        super().__init__(
            metric_util.merge_per_key_computations(_derived(type(self).VALUE)),
            name=name or self.NAME,
        )


class BinaryAccuracyFromHistogram(_HistogramMetric):
    NAME, VALUE = "binary_accuracy", staticmethod(binary_accuracy)


class CalibrationFromHistogram(_HistogramMetric):
    NAME, VALUE = "calibration", staticmethod(calibration)


class MeanLabelFromHistogram(_HistogramMetric):
    NAME, VALUE = "mean_label", staticmethod(mean_label)


class MeanPredictionFromHistogram(_HistogramMetric):
    NAME, VALUE = "mean_prediction", staticmethod(mean_prediction)


DERIVED = tuple(
    c.__name__
    for c in (
        BinaryAccuracyFromHistogram,
        CalibrationFromHistogram,
        MeanLabelFromHistogram,
        MeanPredictionFromHistogram,
    )
)
"""The class names of this module's metrics (TFMA looks a class name up in its registry of
built-in metrics before the module named beside it, so these must differ from TFMA's)."""
