"""Clients for TF Serving (and the dev server, which speaks the same API): REST and gRPC.

Both take rows of raw features as a user knows them (absent optional values may be left out)
and return probabilities that the flight is delayed. Failed requests raise ServingError with the
server's own message; only UNAVAILABLE (server starting, restarting or overloaded) is retried.

    python -m serving.client --rest http://localhost:8501 --json '{"carrier": "UA", ...}'
    python -m serving.client --grpc localhost:8500 --csv flights.csv [--classify] [--version N]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
import urllib.error
import urllib.request
from typing import Any, Iterable, Mapping

import grpc
import tensorflow as tf
from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2,
                                     get_model_status_pb2, model_service_pb2_grpc,
                                     predict_pb2, prediction_service_pb2_grpc)

from models.export import CLASSIFY_SIGNATURE
from models.model import MODEL_NAME, OUTPUT_KEY
from serving import codec
from transforms import features as F

DEFAULT_MODEL = MODEL_NAME
Rows = Iterable[Mapping[str, Any]]


class ServingError(RuntimeError):
    """The server refused or failed a request; `status` is the HTTP status or gRPC code."""

    def __init__(self, status: Any, message: str):
        super().__init__(f"{status}: {message}")
        self.status, self.message = status, message


def _retrying(call, retryable, retries: int, backoff_seconds: float):
    for attempt in range(retries + 1):
        try:
            return call()
        except ServingError as e:
            if not retryable(e) or attempt == retries:
                raise
            time.sleep(backoff_seconds * 2 ** attempt)


class RestClient:
    def __init__(self, base_url: str = "http://localhost:8501", model: str = DEFAULT_MODEL,
                 timeout_seconds: float = 10.0, retries: int = 3,
                 backoff_seconds: float = 0.2):
        self.base_url, self.model = base_url.rstrip("/"), model
        self.timeout, self.retries, self.backoff = timeout_seconds, retries, backoff_seconds

    def _url(self, version: int | None, suffix: str = "") -> str:
        path = f"{self.base_url}/v1/models/{self.model}"
        return path + (f"/versions/{version}" if version is not None else "") + suffix

    def _request(self, url: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data,
                                         headers={"Content-Type": "application/json"})

        def call():
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError as e:
                text = e.read().decode(errors="replace")
                try:
                    message = json.loads(text)["error"]
                except (ValueError, KeyError, TypeError):
                    message = text or e.reason
                raise ServingError(e.code, message) from None
            except (urllib.error.URLError, ConnectionError) as e:  # refused, reset: unavailable
                raise ServingError(503, f"cannot reach {url}: "
                                        f"{getattr(e, 'reason', e)}") from None

        return _retrying(call, lambda e: e.status == 503, self.retries, self.backoff)

    def predict(self, rows: Rows, version: int | None = None,
                columnar: bool = False) -> list[float]:
        """Probabilities of delay, one per row (`instances`, or `inputs` if columnar)."""
        instances = codec.rows_from_columns(codec.columns_from_rows(rows))
        body = ({"inputs": {k: [r[k] for r in instances] for k in instances[0]}} if columnar
                else {"instances": instances})
        answer = self._request(self._url(version, ":predict"), body)
        return list(answer["outputs" if columnar else "predictions"])

    def classify(self, rows: Rows, version: int | None = None) -> list[dict[str, float]]:
        """Score per class name, one dict per row (TF Serving's Classify API)."""
        examples = []
        for row in codec.rows_from_columns(codec.columns_from_rows(rows)):
            examples.append({k: v for k, v in row.items()
                             if not codec.is_missing(F.BY_NAME[k], v)})
        answer = self._request(self._url(version, ":classify"),
                               {"signature_name": CLASSIFY_SIGNATURE, "examples": examples})
        return [{label: score for label, score in result} for result in answer["results"]]

    def metadata(self, version: int | None = None) -> dict:
        return self._request(self._url(version, "/metadata"))

    def status(self, version: int | None = None) -> list[dict]:
        return self._request(self._url(version))["model_version_status"]


class GrpcClient:
    def __init__(self, target: str = "localhost:8500", model: str = DEFAULT_MODEL,
                 timeout_seconds: float = 10.0, retries: int = 3,
                 backoff_seconds: float = 0.2):
        self.model, self.timeout = model, timeout_seconds
        self.retries, self.backoff = retries, backoff_seconds
        self.channel = grpc.insecure_channel(target)
        self.prediction = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.models = model_service_pb2_grpc.ModelServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> "GrpcClient":
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
        def call():
            try:
                return method(request, timeout=self.timeout)
            except grpc.RpcError as e:
                raise ServingError(e.code(), e.details()) from None

        return _retrying(call, lambda e: e.status == grpc.StatusCode.UNAVAILABLE,
                         self.retries, self.backoff)

    def predict(self, rows: Rows, version: int | None = None) -> list[float]:
        request = predict_pb2.PredictRequest()
        self._spec(request.model_spec, version)
        for key, proto in codec.tensor_protos(codec.columns_from_rows(rows)).items():
            request.inputs[key].CopyFrom(proto)
        response = self._call(self.prediction.Predict, request)
        # tensor_content or float_val: servers use either encoding, make_ndarray reads both.
        return tf.make_ndarray(response.outputs[OUTPUT_KEY]).astype(float).tolist()

    def classify(self, rows: Rows, version: int | None = None) -> list[dict[str, float]]:
        request = classification_pb2.ClassificationRequest()
        self._spec(request.model_spec, version, CLASSIFY_SIGNATURE)
        request.input.example_list.examples.extend(
            codec.examples_from_columns(codec.columns_from_rows(rows)))
        response = self._call(self.prediction.Classify, request)
        return [{c.label: c.score for c in result.classes}
                for result in response.result.classifications]

    def metadata(self, version: int | None = None) -> get_model_metadata_pb2.SignatureDefMap:
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._spec(request.model_spec, version)
        response = self._call(self.prediction.GetModelMetadata, request)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_map)
        return signature_map

    def status(self, version: int | None = None) -> list:
        request = get_model_status_pb2.GetModelStatusRequest()
        self._spec(request.model_spec, version)
        return list(self._call(self.models.GetModelStatus, request).model_version_status)


def _read_rows(args) -> list[dict]:
    if args.csv:
        with open(args.csv, newline="") as f:
            return list(csv.DictReader(f))
    text = args.json if args.json is not None else open(args.json_file).read()
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
    parser.add_argument("--classify", action="store_true",
                        help="use the Classify API (class scores) instead of Predict")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    args = parser.parse_args(argv)
    client = (RestClient(args.rest, args.model, args.timeout) if args.rest
              else GrpcClient(args.grpc, args.model, args.timeout))
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
