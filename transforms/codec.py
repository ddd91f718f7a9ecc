"""Raw feature rows <-> the request formats TF Serving speaks (REST JSON, TensorProto,
tf.Example), derived from the feature registry so clients, warmup, the dev server and the
TFLite measurements agree.

An absent optional value travels as the registry's dense marker (NaN or "", see
features.MISSING_MARKERS) in predict requests, and as an absent feature in tf.Examples
(classify requests). Rows and columns need only NumPy; the tf.Example and TensorProto
helpers import TensorFlow when called.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from transforms import features as F
from transforms.features import is_missing, missing_value

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class InvalidRow(ValueError):
    """A row that cannot become a request; the message names the row and the feature."""


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
            return float(value)
    except (TypeError, ValueError, OverflowError):
        raise InvalidRow(
            f"{where}: feature {feature.name!r} expects {feature.dtype.__name__}, got {value!r}"
        ) from None
    if not _INT64_MIN <= number <= _INT64_MAX:
        raise InvalidRow(
            f"{where}: feature {feature.name!r} is an int64; {value!r} is out of range"
        )
    return number


def columns_from_rows(rows: Iterable[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """Rows of raw values (numbers may be numeric strings, as in CSV) -> one array per
    feature. Absent or empty optional values become the missing marker; a required feature
    that is absent, or a value of the wrong type, raises InvalidRow naming both."""
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
