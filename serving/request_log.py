"""Request logging with TF Serving's semantics: sampled Predict and Classify requests, with
their responses, written as TFRecord files of `tensorflow.serving.PredictionLog`.

Open-source TF Serving has the logging machinery (core/server_request_logger.cc,
core/request_logger.cc, config/logging_config.proto) but registers no log collector, so a
`logging_config` fails at start with "No request-logger-creator provided". This module is that
missing piece for the development server, and for the logging sidecar and the monitoring job
that reuse it:

- `RequestLogConfig` holds what TF Serving's `LoggingConfig` holds (`sampling_config.
  sampling_rate`, `log_collector_config.filename_prefix`) plus rotation and queue limits.
- `RequestLogger.log(request, response_or_error, metadata)` samples like RequestLogger::Log
  (a uniform draw against the sampling rate; the config's SamplingConfig is copied into the
  LogMetadata) and hands the record to a writer thread through a bounded queue. When the queue
  is full the record is dropped and counted; the request is never slowed or failed.
- The writer turns each record into a PredictionLog (`predict_log`, `classify_log` or
  `regress_log`, chosen by the request's type) and appends it to a TFRecord file written under
  a dot-prefixed temporary name, renamed into place when the file is closed (by size, by age,
  on `flush()` and on `close()`), so a reader never sees a partial file.

Only answered requests are logged: RequestLogger::Log takes the request *and its response*, and
a PredictionLog has no field for an error, so a rejected request (INVALID_ARGUMENT / HTTP 400,
or any other error) is not sampled and not written; it is counted in `rejected`.

Files: `<log_dir>/<prefix>-<UTC opening time>-<host>-<pid>-<seq>.tfrecord`, readable with
`tf.data.TFRecordDataset(files).map(PredictionLog.FromString)`; in-progress files start with
"." and end in ".tmp". `log_dir` may be a gs:// path (all file access goes through tf.io.gfile).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import queue
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    logging_pb2,
    model_pb2,
    predict_pb2,
    prediction_log_pb2,
    regression_pb2,
)
from tensorflow_serving.config import log_collector_config_pb2, logging_config_pb2

log = logging.getLogger("serving.request_log")

DEFAULT_PREFIX = "prediction_log"
FILE_SUFFIX = ".tfrecord"
TEMP_SUFFIX = ".tmp"
SERVING_TAG = "serve"
_RECORD_OVERHEAD = 16  # TFRecord framing per record: length (8), its CRC (4), data CRC (4)

Proto = Any
"""A protobuf message, or a zero-argument callable returning one (built on the writer
thread, so the request thread pays only for what it samples)."""


@dataclasses.dataclass(frozen=True)
class RequestLogConfig:
    """Where and how much to log.

    sampling_rate: fraction of answered requests logged, in [0, 1] (TF Serving's
        SamplingConfig.sampling_rate; 0 logs nothing, 1 everything).
    log_dir: folder of the TFRecord files (local or gs://); created at start.
    filename_prefix: file name prefix (LogCollectorConfig.filename_prefix is log_dir/prefix).
    max_file_bytes: a file is closed once it holds at least this many bytes.
    max_file_seconds: a file is closed once it has been open this long, even if small, so a
        reader sees quiet traffic within this delay.
    queue_size: records waiting for the writer; beyond it records are dropped.

    Raises ValueError naming the field for a value out of range.
    """

    log_dir: str
    sampling_rate: float
    filename_prefix: str = DEFAULT_PREFIX
    max_file_bytes: int = 64 << 20
    max_file_seconds: float = 600.0
    queue_size: int = 10_000

    def __post_init__(self):
        if not (isinstance(self.sampling_rate, (int, float)) and 0.0 <= self.sampling_rate <= 1.0):
            raise ValueError(f"sampling_rate must be in [0, 1], got {self.sampling_rate!r}")
        if not self.log_dir:
            raise ValueError("log_dir is required")
        if not self.filename_prefix or re.search(r"[/\\]", self.filename_prefix):
            raise ValueError(f"filename_prefix must be a plain name, got {self.filename_prefix!r}")
        if self.max_file_bytes <= 0:
            raise ValueError(f"max_file_bytes must be > 0, got {self.max_file_bytes}")
        if not (self.max_file_seconds > 0 and math.isfinite(self.max_file_seconds)):
            raise ValueError(f"max_file_seconds must be > 0, got {self.max_file_seconds}")
        if self.queue_size <= 0:
            raise ValueError(f"queue_size must be > 0, got {self.queue_size}")

    def proto(self) -> logging_config_pb2.LoggingConfig:
        """The same settings as TF Serving's LoggingConfig (config/logging_config.proto,
        log_collector_config.proto)."""
        return logging_config_pb2.LoggingConfig(
            log_collector_config=log_collector_config_pb2.LogCollectorConfig(
                type="tfrecord",
                filename_prefix=os.path.join(self.log_dir, self.filename_prefix),
            ),
            sampling_config=logging_config_pb2.SamplingConfig(sampling_rate=self.sampling_rate),
        )


# --- The gRPC form of a request and its answer -----------------------------------------------
# REST requests are logged as the protos a gRPC client would have sent for them, so the
# monitoring job reads one format. Built from what the REST handler already parsed.


def model_spec(
    name: str, version: int | None = None, signature_name: str = ""
) -> model_pb2.ModelSpec:
    """ModelSpec(name, version if pinned, signature_name)."""
    spec = model_pb2.ModelSpec(name=name, signature_name=signature_name)
    if version is not None:
        spec.version.value = version
    return spec


def log_metadata(name: str, version: int, signature_name: str) -> logging_pb2.LogMetadata:
    """LogMetadata of an answered request: the servable that answered (name, version, resolved
    signature key) and the SavedModel tags. The logger adds sampling_config and
    timestamp_secs."""
    return logging_pb2.LogMetadata(
        model_spec=model_spec(name, version, signature_name), saved_model_tags=[SERVING_TAG]
    )


_NUMERIC = {
    types_pb2.DT_FLOAT: np.dtype("<f4"),
    types_pb2.DT_DOUBLE: np.dtype("<f8"),
    types_pb2.DT_INT64: np.dtype("<i8"),
    types_pb2.DT_INT32: np.dtype("<i4"),
}
_BY_NUMPY = {dtype: enum for enum, dtype in _NUMERIC.items()}
_SINGLE = {
    types_pb2.DT_FLOAT: "float_val",
    types_pb2.DT_DOUBLE: "double_val",
    types_pb2.DT_INT64: "int64_val",
    types_pb2.DT_INT32: "int_val",
}


def _fill_tensor(proto: tensor_pb2.TensorProto, value: np.ndarray, dtype: int | None) -> None:
    """Writes an array into `proto` as a tensor of `dtype` (default: the array's own), laid
    out as tf.make_tensor_proto lays it out (numbers in `tensor_content`, strings in
    `string_val`) but several times faster for small batches; other dtypes go through
    TensorFlow."""
    value = np.asarray(value)
    if dtype is None:
        is_text = value.dtype == object or value.dtype.kind in "SU"
        dtype = types_pb2.DT_STRING if is_text else _BY_NUMPY.get(value.dtype.newbyteorder("<"))
    if dtype in _NUMERIC and value.size == 1:  # as TensorFlow writes a single value
        getattr(proto, _SINGLE[dtype]).append(value.astype(_NUMERIC[dtype]).item())
    elif dtype in _NUMERIC:
        proto.tensor_content = np.ascontiguousarray(value, dtype=_NUMERIC[dtype]).tobytes()
    elif dtype == types_pb2.DT_STRING:
        proto.string_val.extend(
            v.encode() if isinstance(v, str) else bytes(v) for v in value.ravel().tolist()
        )
    else:
        import tensorflow as tf

        proto.CopyFrom(tf.make_tensor_proto(value, dtype=dtype, shape=value.shape))
        return
    proto.dtype = dtype
    for size in value.shape:
        proto.tensor_shape.dim.add(size=size)


def predict_request(
    spec: model_pb2.ModelSpec,
    inputs: Mapping[str, np.ndarray],
    dtypes: Mapping[str, int] | None = None,
) -> predict_pb2.PredictRequest:
    """PredictRequest carrying `inputs` (name -> array, batch first) as TensorProtos of the
    signature's dtypes (`dtypes`: name -> types_pb2.DataType; default: the array's own), as
    TF Serving's REST handler converts JSON before calling Predict (util/json_tensor.cc)."""
    request = predict_pb2.PredictRequest(model_spec=spec)
    for name, value in inputs.items():
        _fill_tensor(request.inputs[name], value, (dtypes or {}).get(name))
    return request


def predict_response(
    spec: model_pb2.ModelSpec,
    outputs: Mapping[str, np.ndarray],
    output_filter: Iterable[str] = (),
) -> predict_pb2.PredictResponse:
    """PredictResponse with the named outputs (all, or those in `output_filter`)."""
    response = predict_pb2.PredictResponse(model_spec=spec)
    wanted = set(output_filter) or set(outputs)
    for name, value in outputs.items():
        if name in wanted:
            _fill_tensor(response.outputs[name], value, None)
    return response


def classification_request(
    spec: model_pb2.ModelSpec, examples: list, context: Any = None
) -> classification_pb2.ClassificationRequest:
    """ClassificationRequest of tf.train.Examples: `example_list`, or
    `example_list_with_context` when a context Example is given (the REST "context" key)."""
    request = classification_pb2.ClassificationRequest(model_spec=spec)
    if context is None:
        request.input.example_list.examples.extend(examples)
    else:
        request.input.example_list_with_context.context.CopyFrom(context)
        request.input.example_list_with_context.examples.extend(examples)
    return request


def classification_response(
    spec: model_pb2.ModelSpec, classes: np.ndarray | None, scores: np.ndarray
) -> classification_pb2.ClassificationResponse:
    """ClassificationResponse from `classes` (DT_STRING [batch, n], or None) and `scores`
    (float [batch, n]), one Classifications entry per example (classifier.cc)."""
    response = classification_pb2.ClassificationResponse(model_spec=spec)
    for row, row_scores in enumerate(scores):
        result = response.result.classifications.add()
        for column, score in enumerate(row_scores):
            label = classes[row][column] if classes is not None else b""
            label = label.decode() if isinstance(label, bytes) else str(label)
            result.classes.add(label=label, score=float(score))
    return response


def prediction_log(request: Any, response: Any, metadata: Any) -> prediction_log_pb2.PredictionLog:
    """PredictionLog holding the pair in the log named by the request's type (PredictRequest ->
    predict_log, ClassificationRequest -> classify_log, RegressionRequest -> regress_log).
    Raises TypeError for any other request."""
    record = prediction_log_pb2.PredictionLog(log_metadata=metadata)
    kinds = (
        (predict_pb2.PredictRequest, record.predict_log),
        (classification_pb2.ClassificationRequest, record.classify_log),
        (regression_pb2.RegressionRequest, record.regress_log),
    )
    for request_type, entry in kinds:
        if isinstance(request, request_type):
            entry.request.CopyFrom(request)
            entry.response.CopyFrom(response)
            return record
    raise TypeError(f"cannot log a {type(request).__name__}")


def read(paths: str | Iterable[str]) -> list[prediction_log_pb2.PredictionLog]:
    """The PredictionLogs of finished log files (a glob pattern, or paths), in file order."""
    import tensorflow as tf

    files = sorted(tf.io.gfile.glob(paths)) if isinstance(paths, str) else list(paths)
    if not files:
        return []
    return [
        prediction_log_pb2.PredictionLog.FromString(record)
        for record in tf.data.TFRecordDataset(files).as_numpy_iterator()
    ]


def read_file(path: str) -> tuple[list[prediction_log_pb2.PredictionLog], str | None]:
    """(the PredictionLogs of one log file, None), or, when the file holds a corrupt or
    truncated record or one that is no PredictionLog, (the records before it, what is wrong)."""
    import tensorflow as tf
    from google.protobuf.message import DecodeError

    found = []
    try:
        for record in tf.data.TFRecordDataset([path]).as_numpy_iterator():
            found.append(prediction_log_pb2.PredictionLog.FromString(record))
    except (tf.errors.OpError, DecodeError) as error:
        message = getattr(error, "message", None) or str(error)
        first_line = message.splitlines()[0]
        return found, f"{type(error).__name__}: {first_line} (after {len(found)} records)"
    return found, None


def log_files(log_dir: str, prefix: str = DEFAULT_PREFIX) -> list[str]:
    """Finished log files under `log_dir`, oldest first (names sort by opening time)."""
    import tensorflow as tf

    return sorted(tf.io.gfile.glob(os.path.join(log_dir, f"{prefix}-*{FILE_SUFFIX}")))


# --- The logger --------------------------------------------------------------------------------


@dataclasses.dataclass
class _Record:
    request: Proto
    response: Proto
    metadata: Proto
    timestamp_secs: int


@dataclasses.dataclass
class _Flush:
    done: threading.Event


_STOP = object()
OUTCOMES = ("queued", "sampled_out", "dropped", "rejected")


def _resolve(value: Proto) -> Any:
    return value() if callable(value) else value


class RequestLogger:
    """Samples answered requests and writes them, off the request path, as PredictionLogs.

    `log()` is safe from any number of threads and never raises or blocks; call `start()`
    first (records logged before it wait in the queue), and `close()` at shutdown to write
    what is queued and finish the last file. `rng` (anything with `.random()` in [0, 1)) makes
    sampling reproducible in tests; `clock` gives the LogMetadata timestamp (Unix seconds).

    Counters (`counters()`): `logged` records in finished files; `sampled_out` answered but not
    sampled; `dropped` sampled but discarded because the queue was full (or the logger
    closed); `rejected` requests that failed (never logged, as in TF Serving); `write_errors`
    records lost to an error while building or writing them (logged with a traceback);
    `files` finished files.
    """

    def __init__(
        self,
        config: RequestLogConfig,
        rng: Any = None,
        clock: Callable[[], float] = time.time,
        hostname: str | None = None,
    ):
        self.config = config
        self._rng = rng if rng is not None else random.Random()
        self._clock = clock
        self._sampling_config = logging_config_pb2.SamplingConfig(
            sampling_rate=config.sampling_rate
        )
        host = hostname if hostname is not None else socket.gethostname()
        self._source = f"{re.sub(r'[^A-Za-z0-9_.]+', '_', host) or 'host'}-{os.getpid()}"
        self._queue: queue.Queue = queue.Queue(config.queue_size)
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(
            ("logged", "sampled_out", "dropped", "rejected", "write_errors", "files"), 0
        )
        self._closed = False
        self._thread: threading.Thread | None = None
        # Writer-thread state: the open file, its names, size, records and opening time.
        self._writer = None
        self._names: tuple[str, str] | None = None
        self._file_bytes = 0
        self._file_records = 0
        self._opened_at = 0.0
        self._sequence = 0

    # -- request threads --

    def sample(self) -> bool:
        """One draw of TF Serving's uniform sampler: True with probability sampling_rate
        (never at 0, always at 1)."""
        rate = self.config.sampling_rate
        return rate >= 1.0 or (rate > 0.0 and self._rng.random() < rate)

    def log(self, request: Proto, response_or_error: Any, metadata: Proto) -> str:
        """Samples one request and queues it; returns the outcome, one of OUTCOMES.

        request: the PredictRequest / ClassificationRequest / RegressionRequest as received
            (REST: its gRPC form, see predict_request), or a callable building it.
        response_or_error: the response proto (or a callable building it), or the exception
            the request failed with: then it is counted as rejected and not logged.
        metadata: LogMetadata (see log_metadata), or a callable building it; its
            sampling_config is set from the config and, if unset, timestamp_secs to now.
        """
        if isinstance(response_or_error, BaseException):
            self._count("rejected")
            return "rejected"
        if not self.sample():
            self._count("sampled_out")
            return "sampled_out"
        if self._closed:
            self._count("dropped")
            return "dropped"
        try:
            self._queue.put_nowait(
                _Record(request, response_or_error, metadata, int(self._clock()))
            )
        except queue.Full:
            self._count("dropped")
            return "dropped"
        return "queued"

    def _count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n

    def counters(self) -> dict[str, int]:
        """A snapshot of the counters, plus `queued` (records waiting for the writer)."""
        with self._lock:
            return {**self._counts, "queued": self._queue.qsize()}

    # -- lifecycle --

    def start(self) -> RequestLogger:
        """Creates the log folder and starts the writer thread. Raises what tf.io.gfile raises
        if the folder cannot be created (e.g. PermissionDeniedError)."""
        import tensorflow as tf

        tf.io.gfile.makedirs(self.config.log_dir)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True, name="request-log")
            self._thread.start()
        return self

    def flush(self, timeout: float = 30.0) -> bool:
        """Writes every record queued so far and finishes the open file, so a reader sees them;
        returns False if the writer did not get there within `timeout` seconds."""
        if self._thread is None or not self._thread.is_alive():
            return False
        marker = _Flush(threading.Event())
        try:
            self._queue.put(marker, timeout=timeout)
        except queue.Full:
            return False
        return marker.done.wait(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Stops taking records, writes those queued and finishes the last file. Records still
        queued after `timeout` seconds (a stuck file system) are counted as dropped."""
        self._closed = True
        if self._thread is not None and self._thread.is_alive():
            try:
                self._queue.put(_STOP, timeout=timeout)
                self._thread.join(timeout)
            except queue.Full:
                pass
        if self._thread is None or not self._thread.is_alive():
            self._finish_file()  # never started, or done: nothing else touches the file
        left = 0
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            left += isinstance(item, _Record)
        if left:
            self._count("dropped", left)
            log.warning("request log closed with %d records unwritten (counted as dropped)", left)

    def __enter__(self) -> RequestLogger:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- writer thread --

    def _run(self) -> None:
        while True:
            wait = 0.5
            if self._writer is not None:
                age = time.monotonic() - self._opened_at
                wait = max(0.0, min(wait, self.config.max_file_seconds - age))
            try:
                item = self._queue.get(timeout=wait)
            except queue.Empty:
                item = None
            if item is _STOP:
                self._finish_file()
                return
            if isinstance(item, _Flush):
                self._finish_file()
                item.done.set()
            elif isinstance(item, _Record):
                self._write(item)
            if (
                self._writer is not None
                and time.monotonic() - self._opened_at >= self.config.max_file_seconds
            ):
                self._finish_file()

    def _write(self, record: _Record) -> None:
        try:
            metadata = logging_pb2.LogMetadata()
            metadata.CopyFrom(_resolve(record.metadata))
            metadata.sampling_config.CopyFrom(self._sampling_config)  # request_logger.cc
            if not metadata.timestamp_secs:
                metadata.timestamp_secs = record.timestamp_secs
            data = prediction_log(
                _resolve(record.request), _resolve(record.response), metadata
            ).SerializeToString()
        except Exception:  # a bad record must not stop the writer
            log.exception("request log record could not be built")
            self._count("write_errors")
            return
        try:
            if self._writer is None:
                self._open_file()
            self._writer.write(data)
            self._file_records += 1
            self._file_bytes += len(data) + _RECORD_OVERHEAD
        except Exception:  # e.g. disk full: lose this file, keep serving
            log.exception("writing the request log failed; its open file is discarded")
            self._discard_file(extra=1)
            return
        if self._file_bytes >= self.config.max_file_bytes:
            self._finish_file()

    def _open_file(self) -> None:
        import tensorflow as tf

        self._sequence += 1
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self._clock()))
        name = (
            f"{self.config.filename_prefix}-{stamp}-{self._source}-{self._sequence:06d}"
            f"{FILE_SUFFIX}"
        )
        final = os.path.join(self.config.log_dir, name)
        temp = os.path.join(self.config.log_dir, f".{name}{TEMP_SUFFIX}")
        self._writer = tf.io.TFRecordWriter(temp)
        self._names = (temp, final)
        self._file_bytes = self._file_records = 0
        self._opened_at = time.monotonic()

    def _finish_file(self) -> None:
        """Closes the open file and renames it into place (nothing to do if none is open)."""
        if self._writer is None:
            return
        import tensorflow as tf

        temp, final = self._names
        try:
            self._writer.close()
            tf.io.gfile.rename(temp, final, overwrite=False)
        except Exception:
            log.exception("finishing request log file %s failed", final)
            self._discard_file()
            return
        self._count("logged", self._file_records)
        self._count("files")
        self._writer, self._names = None, None

    def _discard_file(self, extra: int = 0) -> None:
        import tensorflow as tf

        self._count("write_errors", self._file_records + extra)
        if self._names is not None:
            try:
                if self._writer is not None:
                    self._writer.close()
            except Exception:  # noqa: BLE001
                pass
            try:
                tf.io.gfile.remove(self._names[0])
            except Exception:  # noqa: BLE001
                log.warning("could not remove the unfinished log file %s", self._names[0])
        self._writer, self._names = None, None
        self._file_records = self._file_bytes = 0
