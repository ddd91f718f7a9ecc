"""The serving contract, warmup, atomic pushes, clients and the dev server, on a real export."""

from __future__ import annotations

import json
import pathlib
import shutil
import threading
import time
import urllib.error
import urllib.request

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from models.export import CLASSIFY_METHOD, CLASSIFY_SIGNATURE
from models.model import MODEL_NAME, OUTPUT_KEY
from pipeline import data
from serving import codec, contract, push, warmup
from serving.client import GrpcClient, RestClient, ServingError
from serving.dev_server import DevServer, json_depth
from transforms import features as F

MODEL = MODEL_NAME
ROWS = 20


@pytest.fixture(scope="module")
def records(flight_rows) -> list[bytes]:
    return data.encode_examples(flight_rows)


@pytest.fixture(scope="module")
def expected(saved_model_dir, records) -> np.ndarray:
    """What the SavedModel itself says for the first ROWS examples."""
    loaded = tf.saved_model.load(str(saved_model_dir))
    return loaded.signatures["serving_examples"](
        examples=tf.constant(records[:ROWS]))[OUTPUT_KEY].numpy()


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
    with DevServer(MODEL, str(base), rest_port=0, grpc_port=0, num_versions=2,
                   poll_seconds=0.2, max_body_bytes=200_000) as running:
        yield running


@pytest.fixture(scope="module")
def rest(server) -> RestClient:
    return RestClient(f"http://127.0.0.1:{server.rest_port}", MODEL, retries=0)


@pytest.fixture(scope="module")
def grpc_client(server):
    with GrpcClient(f"127.0.0.1:{server.grpc_port}", MODEL, retries=0) as client:
        yield client


def _post(server, path: str, body: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(f"http://127.0.0.1:{server.rest_port}{path}", data=body,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


# --- The model contract ----------------------------------------------------------------------

def test_export_meets_the_tf_serving_contract(saved_model_dir):
    assert contract.check(str(saved_model_dir)) == []
    signatures = contract.signature_defs(str(saved_model_dir))
    classify = signatures[CLASSIFY_SIGNATURE]
    assert classify.method_name == CLASSIFY_METHOD == "tensorflow/serving/classify"
    assert list(classify.inputs) == ["inputs"]
    assert set(classify.outputs) == {"classes", "scores"}
    assert signatures[contract.PREDICT_SIGNATURE].method_name == contract.PREDICT_METHOD
    assert set(signatures[contract.PREDICT_SIGNATURE].inputs) == {f.name for f in F.FEATURES}


def test_contract_check_names_what_a_model_lacks(saved_model_dir, tmp_path):
    broken = tmp_path / "model"
    shutil.copytree(saved_model_dir, broken)
    saved_model = saved_model_pb2.SavedModel.FromString((broken / "saved_model.pb").read_bytes())
    signatures = saved_model.meta_graphs[0].signature_def
    signatures[CLASSIFY_SIGNATURE].method_name = contract.PREDICT_METHOD
    del signatures["serving_examples"]
    (broken / "saved_model.pb").write_bytes(saved_model.SerializeToString())
    problems = contract.check(str(broken))
    assert any("classify: method 'tensorflow/serving/predict'" in p for p in problems)
    assert any("no signature 'serving_examples'" in p for p in problems)
    assert contract.check(str(tmp_path / "nothing")) == [
        f"{tmp_path / 'nothing' / 'saved_model.pb'}: no saved_model.pb, so this is not a "
        f"SavedModel"]


def test_classify_scores_are_the_predicted_probabilities(saved_model_dir, records, expected):
    loaded = tf.saved_model.load(str(saved_model_dir))
    out = loaded.signatures[CLASSIFY_SIGNATURE](inputs=tf.constant(records[:ROWS]))
    assert out["classes"].numpy()[0].tolist() == [c.encode() for c in F.LABEL_CLASSES]
    np.testing.assert_allclose(out["scores"].numpy()[:, 1], expected, atol=1e-6)
    np.testing.assert_allclose(out["scores"].numpy().sum(axis=1), 1.0, atol=1e-6)


# --- Warmup ----------------------------------------------------------------------------------

def test_warmup_records_parse_as_prediction_logs_from_real_rows_and_replay(
        warmup_file, saved_model_dir, records):
    logs = warmup.read(warmup_file)
    kinds = [log.WhichOneof("log_type") for log in logs]
    assert kinds == (["predict_log"] * len(warmup.PREDICT_BATCHES)
                     + ["classify_log"] * len(warmup.CLASSIFY_BATCHES))
    first = logs[0].predict_log.request
    assert first.model_spec.signature_name == "serving_default"
    assert set(first.inputs) == {f.name for f in F.FEATURES}
    carrier = tf.make_ndarray(first.inputs["carrier"])
    assert carrier.tolist() == [tf.train.Example.FromString(records[0]).features
                                .feature["carrier"].bytes_list.value[0]]
    batches = [len(tf.make_ndarray(log.predict_log.request.inputs["distance"]))
               for log in logs if log.HasField("predict_log")]
    assert batches == list(warmup.PREDICT_BATCHES)
    assert warmup.replay(tf.saved_model.load(str(saved_model_dir)), logs) == []


def test_load_and_query_reports_a_model_without_variables(saved_model_dir, warmup_file,
                                                         tmp_path):
    broken = tmp_path / "model"
    shutil.copytree(saved_model_dir, broken)
    shutil.rmtree(broken / "variables")
    report = warmup.load_and_query(str(broken), warmup_file)
    assert report.ok is False
    assert report.problems[0].startswith("loading failed:")


# --- Atomic push -----------------------------------------------------------------------------

def test_push_makes_complete_growing_versions_and_leaves_no_staging(saved_model_dir,
                                                                    warmup_file, tmp_path):
    base = tmp_path / MODEL
    first, first_dir = push.push(str(saved_model_dir), str(base), warmup_file)
    second, _ = push.push(str(saved_model_dir), str(base))
    assert second > first >= int(time.time()) - 60
    assert sorted(p.name for p in base.iterdir()) == [str(first), str(second)]
    assert push.versions(str(base)) == [first, second]
    pushed = pathlib.Path(first_dir)
    assert (pushed / "assets.extra" / warmup.WARMUP_FILE).read_bytes() == pathlib.Path(
        warmup_file).read_bytes()
    copied = sorted(p.relative_to(pushed) for p in pushed.rglob("*") if p.is_file())
    original = sorted(p.relative_to(saved_model_dir) for p in saved_model_dir.rglob("*")
                      if p.is_file())
    assert copied == sorted(original + [pathlib.Path("assets.extra", warmup.WARMUP_FILE)])


def test_a_failed_push_leaves_nothing_a_server_could_load(saved_model_dir, tmp_path,
                                                          monkeypatch):
    base = tmp_path / MODEL

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(tf.io.gfile, "rename", fail)
    with pytest.raises(OSError, match="disk full"):
        push.push(str(saved_model_dir), str(base))
    assert list(base.iterdir()) == []
    with pytest.raises(FileNotFoundError, match="no saved_model.pb"):
        push.push(str(tmp_path / "missing"), str(base))


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
    with_markers = [dict(row, **{f.name: codec.missing_value(f) for f in F.FEATURES
                                 if f.optional}) for row in rows[:3]]
    expected = rest.predict(with_markers)
    np.testing.assert_allclose(rest.predict(sparse), expected, atol=1e-6)
    np.testing.assert_allclose(grpc_client.predict(sparse), expected, atol=1e-5)


def test_metadata_and_status_over_both_protocols(server, rest, grpc_client):
    (version,) = push.versions(server.manager.base_path)[-1:]
    meta = rest.metadata()
    assert meta["model_spec"] == {"name": MODEL, "signature_name": "", "version": str(version)}
    signature_defs = meta["metadata"]["signature_def"]["signature_def"]
    assert signature_defs[CLASSIFY_SIGNATURE]["method_name"] == CLASSIFY_METHOD
    assert set(signature_defs["serving_default"]["inputs"]) == {f.name for f in F.FEATURES}
    assert set(grpc_client.metadata().signature_def) == set(signature_defs)

    assert rest.status() == [{"version": str(version), "state": "AVAILABLE",
                              "status": {"error_code": "OK", "error_message": ""}}]
    (status,) = grpc_client.status()
    assert status.version == version and status.state == status.AVAILABLE


def test_version_pinning_and_unknown_versions_and_models(server, rest, grpc_client, rows,
                                                         expected):
    version = push.versions(server.manager.base_path)[-1]
    np.testing.assert_allclose(rest.predict(rows[:2], version=version), expected[:2],
                               atol=1e-5)
    np.testing.assert_allclose(grpc_client.predict(rows[:2], version=version), expected[:2],
                               atol=1e-5)
    with pytest.raises(ServingError) as rest_error:
        rest.predict(rows[:1], version=1)
    assert rest_error.value.status == 404
    assert "Servable not found for request: Specific(flight_delay, 1)" in rest_error.value.message
    with pytest.raises(ServingError) as grpc_error:
        grpc_client.predict(rows[:1], version=1)
    assert grpc_error.value.status == grpc.StatusCode.NOT_FOUND
    with pytest.raises(ServingError) as no_model:
        RestClient(rest.base_url, "no_such_model", retries=0).status()
    assert no_model.value.status == 404
    with pytest.raises(ServingError) as no_model_grpc:
        GrpcClient(f"127.0.0.1:{server.grpc_port}", "no_such_model", retries=0).predict(rows[:1])
    assert no_model_grpc.value.status == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("body, status, message", [
    (b'{"instances": [', 400, "JSON Parse error"),
    (b'[1, 2]', 400, "must be a JSON object"),
    (b'{"rows": []}', 400, "Missing 'inputs' or 'instances' key"),
    ("wrong-type", 400, "key: distance. JSON Value: \"far\" Type: String is not of expected "
                        "type: float"),
    ("int-as-float", 400, "key: sched_dep_time. JSON Value: 630.5 Type: Double is not of "
                          "expected type: int64"),
    ("missing", 400, "does not have named input: carrier"),
    ("unknown", 400, "Unknown inputs ['colour']"),
    (b'{"instances": ' + b"[" * 5000 + b"]" * 5000 + b"}", 400, "JSON nesting is deeper"),
    (b'{"instances": ["' + b"x" * 300_000 + b'"]}', 413, "exceeds the limit of 200000 bytes"),
], ids=["malformed-json", "not-an-object", "no-instances", "wrong-type", "int-as-float",
        "missing-feature", "unknown-feature", "deep-nesting", "oversized"])
def test_bad_rest_requests_get_a_clear_4xx_and_the_server_keeps_serving(
        server, rest, rows, expected, body, status, message):
    row = dict(rows[0])
    if body == "wrong-type":
        row["distance"] = "far"
    elif body == "int-as-float":
        row["sched_dep_time"] = 630.5
    elif body == "missing":
        del row["carrier"]
    elif body == "unknown":
        row["colour"] = "red"
    if isinstance(body, str):
        body = json.dumps({"instances": [row]}).encode()
    code, answer = _post(server, f"/v1/models/{MODEL}:predict", body)
    assert code == status
    assert message in answer["error"]
    np.testing.assert_allclose(rest.predict(rows[:1]), expected[:1], atol=1e-5)


def test_bad_grpc_requests_get_invalid_argument_and_name_the_input(server, grpc_client, rows,
                                                                   expected):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(
        grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}"))
    protos = codec.tensor_protos(codec.columns_from_rows(rows[:1]))
    wrong = predict_pb2.PredictRequest()
    wrong.model_spec.name = MODEL
    for key, proto in protos.items():
        wrong.inputs[key].CopyFrom(proto)
    wrong.inputs["distance"].CopyFrom(tf.make_tensor_proto(["far"]))
    with pytest.raises(grpc.RpcError) as error:
        stub.Predict(wrong, timeout=10)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Expects arg[distance] to be float32 but string is provided" in error.value.details()

    del wrong.inputs["distance"]
    with pytest.raises(grpc.RpcError) as error:
        stub.Predict(wrong, timeout=10)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "missing required inputs: ['distance']" in error.value.details()
    np.testing.assert_allclose(grpc_client.predict(rows[:1]), expected[:1], atol=1e-5)


def test_client_refuses_rows_it_cannot_encode_and_names_the_feature(rest, rows):
    row = dict(rows[0])
    del row["origin"]
    with pytest.raises(codec.InvalidRow, match="row 0: required feature 'origin'"):
        rest.predict([row])
    with pytest.raises(codec.InvalidRow, match="row 1: feature 'distance' expects float"):
        rest.predict([rows[0], dict(rows[1], distance="far")])


def test_rest_client_retries_unavailable_only(monkeypatch):
    calls = []

    def unavailable(*args, **kwargs):
        calls.append(1)
        raise urllib.error.URLError(ConnectionRefusedError("refused"))

    monkeypatch.setattr(urllib.request, "urlopen", unavailable)
    with pytest.raises(ServingError) as error:
        RestClient("http://127.0.0.1:1", retries=2, backoff_seconds=0).status()
    assert error.value.status == 503 and len(calls) == 3


def test_new_version_is_served_without_failing_a_request(server, rest, grpc_client, rows,
                                                         saved_model_dir, warmup_file):
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


def test_json_depth_ignores_brackets_inside_strings():
    assert json_depth('{"a": [1, {"b": "[[[["}]}') == 3
    assert json_depth('"\\"[["') == 0
