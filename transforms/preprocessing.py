"""Transform's entry point: raw flight features -> model-ready tensors, driven by the registry.

Every output is a [batch] tensor: int64 ids for categorical outputs (the model embeds them,
reading vocabulary sizes from the transform output) and float32 for everything else.
"""

from __future__ import annotations

import math

import tensorflow as tf
import tensorflow_transform as tft

from transforms import features as F

_MINUTES_PER_DAY = 24 * 60


def _to_dense(x: tf.Tensor | tf.SparseTensor, default) -> tf.Tensor:
    """[batch, 1] dense or sparse (optional feature) -> [batch], absent values = `default`."""
    if isinstance(x, tf.SparseTensor):
        x = tf.sparse.to_dense(
            tf.SparseTensor(x.indices, x.values, tf.stack([x.dense_shape[0], 1])), default)
    return tf.reshape(x, [-1])


def _map_values(fn, x: tf.Tensor | tf.SparseTensor):
    """Applies an elementwise fn to a dense tensor or to a sparse tensor's values."""
    if isinstance(x, tf.SparseTensor):
        return tf.SparseTensor(x.indices, fn(x.values), x.dense_shape)
    return fn(x)


def _vocabulary(values: tf.Tensor, name: str, top_k: int | None = None) -> tf.Tensor:
    return tft.compute_and_apply_vocabulary(values, top_k=top_k, num_oov_buckets=1,
                                            vocab_filename=name)


def _sin_cos(outputs: dict, name: str, fraction_of_cycle: tf.Tensor) -> None:
    angle = 2.0 * math.pi * tf.cast(fraction_of_cycle, tf.float32)
    outputs[F.transformed_name(f"{name}_sin")] = tf.sin(angle)
    outputs[F.transformed_name(f"{name}_cos")] = tf.cos(angle)


def _categorical_values(feature: F.Feature, x) -> tf.Tensor:
    if feature.dtype is str:
        return _to_dense(x, F.MISSING_CATEGORY)
    return tf.strings.as_string(_to_dense(x, 0))


def preprocessing_fn(inputs: dict) -> dict:
    """Called by tf.Transform with raw features by name; the serving signatures run the graph
    it traces (with the vocabularies and statistics it computed), not this function."""
    outputs = {}
    for feature in F.FEATURES:
        name, x = feature.name, inputs[feature.name]
        if feature.kind is F.Kind.CATEGORICAL:
            outputs[F.transformed_name(name)] = _vocabulary(
                _categorical_values(feature, x), name, feature.top_k)
        elif feature.kind is F.Kind.NUMERIC:
            x = _map_values(lambda v: tf.cast(v, tf.float32), x)
            if feature.log:
                x = _map_values(lambda v: tf.math.log1p(tf.maximum(v, 0.0)), x)
            # z-score over present values; an absent value becomes 0, the mean.
            outputs[F.transformed_name(name)] = _to_dense(tft.scale_to_z_score(x), 0.0)
            if feature.optional:
                present = _to_dense(_map_values(tf.ones_like, x), 0.0)
                outputs[F.transformed_name(f"{name}_missing")] = 1.0 - present
        elif feature.kind is F.Kind.CLOCK:
            hhmm = _to_dense(x, 0)
            hour, minute = hhmm // 100, hhmm % 100
            _sin_cos(outputs, name, (hour * 60 + minute) / _MINUTES_PER_DAY)
            outputs[F.transformed_name(f"{name}_hour")] = _vocabulary(
                tf.strings.as_string(hour), f"{name}_hour")
        elif feature.kind is not F.Kind.CONTEXT:
            raise ValueError(f"feature {name!r}: no encoding for kind {feature.kind}")

    for keys in F.CROSSES:
        values = [_categorical_values(F.BY_NAME[k], inputs[k]) for k in keys]
        name = F.cross_name(keys)
        outputs[F.transformed_name(name)] = _vocabulary(
            tf.strings.reduce_join(tf.stack(values, axis=1), axis=1, separator="|"), name)

    # Serving feeds no label; tf.Transform then prunes this output.
    outputs[F.LABEL_KEY] = _to_dense(inputs[F.LABEL_KEY], 0)
    return outputs
