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
from models.constants import OUTPUT_KEY, PREDICT_SIGNATURE
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
    """Weights and activations int8, calibrated on training rows; lookups (hash tables, id
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
    model_dir: str, tf_transform_output: tft.TFTransformOutput, out_dir: str
) -> str:
    """The trained model (a SavedModel, as Trainer writes it) behind the builtin transform,
    saved with one raw-feature signature (PREDICT_SIGNATURE) for the TFLite converter."""
    module = tf.Module()
    module.model = tf.saved_model.load(model_dir)
    module.transform = BuiltinTransform(tf_transform_output)
    names = list(model_inputs(tf_transform_output))

    @tf.function(input_signature=[raw_input_signature()])
    def serve(inputs):
        transformed = module.transform(inputs)
        return {OUTPUT_KEY: tf.reshape(module.model({k: transformed[k] for k in names}), [-1])}

    module.serve = serve
    tf.saved_model.save(
        module, out_dir, signatures={PREDICT_SIGNATURE: serve.get_concrete_function()}
    )
    return out_dir


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
