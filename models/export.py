"""Serving signatures: the transform graph and the model in one hermetic SavedModel.

- `serving_default`: raw features as named [batch] tensors, what a TF Serving REST `instances`
  request carries. An absent optional value is NaN (numbers) or "" (text).
- `serving_examples`: serialized tf.Examples (absent feature = missing); what TFMA feeds.
- `classify`: serialized tf.Examples -> `classes` and `scores` ([batch, 2], on_time/delayed),
  with method name `tensorflow/serving/classify` so TF Serving's Classify API accepts it.
- `transform_features`: serialized tf.Examples -> transformed features (TFMA preprocessing).
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft
from tf_keras import Model

from models.constants import (
    CLASSIFY_INPUT,
    CLASSIFY_METHOD,
    CLASSIFY_OUTPUTS,
    CLASSIFY_SIGNATURE,
    EXAMPLES_INPUT,
    EXAMPLES_SIGNATURE,
    OUTPUT_KEY,
    PREDICT_SIGNATURE,
    TRANSFORM_SIGNATURE,
)
from transforms import encoding
from transforms import features as F


def raw_input_signature() -> dict[str, tf.TensorSpec]:
    """The raw features as named [batch] tensors: what serving_default (and the TFLite
    variants) take; dtypes from the registry."""
    return {f.name: tf.TensorSpec([None], F.tf_dtype(f.dtype), name=f.name) for f in F.FEATURES}


def dense_to_raw(inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor | tf.SparseTensor]:
    """Named [batch] tensors -> the raw parsing layout Transform was traced with.

    Optional features become [batch, 1] SparseTensors holding only the present values.
    """
    raw = {}
    for feature in F.FEATURES:
        x = inputs[feature.name]
        if feature.optional:
            present = encoding.present_mask(feature, x)
            rows = tf.where(present)[:, 0]
            raw[feature.name] = tf.SparseTensor(
                tf.stack([rows, tf.zeros_like(rows)], axis=1),
                tf.boolean_mask(x, present),
                tf.stack([tf.shape(x, out_type=tf.int64)[0], tf.constant(1, tf.int64)]),
            )
        else:
            raw[feature.name] = tf.expand_dims(x, 1)
    return raw


def make_signatures(model: Model, tf_transform_output: tft.TFTransformOutput) -> dict:
    # Attaching the layer to the model makes the SavedModel track its graph and vocabularies.
    model.tft_layer = tf_transform_output.transform_features_layer()
    raw_spec = F.raw_feature_spec()
    serving_spec = {k: v for k, v in raw_spec.items() if k != F.LABEL_KEY}

    def predict(raw_features):
        transformed = model.tft_layer(raw_features)
        inputs = {name: transformed[name] for name in model.input_names}
        return {OUTPUT_KEY: tf.reshape(model(inputs), [-1])}

    @tf.function(input_signature=[raw_input_signature()])
    def serve_raw(inputs):
        return predict(dense_to_raw(inputs))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)])
    def serve_examples(examples):
        return predict(tf.io.parse_example(examples, serving_spec))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=CLASSIFY_INPUT)])
    def classify(inputs):
        probability = predict(tf.io.parse_example(inputs, serving_spec))[OUTPUT_KEY]
        batch = tf.shape(probability)[0]
        classes, scores = CLASSIFY_OUTPUTS
        return {
            classes: tf.tile(tf.constant([list(F.LABEL_CLASSES)]), [batch, 1]),
            scores: tf.stack([1.0 - probability, probability], axis=1),
        }

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)])
    def transform_features(examples):
        raw = tf.io.parse_example(examples, raw_spec)
        return model.tft_layer(raw)

    return {
        PREDICT_SIGNATURE: serve_raw.get_concrete_function(),
        EXAMPLES_SIGNATURE: serve_examples.get_concrete_function(),
        CLASSIFY_SIGNATURE: classify.get_concrete_function(),
        TRANSFORM_SIGNATURE: transform_features.get_concrete_function(),
    }


def _set_method_name(export_dir: str, signature: str, method_name: str) -> None:
    """TF2's saved_model.save marks every signature as predict; TF Serving's Classify API
    only accepts a signature whose method name says classify. TF's MethodNameUpdater
    (tf.compat.v1.saved_model.signature_def_utils) rewrites it in saved_model.pb."""
    updater = tf.compat.v1.saved_model.signature_def_utils.MethodNameUpdater(export_dir)
    updater.replace_method_name(signature, method_name, tags=tf.saved_model.SERVING)
    updater.save()


def export(model: Model, tf_transform_output: tft.TFTransformOutput, export_dir: str) -> None:
    tf.saved_model.save(model, export_dir, signatures=make_signatures(model, tf_transform_output))
    _set_method_name(export_dir, CLASSIFY_SIGNATURE, CLASSIFY_METHOD)
