"""Serving signatures: the transform graph and the model in one hermetic SavedModel.

- `serving_default`: raw features as named [batch] tensors, what a TF Serving REST `instances`
  request carries. An absent optional value is NaN (numbers) or "" (text).
- `serving_examples`: serialized tf.Examples (absent feature = missing); what TFMA feeds.
- `classify`: serialized tf.Examples -> `classes` and `scores` ([batch, 2], on_time/delayed),
  with method name `tensorflow/serving/classify` so TF Serving's Classify API accepts it.
- `transform_features`: serialized tf.Examples -> transformed features (TFMA preprocessing).
"""

from __future__ import annotations

import os

import tensorflow as tf
import tensorflow_transform as tft
from tensorflow.core.protobuf import saved_model_pb2
from tf_keras import Model

from models.model import OUTPUT_KEY
from transforms import features as F

CLASSIFY_SIGNATURE = "classify"
CLASSIFY_METHOD = "tensorflow/serving/classify"


def raw_input_signature() -> dict[str, tf.TensorSpec]:
    return {f.name: tf.TensorSpec([None], F.tf_dtype(f.dtype), name=f.name) for f in F.FEATURES}


def _missing_mask(feature: F.Feature, x: tf.Tensor) -> tf.Tensor:
    if feature.dtype is float:
        return tf.math.is_nan(x)
    if feature.dtype is str:
        return tf.equal(x, "")
    return tf.zeros_like(x, tf.bool)


def dense_to_raw(inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor | tf.SparseTensor]:
    """Named [batch] tensors -> the raw parsing layout Transform was traced with.

    Optional features become [batch, 1] SparseTensors holding only the present values.
    """
    raw = {}
    for feature in F.FEATURES:
        x = inputs[feature.name]
        if feature.optional:
            present = tf.logical_not(_missing_mask(feature, x))
            rows = tf.where(present)[:, 0]
            raw[feature.name] = tf.SparseTensor(
                tf.stack([rows, tf.zeros_like(rows)], axis=1), tf.boolean_mask(x, present),
                tf.stack([tf.shape(x, out_type=tf.int64)[0], tf.constant(1, tf.int64)]))
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

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_examples(examples):
        return predict(tf.io.parse_example(examples, serving_spec))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def classify(inputs):
        probability = predict(tf.io.parse_example(inputs, serving_spec))[OUTPUT_KEY]
        batch = tf.shape(probability)[0]
        return {"classes": tf.tile(tf.constant([list(F.LABEL_CLASSES)]), [batch, 1]),
                "scores": tf.stack([1.0 - probability, probability], axis=1)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def transform_features(examples):
        raw = tf.io.parse_example(examples, raw_spec)
        return model.tft_layer(raw)

    return {
        "serving_default": serve_raw.get_concrete_function(),
        "serving_examples": serve_examples.get_concrete_function(),
        CLASSIFY_SIGNATURE: classify.get_concrete_function(),
        "transform_features": transform_features.get_concrete_function(),
    }


def _set_method_name(export_dir: str, signature: str, method_name: str) -> None:
    """TF2's saved_model.save marks every signature as predict; TF Serving's Classify API
    only accepts a signature whose method name says classify, so the proto is amended."""
    path = os.path.join(export_dir, "saved_model.pb")
    saved_model = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(path, "rb") as f:
        saved_model.ParseFromString(f.read())
    for meta_graph in saved_model.meta_graphs:
        meta_graph.signature_def[signature].method_name = method_name
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(saved_model.SerializeToString())


def export(model: Model, tf_transform_output: tft.TFTransformOutput, export_dir: str) -> None:
    tf.saved_model.save(model, export_dir,
                        signatures=make_signatures(model, tf_transform_output))
    _set_method_name(export_dir, CLASSIFY_SIGNATURE, CLASSIFY_METHOD)
