"""Measure every TFLite variant in tflite-runtime and decide which may be published.

float32 must equal the SavedModel (parity within `float32_tolerance` on at least
`min_parity_rows` eval rows and on the range probes); a quantized variant must stay within
`probe_tolerance` of the SavedModel on the range probes (eval rows with one feature at an end
of its plausible range, quantize.range_probes: rare real values such as 1.43 in of rain or a
4-engine plane, which an AUC over ordinary rows does not see) and may lose at most
`auc_tolerance` eval AUC. A variant that fails to convert, does not run, or misses its gate is
reported, not published.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from mobile import quantize, runtime
from mobile.config import MobileConfig
from models.constants import OUTPUT_KEY, PREDICT_SIGNATURE
from transforms import codec
from transforms import features as F

REFERENCE_VARIANT = "float32"
"""Must equal the SavedModel (parity gate); the quantized variants are judged by AUC."""


@dataclasses.dataclass
class VariantResult:
    """One variant's figures (sizes in bytes, latencies in ms) and verdict."""

    variant: str
    published: bool = False
    reason: str = ""
    size_bytes: int | None = None
    auc: float | None = None
    accuracy: float | None = None
    max_abs_diff: float | None = None  # |variant - SavedModel| probability on eval rows
    mean_abs_diff: float | None = None
    probe_max_abs_diff: float | None = None  # the same on the range probes
    probe_worst: str | None = None  # the probe where it is largest, e.g. "precip_4h = 20 (max)"
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None


def build_variants(
    model_dir: str,
    transform_graph_dir: str,
    eval_examples: list[bytes],
    representative_examples: list[bytes],
    work_dir: str,
    config: MobileConfig = MobileConfig(),
    quantizers: dict[str, quantize.Quantizer] = quantize.QUANTIZERS,
) -> tuple[list[VariantResult], dict]:
    """Converts and measures every variant into `work_dir/<runtime.file_name>`; decides
    which may be published. `eval_examples` and `representative_examples` are serialized raw
    tf.Examples (with labels). Returns the results and the SavedModel's own eval figures
    ({"auc", "rows", "accuracy"})."""
    loaded = tf.saved_model.load(model_dir)  # once: loading takes seconds
    with tempfile.TemporaryDirectory() as local:  # the converter's input stays on local disk
        saved_dir = quantize.export_for_conversion(
            loaded,
            tft.TFTransformOutput(transform_graph_dir),
            os.path.join(local, "conversion_saved_model"),
        )
        return _measure(
            saved_dir,
            loaded.signatures[PREDICT_SIGNATURE],
            eval_examples,
            representative_examples,
            work_dir,
            config,
            quantizers,
        )


def _labels(serialized: list[bytes]) -> np.ndarray:
    parsed = tf.io.parse_example(
        tf.constant(serialized), {F.LABEL_KEY: tf.io.FixedLenFeature([], tf.int64)}
    )
    return parsed[F.LABEL_KEY].numpy()


def _auc(labels: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))


def _measure(
    saved_dir: str,
    saved_model: tf.types.experimental.ConcreteFunction,
    eval_examples: list[bytes],
    representative_examples: list[bytes],
    work_dir: str,
    config: MobileConfig,
    quantizers: dict[str, quantize.Quantizer],
) -> tuple[list[VariantResult], dict]:
    columns = codec.columns_from_examples(eval_examples)
    labels = _labels(eval_examples)
    reference = _predict(saved_model, columns)
    probes, probe_labels = quantize.range_probes(
        columns, quantize.stratified_rows(columns, config.probe_rows)
    )
    probe_reference = _predict(saved_model, probes)
    baseline = {
        "auc": _auc(labels, reference),
        "rows": len(labels),
        "accuracy": float(np.mean((reference >= 0.5) == labels)),
        "probe_rows": len(probe_labels),
    }
    representative = quantize.representative_columns(
        codec.columns_from_examples(representative_examples),
        config.calibration_rows,
        config.calibration_probe_rows,
    )

    results = []
    for name, quantizer in quantizers.items():
        result = VariantResult(name)
        results.append(result)
        try:
            model = quantize.to_tflite(saved_dir, quantizer, representative)
        except Exception as e:  # noqa: BLE001 -- the converter's reason is the report
            result.reason = f"conversion failed: {_first_line(e)}"
            continue
        with tf.io.gfile.GFile(os.path.join(work_dir, runtime.file_name(name)), "wb") as f:
            f.write(model)
        result.size_bytes = len(model)
        try:
            scores = runtime.predict(model, columns)
            probe_scores = runtime.predict(model, probes)
            result.latency_p50_ms, result.latency_p99_ms = runtime.latency_ms(
                model, columns, config.latency_runs
            )
        except Exception as e:  # noqa: BLE001 -- any interpreter failure rejects the variant
            result.reason = f"does not run in tflite-runtime: {_first_line(e)}"
            continue
        diff = np.abs(scores.astype(np.float64) - reference)
        result.max_abs_diff, result.mean_abs_diff = float(diff.max()), float(diff.mean())
        probe_diff = np.abs(probe_scores.astype(np.float64) - probe_reference)
        result.probe_max_abs_diff = float(probe_diff.max())
        result.probe_worst = probe_labels[int(probe_diff.argmax())]
        result.auc = _auc(labels, scores)
        result.accuracy = float(np.mean((scores >= 0.5) == labels))
        result.published, result.reason = gate(name, result, baseline, config)
    return results, baseline


def _predict(signature, columns: dict[str, np.ndarray]) -> np.ndarray:
    """float64 [rows] probabilities of the SavedModel's PREDICT_SIGNATURE for raw columns."""
    outputs = signature(**{k: tf.constant(v) for k, v in columns.items()})
    return outputs[OUTPUT_KEY].numpy().astype(np.float64)


def _first_line(error: Exception) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()]
    useful = [line for line in lines if "error" in line.lower()] or lines or [repr(error)]
    return f"{type(error).__name__}: {useful[0].strip()}"[:500]


def gate(
    name: str, result: VariantResult, baseline: dict, config: MobileConfig
) -> tuple[bool, str]:
    """(publishable, why) for a measured variant against the SavedModel's figures."""
    if name == REFERENCE_VARIANT:
        if baseline["rows"] < config.min_parity_rows:
            return False, (
                f"parity needs {config.min_parity_rows} eval rows, only "
                f"{baseline['rows']} were given"
            )
        if result.max_abs_diff > config.float32_tolerance:
            return False, (
                f"differs from the SavedModel by up to {result.max_abs_diff:.2e} "
                f"(> {config.float32_tolerance:.0e})"
            )
        if result.probe_max_abs_diff > config.float32_tolerance:
            return False, (
                f"differs from the SavedModel by up to {result.probe_max_abs_diff:.2e} "
                f"(> {config.float32_tolerance:.0e}) at {result.probe_worst}"
            )
        return True, (
            f"matches the SavedModel within {result.max_abs_diff:.1e} on "
            f"{baseline['rows']} eval rows and {result.probe_max_abs_diff:.1e} on "
            f"{baseline['probe_rows']} range probes"
        )
    if result.probe_max_abs_diff > config.probe_tolerance:
        return False, (
            f"saturates at the ends of the plausible ranges: differs from the SavedModel by "
            f"up to {result.probe_max_abs_diff:.3f} at {result.probe_worst} (> the tolerance "
            f"{config.probe_tolerance})"
        )
    drop = baseline["auc"] - result.auc
    if drop > config.auc_tolerance:
        return False, f"AUC drop {drop:.4f} exceeds the tolerance {config.auc_tolerance}"
    return True, (
        f"AUC drop {drop:+.4f} within the tolerance {config.auc_tolerance}; within "
        f"{result.probe_max_abs_diff:.3f} of the SavedModel on {baseline['probe_rows']} range "
        f"probes"
    )
