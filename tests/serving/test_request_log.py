"""serving/request_log.py on hand-made requests: the PredictionLog files, sampling, the bounded
queue, rejected requests, rotation, and the dev server's request-log flags.

The rules follow tensorflow_serving/core/request_logger.cc (sampling, SamplingConfig copied
into the LogMetadata) and server_request_logger.cc (only answered requests are logged)."""

from __future__ import annotations

import os
import random
import threading
import time

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import classification_pb2, predict_pb2, prediction_log_pb2

from serving import dev_server, request_log
from serving.request_log import RequestLogConfig, RequestLogger

pytestmark = pytest.mark.unit

NOW = 1_764_000_000
INPUTS = {
    "carrier": np.array([b"UA", b"DL"], dtype=object),
    "distance": np.array([1416.0, np.nan], dtype=np.float32),
    "month": np.array([11, 12], dtype=np.int64),
}


def _config(tmp_path, **overrides) -> RequestLogConfig:
    return RequestLogConfig(log_dir=str(tmp_path / "logs"), **{"sampling_rate": 1.0, **overrides})


def _predict(i: int = 0):
    """(request, response, metadata) of one answered predict call."""
    spec = request_log.model_spec("flight_delay", None, "")
    request = request_log.predict_request(
        spec, {**INPUTS, "month": INPUTS["month"] + i}, {"distance": types_pb2.DT_FLOAT}
    )
    answered = request_log.model_spec("flight_delay", 7, "serving_default")
    response = request_log.predict_response(
        answered, {"probability": np.array([0.25, 0.5], np.float32)}
    )
    return request, response, request_log.log_metadata("flight_delay", 7, "serving_default")


def _classify():
    example = tf.train.Example()
    example.features.feature["carrier"].bytes_list.value.append(b"UA")
    spec = request_log.model_spec("flight_delay", 7, "classify")
    request = request_log.classification_request(spec, [example])
    response = request_log.classification_response(
        spec, np.array([[b"on_time", b"delayed"]], dtype=object), np.array([[0.8, 0.2]])
    )
    return request, response, request_log.log_metadata("flight_delay", 7, "classify")


def _read_dir(log_dir) -> list:
    files = request_log.log_files(str(log_dir))
    return [
        prediction_log_pb2.PredictionLog.FromString(r)
        for r in tf.data.TFRecordDataset(files).as_numpy_iterator()
    ]


def _temp_files(log_dir) -> list[str]:
    return [n for n in os.listdir(log_dir) if n.startswith(".") or n.endswith(".tmp")]


def test_logs_are_prediction_logs_that_tfrecorddataset_reads(tmp_path):
    with RequestLogger(_config(tmp_path), clock=lambda: NOW + 0.7) as logger:
        assert logger.log(*_predict()) == "queued"
        request, response, metadata = _classify()
        # Builders may be callables: they run on the writer thread.
        assert logger.log(lambda: request, lambda: response, lambda: metadata) == "queued"
    logs = _read_dir(tmp_path / "logs")
    assert [record.WhichOneof("log_type") for record in logs] == ["predict_log", "classify_log"]
    for record, signature in zip(logs, ["serving_default", "classify"], strict=True):
        meta = record.log_metadata
        assert (meta.model_spec.name, meta.model_spec.version.value) == ("flight_delay", 7)
        assert meta.model_spec.signature_name == signature
        assert meta.timestamp_secs == NOW
        assert meta.sampling_config.sampling_rate == 1.0
        assert list(meta.saved_model_tags) == ["serve"]
    sent = logs[0].predict_log.request.inputs
    for name, values in INPUTS.items():
        np.testing.assert_array_equal(tf.make_ndarray(sent[name]), values)
    assert sent["distance"].dtype == types_pb2.DT_FLOAT
    np.testing.assert_allclose(
        tf.make_ndarray(logs[0].predict_log.response.outputs["probability"]), [0.25, 0.5]
    )
    assert logs[1].classify_log.request == request
    assert logs[1].classify_log.response.result.classifications[0].classes[1].label == "delayed"
    assert logger.counters() == {
        "logged": 2,
        "sampled_out": 0,
        "dropped": 0,
        "rejected": 0,
        "write_errors": 0,
        "files": 1,
        "queued": 0,
    }
    (name,) = os.listdir(tmp_path / "logs")
    assert name.startswith("prediction_log-") and name.endswith(".tfrecord")
    assert request_log.read(str(tmp_path / "logs" / "*.tfrecord")) == logs


def test_sampling_rate_0_1_logs_a_binomial_share(tmp_path):
    n, p = 2000, 0.1
    with RequestLogger(_config(tmp_path, sampling_rate=p), rng=random.Random(13)) as logger:
        outcomes = [logger.log(*_predict()) for _ in range(n)]
    logged = outcomes.count("queued")
    sd = (n * p * (1 - p)) ** 0.5
    assert abs(logged - n * p) < 4 * sd, logged  # 200 +/- 54
    counters = logger.counters()
    assert counters["logged"] == logged == len(_read_dir(tmp_path / "logs"))
    assert counters["sampled_out"] == n - logged
    assert logs_rate(tmp_path) == {p}


def logs_rate(tmp_path) -> set[float]:
    return {r.log_metadata.sampling_config.sampling_rate for r in _read_dir(tmp_path / "logs")}


@pytest.mark.parametrize("rate, expected", [(0.0, 0), (1.0, 50)])
def test_rates_0_and_1_log_nothing_and_everything(tmp_path, rate, expected):
    config = RequestLogConfig(log_dir=str(tmp_path / "logs"), sampling_rate=rate)
    with RequestLogger(config, rng=random.Random(0)) as logger:
        for _ in range(50):
            logger.log(*_predict())
    assert logger.counters()["logged"] == expected
    assert logger.counters()["sampled_out"] == 50 - expected


def test_a_full_queue_drops_records_and_counts_them_without_blocking(tmp_path):
    logger = RequestLogger(_config(tmp_path, queue_size=5))  # writer not started: nothing drains
    outcomes = [logger.log(*_predict(i)) for i in range(20)]
    assert outcomes == ["queued"] * 5 + ["dropped"] * 15
    assert logger.counters()["dropped"] == 15
    logger.start()
    logger.close()
    assert logger.counters()["logged"] == 5
    months = [
        int(tf.make_ndarray(r.predict_log.request.inputs["month"])[0])
        for r in _read_dir(tmp_path / "logs")
    ]
    assert months == [11, 12, 13, 14, 15]  # the first five, in order
    assert logger.log(*_predict()) == "dropped"  # closed: dropped, never raised


def test_a_blocked_writer_never_blocks_log(tmp_path):
    release = threading.Event()
    logger = RequestLogger(_config(tmp_path, queue_size=3)).start()
    write = logger._write

    def stuck(record):
        release.wait(30)
        write(record)

    logger._write = stuck
    outcomes = [logger.log(*_predict(i)) for i in range(10)]
    assert outcomes.count("dropped") >= 6  # one record held by the writer, three queued
    release.set()
    logger.close()
    counters = logger.counters()
    assert counters["logged"] + counters["dropped"] == 10
    assert counters["logged"] == len(_read_dir(tmp_path / "logs"))


def test_rejected_requests_are_counted_and_not_logged(tmp_path):
    request, _, metadata = _predict()
    with RequestLogger(_config(tmp_path)) as logger:
        error = dev_server.ServingError(dev_server.grpc.StatusCode.INVALID_ARGUMENT, "bad")
        assert logger.log(request, error, metadata) == "rejected"
        assert logger.log(None, ValueError("unparsable"), None) == "rejected"
        logger.log(*_predict())
    assert logger.counters()["rejected"] == 2
    assert logger.counters()["logged"] == 1


def test_size_rotation_writes_several_complete_files_and_no_partial_one(tmp_path):
    record_bytes = len(request_log.prediction_log(*_predict()).SerializeToString()) + 16
    config = _config(tmp_path, max_file_bytes=record_bytes * 10)
    with RequestLogger(config) as logger:
        for i in range(95):
            logger.log(*_predict(i))
    files = request_log.log_files(config.log_dir)
    assert len(files) == 10 and logger.counters()["files"] == 10
    sizes = [len(list(tf.data.TFRecordDataset(f).as_numpy_iterator())) for f in files]
    assert sizes == [10] * 9 + [5]
    months = [
        int(tf.make_ndarray(r.predict_log.request.inputs["month"])[0])
        for r in _read_dir(config.log_dir)
    ]
    assert months == [11 + i for i in range(95)]  # file names sort in writing order
    assert _temp_files(config.log_dir) == []


def test_time_rotation_finishes_a_quiet_file_and_readers_see_only_finished_ones(tmp_path):
    config = _config(tmp_path, max_file_seconds=0.3)
    logger = RequestLogger(config).start()
    logger.log(*_predict())
    deadline = time.time() + 5
    while not _temp_files(config.log_dir) and time.time() < deadline:
        time.sleep(0.01)
    assert len(_temp_files(config.log_dir)) == 1  # being written, under a hidden name
    assert request_log.log_files(config.log_dir) == []
    while not request_log.log_files(config.log_dir) and time.time() < deadline:
        time.sleep(0.05)
    assert len(request_log.log_files(config.log_dir)) == 1  # finished without new traffic
    assert _temp_files(config.log_dir) == []
    logger.log(*_predict())
    assert logger.flush()
    assert len(request_log.log_files(config.log_dir)) == 2
    logger.close()
    assert logger.counters()["logged"] == 2


def test_a_record_that_cannot_be_built_is_counted_and_the_writer_goes_on(tmp_path):
    request, response, metadata = _predict()

    def broken():
        raise RuntimeError("no")

    with RequestLogger(_config(tmp_path)) as logger:
        logger.log(broken, response, metadata)
        logger.log(object(), response, metadata)  # not a request type PredictionLog holds
        logger.log(request, response, metadata)
    assert logger.counters()["write_errors"] == 2
    assert logger.counters()["logged"] == 1


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"sampling_rate": 1.5}, "sampling_rate must be in [0, 1]"),
        ({"sampling_rate": -0.1}, "sampling_rate must be in [0, 1]"),
        ({"sampling_rate": float("nan")}, "sampling_rate must be in [0, 1]"),
        ({"log_dir": ""}, "log_dir is required"),
        ({"filename_prefix": "a/b"}, "filename_prefix must be a plain name"),
        ({"max_file_bytes": 0}, "max_file_bytes must be > 0"),
        ({"max_file_seconds": 0}, "max_file_seconds must be > 0"),
        ({"queue_size": 0}, "queue_size must be > 0"),
    ],
)
def test_config_refuses_values_out_of_range(overrides, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        RequestLogConfig(**{"log_dir": "/tmp/x", "sampling_rate": 0.5, **overrides})


def test_config_matches_tf_servings_logging_config():
    proto = RequestLogConfig(log_dir="gs://bucket/logs", sampling_rate=0.25).proto()
    assert proto.sampling_config.sampling_rate == 0.25
    assert proto.log_collector_config.filename_prefix == "gs://bucket/logs/prediction_log"


def test_classification_request_with_context_keeps_it_apart():
    context = tf.train.Example()
    context.features.feature["month"].int64_list.value.append(11)
    request = request_log.classification_request(
        request_log.model_spec("m"), [tf.train.Example()], context
    )
    assert isinstance(request, classification_pb2.ClassificationRequest)
    assert request.input.example_list_with_context.context == context
    assert len(request.input.example_list_with_context.examples) == 1
    assert not isinstance(request, predict_pb2.PredictRequest)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--request_log_sampling_rate=1.5"], "must be in [0, 1], got 1.5"),
        (["--request_log_sampling_rate=nan"], "must be in [0, 1], got nan"),
        (["--request_log_sampling_rate=0.1"], "needs --request_log_dir"),
        (
            [
                "--request_log_sampling_rate=0.1",
                "--request_log_dir=/tmp/x",
                "--request_log_queue_size=0",
            ],
            "queue_size must be > 0",
        ),
    ],
)
def test_dev_server_refuses_bad_request_log_flags(tmp_path, capsys, flags, message):
    with pytest.raises(SystemExit) as exit_info:
        dev_server.main([f"--model_base_path={tmp_path}", *flags])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "value",
    [
        np.array([0.5], np.float32),
        np.array([0.5, np.nan], np.float32),
        np.array([[0.5]], np.float64),
        np.array([3], np.int64),
        np.array([[1, 2]], np.int32),
        np.array([b"UA", b""], dtype=object),
        np.array([[True, False]]),
    ],
)
def test_tensors_are_written_byte_for_byte_as_tensorflow_writes_them(value):
    """So a REST request logs exactly the TensorProtos a gRPC client would have sent."""
    response = request_log.predict_response(request_log.model_spec("m"), {"x": value})
    expected = tf.make_tensor_proto(value)
    assert response.outputs["x"].SerializeToString() == expected.SerializeToString()
    request = (
        request_log.predict_request(
            request_log.model_spec("m"), {"x": value.astype(np.float64)}, {"x": types_pb2.DT_FLOAT}
        )
        if value.dtype.kind == "f"
        else None
    )
    if request is not None:  # converted to the signature's dtype, as json_tensor.cc does
        converted = tf.make_tensor_proto(value.astype(np.float32))
        assert request.inputs["x"].SerializeToString() == converted.SerializeToString()
