"""The tf.Transform graph re-expressed in TFLite builtin ops, so a phone feeds raw features.

The Transform graph itself needs Flex ops (string joins, int-to-string, float64 and int64
division, OOV hashing), which tflite-runtime does not have. This module rebuilds the same
encoding from what Transform computed: vocabularies become static hash tables (string keys) or
gather tables (small integer keys), z-scores become constants probed from the transform graph,
and the route cross becomes a lookup matrix over (origin, destination). Parity with the
SavedModel is tested, and checked again for every published model.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from transforms import features as F

_MINUTES_PER_DAY = 24 * 60


@dataclasses.dataclass(frozen=True)
class ZScore:
    """z = at_anchor + scale * (g(x) - anchor), g = log1p(max(x, 0)) for log features, else x;
    an absent value gives `missing`. Anchored at the low end of the plausible range, so float32
    keeps the precision that `offset + scale * g(x)` would lose to cancellation."""

    anchor: float
    at_anchor: float
    scale: float
    missing: float


def _g(feature: F.Feature, x):
    return tf.math.log1p(tf.maximum(x, 0.0)) if feature.log else x


def _probes(feature: F.Feature) -> tuple[float, float]:
    """Two raw values at the ends of the plausible range (from the registry)."""
    low = feature.min_value if feature.min_value is not None else 0.0
    high = feature.max_value if feature.max_value is not None else low + 1.0
    return float(low), float(high)


def _g_value(feature: F.Feature, x: float) -> float:
    return math.log1p(max(x, 0.0)) if feature.log else x


def probe_z_scores(tf_transform_output: tft.TFTransformOutput) -> dict[str, ZScore]:
    """Reads each numeric feature's z-score constants by running the transform graph on three
    rows: every number at the low and the high end of its range, and (optional) absent."""
    numeric = F.of_kind(F.Kind.NUMERIC)
    rows = 3
    raw = {}
    for feature in F.FEATURES:
        if feature.name == F.LABEL_KEY:
            continue
        if feature.kind is F.Kind.NUMERIC:
            low, high = _probes(feature)
            values = [low, high, low]
        else:
            values = ["probe" if feature.dtype is str else 0] * rows
        dtype = F.tf_dtype(feature.dtype)
        if feature.optional:  # absent in the third row
            present = values[:2] if feature.kind is F.Kind.NUMERIC else values
            raw[feature.name] = tf.SparseTensor(
                [[i, 0] for i in range(len(present))], tf.constant(present, dtype),
                [rows, 1])
        else:
            raw[feature.name] = tf.constant([[v] for v in values], dtype)
    transformed = tf_transform_output.transform_raw_features(raw)
    result = {}
    for feature in numeric:
        z = transformed[F.transformed_name(feature.name)].numpy().astype(np.float64)
        g_low, g_high = (_g_value(feature, v) for v in _probes(feature))
        result[feature.name] = ZScore(anchor=g_low, at_anchor=float(z[0]),
                                      scale=float((z[1] - z[0]) / (g_high - g_low)),
                                      missing=float(z[2]))
    return result


def _int_table(vocabulary: list[bytes], oov: int) -> tuple[np.ndarray, int]:
    """Vocabulary of integer strings -> gather table over 0..max (+1 slot for out of range)."""
    keys = {int(v): i for i, v in enumerate(vocabulary)}
    top = max(keys)
    table = np.full(top + 2, oov, np.int64)
    for key, index in keys.items():
        if key >= 0:
            table[key] = index
    return table, top


class BuiltinTransform(tf.Module):
    """Raw [batch] features -> the transformed features the Keras model reads."""

    def __init__(self, tf_transform_output: tft.TFTransformOutput):
        super().__init__()
        # Dicts keyed by strings only: tf.Module tracks them for saving.
        self._string_tables = {}
        self._int_tables = {}
        self._int_tops: dict[str, int] = {}
        self.z_scores = probe_z_scores(tf_transform_output)
        vocab = tf_transform_output.vocabulary_by_name
        for feature in F.of_kind(F.Kind.CATEGORICAL):
            self._add_vocabulary(feature.name, vocab(feature.name), feature.dtype,
                                 feature.optional)
        for feature in F.of_kind(F.Kind.CLOCK):
            name = f"{feature.name}_hour"
            self._add_vocabulary(name, vocab(name), int, optional=False)
        for keys in F.CROSSES:
            self._add_cross(keys, vocab(F.cross_name(keys)))

    def _string_table(self, keys: list[bytes], values: list[int], default: int):
        return tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
            tf.constant(keys, tf.string), tf.constant(values, tf.int64)), default_value=default)

    def _add_vocabulary(self, name: str, vocabulary: list[bytes], dtype: type,
                        optional: bool) -> None:
        oov = len(vocabulary)  # Transform's single OOV bucket
        if dtype is str:
            keys, values = list(vocabulary), list(range(len(vocabulary)))
            if optional:  # "" (absent) is what Transform calls MISSING_CATEGORY
                missing = F.MISSING_CATEGORY.encode()
                keys.append(b"")
                values.append(vocabulary.index(missing) if missing in vocabulary else oov)
            self._string_tables[name] = self._string_table(keys, values, oov)
        else:
            table, self._int_tops[name] = _int_table(vocabulary, oov)
            self._int_tables[name] = tf.constant(table)

    def _add_cross(self, keys: tuple[str, ...], vocabulary: list[bytes]) -> None:
        if len(keys) != 2:
            raise ValueError(f"only pairs are supported on mobile, got cross {keys}")
        pairs = [entry.split(b"|") for entry in vocabulary]
        firsts = sorted({p[0] for p in pairs})
        seconds = sorted({p[1] for p in pairs})
        oov = len(vocabulary)
        matrix = np.full((len(firsts) + 1, len(seconds) + 1), oov, np.int64)
        for index, (a, b) in enumerate(pairs):
            matrix[firsts.index(a), seconds.index(b)] = index
        name = F.cross_name(keys)
        self._string_tables[f"{name}/0"] = self._string_table(firsts, list(range(len(firsts))),
                                                              len(firsts))
        self._string_tables[f"{name}/1"] = self._string_table(seconds,
                                                              list(range(len(seconds))),
                                                              len(seconds))
        self._int_tables[name] = tf.constant(matrix)

    def _lookup_int(self, name: str, x: tf.Tensor) -> tf.Tensor:
        table, top = self._int_tables[name], self._int_tops[name]
        x = tf.cast(x, tf.int32)
        in_range = tf.logical_and(x >= 0, x <= top)
        return tf.gather(table, tf.where(in_range, x, tf.fill(tf.shape(x), top + 1)))

    def __call__(self, raw: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        out = {}
        for feature in F.FEATURES:
            name, x = feature.name, raw[feature.name]
            if feature.kind is F.Kind.CATEGORICAL:
                out[F.transformed_name(name)] = (
                    self._string_tables[name].lookup(x) if feature.dtype is str
                    else self._lookup_int(name, x))
            elif feature.kind is F.Kind.NUMERIC:
                z = self.z_scores[name]
                if not feature.optional:
                    out[F.transformed_name(name)] = z.at_anchor + z.scale * (
                        _g(feature, x) - z.anchor)
                    continue
                present = tf.logical_not(tf.math.is_nan(x))
                scaled = z.at_anchor + z.scale * (
                    _g(feature, tf.where(present, x, z.anchor)) - z.anchor)
                out[F.transformed_name(name)] = tf.where(present, scaled, z.missing)
                out[F.transformed_name(f"{name}_missing")] = 1.0 - tf.cast(present, tf.float32)
            elif feature.kind is F.Kind.CLOCK:
                hhmm = tf.cast(x, tf.int32)
                hour, minute = tf.math.floordiv(hhmm, 100), tf.math.floormod(hhmm, 100)
                fraction = tf.cast(hour * 60 + minute, tf.float32) / _MINUTES_PER_DAY
                angle = 2.0 * math.pi * fraction
                out[F.transformed_name(f"{name}_sin")] = tf.sin(angle)
                out[F.transformed_name(f"{name}_cos")] = tf.cos(angle)
                out[F.transformed_name(f"{name}_hour")] = self._lookup_int(f"{name}_hour", hour)
        for keys in F.CROSSES:
            name = F.cross_name(keys)
            index = tf.stack([self._string_tables[f"{name}/{i}"].lookup(raw[key])
                              for i, key in enumerate(keys)], axis=1)
            out[F.transformed_name(name)] = tf.gather_nd(self._int_tables[name], index)
        return out
