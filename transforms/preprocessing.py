"""Transform's entry point: raw flight features -> model-ready tensors, by transforms/encoding.

tf.Transform's analyzers supply what the encoding rules need from the data: vocabularies
(one file per vocabulary key, one OOV bucket) and the mean and variance of every numeric
input. Every output is a [batch] tensor: int64 ids for categorical outputs (the model embeds
them, reading vocabulary sizes from the transform output) and float32 for everything else.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft

from transforms import encoding
from transforms import features as F
from transforms.encoding import Column


def _column(x: tf.Tensor | tf.SparseTensor, dtype: type) -> Column:
    """[batch, 1] dense (required) or sparse (optional) input -> a [batch] Column, absent
    entries filled with "" or 0."""
    fill = "" if dtype is str else 0
    if isinstance(x, tf.SparseTensor):
        shape = tf.stack([x.dense_shape[0], 1])
        values = tf.sparse.to_dense(tf.SparseTensor(x.indices, x.values, shape), fill)
        present = tf.sparse.to_dense(
            tf.SparseTensor(x.indices, tf.ones_like(x.values, tf.bool), shape), False
        )
        return Column(tf.reshape(values, [-1]), tf.reshape(present, [-1]))
    values = tf.reshape(x, [-1])
    return Column(values, tf.ones_like(values, tf.bool))


class _Analyzers:
    """encoding.Encoder through tf.Transform's analyzers (full passes over the data)."""

    @staticmethod
    def _vocabulary(text: tf.Tensor, key: str, top_k: int | None = None) -> tf.Tensor:
        return tft.compute_and_apply_vocabulary(
            text, top_k=top_k, num_oov_buckets=encoding.NUM_OOV_BUCKETS, vocab_filename=key
        )

    def vocabulary_ids(self, key, column, dtype, top_k=None):
        return self._vocabulary(encoding.categorical_text(column, dtype), key, top_k)

    def cross_ids(self, key, columns, dtypes):
        return self._vocabulary(
            encoding.cross_value(
                [encoding.categorical_text(c, d) for c, d in zip(columns, dtypes, strict=True)]
            ),
            key,
        )

    def z_score(self, feature, x, present):
        if not feature.optional:
            return tft.scale_to_z_score(x)
        # Statistics over present values only; an absent value becomes 0, the mean.
        present_values = tf.SparseTensor(
            tf.where(tf.expand_dims(present, 1)),
            tf.boolean_mask(x, present),
            tf.stack([tf.size(x, out_type=tf.int64), 1]),
        )
        z = tft.scale_to_z_score(present_values)
        return tf.reshape(tf.sparse.to_dense(z, 0.0), [-1])


def preprocessing_fn(inputs: dict) -> dict:
    """Called by tf.Transform with raw features by name, as parsed by
    features.raw_feature_spec; the serving signatures run the graph it traces (with the
    vocabularies and statistics it computed), not this function."""
    columns = {f.name: _column(inputs[f.name], f.dtype) for f in F.FEATURES}
    outputs = encoding.encode(columns, _Analyzers())
    # Serving feeds no label; tf.Transform then prunes this output.
    outputs[F.LABEL_KEY] = _column(inputs[F.LABEL_KEY], int).values
    return outputs
