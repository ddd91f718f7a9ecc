"""Raw feature rows <-> the request formats TF Serving speaks (REST JSON, TensorProto,
tf.Example), derived from the feature registry so clients, warmup and the dev server agree.

An absent optional value travels as NaN (numbers) or "" (text) in predict requests, and as an
absent feature in tf.Examples (classify requests).
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

import numpy as np
import tensorflow as tf

from transforms import features as F

_NUMPY = {str: object, int: np.int64, float: np.float32}


class InvalidRow(ValueError):
    """A row that cannot become a request; the message names the row and the feature."""


def missing_value(feature: F.Feature) -> Any:
    return "" if feature.dtype is str else math.nan


def is_missing(feature: F.Feature, value: Any) -> bool:
    if value is None or (isinstance(value, str) and value == "" and feature.dtype is not str):
        return True
    if feature.dtype is str:
        return value == ""
    return isinstance(value, float) and math.isnan(value)


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
            return int(value)
        return float(value)
    except (TypeError, ValueError):
        raise InvalidRow(f"{where}: feature {feature.name!r} expects "
                         f"{feature.dtype.__name__}, got {value!r}") from None


def columns_from_rows(rows: Iterable[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """Rows of raw values (numbers may be numeric strings, as in CSV) -> one array per
    feature. Absent or empty optional values become the missing marker; a required feature
    that is absent, or a value of the wrong type, raises InvalidRow naming both."""
    columns: dict[str, list] = {f.name: [] for f in F.FEATURES}
    count = 0
    for index, row in enumerate(rows):
        count += 1
        unknown = set(row) - set(columns) - {F.LABEL_KEY}
        if unknown:
            raise InvalidRow(f"row {index}: unknown features {sorted(unknown)}; expected "
                             f"{[f.name for f in F.FEATURES]}")
        for feature in F.FEATURES:
            value = row.get(feature.name)
            if is_missing(feature, value):
                if not feature.optional:
                    raise InvalidRow(f"row {index}: required feature {feature.name!r} "
                                     f"({feature.description}) is missing")
                columns[feature.name].append(missing_value(feature))
            else:
                columns[feature.name].append(_coerce(feature, value, f"row {index}"))
    if not count:
        raise InvalidRow("no rows to send")
    return {f.name: np.array(columns[f.name], dtype=_NUMPY[f.dtype]) for f in F.FEATURES}


def columns_from_examples(serialized: list[bytes]) -> dict[str, np.ndarray]:
    """Serialized raw tf.Examples -> columns with missing markers (what a client would send)."""
    spec = {}
    for f in F.FEATURES:
        default = missing_value(f) if f.optional else None
        spec[f.name] = tf.io.FixedLenFeature([], F.tf_dtype(f.dtype), default_value=default)
    parsed = tf.io.parse_example(tf.constant(serialized), spec)
    return {f.name: (parsed[f.name].numpy().astype(object) if f.dtype is str
                     else parsed[f.name].numpy()) for f in F.FEATURES}


def rows_from_columns(columns: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
    """Columns -> JSON-ready rows (REST `instances`); text decoded, missing markers kept."""
    size = len(next(iter(columns.values())))
    rows = [{} for _ in range(size)]
    for f in F.FEATURES:
        for row, value in zip(rows, columns[f.name]):
            row[f.name] = (value.decode() if isinstance(value, bytes) else
                           value if f.dtype is str else
                           int(value) if f.dtype is int else float(value))
    return rows


def tensor_protos(columns: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Columns -> TensorProtos keyed by input name (gRPC PredictRequest.inputs)."""
    protos = {}
    for f in F.FEATURES:
        values = columns[f.name]
        if f.dtype is str:
            values = np.array([v.encode() if isinstance(v, str) else v for v in values],
                              dtype=object)
        protos[f.name] = tf.make_tensor_proto(values, dtype=F.tf_dtype(f.dtype),
                                              shape=[len(values)])
    return protos


def examples_from_columns(columns: Mapping[str, np.ndarray]) -> list[tf.train.Example]:
    """Columns -> tf.Examples with missing values left out (Classify requests)."""
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
