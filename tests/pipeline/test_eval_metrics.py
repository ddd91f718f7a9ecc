"""The metrics read off the calibration histogram equal TFMA's own, slice by slice."""

import json
import math

import numpy as np
import pandas as pd
import pytest
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.metrics.calibration_histogram import Bucket

from pipeline import eval_metrics
from pipeline.constants import EVAL_METRICS


def _bucket(prediction: float) -> int:
    return math.floor(prediction * 10_000) + 1  # TFMA's bucket index on [0, 1]


@pytest.mark.unit
def test_values_from_a_hand_made_histogram():
    # Two examples below 0.5 (labels 0 and 1), three at or above (labels 1, 1, 0).
    histogram = [
        Bucket(_bucket(0.2), 0.0, 0.2, 1.0),
        Bucket(_bucket(0.4999), 1.0, 0.4999, 1.0),
        Bucket(_bucket(0.5), 1.0, 0.5, 1.0),
        Bucket(_bucket(0.9), 1.0 + 0.0, 0.9 + 0.95, 2.0),
    ]
    # TN, FN, TP, then TP and FP: three of five right
    assert eval_metrics.binary_accuracy(histogram) == pytest.approx(3 / 5)
    assert eval_metrics.mean_label(histogram) == pytest.approx(3 / 5)
    assert eval_metrics.mean_prediction(histogram) == pytest.approx(3.0499 / 5)
    assert eval_metrics.calibration(histogram) == pytest.approx(3.0499 / 3)


@pytest.mark.unit
def test_an_empty_slice_or_one_without_positives_gives_nan_as_tfma_does():
    assert math.isnan(eval_metrics.binary_accuracy([]))
    assert math.isnan(eval_metrics.mean_label([]))
    only_negatives = [Bucket(_bucket(0.3), 0.0, 0.6, 2.0)]
    assert math.isnan(eval_metrics.calibration(only_negatives))
    assert eval_metrics.mean_label(only_negatives) == 0.0


@pytest.mark.component
def test_the_derived_metrics_equal_tfmas_on_every_slice(tmp_path):
    rng = np.random.default_rng(7)
    n = 3_000
    prediction = rng.uniform(0.0, 1.0, n)
    prediction[:40] = 0.5 + rng.choice([-1, 1], 40) * rng.uniform(1e-7, 2e-4, 40)  # near 0.5
    frame = pd.DataFrame(
        {
            "prediction": prediction,
            "label": (rng.uniform(0.0, 1.0, n) < prediction * 0.8).astype(float),
            "group": rng.choice(["a", "b", "c"], n),
        }
    )
    ours = {
        name: f"ours_{key}" for name, key in EVAL_METRICS.items() if name in eval_metrics.DERIVED
    }
    tfma_names = {"BinaryAccuracy", "Calibration", "MeanLabel", "MeanPrediction"}
    config = tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(label_key="label", prediction_key="prediction")],
        slicing_specs=[tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=["group"])],
        metrics_specs=[
            tfma.MetricsSpec(
                metrics=[tfma.MetricConfig(class_name=name) for name in sorted(tfma_names)]
                + [
                    tfma.MetricConfig(
                        class_name=name,
                        module=eval_metrics.__name__,
                        config=json.dumps({"name": key}),
                    )
                    for name, key in ours.items()
                ]
            )
        ],
    )
    result = tfma.analyze_raw_data(frame, config, output_path=str(tmp_path))

    assert len(result.slicing_metrics) == 4  # overall and three groups
    for slice_key, by_output in result.slicing_metrics:
        metrics = by_output[""][""]
        for key in ("binary_accuracy", "calibration", "mean_label", "mean_prediction"):
            theirs, mine = metrics[key]["doubleValue"], metrics[f"ours_{key}"]["doubleValue"]
            assert mine == pytest.approx(theirs, rel=1e-9, abs=1e-12), (slice_key, key)
