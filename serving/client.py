"""Clients for TF Serving (and the dev server, which speaks the same API): REST and gRPC.

Both take rows of raw features as a user knows them (absent optional values may be left out)
and return probabilities that the flight is delayed. Failed requests raise ServingError with the
server's own message; only UNAVAILABLE (HTTP 503, a refused or dropped connection while the
server starts or restarts, gRPC UNAVAILABLE) is retried, with exponential backoff. A 4xx is the
request's fault and is never retried.

Importing this module loads no TensorFlow: the REST client needs only `requests` and NumPy;
the gRPC client imports grpc and TF Serving's protos when it is created.

    python -m serving.client --rest http://localhost:8501 --json '{"carrier": "UA", ...}'
    python -m serving.client --grpc localhost:8500 --csv flights.csv [--classify] [--version N]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from models.constants import CLASSIFY_SIGNATURE, MODEL_NAME, OUTPUT_KEY
from transforms import codec
from transforms import features as F

DEFAULT_MODEL = MODEL_NAME
Rows = Iterable[Mapping[str, Any]]
UNAVAILABLE_HTTP = 503


class ServingError(RuntimeError):
    """The server refused or failed a request.

    `status` is the HTTP status (REST; 503 also for a connection that could not be made, 504
    for a timeout) or the grpc.StatusCode (gRPC); `message` is the server's own message."""

    def __init__(self, status: Any, message: str):
        super().__init__(f"{status}: {message}")
        self.status, self.message = status, message


def _retrying(
    call: Callable[[], Any],
    retryable: Callable[[ServingError], bool],
    retries: int,
    backoff_seconds: float,
) -> Any:
    """call() with up to `retries` more attempts for retryable errors, sleeping
    backoff * 2^attempt between them; other errors are raised at once."""
    for attempt in range(retries + 1):
        try:
            return call()
        except ServingError as e:
            if not retryable(e) or attempt == retries:
                raise
            time.sleep(backoff_seconds * 2**attempt)
    raise AssertionError("unreachable")


def _error_message(response: requests.Response) -> str:
    """TF Serving's {"error": "..."} body, or the raw text of any other answer."""
    try:
        return str(response.json()["error"])
    except (ValueError, KeyError, TypeError):
        return response.text[:500] or response.reason or "no message"


class RestClient:
    """TF Serving's REST API over one pooled HTTP session (requests + urllib3).

    Connections are kept alive and reused when the server allows it (TF Serving does; the dev
    server closes each one). Thread-safe for concurrent requests; close() releases the pool."""

    def __init__(
        self,
        base_url: str = "http://localhost:8501",
        model: str = DEFAULT_MODEL,
        timeout_seconds: float = 10.0,
        retries: int = 3,
        backoff_seconds: float = 0.2,
        pool_size: int = 16,
        session: requests.Session | None = None,
    ):
        self.base_url, self.model = base_url.rstrip("/"), model
        self.timeout, self.retries, self.backoff = timeout_seconds, retries, backoff_seconds
        self.session = session if session is not None else requests.Session()
        if session is None:
            # Retries are ours (UNAVAILABLE only), so urllib3's are off.
            adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
            self.session.mount("http://", adapter)
            self.session.mount("https://", adapter)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> RestClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _url(self, version: int | None, suffix: str = "") -> str:
        path = f"{self.base_url}/v1/models/{self.model}"
        return path + (f"/versions/{version}" if version is not None else "") + suffix

    def request(self, url: str, body: Any = None) -> Any:
        """GET (body None) or POST a JSON body; returns the decoded JSON answer.

        Raises ServingError: the HTTP status and the server's message for any non-200 answer
        (retried only if 503), 503 for a refused or dropped connection (retried), 504 when no
        answer comes within the timeout (not retried: the request may still be running)."""
        data = None if body is None else json.dumps(body).encode()
        method = "GET" if body is None else "POST"
        headers = {"Content-Type": "application/json"} if data is not None else {}

        def call() -> Any:
            try:
                response = self.session.request(
                    method, url, data=data, headers=headers, timeout=self.timeout
                )
            except requests.ConnectTimeout:
                raise ServingError(
                    UNAVAILABLE_HTTP, f"cannot reach {url}: no connection within {self.timeout} s"
                ) from None
            except requests.Timeout:
                raise ServingError(504, f"no answer from {url} within {self.timeout} s") from None
            except requests.ConnectionError as e:  # refused, reset: the server is not up
                raise ServingError(UNAVAILABLE_HTTP, f"cannot reach {url}: {e}") from None
            except requests.RequestException as e:
                raise ServingError(502, f"bad answer from {url}: {e}") from None
            if response.status_code != 200:
                raise ServingError(response.status_code, _error_message(response))
            try:
                return response.json()
            except ValueError:
                raise ServingError(
                    502, f"{url} answered 200 with a body that is not JSON: {response.text[:200]!r}"
                ) from None

        return _retrying(call, lambda e: e.status == UNAVAILABLE_HTTP, self.retries, self.backoff)

    def predict(
        self, rows: Rows, version: int | None = None, columnar: bool = False
    ) -> list[float]:
        """Probabilities of delay, one per row (`instances`, or `inputs` if columnar).

        Raises codec.InvalidRow (before sending) for a row that cannot be encoded, and
        ServingError for the server's refusal."""
        instances = codec.rows_from_columns(codec.columns_from_rows(rows))
        body = (
            {"inputs": {k: [r[k] for r in instances] for k in instances[0]}}
            if columnar
            else {"instances": instances}
        )
        answer = self.request(self._url(version, ":predict"), body)
        return list(answer["outputs" if columnar else "predictions"])

    def classify(self, rows: Rows, version: int | None = None) -> list[dict[str, float]]:
        """Score per class name, one dict per row (TF Serving's Classify API); absent
        optional features are left out of the examples."""
        examples = []
        for row in codec.rows_from_columns(codec.columns_from_rows(rows)):
            examples.append({k: v for k, v in row.items() if not codec.is_missing(F.BY_NAME[k], v)})
        answer = self.request(
            self._url(version, ":classify"),
            {"signature_name": CLASSIFY_SIGNATURE, "examples": examples},
        )
        return [{label: score for label, score in result} for result in answer["results"]]

    def metadata(self, version: int | None = None) -> dict:
        return self.request(self._url(version, "/metadata"))

    def status(self, version: int | None = None) -> list[dict]:
        return self.request(self._url(version))["model_version_status"]


class GrpcClient:
    """TF Serving's gRPC API; one channel per client. Imports grpc and TF Serving's protos
    (hence TensorFlow) when created."""

    def __init__(
        self,
        target: str = "localhost:8500",
        model: str = DEFAULT_MODEL,
        timeout_seconds: float = 10.0,
        retries: int = 3,
        backoff_seconds: float = 0.2,
    ):
        import grpc
        from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

        self._grpc = grpc
        self.model, self.timeout = model, timeout_seconds
        self.retries, self.backoff = retries, backoff_seconds
        self.channel = grpc.insecure_channel(target)
        self.prediction = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.models = model_service_pb2_grpc.ModelServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> GrpcClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _spec(self, spec, version: int | None, signature_name: str = "") -> None:
        spec.name = self.model
        if version is not None:
            spec.version.value = version
        if signature_name:
            spec.signature_name = signature_name

    def _call(self, method, request):
        grpc = self._grpc

        def call():
            try:
                return method(request, timeout=self.timeout)
            except grpc.RpcError as e:
                raise ServingError(e.code(), e.details()) from None

        return _retrying(
            call, lambda e: e.status == grpc.StatusCode.UNAVAILABLE, self.retries, self.backoff
        )

    def predict(self, rows: Rows, version: int | None = None) -> list[float]:
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        request = predict_pb2.PredictRequest()
        self._spec(request.model_spec, version)
        for key, proto in codec.tensor_protos(codec.columns_from_rows(rows)).items():
            request.inputs[key].CopyFrom(proto)
        response = self._call(self.prediction.Predict, request)
        # tensor_content or float_val: servers use either encoding, make_ndarray reads both.
        return tf.make_ndarray(response.outputs[OUTPUT_KEY]).astype(float).tolist()

    def classify(self, rows: Rows, version: int | None = None) -> list[dict[str, float]]:
        from tensorflow_serving.apis import classification_pb2

        request = classification_pb2.ClassificationRequest()
        self._spec(request.model_spec, version, CLASSIFY_SIGNATURE)
        request.input.example_list.examples.extend(
            codec.examples_from_columns(codec.columns_from_rows(rows))
        )
        response = self._call(self.prediction.Classify, request)
        return [
            {c.label: c.score for c in result.classes} for result in response.result.classifications
        ]

    def metadata(self, version: int | None = None):
        """The served SignatureDefMap (tensorflow_serving.apis.get_model_metadata_pb2)."""
        from tensorflow_serving.apis import get_model_metadata_pb2

        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._spec(request.model_spec, version)
        response = self._call(self.prediction.GetModelMetadata, request)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_map)
        return signature_map

    def status(self, version: int | None = None) -> list:
        from tensorflow_serving.apis import get_model_status_pb2

        request = get_model_status_pb2.GetModelStatusRequest()
        self._spec(request.model_spec, version)
        return list(self._call(self.models.GetModelStatus, request).model_version_status)


def _read_rows(args) -> list[dict]:
    if args.csv:
        with open(args.csv, newline="") as f:
            return list(csv.DictReader(f))
    if args.json is not None:
        text = args.json
    else:
        with open(args.json_file) as f:
            text = f.read()
    rows = json.loads(text)
    return rows if isinstance(rows, list) else [rows]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Ask a served flight-delay model.")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--rest", metavar="URL", help="e.g. http://localhost:8501")
    where.add_argument("--grpc", metavar="HOST:PORT", help="e.g. localhost:8500")
    rows = parser.add_mutually_exclusive_group(required=True)
    rows.add_argument("--json", help="one row (object) or a list of rows, inline")
    rows.add_argument("--json-file", help="a file holding such JSON")
    rows.add_argument("--csv", help="a CSV file with a header of feature names")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--version", type=int, help="pin a version (default: the newest)")
    parser.add_argument(
        "--classify",
        action="store_true",
        help="use the Classify API (class scores) instead of Predict",
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    args = parser.parse_args(argv)
    client = (
        RestClient(args.rest, args.model, args.timeout)
        if args.rest
        else GrpcClient(args.grpc, args.model, args.timeout)
    )
    try:
        rows_in = _read_rows(args)
        if args.classify:
            for scores in client.classify(rows_in, args.version):
                print(json.dumps(scores))
        else:
            for probability in client.predict(rows_in, args.version):
                print(f"{probability:.4f}")
    except codec.InvalidRow as e:
        print(f"error: bad input: {e}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ServingError as e:
        print(f"error: the server answered {e}", file=sys.stderr)
        return 1
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
