"""TFLite variants of a trained model: convert, measure in tflite-runtime, gate, publish.

Each variant is the Keras model behind `mobile.encoder.BuiltinTransform`, so it takes raw
features and runs with TFLite builtin ops only (no Flex delegate). Published variants land in
`<mobile base>/<version>/` (the serving version), atomically, with labels.txt, contract.json
and metrics.json; a variant that fails to convert or misses its gate is reported, not written.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import time
from typing import Callable, Iterator

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from mobile.encoder import BuiltinTransform
from models.export import raw_input_signature
from models.model import MODEL_NAME, OUTPUT_KEY, model_inputs
from serving import codec, push
from serving.contract import PREDICT_SIGNATURE
from transforms import features as F

SIGNATURE = PREDICT_SIGNATURE
Convert = Callable[[tf.lite.TFLiteConverter, Callable[[], Iterator[dict]]], bytes]


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
    """Weights and activations int8, calibrated on training rows; lookups (hash tables, id
    gathers) have no int8 kernels and stay as they are. TF 2.16's quantizer would also emit an
    int8 LOG (opcode version 2), which tflite-runtime 2.14 cannot load, so the calibrated model
    is quantized with LOG left in float (TF's own selective-quantization entry point)."""
    from tensorflow.lite.python import convert as lite_convert

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                           tf.lite.OpsSet.TFLITE_BUILTINS]
    converter._experimental_calibrate_only = True
    return lite_convert.mlir_quantize(converter.convert(), denylisted_ops=["LOG"])


VARIANTS: dict[str, Convert] = {"float32": _float32, "float16": _float16,
                                  "dynamic_int8": _dynamic_range, "int8": _full_integer}
REFERENCE_VARIANT = "float32"  # must equal the SavedModel; the others are judged by AUC


@dataclasses.dataclass(frozen=True)
class MobileConfig:
    auc_tolerance: float = 0.005  # a quantized variant may lose at most this much eval AUC
    float32_tolerance: float = 1e-4  # max |TFLite - SavedModel| probability for float32
    min_parity_rows: int = 1000
    eval_rows: int = 100_000  # all of Nov-Dec (55,403 flights)
    representative_rows: int = 300
    latency_runs: int = 500


@dataclasses.dataclass
class VariantResult:
    variant: str
    published: bool = False
    reason: str = ""
    size_bytes: int | None = None
    auc: float | None = None
    accuracy: float | None = None
    max_abs_diff: float | None = None
    mean_abs_diff: float | None = None
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None


def file_name(variant: str) -> str:
    return f"model_{variant}.tflite"


def export_for_conversion(model_dir: str, tf_transform_output: tft.TFTransformOutput,
                          out_dir: str) -> str:
    """The trained model (a SavedModel, as Trainer writes it) behind the builtin transform,
    saved with one raw-feature signature for the TFLite converter."""
    module = tf.Module()
    module.model = tf.saved_model.load(model_dir)
    module.transform = BuiltinTransform(tf_transform_output)
    names = list(model_inputs(tf_transform_output))

    @tf.function(input_signature=[raw_input_signature()])
    def serve(inputs):
        transformed = module.transform(inputs)
        return {OUTPUT_KEY: tf.reshape(module.model({k: transformed[k] for k in names}), [-1])}

    module.serve = serve
    tf.saved_model.save(module, out_dir, signatures={SIGNATURE: serve.get_concrete_function()})
    return out_dir


def _feed(columns: dict[str, np.ndarray], rows: slice | int) -> dict[str, np.ndarray]:
    feed = {}
    for f in F.FEATURES:
        values = np.atleast_1d(columns[f.name][rows])
        feed[f.name] = (np.array([v if isinstance(v, bytes) else v.encode() for v in values],
                                 dtype=object) if f.dtype is str else values)
    return feed


def convert(saved_dir: str, variant: Convert, representative_columns: dict) -> bytes:
    def representative() -> Iterator[dict]:
        for i in range(len(representative_columns[F.FEATURES[0].name])):
            yield _feed(representative_columns, i)

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_dir, signature_keys=[SIGNATURE])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # no Flex ops
    return variant(converter, representative)


def interpreter(model: bytes, threads: int = 1):
    """tflite-runtime (what a phone runs, not TF's bundled copy) on the model's bytes, so
    models stored on gs:// work the same as local ones."""
    from tflite_runtime.interpreter import Interpreter

    return Interpreter(model_content=model, num_threads=threads)


def read(path: str) -> bytes:
    with tf.io.gfile.GFile(path, "rb") as f:
        return f.read()


def predict(model: bytes, columns: dict[str, np.ndarray]) -> np.ndarray:
    runner = interpreter(model).get_signature_runner(SIGNATURE)
    return runner(**_feed(columns, slice(None)))[OUTPUT_KEY]


def latency_ms(model: bytes, columns: dict[str, np.ndarray], runs: int) -> tuple[float, float]:
    """Batch-1 latency, single thread: p50 and p99 over `runs` calls on successive rows."""
    runner = interpreter(model).get_signature_runner(SIGNATURE)
    size = len(columns[F.FEATURES[0].name])
    rows = [_feed(columns, i % size) for i in range(min(size, 256))]
    for row in rows[:20]:
        runner(**row)
    times = []
    for i in range(runs):
        start = time.perf_counter()
        runner(**rows[i % len(rows)])
        times.append(time.perf_counter() - start)
    ms = np.array(times) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def _auc(labels: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))


def labels_of(serialized: list[bytes]) -> np.ndarray:
    parsed = tf.io.parse_example(tf.constant(serialized),
                                 {F.LABEL_KEY: tf.io.FixedLenFeature([], tf.int64)})
    return parsed[F.LABEL_KEY].numpy()


def build_variants(model_dir: str, transform_graph_dir: str, eval_examples: list[bytes],
                   representative_examples: list[bytes], work_dir: str,
                   config: MobileConfig = MobileConfig(),
                   variants: dict[str, Convert] = VARIANTS) -> tuple[list[VariantResult], dict]:
    """Converts and measures every variant into `work_dir`; decides which may be published.
    Returns the results and the SavedModel's own eval figures."""
    with tempfile.TemporaryDirectory() as local:  # the converter's input stays on local disk
        saved_dir = export_for_conversion(model_dir, tft.TFTransformOutput(transform_graph_dir),
                                          os.path.join(local, "conversion_saved_model"))
        return _build_variants(saved_dir, model_dir, eval_examples, representative_examples,
                               work_dir, config, variants)


def _build_variants(saved_dir: str, model_dir: str, eval_examples: list[bytes],
                    representative_examples: list[bytes], work_dir: str, config: MobileConfig,
                    variants: dict[str, Convert]) -> tuple[list[VariantResult], dict]:
    columns = codec.columns_from_examples(eval_examples)
    labels = labels_of(eval_examples)
    reference = tf.saved_model.load(model_dir).signatures[SIGNATURE](
        **{k: tf.constant(v) for k, v in columns.items()})[OUTPUT_KEY].numpy()
    baseline = {"auc": _auc(labels, reference), "rows": len(labels),
                "accuracy": float(np.mean((reference >= 0.5) == labels))}
    representative = codec.columns_from_examples(representative_examples)

    results = []
    for name, variant in variants.items():
        result = VariantResult(name)
        results.append(result)
        path = os.path.join(work_dir, file_name(name))
        try:
            model = convert(saved_dir, variant, representative)
        except Exception as e:  # noqa: BLE001 -- the converter's reason is the report
            result.reason = f"conversion failed: {_first_line(e)}"
            continue
        with tf.io.gfile.GFile(path, "wb") as f:
            f.write(model)
        result.size_bytes = len(model)
        try:
            scores = predict(model, columns)
            result.latency_p50_ms, result.latency_p99_ms = latency_ms(model, columns,
                                                                      config.latency_runs)
        except Exception as e:  # noqa: BLE001
            result.reason = f"does not run in tflite-runtime: {_first_line(e)}"
            continue
        diff = np.abs(scores.astype(np.float64) - reference)
        result.max_abs_diff, result.mean_abs_diff = float(diff.max()), float(diff.mean())
        result.auc = _auc(labels, scores)
        result.accuracy = float(np.mean((scores >= 0.5) == labels))
        result.published, result.reason = _gate(name, result, baseline, config)
    return results, baseline


def _first_line(error: Exception) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()]
    useful = [line for line in lines if "error" in line.lower()] or lines or [repr(error)]
    return f"{type(error).__name__}: {useful[0].strip()}"[:500]


def _gate(name: str, result: VariantResult, baseline: dict, config: MobileConfig
          ) -> tuple[bool, str]:
    if name == REFERENCE_VARIANT:
        if baseline["rows"] < config.min_parity_rows:
            return False, (f"parity needs {config.min_parity_rows} eval rows, only "
                           f"{baseline['rows']} were given")
        if result.max_abs_diff > config.float32_tolerance:
            return False, (f"differs from the SavedModel by up to {result.max_abs_diff:.2e} "
                           f"(> {config.float32_tolerance:.0e})")
        return True, (f"matches the SavedModel within {result.max_abs_diff:.1e} on "
                      f"{baseline['rows']} eval rows")
    drop = baseline["auc"] - result.auc
    if drop > config.auc_tolerance:
        return False, f"AUC drop {drop:.4f} exceeds the tolerance {config.auc_tolerance}"
    return True, f"AUC drop {drop:+.4f} within the tolerance {config.auc_tolerance}"


def contract(tf_transform_output: tft.TFTransformOutput, version: int, data_span: str) -> dict:
    """What a mobile app must feed and what it gets back; vocabularies from the transform."""
    dtypes = {str: "string", int: "int64", float: "float32"}
    inputs = []
    for f in F.FEATURES:
        entry = {"name": f.name, "dtype": dtypes[f.dtype], "shape": [-1],
                 "description": f.description, "required": not f.optional,
                 "missing_value": (None if not f.optional else "" if f.dtype is str else "NaN")}
        if f.kind is F.Kind.CATEGORICAL:
            vocabulary = [v.decode() for v in tf_transform_output.vocabulary_by_name(f.name)]
            entry["vocabulary"] = [v for v in vocabulary if v != F.MISSING_CATEGORY]
            entry["out_of_vocabulary"] = "accepted; shares one bucket with all unseen values"
        if f.min_value is not None or f.max_value is not None:
            entry["plausible_range"] = [f.min_value, f.max_value]
        if f.kind is F.Kind.CLOCK:
            entry["format"] = "local time as hhmm, e.g. 1730 for 5:30 pm"
        if f.kind is F.Kind.CONTEXT:
            entry["note"] = "accepted for a uniform request; the model does not use it"
        inputs.append(entry)
    return {
        "model": MODEL_NAME, "version": version, "signature": SIGNATURE,
        "training_data": data_span,
        "inputs": inputs,
        "outputs": [{"name": OUTPUT_KEY, "dtype": "float32", "shape": [-1],
                     "meaning": "probability that the flight arrives 15+ minutes late or not "
                                "at all (label 'delayed' in labels.txt)"}],
        "labels": list(F.LABEL_CLASSES),
        "batching": "every input has shape [batch]; resize all inputs together",
    }


def metrics(results: list[VariantResult], baseline: dict) -> dict:
    """metrics.json: the SavedModel's eval figures and every variant's, with its verdict."""
    return {"savedmodel": baseline,
            "variants": {r.variant: dataclasses.asdict(r) for r in results}}


def publish(results: list[VariantResult], work_dir: str, mobile_base: str, version: int,
            contract_doc: dict, baseline: dict) -> str | None:
    """Writes the accepted variants and their documents as `<mobile_base>/<version>/`."""
    accepted = [r for r in results if r.published]
    if not accepted:
        return None

    def fill(staging: str) -> None:
        for result in accepted:
            tf.io.gfile.copy(os.path.join(work_dir, file_name(result.variant)),
                             os.path.join(staging, file_name(result.variant)))
        for name, text in (("labels.txt", "\n".join(F.LABEL_CLASSES) + "\n"),
                           ("contract.json", json.dumps(contract_doc, indent=2)),
                           ("metrics.json", json.dumps(metrics(results, baseline), indent=2))):
            with tf.io.gfile.GFile(os.path.join(staging, name), "w") as f:
                f.write(text)

    return push.publish(mobile_base, fill, version)[1]
