"""Every variant converted, measured in tflite-runtime and gated."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from mobile import gates, quantize, runtime
from models.constants import OUTPUT_KEY, PREDICT_SIGNATURE
from transforms import codec

pytestmark = pytest.mark.component


def test_every_variant_converts_and_answers_in_tflite_runtime(built, records):
    results, baseline, work = built
    assert baseline["rows"] == len(records)
    for name in quantize.QUANTIZERS:
        result = results[name]
        assert result.auc is not None and 0.5 < result.auc <= 1.0, result
        assert result.latency_p50_ms > 0 and result.latency_p99_ms >= result.latency_p50_ms
        assert (work / runtime.file_name(name)).stat().st_size == result.size_bytes
        scores = runtime.predict(
            runtime.read(str(work / runtime.file_name(name))),
            codec.columns_from_examples(records[:7]),
        )
        assert scores.shape == (7,) and np.all((scores >= 0) & (scores <= 1))
    assert results["float16"].size_bytes < results["float32"].size_bytes
    assert results["dynamic_int8"].size_bytes < results["float32"].size_bytes


def test_float32_matches_the_saved_model_on_raw_rows(built, saved_model_dir, records):
    results, _, work = built
    columns = codec.columns_from_examples(records)
    expected = (
        tf.saved_model.load(str(saved_model_dir))
        .signatures[PREDICT_SIGNATURE](**{k: tf.constant(v) for k, v in columns.items()})[
            OUTPUT_KEY
        ]
        .numpy()
    )
    tflite = runtime.predict(runtime.read(str(work / runtime.file_name("float32"))), columns)
    np.testing.assert_allclose(tflite, expected, atol=1e-4)
    assert results["float32"].published and results["float32"].max_abs_diff <= 1e-4


def test_gate_rejects_a_quantized_variant_below_its_measured_drop(built, mobile_config):
    results, baseline, _ = built
    for name in ("float16", "dynamic_int8", "int8"):
        result = results[name]
        drop = baseline["auc"] - result.auc
        strict = dataclasses.replace(mobile_config, auc_tolerance=drop - 1e-4)
        assert gates.gate(name, result, baseline, strict)[0] is False
        loose = dataclasses.replace(mobile_config, auc_tolerance=max(drop, 0) + 1e-4)
        assert gates.gate(name, result, baseline, loose)[0] is True
    too_few = dataclasses.replace(mobile_config, min_parity_rows=10_000)
    ok, reason = gates.gate("float32", results["float32"], baseline, too_few)
    assert not ok and "parity needs 10000 eval rows" in reason


def test_a_variant_that_cannot_convert_is_reported_not_written(built):
    results, _, work = built
    broken = results["uncalibrated_int8"]
    assert not broken.published and broken.reason.startswith("conversion failed: ")
    assert broken.size_bytes is None
    assert not (work / runtime.file_name("uncalibrated_int8")).exists()
