"""The logging sidecar (serving/sidecar.py) in front of the dev server as its upstream: answers
and errors pass through unchanged, answered Predict/Classify calls are logged as the upstream
itself logs them, and the sidecar survives the upstream going away and coming back."""

from __future__ import annotations

import json
import time

import grpc
import pytest
import requests
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from models.constants import CLASSIFY_SIGNATURE, MODEL_NAME
from serving import push, request_log, sidecar
from serving.dev_server import DevServer
from serving.sidecar import Sidecar
from transforms import codec
from transforms import features as F

pytestmark = pytest.mark.component

MODEL = MODEL_NAME
ROWS = 4


@pytest.fixture(scope="module")
def rows(records) -> list[dict]:
    return codec.rows_from_columns(codec.columns_from_examples(records[:ROWS]))


@pytest.fixture(scope="module")
def base(saved_model_dir, warmup_file, tmp_path_factory) -> str:
    base = tmp_path_factory.mktemp("serving") / MODEL
    push.push(str(saved_model_dir), str(base), warmup_file)
    return str(base)


@pytest.fixture(scope="module")
def upstream(base, tmp_path_factory):
    """The dev server, logging every answered request itself: the reference records."""
    config = request_log.RequestLogConfig(
        log_dir=str(tmp_path_factory.mktemp("upstream_logs")), sampling_rate=1.0
    )
    with DevServer(
        MODEL, base, rest_port=0, grpc_port=0, poll_seconds=0.2, request_log_config=config
    ) as running:
        yield running


def _sidecar(upstream, log_dir: str) -> Sidecar:
    return Sidecar(
        f"http://127.0.0.1:{upstream.rest_port}",
        f"127.0.0.1:{upstream.grpc_port}",
        MODEL,
        rest_port=0,
        grpc_port=0,
        request_log_config=request_log.RequestLogConfig(log_dir=log_dir, sampling_rate=1.0),
        upstream_timeout=30.0,
    )


@pytest.fixture(scope="module")
def proxy(upstream, tmp_path_factory):
    with _sidecar(upstream, str(tmp_path_factory.mktemp("sidecar_logs"))) as running:
        yield running


def _url(server, path: str) -> str:
    return f"http://127.0.0.1:{server.rest_port}{path}"


def _logs(logger) -> list:
    """Every PredictionLog written so far, after finishing the open file."""
    assert logger.flush()
    return request_log.read(request_log.log_files(logger.config.log_dir))


def _without_time(record):
    record.log_metadata.ClearField("timestamp_secs")
    return record


def _classify_example(row: dict) -> dict:
    return {k: v for k, v in row.items() if not codec.is_missing(F.BY_NAME[k], v)}


def _predict_request(columns: dict, drop: str | None = None) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    for key, proto in codec.tensor_protos(columns).items():
        if key != drop:
            request.inputs[key].CopyFrom(proto)
    return request


def _classify_request(rows: list[dict]) -> classification_pb2.ClassificationRequest:
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = MODEL
    request.model_spec.signature_name = CLASSIFY_SIGNATURE
    request.input.example_list.examples.extend(
        codec.examples_from_columns(codec.columns_from_rows(rows))
    )
    return request


def _stub(server):
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    return channel, prediction_service_pb2_grpc.PredictionServiceStub(channel)


def _call(method, request):
    """(code, answer or details) of a gRPC call."""
    try:
        return grpc.StatusCode.OK, method(request, timeout=30)
    except grpc.RpcError as e:
        return e.code(), e.details()


def test_answers_equal_the_upstreams_and_are_logged_as_the_upstream_logs_them(
    upstream, proxy, rows
):
    version = push.versions(upstream.manager.base_path)[-1]
    columns = {k: v.tolist() for k, v in codec.columns_from_rows(rows).items()}
    examples = [_classify_example(row) for row in rows]
    classify_body = {"signature_name": CLASSIFY_SIGNATURE, "examples": examples}
    posts = [
        (f"/v1/models/{MODEL}:predict", {"instances": rows}),
        (f"/v1/models/{MODEL}/versions/{version}:predict", {"inputs": columns}),
        (f"/v1/models/{MODEL}:classify", classify_body),
        (
            f"/v1/models/{MODEL}/versions/{version}:classify",
            {"signature_name": CLASSIFY_SIGNATURE, "examples": examples[1:], "context": {}},
        ),
    ]
    reference_before = len(_logs(upstream.request_logger))
    logged_before = len(_logs(proxy.request_logger))
    answers = []
    for path, body in posts:
        data = json.dumps(body).encode()  # NaN for absent optional values, as clients send
        answers.append(requests.post(_url(proxy, path), data=data, timeout=30))
    channel, stub = _stub(proxy)
    grpc_requests = [
        (stub.Predict, _predict_request(codec.columns_from_rows(rows))),
        (stub.Classify, _classify_request(rows)),
    ]
    grpc_answers = [_call(method, request) for method, request in grpc_requests]
    channel.close()

    reference = _logs(upstream.request_logger)[reference_before:]
    logged = _logs(proxy.request_logger)[logged_before:]
    assert len(reference) == len(logged) == len(posts) + len(grpc_requests)
    kinds = [record.WhichOneof("log_type") for record in logged]
    assert kinds == ["predict_log"] * 2 + ["classify_log"] * 2 + ["predict_log", "classify_log"]
    for ours, theirs in zip(logged, reference, strict=True):
        assert ours.log_metadata.model_spec.version.value == version
        assert _without_time(ours) == _without_time(theirs)

    # The same requests sent straight to the upstream get the same answers.
    for (path, body), answer in zip(posts, answers, strict=True):
        direct = requests.post(_url(upstream, path), data=json.dumps(body).encode(), timeout=30)
        assert answer.status_code == direct.status_code == 200
        assert answer.content == direct.content
        assert answer.headers["Content-Type"] == direct.headers["Content-Type"]
    channel, stub = _stub(upstream)
    direct_stubs = [stub.Predict, stub.Classify]
    for (_, request), (code, answer), method in zip(
        grpc_requests, grpc_answers, direct_stubs, strict=True
    ):
        assert code == grpc.StatusCode.OK
        assert answer == _call(method, request)[1]
    channel.close()
    predictions = answers[0].json()["predictions"]
    assert len(predictions) == ROWS


def test_a_refused_request_is_forwarded_unchanged_and_counted(upstream, proxy, rows):
    logger = proxy.request_logger
    before = len(_logs(logger))
    rejected = logger.counters()["rejected"]
    missing = [{k: v for k, v in row.items() if k != "distance"} for row in rows[:1]]
    path = f"/v1/models/{MODEL}:predict"
    data = json.dumps({"instances": missing}).encode()
    via = requests.post(_url(proxy, path), data=data, timeout=30)
    direct = requests.post(_url(upstream, path), data=data, timeout=30)
    assert via.status_code == direct.status_code == 400
    assert via.content == direct.content and "distance" in via.json()["error"]
    assert via.headers["Content-Type"] == direct.headers["Content-Type"]

    request = _predict_request(codec.columns_from_rows(rows[:1]), drop="distance")
    channel, stub = _stub(proxy)
    via_grpc = _call(stub.Predict, request)
    channel.close()
    channel, stub = _stub(upstream)
    direct_grpc = _call(stub.Predict, request)
    channel.close()
    assert via_grpc == direct_grpc
    assert via_grpc[0] == grpc.StatusCode.INVALID_ARGUMENT and "distance" in via_grpc[1]

    assert len(_logs(logger)) == before  # refused requests are not logged ...
    assert logger.counters()["rejected"] == rejected + 2  # ... but counted, as TF Serving does


def test_status_and_metadata_pass_through(upstream, proxy):
    version = push.versions(upstream.manager.base_path)[-1]
    for path in (
        f"/v1/models/{MODEL}",
        f"/v1/models/{MODEL}/metadata",
        f"/v1/models/{MODEL}/versions/{version}/metadata",
        f"/v1/models/{MODEL}/versions/1",  # 404
        "/v1/models/no_such_model/metadata",  # 404
        f"/v1/models/{MODEL}:explain",  # 400, no such verb
    ):
        via = requests.get(_url(proxy, path), timeout=30)
        direct = requests.get(_url(upstream, path), timeout=30)
        assert (via.status_code, via.content) == (direct.status_code, direct.content), path
    assert (
        requests.get(_url(proxy, f"/v1/models/{MODEL}"), timeout=30).json()["model_version_status"][
            0
        ]["state"]
        == "AVAILABLE"
    )

    answers = []
    for server in (proxy, upstream):
        channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
        spec = {"name": MODEL}
        metadata = _call(
            prediction_service_pb2_grpc.PredictionServiceStub(channel).GetModelMetadata,
            get_model_metadata_pb2.GetModelMetadataRequest(
                model_spec=spec, metadata_field=["signature_def"]
            ),
        )
        status = _call(
            model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus,
            get_model_status_pb2.GetModelStatusRequest(model_spec=spec),
        )
        unknown = _call(
            model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus,
            get_model_status_pb2.GetModelStatusRequest(model_spec={"name": "no_such_model"}),
        )
        channel.close()
        answers.append((metadata, status, unknown))
    assert answers[0] == answers[1]
    assert answers[0][0][0] == grpc.StatusCode.OK
    assert answers[0][2][0] == grpc.StatusCode.NOT_FOUND


def test_upstream_down_answers_unavailable_and_a_restart_needs_no_sidecar_restart(
    base, rows, tmp_path
):
    body = json.dumps({"instances": rows[:1]}).encode()
    path = f"/v1/models/{MODEL}:predict"
    request = _predict_request(codec.columns_from_rows(rows[:1]))
    first = DevServer(MODEL, base, rest_port=0, grpc_port=0, poll_seconds=0.2).start()
    ports = first.rest_port, first.grpc_port
    with _sidecar(first, str(tmp_path / "logs")) as running:
        channel, stub = _stub(running)
        expected = requests.post(_url(running, path), data=body, timeout=30)
        assert expected.status_code == 200
        assert _call(stub.Predict, request)[0] == grpc.StatusCode.OK

        first.stop()
        down = requests.post(_url(running, path), data=body, timeout=30)
        assert down.status_code == 503 and "unavailable" in down.json()["error"]
        assert requests.get(_url(running, f"/v1/models/{MODEL}"), timeout=30).status_code == 503
        assert _call(stub.Predict, request)[0] == grpc.StatusCode.UNAVAILABLE

        with DevServer(MODEL, base, rest_port=ports[0], grpc_port=ports[1], poll_seconds=0.2):
            deadline = time.monotonic() + 30
            while True:
                again = requests.post(_url(running, path), data=body, timeout=30)
                code, answer = _call(stub.Predict, request)
                if (again.status_code, code) == (200, grpc.StatusCode.OK):
                    break
                assert time.monotonic() < deadline, (again.status_code, again.content, code)
                time.sleep(0.2)
            assert again.content == expected.content
            assert answer.outputs
        channel.close()
        logs = _logs(running.request_logger)
    assert [r.WhichOneof("log_type") for r in logs] == ["predict_log"] * 4
    counters = running.request_logger.counters()
    assert counters["logged"] == 4 and counters["write_errors"] == 0


def test_flags_are_checked_at_start(capsys):
    with pytest.raises(SystemExit):
        sidecar.main(["--request_log_sampling_rate=0.5"])  # no --request_log_dir
    assert "--request_log_dir" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        sidecar.main(["--request_log_sampling_rate=1.5", "--request_log_dir=/tmp/x"])
    assert "--request_log_sampling_rate" in capsys.readouterr().err
