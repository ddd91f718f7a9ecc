"""The dev server against a real export: TF Serving 2.16's REST and gRPC behaviour, the clients
against it, version switches, and the README's example requests.

Expected messages quote TF Serving (tensorflow_serving/util/json_tensor.cc,
model_servers/http_rest_api_handler.cc, servables/tensorflow/classifier.cc) where it has one.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import math
import os
import pathlib
import re
import threading
import time
from typing import Any

import grpc
import numpy as np
import pytest
import requests
import tensorflow as tf
from tensorflow_serving.apis import classification_pb2, predict_pb2, prediction_service_pb2_grpc

from models.constants import (
    CLASSIFY_METHOD,
    CLASSIFY_SIGNATURE,
    EXAMPLES_SIGNATURE,
    MODEL_NAME,
    OUTPUT_KEY,
    PREDICT_METHOD,
    TRANSFORM_SIGNATURE,
)
from serving import dev_server, push, request_log, warmup
from serving.client import GrpcClient, RestClient, ServingError
from serving.dev_server import DevServer
from transforms import codec
from transforms import features as F

pytestmark = pytest.mark.component

MODEL = MODEL_NAME
ROWS = 20
LIMIT = 200_000  # the test server's body limit
README = pathlib.Path(__file__).resolve().parents[2] / "serving" / "README.md"


@pytest.fixture(scope="module")
def loaded(saved_model_dir):
    return tf.saved_model.load(str(saved_model_dir))


@pytest.fixture(scope="module")
def expected(loaded, records) -> np.ndarray:
    """What the SavedModel itself says for the first ROWS examples."""
    return loaded.signatures[EXAMPLES_SIGNATURE](examples=tf.constant(records[:ROWS]))[
        OUTPUT_KEY
    ].numpy()


@pytest.fixture(scope="module")
def rows(records) -> list[dict]:
    """The same examples as a client sends them (NaN / "" where a value is absent)."""
    return codec.rows_from_columns(codec.columns_from_examples(records[:ROWS]))


@pytest.fixture(scope="module")
def warmup_file(records, tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("warmup") / warmup.WARMUP_FILE)
    warmup.write(path, warmup.build(records, MODEL))
    return path


@pytest.fixture(scope="module")
def server(saved_model_dir, warmup_file, tmp_path_factory):
    base = tmp_path_factory.mktemp("serving") / MODEL
    push.push(str(saved_model_dir), str(base), warmup_file)
    with DevServer(
        MODEL,
        str(base),
        rest_port=0,
        grpc_port=0,
        num_versions=2,
        poll_seconds=0.2,
        max_body_bytes=LIMIT,
    ) as running:
        yield running


@pytest.fixture(scope="module")
def rest(server):
    with RestClient(f"http://127.0.0.1:{server.rest_port}", MODEL, retries=0) as client:
        yield client


@pytest.fixture(scope="module")
def grpc_client(server):
    with GrpcClient(f"127.0.0.1:{server.grpc_port}", MODEL, retries=0) as client:
        yield client


def _post(server, path: str, body) -> tuple[int, dict]:
    """POSTs bytes (or a JSON-able object) and returns the status and decoded JSON answer."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = requests.post(f"http://127.0.0.1:{server.rest_port}{path}", data=data, timeout=30)
    return response.status_code, response.json()


def _get(server, path: str) -> tuple[int, dict]:
    response = requests.get(f"http://127.0.0.1:{server.rest_port}{path}", timeout=30)
    return response.status_code, response.json()


def _b64(data: bytes) -> dict:
    return {"b64": base64.b64encode(data).decode()}


def _classify_example(row: dict) -> dict:
    """A row as a REST classify example: absent values left out, floats as JSON decimals."""
    return {k: v for k, v in row.items() if not codec.is_missing(F.BY_NAME[k], v)}


PREDICT = f"/v1/models/{MODEL}:predict"
CLASSIFY = f"/v1/models/{MODEL}:classify"


# --- Clients against the dev server ------------------------------------------------------------


def test_rest_predict_rows_and_columns_match_the_saved_model(rest, rows, expected):
    np.testing.assert_allclose(rest.predict(rows), expected, atol=1e-5)
    np.testing.assert_allclose(rest.predict(rows, columnar=True), expected, atol=1e-5)


def test_grpc_predict_matches_the_saved_model(grpc_client, rows, expected):
    np.testing.assert_allclose(grpc_client.predict(rows), expected, atol=1e-5)


def test_classify_over_both_protocols(rest, grpc_client, rows, expected):
    for client in (rest, grpc_client):
        results = client.classify(rows)
        assert [set(r) for r in results] == [set(F.LABEL_CLASSES)] * ROWS
        np.testing.assert_allclose([r["delayed"] for r in results], expected, atol=1e-5)


def test_optional_features_may_be_left_out(rest, grpc_client, rows):
    sparse = [{k: v for k, v in row.items() if not F.BY_NAME[k].optional} for row in rows[:3]]
    with_markers = [
        dict(row, **{f.name: codec.missing_value(f) for f in F.FEATURES if f.optional})
        for row in rows[:3]
    ]
    expected = rest.predict(with_markers)
    np.testing.assert_allclose(rest.predict(sparse), expected, atol=1e-6)
    np.testing.assert_allclose(grpc_client.predict(sparse), expected, atol=1e-5)


def test_metadata_prints_default_fields_as_tf_serving_does(server, rest, grpc_client):
    (version,) = push.versions(server.manager.base_path)[-1:]
    meta = rest.metadata()
    assert meta["model_spec"] == {"name": MODEL, "signature_name": "", "version": str(version)}
    signature_defs = meta["metadata"]["signature_def"]["signature_def"]
    assert set(grpc_client.metadata().signature_def) == set(signature_defs)
    assert "__saved_model_init_op" in signature_defs
    # A client reading method_name, inputs and defaults of every signature finds them all.
    methods = {key: sig["method_name"] for key, sig in signature_defs.items()}
    assert methods == {
        "__saved_model_init_op": "",
        CLASSIFY_SIGNATURE: CLASSIFY_METHOD,
        "serving_default": PREDICT_METHOD,
        EXAMPLES_SIGNATURE: PREDICT_METHOD,
        TRANSFORM_SIGNATURE: PREDICT_METHOD,
    }
    for sig in signature_defs.values():
        assert sig["defaults"] == {} and isinstance(sig["inputs"], dict)
    assert signature_defs["__saved_model_init_op"]["inputs"] == {}
    distance = signature_defs["serving_default"]["inputs"]["distance"]
    assert distance["dtype"] == "DT_FLOAT"
    assert distance["tensor_shape"] == {"dim": [{"size": "-1", "name": ""}], "unknown_rank": False}
    assert set(signature_defs["serving_default"]["inputs"]) == {f.name for f in F.FEATURES}


def test_status_over_both_protocols(server, rest, grpc_client):
    version = push.versions(server.manager.base_path)[-1]
    assert rest.status() == [
        {
            "version": str(version),
            "state": "AVAILABLE",
            "status": {"error_code": "OK", "error_message": ""},
        }
    ]
    (status,) = grpc_client.status()
    assert status.version == version and status.state == status.AVAILABLE


def test_version_pinning_and_unknown_versions_and_models(server, rest, grpc_client, rows, expected):
    version = push.versions(server.manager.base_path)[-1]
    np.testing.assert_allclose(rest.predict(rows[:2], version=version), expected[:2], atol=1e-5)
    np.testing.assert_allclose(
        grpc_client.predict(rows[:2], version=version), expected[:2], atol=1e-5
    )
    with pytest.raises(ServingError) as rest_error:
        rest.predict(rows[:1], version=1)
    assert rest_error.value.status == 404
    assert "Servable not found for request: Specific(flight_delay, 1)" in rest_error.value.message
    with pytest.raises(ServingError) as grpc_error:
        grpc_client.predict(rows[:1], version=1)
    assert grpc_error.value.status == grpc.StatusCode.NOT_FOUND
    with RestClient(rest.base_url, "no_such_model", retries=0) as other:
        with pytest.raises(ServingError) as no_model:
            other.status()
    assert no_model.value.status == 404
    with GrpcClient(f"127.0.0.1:{server.grpc_port}", "no_such_model", retries=0) as other:
        with pytest.raises(ServingError) as no_model_grpc:
            other.predict(rows[:1])
    assert no_model_grpc.value.status == grpc.StatusCode.NOT_FOUND


# --- REST conformance --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path, status, message",
    [
        ("GET", "/v1/models", 400, "Missing model name in request."),
        (
            "GET",
            f"/v1/models/{MODEL}:predict",
            400,
            f"Malformed request: GET /v1/models/{MODEL}:predict",
        ),
        ("POST", f"/v1/models/{MODEL}/metadata", 400, "Malformed request: POST"),
        ("POST", f"/v1/models/{MODEL}/versions/HELLO:predict", 400, "Malformed request"),
        (
            "POST",
            f"/v1/models/{MODEL}/versions/{2**64}:predict",
            400,
            f"Failed to convert version: {2**64} to numeric.",
        ),
        (
            "GET",
            f"/v1/models/{MODEL}/labels/stable",
            400,
            "Unrecognized servable version label: stable",
        ),
        (
            "POST",
            f"/v1/models/{MODEL}:regress",
            400,
            "Expected regression signature method_name to be tensorflow/serving/regress. Was: "
            "tensorflow/serving/predict",
        ),
    ],
    ids=[
        "no-model-name",
        "get-a-verb",
        "post-metadata",
        "version-not-a-number",
        "version-overflow",
        "unknown-label",
        "regress-on-a-predict-signature",
    ],
)
def test_urls_are_routed_as_tf_serving_routes_them(server, method, path, status, message):
    response = requests.request(
        method,
        f"http://127.0.0.1:{server.rest_port}{path}",
        data=json.dumps({"examples": [{"distance": 1.0}]}),
        timeout=30,
    )
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    assert message in response.json()["error"]


@pytest.mark.parametrize(
    "body, status, message",
    [
        (b"", 400, "JSON Parse error: The document is empty"),
        (b'{"instances": [', 400, "JSON Parse error"),
        (b"[1, 2]", 400, "Is not object"),
        (b'{"rows": []}', 400, "Missing 'inputs' or 'instances' key"),
        (b'{"instances": [], "inputs": {}}', 400, "expecting only one of 'inputs' or 'instances'"),
        (b'{"instances": []}', 400, "No values in 'instances' array"),
        (
            b'{"signature_name": 7, "instances": [1]}',
            400,
            "'signature_name' key must be a string value.",
        ),
        (
            b'{"signature_name": "nope", "instances": [1]}',
            400,
            'Serving signature name: "nope" not found in signature def',
        ),
        (
            "wrong-type",
            400,
            "Failed to process element: 0 key: distance of 'instances' list. "
            'Error: INVALID_ARGUMENT: JSON Value: "far" Type: String is not of '
            "expected type: float",
        ),
        (
            "int-as-float",
            400,
            "key: sched_dep_time of 'instances' list. Error: INVALID_ARGUMENT: "
            "JSON Value: 630.5 Type: Number is not of expected type: int64",
        ),
        ("missing", 400, "must only have keys: "),
        (
            "unknown",
            400,
            "Failed to process element: 0 key: colour of 'instances' list. Error: "
            "INVALID_ARGUMENT: JSON object: does not have named input: colour",
        ),
        ("plain-list", 400, "instances is a plain list, but expecting list of objects"),
        ("nested-row", 400, "input 'distance' has shape [1, 2]; the signature expects [-1]"),
        (b'{"instances": ' + b"[" * 5000 + b"]" * 5000 + b"}", 400, "JSON Parse error"),
        (b'{"instances": ["' + b"x" * 300_000 + b'"]}', 413, f"exceeds the limit of {LIMIT} bytes"),
        (b'{"instances": ["\xff"]}', 400, "JSON Parse error: Invalid encoding"),
    ],
    ids=[
        "empty",
        "malformed-json",
        "not-an-object",
        "no-instances",
        "both-keys",
        "no-rows",
        "signature-not-a-string",
        "unknown-signature",
        "wrong-type",
        "int-as-float",
        "missing-feature",
        "unknown-feature",
        "plain-list",
        "nested-row",
        "deep-nesting",
        "oversized",
        "not-utf8",
    ],
)
def test_bad_predict_requests_get_a_clear_4xx_and_the_server_keeps_serving(
    server, rest, rows, expected, body, status, message
):
    case, row = body, dict(rows[0])
    if body == "wrong-type":
        row["distance"] = "far"
    elif body == "int-as-float":
        row["sched_dep_time"] = 630.5
    elif body == "missing":
        del row["carrier"]
    elif body == "unknown":
        row["colour"] = "red"
    elif body == "nested-row":
        row["distance"] = [1.0, 2.0]
    if body == "plain-list":
        body = {"instances": [1.0, 2.0]}
    elif isinstance(body, str):
        body = {"instances": [row]}
    code, answer = _post(server, PREDICT, body)
    assert code == status
    assert message in answer["error"]
    if case == "missing":
        assert "(missing: ['carrier'])" in answer["error"]
    np.testing.assert_allclose(rest.predict(rows[:1]), expected[:1], atol=1e-5)


@pytest.mark.parametrize(
    "case, message",
    [
        (
            "int-beyond-int64",
            "JSON Value: 9223372036854775808 Type: Number is not of expected type: int64",
        ),
        ("huge-int-for-float", "JSON Parse error: Number too big to be stored in double"),
        (
            "uint64-for-float",
            "Cannot convert JSON value: 18446744073709551615 to float without loss of precision.",
        ),
        ("int-past-python-limit", "JSON Parse error"),
        ("lone-surrogate", "input 'carrier': JSON Value: \"\\ud800\" is not valid UTF-8"),
        ("lone-surrogate-columns", "input 'carrier': JSON Value: \"\\ud800\" is not valid UTF-8"),
        ("classify-out-of-range", "Feature: month has uint64 element. Only int64 is supported."),
        ("classify-surrogate", "feature 'carrier': JSON Value: \"\\ud800\" is not valid UTF-8"),
        ("classify-null", "Feature: carrier has element with unexpected JSON type: Null"),
        ("bad-b64", "Unable to base64 decode input 'carrier'"),
    ],
)
def test_requests_that_used_to_drop_the_connection_get_a_400_naming_the_value(
    server, rest, rows, expected, case, message
):
    row = dict(rows[0])
    path, body = PREDICT, None
    if case == "int-beyond-int64":
        row["sched_dep_time"] = 2**63
    elif case == "huge-int-for-float":
        row["distance"] = 10**400
    elif case == "uint64-for-float":
        row["distance"] = 2**64 - 1
    elif case == "int-past-python-limit":
        body = b'{"instances": [{"distance": ' + b"9" * 5000 + b"}]}"
    elif case == "lone-surrogate":
        row["carrier"] = "\ud800"
    elif case == "lone-surrogate-columns":
        body = {"inputs": {k: [v] for k, v in dict(row, carrier="\ud800").items()}}
    elif case.startswith("classify"):
        path = CLASSIFY
        example = _classify_example(row)
        example.update(
            {
                "classify-out-of-range": {"month": 2**63},
                "classify-surrogate": {"carrier": "\ud800"},
                "classify-null": {"carrier": None},
            }[case]
        )
        body = {"signature_name": CLASSIFY_SIGNATURE, "examples": [example]}
    elif case == "bad-b64":
        row["carrier"] = {"b64": "not base64!"}
    if body is None:
        body = {"instances": [row]}
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()  # ASCII: "\ud800" travels as the escape \ud800
    code, answer = _post(server, path, body)
    assert code == 400
    assert message in answer["error"]
    np.testing.assert_allclose(rest.predict(rows[:1]), expected[:1], atol=1e-5)


def test_classify_errors_carry_the_first_useful_line_of_the_parse_error(server, rows):
    example = _classify_example(rows[0])
    mistyped = dict(example, distance=1000)  # a JSON integer: an int64 feature, as in TF Serving
    code, answer = _post(
        server, CLASSIFY, {"signature_name": CLASSIFY_SIGNATURE, "examples": [mistyped]}
    )
    assert code == 400
    assert "Key: distance" in answer["error"] and "int64" in answer["error"]
    assert "expected type: float" in answer["error"]
    assert "Graph execution error" not in answer["error"] and "\n" not in answer["error"]

    missing = {k: v for k, v in example.items() if k != "carrier"}
    code, answer = _post(
        server, CLASSIFY, {"signature_name": CLASSIFY_SIGNATURE, "examples": [missing]}
    )
    assert code == 400
    assert "carrier" in answer["error"] and "required" in answer["error"]
    assert "Graph execution error" not in answer["error"] and "\n" not in answer["error"]


def test_first_useful_line_skips_tensorflows_wrapping():
    message = (
        "Graph execution error:\n\nDetected at node ParseExample/ParseExampleV2 defined "
        "at (most recent call last):\n<stack traces unavailable>\nKey: distance.  Data "
        "types don't match. Data type: int64 but expected type: float\n\t [[{{node "
        "ParseExample/ParseExampleV2}}]] [Op:__inference_signature_wrapper_123]"
    )
    assert dev_server.first_useful_line(message) == (
        "Key: distance.  Data types don't match. Data type: int64 but expected type: float"
    )
    assert dev_server.first_useful_line("plain message\nmore") == "plain message"


def test_binary_strings_are_accepted_wherever_tf_serving_takes_them(
    server, rows, records, expected
):
    row = dict(rows[0], carrier=_b64(rows[0]["carrier"].encode()))
    code, answer = _post(server, PREDICT, {"instances": [row]})
    assert code == 200
    np.testing.assert_allclose(answer["predictions"], expected[:1], atol=1e-5)
    columns = {k: [v] for k, v in row.items()}
    code, answer = _post(server, PREDICT, {"inputs": columns})
    assert code == 200
    np.testing.assert_allclose(answer["outputs"], expected[:1], atol=1e-5)
    example = dict(_classify_example(rows[0]), carrier=row["carrier"])
    code, answer = _post(
        server, CLASSIFY, {"signature_name": CLASSIFY_SIGNATURE, "examples": [example]}
    )
    assert code == 200
    assert answer["results"][0][1][0] == "delayed"
    np.testing.assert_allclose(answer["results"][0][1][1], expected[0], atol=1e-5)

    # One-input signatures: a plain `instances` list, a bare `inputs` list, or one b64 value.
    serialized = [_b64(r) for r in records[:3]]
    for body, key in (
        ({"instances": serialized}, "predictions"),
        ({"inputs": serialized}, "outputs"),
        ({"inputs": {"examples": serialized}}, "outputs"),
    ):
        code, answer = _post(server, PREDICT, dict(body, signature_name=EXAMPLES_SIGNATURE))
        assert code == 200, answer
        np.testing.assert_allclose(answer[key], expected[:3], atol=1e-5)


def test_transform_features_answers_in_the_multiple_output_format(server, records, loaded):
    direct = loaded.signatures[TRANSFORM_SIGNATURE](examples=tf.constant(records[:2]))
    names = set(direct)
    assert len(names) > 1
    code, answer = _post(
        server,
        PREDICT,
        {"signature_name": TRANSFORM_SIGNATURE, "instances": [_b64(r) for r in records[:2]]},
    )
    assert code == 200, answer
    assert len(answer["predictions"]) == 2
    assert all(set(row) == names for row in answer["predictions"])
    code, answer = _post(
        server,
        PREDICT,
        {"signature_name": TRANSFORM_SIGNATURE, "inputs": [_b64(r) for r in records[:2]]},
    )
    assert code == 200
    assert set(answer["outputs"]) == names
    name = sorted(names)[0]
    value = direct[name].numpy()
    if value.dtype.kind == "f":
        np.testing.assert_allclose(answer["outputs"][name], value, rtol=1e-6)
    else:
        assert np.asarray(answer["outputs"][name]).shape == value.shape


def test_predict_may_call_the_classify_signature(server, grpc_client, records, expected):
    code, answer = _post(
        server,
        PREDICT,
        {"signature_name": CLASSIFY_SIGNATURE, "instances": [_b64(r) for r in records[:2]]},
    )
    assert code == 200, answer
    assert [p["classes"] for p in answer["predictions"]] == [list(F.LABEL_CLASSES)] * 2
    np.testing.assert_allclose(
        [p["scores"][1] for p in answer["predictions"]], expected[:2], atol=1e-5
    )

    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    request.model_spec.signature_name = CLASSIFY_SIGNATURE
    request.inputs["inputs"].CopyFrom(tf.make_tensor_proto(records[:2], dtype=tf.string))
    response = grpc_client.prediction.Predict(request, timeout=30)
    assert response.model_spec.signature_name == CLASSIFY_SIGNATURE
    np.testing.assert_allclose(
        tf.make_ndarray(response.outputs["scores"])[:, 1], expected[:2], atol=1e-5
    )


def test_columnar_inputs_ignore_unknown_keys_and_rows_refuse_them(server, rows, expected):
    columns = {k: [v] for k, v in rows[0].items()}
    code, answer = _post(server, PREDICT, {"inputs": dict(columns, colour=["red"])})
    assert code == 200
    np.testing.assert_allclose(answer["outputs"], expected[:1], atol=1e-5)
    code, answer = _post(
        server, PREDICT, {"inputs": {k: v for k, v in columns.items() if k != "carrier"}}
    )
    assert (code, answer["error"]) == (400, "Missing named input: carrier in 'inputs' object.")
    code, answer = _post(server, PREDICT, {"instances": [dict(rows[0], colour="red")]})
    assert code == 400 and "does not have named input: colour" in answer["error"]


def test_predict_answers_float32_in_its_shortest_form(server, rows, expected):
    code, answer = _post(server, PREDICT, {"instances": rows[:3]})
    assert code == 200
    assert answer["predictions"] == [float(str(np.float32(p))) for p in expected[:3]]


def test_an_unexpected_exception_gets_a_json_500_not_a_dropped_connection(
    server, rest, grpc_client, rows, expected, monkeypatch
):
    def boom(*args, **kwargs):
        raise RuntimeError("boom in the handler")

    monkeypatch.setattr(dev_server, "predict", boom)
    code, answer = _post(server, PREDICT, {"instances": rows[:1]})
    assert (code, answer) == (500, {"error": "Internal error: RuntimeError: boom in the handler"})
    with pytest.raises(ServingError) as error:
        grpc_client.predict(rows[:1])
    assert error.value.status == grpc.StatusCode.INTERNAL
    assert "boom in the handler" in error.value.message
    monkeypatch.undo()
    np.testing.assert_allclose(rest.predict(rows[:1]), expected[:1], atol=1e-5)


def test_chunked_request_bodies_are_read_and_limited(server, rows, expected):
    def post_chunked(payload: bytes) -> tuple[int, dict]:
        connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=30)
        try:
            pieces = (payload[i : i + 1000] for i in range(0, len(payload), 1000))
            connection.request(
                "POST",
                PREDICT,
                body=pieces,
                encode_chunked=True,
                headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
            )
            response = connection.getresponse()
            return response.status, json.loads(response.read())
        finally:
            connection.close()

    status, answer = post_chunked(json.dumps({"instances": rows[:3]}).encode())
    assert status == 200
    np.testing.assert_allclose(answer["predictions"], expected[:3], atol=1e-5)
    status, answer = post_chunked(b'{"instances": ["' + b"x" * (LIMIT + 10) + b'"]}')
    assert status == 413 and f"limit of {LIMIT} bytes" in answer["error"]


# --- gRPC --------------------------------------------------------------------------------------


def test_bad_grpc_requests_get_invalid_argument_and_name_the_input(
    server, grpc_client, rows, expected
):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(
        grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    )
    protos = codec.tensor_protos(codec.columns_from_rows(rows[:1]))
    wrong = predict_pb2.PredictRequest()
    wrong.model_spec.name = MODEL
    for key, proto in protos.items():
        wrong.inputs[key].CopyFrom(proto)
    wrong.inputs["distance"].CopyFrom(tf.make_tensor_proto(["far"]))
    with pytest.raises(grpc.RpcError) as error:
        stub.Predict(wrong, timeout=10)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Expects arg[distance] to be float but string is provided" in error.value.details()

    del wrong.inputs["distance"]
    with pytest.raises(grpc.RpcError) as error:
        stub.Predict(wrong, timeout=10)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "input size does not match signature: 28!=29" in error.value.details()
    assert "Missing but required: {distance}." in error.value.details()
    np.testing.assert_allclose(grpc_client.predict(rows[:1]), expected[:1], atol=1e-5)


# --- The bad-input matrix: missing, extra, mistyped, non-finite, huge, unicode, empty, size ----


@pytest.fixture(scope="module")
def stub(server):
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    yield prediction_service_pb2_grpc.PredictionServiceStub(channel)
    channel.close()


def _grpc(call, request) -> tuple[grpc.StatusCode, Any]:
    """(OK, response) or (the error's code, its details)."""
    try:
        return grpc.StatusCode.OK, call(request, timeout=30)
    except grpc.RpcError as e:
        return e.code(), e.details()


def _grpc_predict(stub, columns: dict, **replaced) -> tuple[grpc.StatusCode, Any]:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    for key, proto in codec.tensor_protos(columns).items():
        request.inputs[key].CopyFrom(proto)
    for key, proto in replaced.items():
        request.inputs[key].CopyFrom(proto)
    return _grpc(stub.Predict, request)


def _grpc_classify(stub, examples: list) -> tuple[grpc.StatusCode, Any]:
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = MODEL
    request.model_spec.signature_name = CLASSIFY_SIGNATURE
    request.input.example_list.examples.extend(examples)
    return _grpc(stub.Classify, request)


def _examples(rows: list[dict], **features) -> list:
    """Rows as tf.Examples (absent values left out); each feature=(kind, values) replaces the
    feature in the last example (kind "float", "int64", "bytes"; None removes it)."""
    examples = codec.examples_from_columns(codec.columns_from_rows(rows))
    last = examples[-1].features.feature
    for name, replacement in features.items():
        last.pop(name, None)
        if replacement is not None:
            kind, values = replacement
            getattr(last[name], f"{kind}_list").value.extend(values)
    return examples


def _json_with(body: dict, literal: str) -> bytes:
    """`body` as JSON with the string "__VALUE__" replaced by a raw JSON literal (NaN, 1e400)."""
    return json.dumps(body).replace('"__VALUE__"', literal).encode()


@pytest.mark.parametrize("form", ["rows", "columns", "classify"])
@pytest.mark.parametrize(
    "feature, literal, shown",
    [
        ("distance", "NaN", "[values:] [nan]"),
        ("distance", "Infinity", "[values:] [inf]"),
        ("distance", "-Infinity", "[values:] [-inf]"),
        ("distance", "1e400", "Number too big to be stored in double: 1e400"),
        ("plane_age", "Infinity", "[values:] [inf]"),
        ("plane_age", "-Infinity", "[values:] [-inf]"),
        ("wind_gust", "-1e400", "Number too big to be stored in double: -1e400"),
    ],
)
def test_non_finite_numbers_get_a_400_naming_the_feature_and_the_value(
    server, rest, rows, expected, form, feature, literal, shown
):
    if form == "rows":
        path, body = PREDICT, {"instances": [rows[0], dict(rows[1], **{feature: "__VALUE__"})]}
    elif form == "columns":
        columns = {k: [rows[0][k], rows[1][k]] for k in rows[0]}
        columns[feature][1] = "__VALUE__"
        path, body = PREDICT, {"inputs": columns}
    else:
        examples = [_classify_example(rows[0]), _classify_example(rows[1])]
        examples[1][feature] = "__VALUE__"
        path, body = CLASSIFY, {"signature_name": CLASSIFY_SIGNATURE, "examples": examples}
    code, answer = _post(server, path, _json_with(body, literal))
    assert code == 400, answer
    assert feature in answer["error"] and shown in answer["error"]
    if "[values:]" in shown:  # refused by the signature's own check, as behind TF Serving
        assert f"Invalid value for feature {feature}: " in answer["error"]
        assert "[rows:] [1]" in answer["error"]
    np.testing.assert_allclose(rest.predict(rows[:2]), expected[:2], atol=1e-5)


@pytest.mark.parametrize(
    "feature, value",
    [
        ("distance", math.nan),
        ("distance", math.inf),
        ("origin_day_flights", -math.inf),
        ("plane_age", math.inf),
        ("precip_12h", -math.inf),
    ],
)
def test_non_finite_numbers_get_invalid_argument_over_grpc_and_clients_refuse_them(
    stub, grpc_client, rest, rows, feature, value
):
    columns = codec.columns_from_rows(rows[:2])
    columns[feature][1] = value
    code, details = _grpc_predict(stub, columns)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert f"Invalid value for feature {feature}: " in details
    assert f"[rows:] [1] [values:] [{value}]" in details
    code, details = _grpc_classify(stub, _examples(rows[:2], **{feature: ("float", [value])}))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert f"Invalid value for feature {feature}: " in details
    assert f"[rows:] [1] [values:] [{value}]" in details
    bad = [rows[0], dict(rows[1], **{feature: value})]
    for send in (grpc_client.predict, grpc_client.classify, rest.predict, rest.classify):
        with pytest.raises(codec.InvalidRow, match=f"row 1: feature '{feature}' is "):
            send(bad)  # refused before sending: a server's refusal would be a ServingError


def test_nan_in_an_optional_feature_means_absent_in_every_request_format(server, stub, rows):
    absent = _classify_example(rows[0])
    absent.pop("plane_age", None)
    request = {"signature_name": CLASSIFY_SIGNATURE, "examples": [absent]}
    code, answer = _post(server, CLASSIFY, request)
    assert code == 200
    (reference,) = answer["results"]
    request["examples"] = [dict(absent, plane_age="__VALUE__")]
    code, answer = _post(server, CLASSIFY, _json_with(request, "NaN"))
    assert (code, answer["results"]) == (200, [reference])  # before: NaN was used as a value
    nan_row = dict(rows[0], plane_age=math.nan)
    code, answer = _post(server, PREDICT, {"instances": [nan_row]})
    assert code == 200
    np.testing.assert_allclose(answer["predictions"], [reference[1][1]], atol=1e-5)
    code, response = _grpc_classify(stub, _examples([nan_row], plane_age=("float", [math.nan])))
    assert code == grpc.StatusCode.OK
    score = response.result.classifications[0].classes[1].score
    assert np.float32(score) == np.float32(reference[1][1])  # the same float32


def test_classify_parse_errors_over_grpc_carry_the_first_useful_line(stub, rows):
    code, details = _grpc_classify(stub, _examples(rows[:1], distance=("int64", [1000])))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details == (
        "Name: <unknown>, Key: distance, Index: 0.  Data types don't match. "
        "Data type: int64 but expected type: float"
    )
    code, details = _grpc_classify(stub, _examples(rows[:1], carrier=None))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details == (
        "Name: <unknown>, Feature: carrier (data type: string) is required but could not be found."
    )


def test_extra_features_are_refused_where_tf_serving_refuses_them(server, stub, rows, expected):
    # Predict: an input the signature lacks is refused (rows, gRPC) or ignored (columns, tested
    # above); Classify: tf.Example parsing reads only the model's features, as behind TF Serving.
    code, answer = _post(
        server,
        CLASSIFY,
        {
            "signature_name": CLASSIFY_SIGNATURE,
            "examples": [dict(_classify_example(rows[0]), colour="red")],
        },
    )
    assert code == 200
    np.testing.assert_allclose(answer["results"][0][1][1], expected[0], atol=1e-5)
    extra = tf.make_tensor_proto(["red"])
    code, details = _grpc_predict(stub, codec.columns_from_rows(rows[:1]), colour=extra)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "Sent extra: {colour}" in details
    code, response = _grpc_classify(stub, _examples(rows[:1], colour=("bytes", [b"red"])))
    assert code == grpc.StatusCode.OK
    assert response.result.classifications[0].classes[1].score == pytest.approx(
        expected[0], abs=1e-5
    )


def test_an_empty_batch_is_refused_in_every_format(server, stub, rows):
    empty = "No values in the request: the inputs have batch size 0"
    for path, body, message in (
        (PREDICT, {"instances": []}, "No values in 'instances' array"),
        (PREDICT, {"inputs": {k: [] for k in rows[0]}}, empty),
        (PREDICT, {"signature_name": EXAMPLES_SIGNATURE, "instances": []}, "No values in"),
        (PREDICT, {"signature_name": EXAMPLES_SIGNATURE, "inputs": []}, empty),
        (CLASSIFY, {"examples": []}, "'examples' value is an empty array"),
    ):
        code, answer = _post(server, path, body)
        assert (code, message in answer["error"]) == (400, True), (body, answer)
    columns = {k: v[:0] for k, v in codec.columns_from_rows(rows[:1]).items()}
    code, details = _grpc_predict(stub, columns)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and empty in details
    code, details = _grpc_classify(stub, [])
    assert (code, details) == (grpc.StatusCode.INVALID_ARGUMENT, "Input is empty.")


@pytest.mark.parametrize(
    "path, body, message",
    [
        (PREDICT, b'{"instances": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", "nested too deeply"),
        (PREDICT, b'{"inputs": ' + b'{"a": ' * 10_000 + b"1" + b"}" * 10_000 + b"}", "deeply"),
        (CLASSIFY, b'{"examples": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", "nested too deeply"),
        ("row-value", 900, "input 'distance': JSON value nested 900 lists deep"),
        ("column", 900, "input 'distance': JSON value nested 900 lists deep"),
        ("row-value", 32, "input 'distance': JSON value nested 32 lists deep"),
    ],
    ids=["10k-lists", "10k-objects", "10k-lists-classify", "900-in-a-row", "900-in-a-column", "32"],
)
def test_deeply_nested_json_gets_a_400(server, rest, rows, expected, path, body, message):
    if path in ("row-value", "column"):
        nested = "[" * body + "1.0" + "]" * body
        if path == "row-value":
            data = {"instances": [dict(rows[0], distance="__VALUE__")]}
        else:
            data = {"inputs": {k: [v] for k, v in rows[0].items()} | {"distance": "__VALUE__"}}
        path, body = PREDICT, _json_with(data, nested)
    code, answer = _post(server, path, body)
    assert code == 400 and message in answer["error"], answer
    np.testing.assert_allclose(rest.predict(rows[:1]), expected[:1], atol=1e-5)


@pytest.mark.parametrize(
    "body, message",
    [
        ({"instances": [{"\ud800": 1.0}]}, 'key: JSON Value: "\\ud800" is not valid UTF-8'),
        (
            {"examples": [{"\ud800": 1.0}]},
            "'examples' element 0: feature name: JSON Value: \"\\ud800\" is not valid UTF-8",
        ),
        (
            {"signature_name": "\ud800", "instances": [1]},
            "'signature_name': JSON Value: \"\\ud800\" is not valid UTF-8",
        ),
    ],
    ids=["row-key", "feature-name", "signature-name"],
)
def test_lone_surrogates_in_names_get_a_400(server, body, message):
    path = CLASSIFY if "examples" in body else PREDICT
    code, answer = _post(server, path, body)  # json.dumps writes "\ud800" as its escape
    assert code == 400 and message in answer["error"], answer


def test_a_columnar_int_beyond_int64_gets_a_400_naming_the_input(server, rows):
    columns = {k: [v] for k, v in dict(rows[0], sched_dep_time=2**63).items()}
    code, answer = _post(server, PREDICT, {"inputs": columns})
    assert code == 400
    assert (
        "JSON Value: 9223372036854775808 Type: Number is not of expected type: int64"
        in (answer["error"])
    )
    assert "(input 'sched_dep_time' of 'inputs')" in answer["error"]


def test_an_oversized_grpc_request_is_refused_stating_the_limit(stub, grpc_client, rows, expected):
    big = tf.make_tensor_proto([b"x" * (LIMIT + 1000)])
    code, details = _grpc_predict(stub, codec.columns_from_rows(rows[:1]), carrier=big)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert f"vs. {LIMIT})" in details
    np.testing.assert_allclose(grpc_client.predict(rows[:1]), expected[:1], atol=1e-5)


def test_an_exception_that_cannot_even_be_printed_still_gets_a_json_answer(
    server, rest, grpc_client, rows, expected, monkeypatch, caplog
):
    class Unprintable(Exception):
        def __str__(self):
            raise RuntimeError("__str__ failed too")

    def boom(*args, **kwargs):
        raise Unprintable()

    monkeypatch.setattr(dev_server, "predict", boom)
    with caplog.at_level(logging.ERROR, logger="serving.dev_server"):
        response = requests.post(
            f"http://127.0.0.1:{server.rest_port}{PREDICT}",
            data=json.dumps({"instances": rows[:1]}),
            timeout=30,
        )
        with pytest.raises(ServingError) as error:
            grpc_client.predict(rows[:1])
    assert response.status_code == 500
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"error": "Internal error: Unprintable"}
    assert (error.value.status, error.value.message) == (grpc.StatusCode.INTERNAL, "Unprintable")
    tracebacks = [r for r in caplog.records if r.exc_info and r.exc_info[0] is Unprintable]
    assert len(tracebacks) == 2  # one per protocol, traceback included
    monkeypatch.undo()
    np.testing.assert_allclose(rest.predict(rows[:1]), expected[:1], atol=1e-5)


# --- Versions ----------------------------------------------------------------------------------


def test_new_version_is_served_without_failing_a_request(
    server, rest, grpc_client, rows, saved_model_dir, warmup_file
):
    before = push.versions(server.manager.base_path)[-1]
    failures, answered = [], [0]
    stop = threading.Event()

    def hammer(client):
        while not stop.is_set():
            try:
                assert len(client.predict(rows[:4])) == 4
                answered[0] += 1
            except Exception as e:  # noqa: BLE001 -- every failure is recorded
                failures.append(repr(e))

    threads = [threading.Thread(target=hammer, args=(c,)) for c in (rest, rest, grpc_client)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    new, _ = push.push(str(saved_model_dir), server.manager.base_path, warmup_file)
    deadline = time.time() + 60
    while rest.metadata()["model_spec"]["version"] != str(new) and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join()
    assert failures == []
    assert answered[0] > 10
    assert new > before
    assert [s["version"] for s in rest.status()] == [str(before), str(new)]
    assert rest.metadata()["model_spec"]["version"] == str(new)


# --- The README's examples ---------------------------------------------------------------------


def _readme_examples() -> list[tuple[str, dict, dict]]:
    """(path, request body, documented response) of each `curl ... -d '{...}'` example in
    serving/README.md followed by a `# {...}` response line."""
    text = README.read_text()
    found = re.findall(
        r"curl -s localhost:8501(/v1/models/\S+) -d '(\{.*?\})'\n# (\{.*?\})\s", text, flags=re.S
    )
    return [(path, json.loads(body), json.loads(answer)) for path, body, answer in found]


def _shape(value):
    """The JSON structure of a value with the numbers left out."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return type(value).__name__ if not isinstance(value, (int, float)) else "number"


def test_the_readmes_example_requests_answer_as_documented(server):
    examples = _readme_examples()
    assert [path for path, _, _ in examples] == [PREDICT, CLASSIFY]
    for path, body, documented in examples:
        code, answer = _post(server, path, body)
        assert code == 200, answer
        assert _shape(answer) == _shape(documented)  # same keys, nesting, labels, lengths
    _, _, predicted = examples[0]
    _, _, classified = examples[1]
    # The documented numbers come from one model; they must at least agree with each other.
    assert classified["results"][0][1] == ["delayed", predicted["predictions"][0]]


# --- Request logging (serving/request_log.py) --------------------------------------------------


@pytest.fixture(scope="module")
def logged_server(server, tmp_path_factory):
    """A second server on the same model directory, logging every answered request."""
    config = request_log.RequestLogConfig(
        log_dir=str(tmp_path_factory.mktemp("request_logs")), sampling_rate=1.0
    )
    with DevServer(
        MODEL,
        server.manager.base_path,
        rest_port=0,
        grpc_port=0,
        poll_seconds=0.2,
        request_log_config=config,
    ) as running:
        yield running


def _new_logs(logger, count: int) -> list:
    """The last `count` PredictionLogs written, after finishing the open file."""
    assert logger.flush()
    logs = request_log.read(request_log.log_files(logger.config.log_dir))
    assert len(logs) == logger.counters()["logged"]
    return logs[-count:]


def _sent_columns(rows: list[dict]) -> dict:
    """What a predict request carries per input (absent values as NaN / b"")."""
    return {
        k: tf.make_ndarray(v) for k, v in codec.tensor_protos(codec.columns_from_rows(rows)).items()
    }


def test_answered_requests_of_every_kind_are_logged_as_sent(logged_server, rows):
    logger = logged_server.request_logger
    started = int(time.time())
    version = push.versions(logged_server.manager.base_path)[-1]
    before = logger.counters()
    sent_rows = rows[:3]
    examples = [_classify_example(row) for row in sent_rows]
    assert _post(logged_server, PREDICT, {"instances": sent_rows})[0] == 200
    columns = {k: v.tolist() for k, v in codec.columns_from_rows(sent_rows).items()}
    assert _post(logged_server, PREDICT, {"inputs": columns})[0] == 200
    body = {"signature_name": CLASSIFY_SIGNATURE, "examples": examples[1:], "context": {}}
    assert _post(logged_server, f"/v1/models/{MODEL}/versions/{version}:classify", body)[0] == 200
    channel = grpc.insecure_channel(f"127.0.0.1:{logged_server.grpc_port}")
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    assert _grpc_predict(stub, codec.columns_from_rows(sent_rows))[0] == grpc.StatusCode.OK
    assert _grpc_classify(stub, _examples(sent_rows))[0] == grpc.StatusCode.OK
    channel.close()
    logs = _new_logs(logger, 5)
    assert logger.counters()["logged"] == before["logged"] + 5

    kinds = [record.WhichOneof("log_type") for record in logs]
    assert kinds == ["predict_log"] * 2 + ["classify_log"] + ["predict_log", "classify_log"]
    for record in logs:
        meta = record.log_metadata
        assert (meta.model_spec.name, meta.model_spec.version.value) == (MODEL, version)
        assert started <= meta.timestamp_secs <= time.time()
        assert meta.sampling_config.sampling_rate == 1.0
    signatures = [record.log_metadata.model_spec.signature_name for record in logs]
    assert signatures == [
        "serving_default",
        "serving_default",
        "classify",
        "serving_default",
        "classify",
    ]

    expected = _sent_columns(sent_rows)
    for record in (logs[0], logs[1], logs[3]):  # REST rows, REST columns, gRPC: one form
        inputs = record.predict_log.request.inputs
        assert set(inputs) == set(expected)
        for name, values in expected.items():
            assert (
                inputs[name].dtype
                == codec.tensor_protos(codec.columns_from_rows(sent_rows))[name].dtype
            ), name
            np.testing.assert_array_equal(tf.make_ndarray(inputs[name]), values, err_msg=name)
        answer = record.predict_log.response
        assert answer.model_spec.version.value == version
        assert tf.make_ndarray(answer.outputs[OUTPUT_KEY]).shape == (3,)
    np.testing.assert_array_equal(
        tf.make_ndarray(logs[0].predict_log.response.outputs[OUTPUT_KEY]),
        tf.make_ndarray(logs[3].predict_log.response.outputs[OUTPUT_KEY]),
    )

    rest_classify = logs[2].classify_log
    assert rest_classify.request.model_spec.version.value == version  # pinned in the URL
    with_context = rest_classify.request.input.example_list_with_context
    assert list(with_context.examples) == _examples(sent_rows[1:])
    assert len(rest_classify.response.result.classifications) == 2
    grpc_classify = logs[4].classify_log
    assert list(grpc_classify.request.input.example_list.examples) == _examples(sent_rows)
    labels = [c.label for c in grpc_classify.response.result.classifications[0].classes]
    assert labels == list(F.LABEL_CLASSES)


def test_rejected_requests_are_counted_not_logged(logged_server, rows):
    logger = logged_server.request_logger
    logger.flush()
    before = logger.counters()
    bad_row = dict(rows[0], distance="far")
    status, _ = _post(logged_server, PREDICT, {"instances": [bad_row]})
    assert status == 400
    assert _post(logged_server, PREDICT, b"{not json")[0] == 400
    assert (
        _post(logged_server, f"/v1/models/{MODEL}/versions/1:predict", {"instances": rows[:1]})[0]
        == 404
    )
    channel = grpc.insecure_channel(f"127.0.0.1:{logged_server.grpc_port}")
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    code, _ = _grpc_classify(stub, _examples(rows[:1], distance=("int64", [1416])))
    channel.close()
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert _get(logged_server, f"/v1/models/{MODEL}/metadata")[0] == 200  # not a logged kind
    logger.flush()
    after = logger.counters()
    assert after["rejected"] - before["rejected"] == 4
    assert after["logged"] == before["logged"]


def test_a_full_log_queue_drops_records_and_no_request_fails(server, rows, tmp_path):
    config = request_log.RequestLogConfig(
        log_dir=str(tmp_path / "logs"), sampling_rate=1.0, queue_size=2
    )
    release = threading.Event()
    with DevServer(
        MODEL, server.manager.base_path, rest_port=0, grpc_port=0, request_log_config=config
    ) as running:
        logger = running.request_logger
        write = logger._write

        def stuck(record):  # a file system that hangs
            release.wait(60)
            write(record)

        logger._write = stuck
        with RestClient(f"http://127.0.0.1:{running.rest_port}", MODEL, retries=0) as rest:
            answers = [rest.predict(rows[i : i + 1]) for i in range(12)]
        with GrpcClient(f"127.0.0.1:{running.grpc_port}", MODEL, retries=0) as client:
            answers += [client.classify(rows[i : i + 1]) for i in range(4)]
        assert all(len(a) == 1 for a in answers)
        counters = logger.counters()
        assert counters["dropped"] >= 16 - 3  # one held by the stuck writer, two queued
        release.set()
    # Stopping the server wrote what was queued and finished the file.
    counters = logger.counters()
    assert counters["logged"] + counters["dropped"] == 16
    assert counters["logged"] == len(request_log.read(request_log.log_files(config.log_dir)))
    assert not [n for n in os.listdir(config.log_dir) if n.endswith(".tmp")]
