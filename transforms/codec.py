"""Raw feature rows <-> the request formats TF Serving speaks (REST JSON, TensorProto,
tf.Example), derived from the feature registry so clients, warmup, the dev server and the
TFLite measurements agree.

An absent optional value travels as the registry's dense marker (NaN or "", see
features.MISSING_MARKERS) in predict requests, and as an absent feature in tf.Examples
(classify requests). Rows and columns need only NumPy; the tf.Example and TensorProto
helpers import TensorFlow when called.

Non-finite numbers (NON_FINITE_RULES; the serving signatures in models/export.py enforce the
same rules): a required float feature must be finite; an optional one may be NaN, which means
absent exactly like a left-out value, but never +Inf or -Inf.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from transforms import features as F
from transforms.features import is_missing, missing_value

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_FLOAT32_MAX = float(np.finfo(np.float32).max)


NON_FINITE_RULES: dict[bool, str] = {
    False: "a required number must be finite (NaN, Infinity and -Infinity are invalid)",
    True: "an optional number may be NaN, meaning absent, but Infinity and -Infinity are invalid",
}
"""Feature.optional -> the rule for float values that are not finite, as error messages (the
client's and the signatures') state it."""


class InvalidRow(ValueError):
    """A row that cannot become a request; the message names the row and the feature."""


def _non_finite(feature: F.Feature, value: Any, where: str) -> InvalidRow:
    return InvalidRow(
        f"{where}: feature {feature.name!r} is {value!r}; {NON_FINITE_RULES[feature.optional]}"
    )


def _coerce(feature: F.Feature, value: Any, where: str) -> Any:
    try:
        if feature.dtype is str:
            if not isinstance(value, str):
                raise TypeError
            return value
        if isinstance(value, bool):
            raise TypeError
        if feature.dtype is int:
            if isinstance(value, float) and not value.is_integer():
                raise TypeError
            number = int(value)
        else:
            number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InvalidRow(
            f"{where}: feature {feature.name!r} expects {feature.dtype.__name__}, got {value!r}"
        ) from None
    if feature.dtype is float:
        if math.isnan(number) and feature.optional:
            return missing_value(feature)  # e.g. "nan" in a CSV cell, or a NumPy float32 NaN
        if not math.isfinite(number):  # "inf", "1e400", float("-inf")
            raise _non_finite(feature, value, where)
        if abs(number) > _FLOAT32_MAX:  # finite here, +/-Inf once a float32
            raise InvalidRow(
                f"{where}: feature {feature.name!r} is a float32; {value!r} is out of range"
            )
        return number
    if not _INT64_MIN <= number <= _INT64_MAX:
        raise InvalidRow(
            f"{where}: feature {feature.name!r} is an int64; {value!r} is out of range"
        )
    return number


def columns_from_rows(rows: Iterable[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """Rows of raw values (numbers may be numeric strings, as in CSV) -> one array per
    feature (float32 / int64 / object [rows]).

    Absent, None, "" or NaN optional values become the missing marker. Raises InvalidRow naming
    the row and the feature for: no rows, a row that is not a mapping, an unknown key, a
    required feature that is absent (or NaN), a value of the wrong type, an int beyond int64,
    a float beyond float32, and a float that breaks NON_FINITE_RULES (+/-Inf anywhere, NaN
    where required)."""
    columns: dict[str, list] = {f.name: [] for f in F.FEATURES}
    count = 0
    for index, row in enumerate(rows):
        count += 1
        if not isinstance(row, Mapping):
            raise InvalidRow(f"row {index}: expected an object of feature values, got {row!r:.100}")
        unknown = set(row) - set(columns) - {F.LABEL_KEY}
        if unknown:
            raise InvalidRow(
                f"row {index}: unknown features {sorted(unknown)}; expected "
                f"{[f.name for f in F.FEATURES]}"
            )
        for feature in F.FEATURES:
            value = row.get(feature.name)
            if is_missing(feature, value):
                if not feature.optional and isinstance(value, float):  # NaN, not absent
                    raise _non_finite(feature, value, f"row {index}")
                if not feature.optional:
                    raise InvalidRow(
                        f"row {index}: required feature {feature.name!r} "
                        f"({feature.description}) is missing"
                    )
                columns[feature.name].append(missing_value(feature))
            else:
                columns[feature.name].append(_coerce(feature, value, f"row {index}"))
    if not count:
        raise InvalidRow("no rows to send")
    return {f.name: np.array(columns[f.name], dtype=F.numpy_dtype(f.dtype)) for f in F.FEATURES}


def columns_from_examples(serialized: list[bytes]) -> dict[str, np.ndarray]:
    """Serialized raw tf.Examples -> columns with missing markers (what a client would send)."""
    import tensorflow as tf

    spec = {}
    for f in F.FEATURES:
        default = missing_value(f) if f.optional else None
        spec[f.name] = tf.io.FixedLenFeature([], F.tf_dtype(f.dtype), default_value=default)
    parsed = tf.io.parse_example(tf.constant(serialized), spec)
    return {
        f.name: (
            parsed[f.name].numpy().astype(object) if f.dtype is str else parsed[f.name].numpy()
        )
        for f in F.FEATURES
    }


def rows_from_columns(columns: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
    """Columns -> JSON-ready rows (REST `instances`); text decoded, missing markers kept."""
    size = len(next(iter(columns.values())))
    rows = [{} for _ in range(size)]
    for f in F.FEATURES:
        for row, value in zip(rows, columns[f.name], strict=True):
            row[f.name] = (
                value.decode()
                if isinstance(value, bytes)
                else value
                if f.dtype is str
                else int(value)
                if f.dtype is int
                else float(value)
            )
    return rows


def tensor_protos(columns: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Columns -> TensorProtos keyed by input name (gRPC PredictRequest.inputs)."""
    import tensorflow as tf

    protos = {}
    for f in F.FEATURES:
        values = columns[f.name]
        if f.dtype is str:
            values = np.array(
                [v.encode() if isinstance(v, str) else v for v in values], dtype=object
            )
        protos[f.name] = tf.make_tensor_proto(
            values, dtype=F.tf_dtype(f.dtype), shape=[len(values)]
        )
    return protos


def examples_from_columns(columns: Mapping[str, np.ndarray]) -> list:
    """Columns -> tf.train.Examples with missing values left out (Classify requests)."""
    import tensorflow as tf

    examples = []
    for row in rows_from_columns(columns):
        example = tf.train.Example()
        for f in F.FEATURES:
            value = row[f.name]
            if is_missing(f, value):
                continue
            feature = example.features.feature[f.name]
            if f.dtype is str:
                feature.bytes_list.value.append(value.encode())
            elif f.dtype is int:
                feature.int64_list.value.append(value)
            else:
                feature.float_list.value.append(value)
        examples.append(example)
    return examples
