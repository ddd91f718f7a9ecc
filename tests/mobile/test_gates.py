"""Every variant converted, measured in tflite-runtime and gated."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from mobile import gates, publish, quantize, runtime
from models.constants import OUTPUT_KEY, PREDICT_SIGNATURE
from transforms import codec
from transforms import features as F

INT64_EXTREMES = (2**32 + 3, -(2**40), 2**63 - 1, -(2**63))
"""int64 values an int32 cast would wrap (2**32 + 3 -> 3) or that overflow hh*60 + mm."""

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
        loose = dataclasses.replace(
            mobile_config,
            auc_tolerance=max(drop, 0) + 1e-4,
            probe_tolerance=result.probe_max_abs_diff,
        )
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


def _rows_with(columns, name, values) -> dict:
    """`columns` repeated once per value, with int feature `name` set to that value."""
    size = len(columns[name])
    batch = {k: np.concatenate([v] * len(values)) for k, v in columns.items()}
    batch[name] = np.repeat(np.array(values, np.int64), size)
    return batch


def test_every_variant_takes_int64_inputs_as_the_saved_model_does(
    built, saved_model_dir, records, mobile_config
):
    """Every int feature of the registry at each of INT64_EXTREMES (8 real rows each): float32
    answers what the SavedModel's predict signature answers (within float32_tolerance), and
    every variant answers an int categorical or unused int beyond int32 exactly as it answers
    a small value the SavedModel treats the same (0: an unseen day; 1 for month), not as the
    value's low 32 bits (2**32 + 3 is not Wednesday)."""
    _, _, work = built
    signature = tf.saved_model.load(str(saved_model_dir)).signatures[PREDICT_SIGNATURE]

    def saved_model(columns):
        return signature(**{k: tf.constant(v) for k, v in columns.items()})[OUTPUT_KEY].numpy()

    columns = codec.columns_from_examples(records[:8])
    models = {
        name: runtime.read(str(work / runtime.file_name(name))) for name in quantize.QUANTIZERS
    }
    for feature in (f for f in F.FEATURES if f.dtype is int):
        extreme = _rows_with(columns, feature.name, INT64_EXTREMES)
        expected = saved_model(extreme)
        np.testing.assert_allclose(
            runtime.predict(models["float32"], extreme),
            expected,
            atol=mobile_config.float32_tolerance,
            err_msg=feature.name,
        )
        if feature.kind is F.Kind.CLOCK:
            continue  # no small value has the same hour bucket and angle
        same = 0 if feature.kind is F.Kind.CATEGORICAL else 1
        equivalent = _rows_with(columns, feature.name, [same] * len(INT64_EXTREMES))
        np.testing.assert_array_equal(saved_model(equivalent), expected)
        for name, model in models.items():
            np.testing.assert_array_equal(
                runtime.predict(model, extreme),
                runtime.predict(model, equivalent),
                err_msg=f"{name}: {feature.name}",
            )


def test_every_variant_is_measured_at_the_ends_of_the_plausible_ranges(built, mobile_config):
    """metrics.json states each variant's max |diff| from the SavedModel on the range probes
    (one feature at its registry min or max, the rest a real eval row) and where it is
    largest; float32 stays within float32_tolerance there too."""
    results, baseline, _ = built
    features = quantize.range_features()
    assert baseline["probe_rows"] == len(features) * 2 * mobile_config.probe_rows
    for name in quantize.QUANTIZERS:
        result = results[name]
        assert result.probe_max_abs_diff is not None and result.probe_max_abs_diff >= 0
        assert result.probe_worst.split(" = ")[0] in {f.name for f in features}
        assert "probe_max_abs_diff" in dataclasses.asdict(result)
    assert results["float32"].probe_max_abs_diff <= mobile_config.float32_tolerance


def test_a_variant_that_saturates_at_the_range_ends_is_not_published(built, mobile_config):
    """No published quantized variant differs from the SavedModel by more than probe_tolerance
    on the range probes. Full-integer int8 does (one activation scale for all inputs cannot
    span e.g. plane_engines 1..8 and distance 1..6000 z-scored): it is rejected, and its
    verdict (in metrics.json) names the probe and the difference."""
    results, baseline, _ = built
    for name in ("float16", "dynamic_int8", "int8"):
        result = results[name]
        if result.published:
            assert result.probe_max_abs_diff <= mobile_config.probe_tolerance, result
    int8 = results["int8"]
    assert int8.probe_max_abs_diff > mobile_config.probe_tolerance and not int8.published
    assert int8.reason.startswith("saturates at the ends of the plausible ranges")
    assert int8.probe_worst in int8.reason and f"{int8.probe_max_abs_diff:.3f}" in int8.reason
    doc = publish.metrics(list(results.values()), baseline)["variants"]["int8"]
    assert doc["probe_max_abs_diff"] == int8.probe_max_abs_diff and doc["reason"] == int8.reason
    saturating = dataclasses.replace(
        results["dynamic_int8"], probe_max_abs_diff=0.3, probe_worst="precip_4h = 20 (max)"
    )
    ok, reason = gates.gate("dynamic_int8", saturating, baseline, mobile_config)
    assert not ok and "0.300 at precip_4h = 20 (max)" in reason
