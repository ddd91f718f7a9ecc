"""Running a variant the way a phone does: tflite-runtime (not TF's bundled interpreter) on
the model's bytes, so models stored on gs:// work the same as local ones.

A TFLite interpreter checks nothing: fed NaN for a required number or +/-Inf for any number,
it answers NaN or a meaningless probability. So this reference runner (what the tests, the
gates and the benchmark feed variants through) applies the serving side's rule first
(transforms/codec.py NON_FINITE_RULES, also stated per input in contract.json): `feed` raises
ValueError naming the feature for NaN, +Inf or -Inf in a required float input and for +/-Inf
in an optional one; NaN in an optional one is its missing marker.
"""

from __future__ import annotations

import time

import numpy as np
import tensorflow as tf

from models.constants import OUTPUT_KEY, PREDICT_SIGNATURE
from transforms import codec
from transforms import features as F


def file_name(variant: str) -> str:
    """The published file of a variant, e.g. model_int8.tflite."""
    return f"model_{variant}.tflite"


def read(path: str) -> bytes:
    """A .tflite file's bytes, from a local path or any tf.io.gfile URI."""
    with tf.io.gfile.GFile(path, "rb") as f:
        return f.read()


def interpreter(model: bytes, threads: int = 1):
    """A tflite_runtime Interpreter on the flatbuffer `model`."""
    from tflite_runtime.interpreter import Interpreter

    return Interpreter(model_content=model, num_threads=threads)


def check_finite(feature: F.Feature, values: np.ndarray) -> None:
    """Raises ValueError naming `feature`, the first offending rows and their values when
    [batch] `values` of a float feature break codec.NON_FINITE_RULES: NaN or +/-Inf where the
    feature is required, +/-Inf where it is optional (there NaN means absent)."""
    if feature.dtype is not float:
        return
    values = np.asarray(values, np.float32)
    bad = np.isinf(values) if feature.optional else ~np.isfinite(values)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValueError(
            f"feature {feature.name!r}: {codec.NON_FINITE_RULES[feature.optional]}; "
            f"rows {rows[:5].tolist()} hold {values[rows[:5]].tolist()}"
        )


def feed(columns: dict[str, np.ndarray], rows: slice | int) -> dict[str, np.ndarray]:
    """Rows of raw columns as the signature's inputs: [batch] arrays, text as bytes.

    Raises ValueError (check_finite) for a non-finite float the contract does not allow."""
    inputs = {}
    for f in F.FEATURES:
        values = np.atleast_1d(columns[f.name][rows])
        check_finite(f, values)
        inputs[f.name] = (
            np.array([v if isinstance(v, bytes) else v.encode() for v in values], dtype=object)
            if f.dtype is str
            else values
        )
    return inputs


def predict(model: bytes, columns: dict[str, np.ndarray]) -> np.ndarray:
    """float32 [batch] probabilities of the variant `model` for raw columns (one [batch] array
    per feature: object bytes/str, int64, float32).

    Raises ValueError naming the feature for non-finite values the contract forbids (feed)."""
    inputs = feed(columns, slice(None))  # refused before the interpreter answers NaN
    return interpreter(model).get_signature_runner(PREDICT_SIGNATURE)(**inputs)[OUTPUT_KEY]


def latency_ms(model: bytes, columns: dict[str, np.ndarray], runs: int) -> tuple[float, float]:
    """Batch-1 latency in milliseconds, single thread: p50 and p99 over `runs` calls on
    successive rows (after 20 warm-up calls)."""
    runner = interpreter(model).get_signature_runner(PREDICT_SIGNATURE)
    size = len(columns[F.FEATURES[0].name])
    rows = [feed(columns, i % size) for i in range(min(size, 256))]
    for row in rows[:20]:
        runner(**row)
    times = []
    for i in range(runs):
        start = time.perf_counter()
        runner(**rows[i % len(rows)])
        times.append(time.perf_counter() - start)
    ms = np.array(times) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))
