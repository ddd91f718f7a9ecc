"""The encoding rules of transforms/encoding.py in TFLite builtin ops, so a phone feeds raw
features.

The Transform graph itself needs Flex ops (string joins, int-to-string, float64 and int64
division, OOV hashing), which tflite-runtime does not have. `BuiltinTransform` is the
encoding.Encoder that replays what Transform computed: vocabularies become static hash tables
(string keys) or gather tables (small integer keys), z-scores become constants probed from the
transform graph, and a cross becomes a lookup matrix over its two values. The rules
themselves (which outputs each kind of feature gets, log compression, the clock angle,
missing indicators) are encoding.encode's, the same that preprocessing_fn runs. Parity with
the SavedModel is tested, and checked again for every published model.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from transforms import encoding
from transforms import features as F
from transforms.encoding import Column

_INVERSE_OF_5 = -3689348814741910323
"""5 * _INVERSE_OF_5 == 1 in int64 arithmetic (mod 2**64): exact division by 5 of a multiple
of 5, with TFLite's int64 Mul."""

_RADIANS_PER_MINUTE = np.float32(2 * math.pi) * (
    np.float32(1) / np.float32(encoding.MINUTES_PER_DAY)
)
"""encoding.clock_angle's factor as float32 constants folded by TF's graph optimizer
(2 pi times the float32 reciprocal of MINUTES_PER_DAY)."""


@dataclasses.dataclass(frozen=True)
class ZScore:
    """z = at_anchor + scale * (g - anchor), g = encoding.numeric_input(x); an absent value
    gives `missing`. Anchored at the low end of the plausible range, so float32 keeps the
    precision that `offset + scale * g` would lose to cancellation."""

    anchor: float
    at_anchor: float
    scale: float
    missing: float


def _probes(feature: F.Feature) -> tuple[float, float]:
    """Two raw values at the ends of the plausible range (from the registry)."""
    low = feature.min_value if feature.min_value is not None else 0.0
    high = feature.max_value if feature.max_value is not None else low + 1.0
    return float(low), float(high)


def probe_z_scores(tf_transform_output: tft.TFTransformOutput) -> dict[str, ZScore]:
    """Reads each numeric feature's z-score constants by running the transform graph on three
    rows: every number at the low and the high end of its range, and (optional) absent."""
    rows = 3
    raw = {}
    for feature in F.FEATURES:
        if feature.kind is F.Kind.NUMERIC:
            low, high = _probes(feature)
            values = [low, high, low]
        else:
            values = ["probe" if feature.dtype is str else 0] * rows
        dtype = F.tf_dtype(feature.dtype)
        if feature.optional:  # absent in the third row
            present = values[:2] if feature.kind is F.Kind.NUMERIC else values
            raw[feature.name] = tf.SparseTensor(
                [[i, 0] for i in range(len(present))], tf.constant(present, dtype), [rows, 1]
            )
        else:
            raw[feature.name] = tf.constant([[v] for v in values], dtype)
    transformed = tf_transform_output.transform_raw_features(raw)
    result = {}
    for feature in F.of_kind(F.Kind.NUMERIC):
        z = transformed[F.transformed_name(feature.name)].numpy().astype(np.float64)
        g_low, g_high = (
            encoding.numeric_input(feature, tf.constant(_probes(feature), tf.float32))
            .numpy()
            .astype(np.float64)
        )
        result[feature.name] = ZScore(
            anchor=float(g_low),
            at_anchor=float(z[0]),
            scale=float((z[1] - z[0]) / (g_high - g_low)),
            missing=float(z[2]),
        )
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
    """Raw [batch] features -> the transformed features the Keras model reads; an
    encoding.Encoder whose vocabularies and statistics are constants read from a transform
    output, in TFLite builtin ops."""

    def __init__(self, tf_transform_output: tft.TFTransformOutput):
        super().__init__()
        # Dicts keyed by strings only: tf.Module tracks them for saving.
        self._string_tables = {}
        self._int_tables = {}
        self._int_tops: dict[str, int] = {}
        self.z_scores = probe_z_scores(tf_transform_output)
        vocab = tf_transform_output.vocabulary_by_name
        for feature in F.of_kind(F.Kind.CATEGORICAL):
            self._add_vocabulary(feature.name, vocab(feature.name), feature.dtype)
        for feature in F.of_kind(F.Kind.CLOCK):
            key = F.clock_hour_key(feature.name)
            self._add_vocabulary(key, vocab(key), int)
        for keys in F.CROSSES:
            key = F.cross_name(keys)
            self._add_cross(key, vocab(key))

    def _string_table(self, keys: list[bytes], values: list[int], default: int):
        return tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(keys, tf.string), tf.constant(values, tf.int64)
            ),
            default_value=default,
        )

    def _add_vocabulary(self, key: str, vocabulary: list[bytes], dtype: type) -> None:
        oov = len(vocabulary)  # the OOV bucket (encoding.NUM_OOV_BUCKETS == 1)
        if dtype is str:
            keys, values = list(vocabulary), list(range(len(vocabulary)))
            # The text marker of an absent value ("") is what Transform calls MISSING_CATEGORY.
            missing = F.MISSING_CATEGORY.encode()
            keys.append(F.MISSING_MARKERS[str].encode())
            values.append(vocabulary.index(missing) if missing in vocabulary else oov)
            self._string_tables[key] = self._string_table(keys, values, oov)
        else:
            table, self._int_tops[key] = _int_table(vocabulary, oov)
            self._int_tables[key] = tf.constant(table)

    def _add_cross(self, key: str, vocabulary: list[bytes]) -> None:
        """A pair cross as a matrix of ids over (first value, second value): TFLite builtins
        cannot join strings."""
        separator = encoding.CROSS_SEPARATOR.encode()
        pairs = [entry.split(separator) for entry in vocabulary]
        if any(len(pair) != 2 for pair in pairs):
            raise ValueError(f"cross {key!r}: only pairs are supported on mobile")
        firsts = sorted({p[0] for p in pairs})
        seconds = sorted({p[1] for p in pairs})
        oov = len(vocabulary)
        matrix = np.full((len(firsts) + 1, len(seconds) + 1), oov, np.int64)
        for index, (a, b) in enumerate(pairs):
            matrix[firsts.index(a), seconds.index(b)] = index
        for i, values in enumerate((firsts, seconds)):
            self._string_tables[f"{key}/{i}"] = self._string_table(
                values, list(range(len(values))), len(values)
            )
        self._int_tables[key] = tf.constant(matrix)

    def _lookup_int(self, key: str, x: tf.Tensor) -> tf.Tensor:
        """int64 [batch] ids of int32 or int64 [batch] values `x`; values beyond the table
        (any int64, compared in its own dtype) get the OOV bucket."""
        table, top = self._int_tables[key], self._int_tops[key]
        in_range = tf.logical_and(x >= 0, x <= top)
        return tf.gather(
            table, tf.where(in_range, x, tf.fill(tf.shape(x), tf.cast(top + 1, x.dtype)))
        )

    # encoding.Encoder
    def vocabulary_ids(self, key, column, dtype, top_k=None):
        if dtype is str:
            return self._string_tables[key].lookup(column.values)
        return self._lookup_int(key, column.values)

    def cross_ids(self, key, columns, dtypes):
        if any(dtype is not str for dtype in dtypes):
            raise ValueError(f"cross {key!r}: only text features are supported on mobile")
        index = tf.stack(
            [
                self._string_tables[f"{key}/{i}"].lookup(column.values)
                for i, column in enumerate(columns)
            ],
            axis=1,
        )
        return tf.gather_nd(self._int_tables[key], index)

    def z_score(self, feature, x, present):
        z = self.z_scores[feature.name]
        scaled = z.at_anchor + z.scale * (x - z.anchor)
        return tf.where(present, scaled, z.missing) if feature.optional else scaled

    def _clock_column(self, feature: F.Feature, x: tf.Tensor) -> tf.Tensor:
        """int32 [batch] stand-in of a CLOCK feature's int64 [batch] values for encode(),
        whose clock_parts needs FloorDiv, a kernel TFLite has for int32 only: x itself where
        its hour is a vocabulary position (0..top), else -100 (hour -1: the OOV bucket, as
        Transform's lookup of any hour not in the vocabulary). Never a wrapped cast: 2**32 +
        1730 is not 17:30. The angle of such a value is `_clock_angle`'s."""
        top = self._int_tops[F.clock_hour_key(feature.name)]
        in_table = tf.logical_and(x >= 0, x <= 100 * top + 99)
        return tf.cast(tf.where(in_table, x, tf.constant(-100, tf.int64)), tf.int32)

    @staticmethod
    def _clock_angle(x: tf.Tensor) -> tf.Tensor:
        """float32 [batch] encoding.clock_angle of encoding.clock_parts(x), for any int64
        [batch] x, as the SavedModel computes it, in TFLite builtins (int64 FloorMod, Sub, Mul;
        TFLite has no int64 FloorDiv).

        hour * 60 + minute, with Transform's int64 wrap-around, is (x - minute) / 5 * 3 +
        minute, and (x - minute) is a multiple of 100, so / 5 is exact as * the inverse of 5
        mod 2**64. The angle is that count in float32 times _RADIANS_PER_MINUTE, the form TF's
        graph optimizer gives clock_angle's `2 pi * m / 1440` in the SavedModel: beyond a day
        the angle is large and one float32 ulp of it changes its sine, so the rounding must be
        the SavedModel's."""
        minute = tf.math.floormod(x, tf.constant(100, tf.int64))
        minutes = (x - minute) * tf.constant(_INVERSE_OF_5, tf.int64) * 3 + minute
        return tf.cast(minutes, tf.float32) * _RADIANS_PER_MINUTE

    def __call__(self, raw: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """Raw [batch] tensors by feature (float32, int64, string) -> the transformed
        features. Every int64 value is taken as Transform takes it (no int32 wrap): an int
        categorical beyond its vocabulary gets the OOV bucket, a clock beyond 0..2399 the
        OOV hour and the angle Transform computes."""
        columns = {}
        for feature in F.FEATURES:
            x = raw[feature.name]
            present = encoding.present_mask(feature, x)
            if feature.dtype is float:  # NaN would survive the arithmetic of unused branches
                x = tf.where(present, x, 0.0)
            elif feature.kind is F.Kind.CLOCK:
                x = self._clock_column(feature, x)
            columns[feature.name] = Column(x, present)
        out = encoding.encode(columns, self)
        for feature in F.of_kind(F.Kind.CLOCK):
            angle = self._clock_angle(raw[feature.name])
            sin_name, cos_name = F.clock_names(feature.name)
            out[sin_name], out[cos_name] = tf.sin(angle), tf.cos(angle)
        return out
