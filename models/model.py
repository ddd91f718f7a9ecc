"""The Keras model: embeddings for categorical ids, dense features as they are, an MLP on top.

Built with tf_keras (Keras 2), the Keras that tf.Transform's TransformFeaturesLayer and TFMA
1.16/0.47 are built with, so one SavedModel holds the transform graph and the model.
"""

from __future__ import annotations

import keras_tuner
import tensorflow as tf
import tensorflow_transform as tft
from tf_keras import Input, Model, layers, metrics, optimizers

from models.constants import AUC_METRIC, OUTPUT_KEY
from transforms import features as F


def search_space() -> keras_tuner.HyperParameters:
    """Tuner search space; its defaults are the training defaults when tuning is skipped."""
    hp = keras_tuner.HyperParameters()
    hp.Choice("learning_rate", [1e-3, 3e-3, 1e-2], default=3e-3)
    hp.Int("hidden_layers", 1, 3, default=2)
    hp.Choice("hidden_units", [32, 64, 128], default=64)
    hp.Choice("dropout", [0.0, 0.1, 0.3], default=0.1)
    hp.Choice("max_embedding_dim", [4, 8, 16], default=8)
    return hp


def embedding_dim(num_buckets: int, max_dim: int) -> int:
    """A common rule of thumb (~1.6 * n^0.56), capped by the tuned maximum."""
    return max(2, min(max_dim, round(1.6 * num_buckets**0.56)))


def model_inputs(tf_transform_output: tft.TFTransformOutput) -> dict[str, tf.io.FixedLenFeature]:
    """Transformed features the model reads: everything Transform emits except the label."""
    spec = tf_transform_output.transformed_feature_spec()
    spec.pop(F.LABEL_KEY)
    return dict(sorted(spec.items()))


def build_model(
    hp: keras_tuner.HyperParameters, tf_transform_output: tft.TFTransformOutput
) -> Model:
    """int64 inputs are vocabulary ids (sizes read from the transform output); the rest floats."""
    inputs, dense, embedded = {}, [], []
    for name, spec in model_inputs(tf_transform_output).items():
        inputs[name] = Input(shape=(), dtype=spec.dtype, name=name)
        if spec.dtype == tf.int64:
            buckets = tf_transform_output.num_buckets_for_transformed_feature(name)
            dim = embedding_dim(buckets, hp.get("max_embedding_dim"))
            embedded.append(layers.Embedding(buckets, dim, name=f"embed_{name}")(inputs[name]))
        else:
            dense.append(layers.Reshape((1,))(inputs[name]))

    x = layers.Concatenate()(dense + embedded)
    for i in range(hp.get("hidden_layers")):
        x = layers.Dense(hp.get("hidden_units"), activation="relu", name=f"hidden_{i}")(x)
        x = layers.Dropout(hp.get("dropout"))(x)
    output = layers.Dense(1, activation="sigmoid", name=OUTPUT_KEY)(x)

    model = Model(inputs=inputs, outputs=output)
    model.compile(
        optimizer=optimizers.Adam(hp.get("learning_rate")),
        loss="binary_crossentropy",
        metrics=[metrics.AUC(name=AUC_METRIC), metrics.BinaryAccuracy(name="accuracy")],
    )
    # Keras traces train_step and test_step with AutoGraph, which transpiles every metric,
    # loss and optimizer method they reach (~3,500 functions: 17 s of a first training step
    # on 2 cores, paid by each Tuner trial and the Trainer). They hold no Python control flow
    # on tensors (tracing would fail loudly if they did), so plain tracing builds the same
    # graph in ~3 s.
    model.train_step = tf.autograph.experimental.do_not_convert(model.train_step)
    model.test_step = tf.autograph.experimental.do_not_convert(model.test_step)
    return model
