"""TFLite conversion: the trained model behind the builtin encoder, converted per variant.

Each variant is the Keras model behind `mobile.encoder.BuiltinTransform`, so it takes raw
features and runs with TFLite builtin ops only (no Flex delegate). A variant is a converter
setting (TF's post-training quantization: https://www.tensorflow.org/lite/performance/
post_training_quantization); `QUANTIZERS` names them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from mobile import runtime
from mobile.encoder import BuiltinTransform
from models.constants import OUTPUT_KEY, PREDICT_SIGNATURE, TRANSFORMED_FUNCTION
from models.export import raw_input_signature
from models.model import model_inputs
from transforms import features as F

Quantizer = Callable[[tf.lite.TFLiteConverter, Callable[[], Iterator[dict]]], bytes]
"""Sets a converter's optimizations (given a representative dataset) and converts."""


def _float32(converter, representative) -> bytes:
    return converter.convert()


def _float16(converter, representative) -> bytes:
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
    return converter.convert()


def _dynamic_range(converter, representative) -> bytes:
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return converter.convert()


def _full_integer(converter, representative) -> bytes:
    """Weights and activations int8, calibrated on `representative` (representative_columns:
    stratified training rows and range-end probes); lookups (hash tables, id
    gathers) have no int8 kernels and stay as they are. TF 2.16's quantizer would also emit an
    int8 LOG (opcode version 2), which tflite-runtime 2.14 cannot load, so the calibrated model
    is quantized with LOG left in float (TF's own selective-quantization entry point)."""
    from tensorflow.lite.python import convert as lite_convert

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
        tf.lite.OpsSet.TFLITE_BUILTINS,
    ]
    converter._experimental_calibrate_only = True
    return lite_convert.mlir_quantize(converter.convert(), denylisted_ops=["LOG"])


QUANTIZERS: dict[str, Quantizer] = {
    "float32": _float32,
    "float16": _float16,
    "dynamic_int8": _dynamic_range,
    "int8": _full_integer,
}


def export_for_conversion(
    loaded: tf.Module, tf_transform_output: tft.TFTransformOutput, out_dir: str
) -> str:
    """The trained model (`loaded`: the Trainer's SavedModel, as tf.saved_model.load returns
    it) behind the builtin transform, saved with one raw-feature signature
    (PREDICT_SIGNATURE) for the TFLite converter."""
    module = tf.Module()
    # Only the model on transformed features and its weights: the serving signatures and
    # tf.Transform's graph stay out, which makes this SavedModel quicker to write and to load
    # for each variant's converter.
    module.predict_transformed = getattr(loaded, TRANSFORMED_FUNCTION)
    (function,) = module.predict_transformed.concrete_functions
    module.weights = list(function.variables)
    module.transform = BuiltinTransform(tf_transform_output)
    names = list(model_inputs(tf_transform_output))

    # autograph=False: explicit ops only; AutoGraph would transpile the loaded model's and the
    # builtin transform's call graph for nothing (as in models/export.py).
    @tf.function(input_signature=[raw_input_signature()], autograph=False)
    def serve(inputs):
        transformed = module.transform(inputs)
        probability = module.predict_transformed({k: transformed[k] for k in names})
        return {OUTPUT_KEY: tf.reshape(probability, [-1])}

    module.serve = serve
    tf.saved_model.save(
        module, out_dir, signatures={PREDICT_SIGNATURE: serve.get_concrete_function()}
    )
    return out_dir


def range_features() -> tuple[F.Feature, ...]:
    """The model inputs whose plausible range the registry states (min_value and max_value):
    numbers, clocks and int categoricals, in registry order (CONTEXT features are not model
    inputs)."""
    return tuple(
        f
        for f in F.FEATURES
        if f.kind is not F.Kind.CONTEXT and f.min_value is not None and f.max_value is not None
    )


def stratified_rows(columns: dict[str, np.ndarray], n: int) -> np.ndarray:
    """int64 indices of min(n, rows) distinct rows of raw `columns` (one [rows] array per
    feature) that cover every range feature's observed values: for each, the rows at evenly
    spaced quantiles of its present values (its smallest and largest included, so a rare real
    maximum such as 1.43 in of rain is in), then evenly spaced rows up to n; sorted."""
    size = len(columns[F.FEATURES[0].name])
    features = range_features()
    per_feature = max(2, n // (2 * len(features)))
    chosen: dict[int, None] = {}  # insertion-ordered set
    for feature in features:
        values = np.asarray(columns[feature.name], np.float64)
        present = np.flatnonzero(~np.isnan(values))
        if len(present) == 0:
            continue
        ordered = present[np.argsort(values[present], kind="stable")]
        for q in np.linspace(0, len(ordered) - 1, per_feature).round().astype(int):
            chosen.setdefault(int(ordered[q]), None)
    picked = list(chosen)[:n]
    rest = [i for i in range(size) if i not in chosen]
    need = min(n, size) - len(picked)
    if need > 0:
        picked += [rest[int(i)] for i in np.linspace(0, len(rest) - 1, need).round()]
    return np.array(sorted(set(picked)), np.int64)


def range_probes(
    columns: dict[str, np.ndarray], base_rows: np.ndarray
) -> tuple[dict[str, np.ndarray], list[str]]:
    """Rows whose features sit at the ends of their plausible range: for every range feature
    and each end (min_value, max_value), the `base_rows` of raw `columns` with that one feature
    set to it. Returns the probe columns (len(range_features()) * 2 * len(base_rows) rows,
    dtypes as `columns`) and, per row, what it probes (e.g. "precip_4h = 20 (max)")."""
    probes: dict[str, list[np.ndarray]] = {f.name: [] for f in F.FEATURES}
    labels: list[str] = []
    for feature in range_features():
        for end, value in (("min", feature.min_value), ("max", feature.max_value)):
            for f in F.FEATURES:
                part = np.asarray(columns[f.name])[base_rows]
                if f is feature:
                    part = np.full(len(base_rows), value, F.numpy_dtype(f.dtype))
                probes[f.name].append(part)
            labels += [f"{feature.name} = {value:g} ({end})"] * len(base_rows)
    return {k: np.concatenate(v) for k, v in probes.items()}, labels


def representative_columns(
    columns: dict[str, np.ndarray], rows: int, probe_rows: int
) -> dict[str, np.ndarray]:
    """The representative dataset of full-integer quantization, as raw columns: `rows`
    stratified rows of `columns` (training rows; stratified_rows) followed by the range probes
    of the first `probe_rows` of them (range_probes), so calibration sees every feature's
    plausible extremes, not only the values a sample happens to hold."""
    picked = stratified_rows(columns, rows)
    probes, _ = range_probes(columns, picked[:probe_rows])
    return {
        f.name: np.concatenate([np.asarray(columns[f.name])[picked], probes[f.name]])
        for f in F.FEATURES
    }


def to_tflite(
    saved_dir: str, quantizer: Quantizer, representative_columns: dict[str, np.ndarray]
) -> bytes:
    """The flatbuffer of one variant of the SavedModel at `saved_dir` (from
    export_for_conversion), builtin ops only; `representative_columns` (raw columns, one
    array per feature) calibrate full-integer quantization, one row per step."""

    def representative() -> Iterator[dict]:
        for i in range(len(representative_columns[F.FEATURES[0].name])):
            yield runtime.feed(representative_columns, i)

    converter = tf.lite.TFLiteConverter.from_saved_model(
        saved_dir, signature_keys=[PREDICT_SIGNATURE]
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # no Flex ops
    return quantizer(converter, representative)
