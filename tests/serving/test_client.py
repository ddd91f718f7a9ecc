"""The REST client without a model: retries, errors, connection pooling, encoding, imports."""

from __future__ import annotations

import http.server
import json
import socket
import subprocess
import sys
import threading

import pytest
import requests

from serving.client import RestClient, ServingError
from transforms import codec
from transforms import features as F

pytestmark = pytest.mark.unit

STATUS = {
    "model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    ]
}


class _Answer:
    """What a stub session answers: a status and a JSON body, or an exception to raise."""

    def __init__(self, status: int = 200, body=None, raises: Exception | None = None):
        self.status, self.body, self.raises = status, body, raises


class _StubSession:
    """Stands in for requests.Session: hands out the scripted answers, records the calls."""

    def __init__(self, *answers: _Answer):
        self.answers, self.calls = list(answers), []

    def request(self, method, url, **kwargs):
        self.calls.append((method, url, kwargs))
        answer = self.answers.pop(0)
        if answer.raises is not None:
            raise answer.raises
        response = requests.Response()
        response.status_code = answer.status
        response._content = (
            answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode()
        )
        return response

    def close(self):
        pass


def _client(session, retries: int = 3) -> RestClient:
    return RestClient(
        "http://serving.invalid:8501",
        "flight_delay",
        timeout_seconds=2,
        retries=retries,
        backoff_seconds=0,
        session=session,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _row() -> dict:
    row = {f.name: codec.missing_value(f) for f in F.FEATURES if f.optional}
    row.update(
        carrier="UA",
        origin="LGA",
        dest="IAH",
        distance=1416.0,
        sched_dep_time=545,
        sched_arr_time=827,
        month=11,
        day_of_week=5,
        origin_hour_flights=1.0,
        origin_day_flights=339.0,
        dest_day_flights=22.0,
    )
    return row


def test_importing_the_client_loads_no_tensorflow():
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import serving.client, sys; "
            "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'",
        ],
        check=True,
        timeout=120,
    )


def test_unavailable_is_retried_until_the_server_answers():
    session = _StubSession(
        _Answer(503, {"error": "loading"}), _Answer(503, {"error": "loading"}), _Answer(200, STATUS)
    )
    assert _client(session).status() == STATUS["model_version_status"]
    assert len(session.calls) == 3


def test_a_client_error_is_not_retried_and_carries_the_servers_message():
    session = _StubSession(
        _Answer(400, {"error": "Missing named input: carrier in 'inputs' object."}),
        _Answer(200, STATUS),
    )
    with pytest.raises(ServingError) as error:
        _client(session).status()
    assert error.value.status == 400
    assert error.value.message == "Missing named input: carrier in 'inputs' object."
    assert len(session.calls) == 1


def test_unavailable_gives_up_after_the_retries_with_the_last_message():
    session = _StubSession(*[_Answer(503, {"error": "still loading"})] * 3)
    with pytest.raises(ServingError) as error:
        _client(session, retries=2).status()
    assert (error.value.status, error.value.message) == (503, "still loading")
    assert len(session.calls) == 3


def test_a_refused_connection_counts_as_unavailable_and_is_retried():
    client = RestClient(f"http://127.0.0.1:{_free_port()}", retries=2, backoff_seconds=0)
    calls = []
    request = client.session.request

    def counting(*args, **kwargs):
        calls.append(1)
        return request(*args, **kwargs)

    client.session.request = counting
    with pytest.raises(ServingError) as error:
        client.status()
    assert error.value.status == 503 and "cannot reach" in error.value.message
    assert len(calls) == 3


def test_a_timeout_is_reported_and_not_retried():
    session = _StubSession(_Answer(raises=requests.ReadTimeout("slow")), _Answer(200, STATUS))
    with pytest.raises(ServingError) as error:
        _client(session).status()
    assert error.value.status == 504 and "within 2 s" in error.value.message
    assert len(session.calls) == 1


def test_a_non_json_error_body_is_passed_on_as_text():
    session = _StubSession(_Answer(502, b"<html>bad gateway</html>"))
    with pytest.raises(ServingError) as error:
        _client(session).status()
    assert (error.value.status, error.value.message) == (502, "<html>bad gateway</html>")


def test_predict_sends_rows_with_missing_markers_and_classify_leaves_them_out():
    row = _row()
    sparse = {k: v for k, v in row.items() if not F.BY_NAME[k].optional}
    session = _StubSession(
        _Answer(200, {"predictions": [0.25]}),
        _Answer(200, {"outputs": [0.25]}),
        _Answer(200, {"results": [[["on_time", 0.75], ["delayed", 0.25]]]}),
    )
    client = _client(session)
    assert client.predict([sparse]) == [0.25]
    assert client.predict([sparse], columnar=True) == [0.25]
    assert client.classify([sparse], version=7) == [{"on_time": 0.75, "delayed": 0.25}]
    (method, url, kwargs), columnar, classify = session.calls
    assert (method, url) == ("POST", "http://serving.invalid:8501/v1/models/flight_delay:predict")
    (sent,) = json.loads(kwargs["data"])["instances"]
    assert sent["wind_gust"] != sent["wind_gust"] and sent["plane_type"] == ""  # NaN and ""
    assert set(json.loads(columnar[2]["data"])["inputs"]) == {f.name for f in F.FEATURES}
    assert classify[1].endswith("/versions/7:classify")
    (example,) = json.loads(classify[2]["data"])["examples"]
    assert set(example) == set(sparse)


def test_rows_that_cannot_be_encoded_are_refused_before_sending():
    session = _StubSession()
    row = _row()
    del row["origin"]
    with pytest.raises(codec.InvalidRow, match="row 0: required feature 'origin'"):
        _client(session).predict([row])
    with pytest.raises(codec.InvalidRow, match="row 1: feature 'distance' expects float"):
        _client(session).predict([_row(), dict(_row(), distance="far")])
    assert session.calls == []


@pytest.mark.parametrize(
    "feature, value",
    [
        ("distance", float("nan")),
        ("distance", float("inf")),
        ("distance", "-inf"),
        ("plane_age", float("inf")),
        ("plane_age", float("-inf")),
        ("wind_gust", "1e400"),
    ],
)
def test_non_finite_numbers_are_refused_before_sending_naming_the_feature(feature, value):
    session = _StubSession()
    client = _client(session)
    rows = [_row(), dict(_row(), **{feature: value})]
    for send in (client.predict, lambda r: client.predict(r, columnar=True), client.classify):
        with pytest.raises(codec.InvalidRow, match=f"row 1: feature '{feature}' is "):
            send(rows)
    assert session.calls == []


def test_requests_share_one_kept_alive_connection():
    peers = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as TF Serving

        def do_GET(self):
            peers.append(self.client_address)
            body = json.dumps(STATUS).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with RestClient(f"http://127.0.0.1:{server.server_address[1]}", retries=0) as client:
            for _ in range(3):
                assert client.status() == STATUS["model_version_status"]
    finally:
        server.shutdown()
        server.server_close()
    assert len(peers) == 3 and len(set(peers)) == 1
