"""The encoding rules, once: how each kind of raw feature becomes model inputs.

Two places run them: tf.Transform's `preprocessing_fn` (transforms/preprocessing.py), which
learns vocabularies and z-score statistics with analyzers, and the TFLite encoder
(mobile/encoder.py), which replays what Transform learned with TFLite builtin ops. Both call
`encode` with an `Encoder` of their own; the dispatch on feature kind, the arithmetic and the
output names live here, so a new feature kind or a changed rule is one change.

Every input is a `Column`: the values as a [batch] tensor with absent entries filled, and a
[batch] bool `present` mask. Every output is a [batch] tensor: int64 vocabulary ids for
categorical outputs, float32 otherwise.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Protocol

import tensorflow as tf

from transforms import features as F

MINUTES_PER_DAY = 24 * 60
NUM_OOV_BUCKETS = 1
"""Every vocabulary has one out-of-vocabulary bucket, id len(vocabulary): unseen values (and
values beyond a top_k cut) share it."""
CROSS_SEPARATOR = "|"
"""Joins the values of a cross into one vocabulary entry, e.g. b"JFK|LAX"."""


class Column(NamedTuple):
    """One raw feature of a batch: `values` [batch] (absent entries filled with 0 or "")
    and `present` [batch] bool."""

    values: tf.Tensor
    present: tf.Tensor


class Encoder(Protocol):
    """What differs between Transform and TFLite: where vocabularies and statistics come from."""

    def vocabulary_ids(
        self, key: str, column: Column, dtype: type, top_k: int | None = None
    ) -> tf.Tensor:
        """int64 [batch] ids of `column` (registry dtype str or int) in vocabulary `key`, as
        `categorical_text` spells the values; unseen values get the OOV bucket."""

    def cross_ids(self, key: str, columns: list[Column], dtypes: list[type]) -> tf.Tensor:
        """int64 [batch] ids of the joined values (see `cross_value`) in vocabulary `key`."""

    def z_score(self, feature: F.Feature, x: tf.Tensor, present: tf.Tensor) -> tf.Tensor:
        """float32 [batch] z-scores of `x` over the values seen in training; 0.0 (the mean)
        where not `present`."""


def present_mask(feature: F.Feature, x: tf.Tensor) -> tf.Tensor:
    """[batch] bool: which entries of a dense [batch] input are not the missing marker
    (features.MISSING_MARKERS: NaN for numbers, "" for text; int features are never absent)."""
    if feature.dtype is float:
        return tf.logical_not(tf.math.is_nan(x))
    if feature.dtype is str:
        return tf.not_equal(x, "")
    return tf.ones_like(x, tf.bool)


def numeric_input(feature: F.Feature, x: tf.Tensor) -> tf.Tensor:
    """What a NUMERIC feature's z-score is taken of: log1p(max(x, 0)) for long-tailed `log`
    features, else x itself; float32 in and out."""
    return tf.math.log1p(tf.maximum(x, 0.0)) if feature.log else x


def categorical_text(column: Column, dtype: type) -> tf.Tensor:
    """A categorical as vocabulary text: ints as decimal strings, absent -> MISSING_CATEGORY."""
    text = column.values if dtype is str else tf.strings.as_string(column.values)
    return tf.where(column.present, text, F.MISSING_CATEGORY)


def clock_parts(hhmm: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Local time as hhmm (int) -> (hour, minute), integer [batch] tensors."""
    return tf.math.floordiv(hhmm, 100), tf.math.floormod(hhmm, 100)


def clock_angle(hour: tf.Tensor, minute: tf.Tensor) -> tf.Tensor:
    """float32 [batch] angle in radians of the minute of the day on a 24-hour circle, so
    23:59 and 00:00 are neighbours."""
    return 2.0 * math.pi * tf.cast(hour * 60 + minute, tf.float32) / MINUTES_PER_DAY


def encode(columns: dict[str, Column], encoder: Encoder) -> dict[str, tf.Tensor]:
    """Raw features by name -> the transformed features the model reads, by the registry.

    Raises ValueError for a feature kind without an encoding rule.
    """
    out = {}
    for feature in F.FEATURES:
        name, column = feature.name, columns[feature.name]
        if feature.kind is F.Kind.CATEGORICAL:
            out[F.transformed_name(name)] = encoder.vocabulary_ids(
                name, column, feature.dtype, feature.top_k
            )
        elif feature.kind is F.Kind.NUMERIC:
            x = numeric_input(feature, tf.cast(column.values, tf.float32))
            out[F.transformed_name(name)] = encoder.z_score(feature, x, column.present)
            if feature.optional:
                out[F.missing_indicator_name(name)] = 1.0 - tf.cast(column.present, tf.float32)
        elif feature.kind is F.Kind.CLOCK:
            hour, minute = clock_parts(column.values)
            angle = clock_angle(hour, minute)
            sin_name, cos_name = F.clock_names(name)
            out[sin_name], out[cos_name] = tf.sin(angle), tf.cos(angle)
            key = F.clock_hour_key(name)
            out[F.transformed_name(key)] = encoder.vocabulary_ids(
                key, Column(hour, column.present), int
            )
        elif feature.kind is not F.Kind.CONTEXT:
            raise ValueError(f"feature {name!r}: no encoding rule for kind {feature.kind}")
    for keys in F.CROSSES:
        key = F.cross_name(keys)
        out[F.transformed_name(key)] = encoder.cross_ids(
            key, [columns[k] for k in keys], [F.BY_NAME[k].dtype for k in keys]
        )
    return out


def cross_value(columns: list[tf.Tensor]) -> tf.Tensor:
    """The vocabulary entry of a cross: the categorical texts joined by CROSS_SEPARATOR."""
    return tf.strings.reduce_join(tf.stack(columns, axis=1), axis=1, separator=CROSS_SEPARATOR)
