"""The logging sidecar: a proxy in front of TF Serving that writes its request logs.

Open-source TF Serving cannot log requests itself: a `logging_config` in its model config
fails at start with "No request-logger-creator provided" (no log collector is registered
outside its tests). This process runs next to it in the same pod, takes the traffic on TF
Serving's usual ports and forwards it unchanged to the model server on localhost:

    REST  every method and path -> --upstream_rest; the upstream's status, headers and body
          are returned as they are (a 400 stays a 400 with TF Serving's own JSON error).
    gRPC  every unary method as raw bytes -> --upstream_grpc; the upstream's answer, or its
          status code and details, are returned as they are.

Answered Predict and Classify calls of the model named by --model_name are sampled into the
same PredictionLog files as the development server writes (serving/request_log.py: sampling
rate, bounded queue, rotation, temp-then-rename), locally or on gs://. Everything the log
needs is built on the logger's writer thread; the request thread only draws the sample and
queues the raw bytes. REST requests are logged as the gRPC requests they correspond to, with
the REST parsers of serving/dev_server.py (TF Serving's util/json_tensor.cc rules), so both
protocols give identical records:

- the input dtypes come from the upstream's `GET /v1/models/<name>/versions/<v>/metadata`,
  fetched once per version and kept;
- the version for LogMetadata (TF Serving's REST answer does not carry it) is the one in the
  URL, or for a label the one `GET .../labels/<label>/metadata` names, or else the newest
  AVAILABLE version of `GET /v1/models/<name>` (what TF Serving's `latest` policy answers
  with), cached for --version_cache_seconds. During a rollout a record may therefore name the
  previous version for that long;
- gRPC responses carry model_spec (name, version, resolved signature) themselves.

Requests the upstream refuses are counted (`rejected`) and not logged, as TF Serving does.
When the upstream cannot be reached, REST answers 503 `{"error": ...}` (504 past
--upstream_timeout_seconds) and gRPC UNAVAILABLE (the channel's own status); the sidecar
reconnects by itself once the model server is back.

    python -m serving.sidecar --upstream_rest=http://127.0.0.1:8511 \\
        --upstream_grpc=127.0.0.1:8510 --host=0.0.0.0 --rest_api_port=8501 --port=8500 \\
        --request_log_sampling_rate=0.05 --request_log_dir=gs://BUCKET/request_logs
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import re
import signal
import threading
import time
from collections import OrderedDict
from concurrent import futures
from typing import Any
from urllib.parse import quote

import grpc
import numpy as np
import urllib3
from google.protobuf import json_format
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    predict_pb2,
)
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from models.constants import MODEL_NAME, PREDICT_SIGNATURE
from serving import dev_server, request_log

log = logging.getLogger("serving.sidecar")

DEFAULT_SIGNATURE = PREDICT_SIGNATURE  # TF Serving's kDefaultServingSignatureDefKey
PREDICT_METHOD = "/tensorflow.serving.PredictionService/Predict"
CLASSIFY_METHOD = "/tensorflow.serving.PredictionService/Classify"
_GRPC_LOGGED = {
    PREDICT_METHOD: (predict_pb2.PredictRequest, predict_pb2.PredictResponse),
    CLASSIFY_METHOD: (
        classification_pb2.ClassificationRequest,
        classification_pb2.ClassificationResponse,
    ),
}
# http_rest_api_util.cc's URL (its keywords are case-insensitive there too).
_INFER_URL = re.compile(
    r"/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
    r":(?P<verb>predict|classify)",
    re.IGNORECASE,
)
# Connection-level headers (RFC 9110 7.6.1) belong to one hop and are not forwarded; Host and
# Content-Length are set again for the upstream request, Content-Length again for the answer.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_NOT_FORWARDED_REQUEST = _HOP_BY_HOP | {"host", "content-length"}
_NOT_FORWARDED_RESPONSE = _HOP_BY_HOP | {"content-length"}
# gRPC metadata the library sets per call; forwarding it would be refused or duplicated.
_GRPC_RESERVED = ("user-agent", "content-type", "te", "host", "grpc-")
_INT64_MAX = (1 << 63) - 1


class _Upstream:
    """What the sidecar asks the upstream's REST API for the logs, cached: the version
    answering a URL without one (briefly) and each version's signatures (for good)."""

    def __init__(
        self, pool: urllib3.PoolManager, base_url: str, ttl: float, timeout: float, keep: int = 8
    ):
        self.pool, self.base_url, self.ttl, self.timeout = pool, base_url, ttl, timeout
        self.keep = keep
        self._lock = threading.Lock()
        self._versions: dict[tuple[str, str | None], tuple[int, float]] = {}
        self._signatures: OrderedDict[tuple[str, int], Any] = OrderedDict()

    def _get(self, path: str) -> dict:
        response = self.pool.request(
            "GET", self.base_url + path, timeout=self.timeout, retries=False
        )
        if response.status != 200:
            text = response.data[:300].decode(errors="replace")
            raise RuntimeError(f"GET {path} answered {response.status}: {text}")
        return json.loads(response.data)

    def peek_version(self, name: str, label: str | None) -> int | None:
        """The cached version answering `name` (or its `label`) if still fresh, else None; no
        network call (this runs on the request thread)."""
        with self._lock:
            cached = self._versions.get((name, label))
        if cached is not None and time.monotonic() - cached[1] < self.ttl:
            return cached[0]
        return None

    def version(self, name: str, label: str | None) -> int:
        """The version TF Serving answers `name` with: for a label, the one its metadata names;
        otherwise the newest AVAILABLE one (the `latest` version policy serves the highest)."""
        cached = self.peek_version(name, label)
        if cached is not None:
            return cached
        model = quote(name, safe="")
        if label is not None:
            answer = self._get(f"/v1/models/{model}/labels/{quote(label, safe='')}/metadata")
            version = int(answer["model_spec"]["version"])
        else:
            statuses = self._get(f"/v1/models/{model}").get("model_version_status", [])
            available = [int(s["version"]) for s in statuses if s.get("state") == "AVAILABLE"]
            if not available:
                raise RuntimeError(f"no AVAILABLE version of {name}: {statuses}")
            version = max(available)
        with self._lock:
            self._versions[(name, label)] = (version, time.monotonic())
        return version

    def signature_defs(self, name: str, version: int) -> Any:
        """The version's SignatureDefs (name -> SignatureDef), from its metadata, fetched once."""
        with self._lock:
            cached = self._signatures.get((name, version))
        if cached is not None:
            return cached
        answer = self._get(f"/v1/models/{quote(name, safe='')}/versions/{version}/metadata")
        signature_map = json_format.ParseDict(
            answer["metadata"]["signature_def"],
            get_model_metadata_pb2.SignatureDefMap(),
            ignore_unknown_fields=True,
        )
        with self._lock:
            self._signatures[(name, version)] = signature_map.signature_def
            while len(self._signatures) > self.keep:
                self._signatures.popitem(last=False)
        return signature_map.signature_def


class _RestExchange:
    """One answered REST :predict / :classify, turned into its PredictionLog parts on the
    writer thread (RequestLogger resolves metadata, then request, then response)."""

    def __init__(self, upstream: _Upstream, url: re.Match, body: bytes, answer: bytes, hint):
        self.upstream, self.body, self.answer, self.hint = upstream, body, answer, hint
        self.name, self.verb = url["name"], url["verb"].lower()
        self.label = url["label"]
        self.url_version = int(url["version"]) if url["version"] else None
        self._parsed: dict | None = None

    def _parse(self) -> dict:
        if self._parsed is not None:
            return self._parsed
        version = self.url_version or self.hint or self.upstream.version(self.name, self.label)
        request = dev_server.parse_json(self.body)
        signature_name = request.get("signature_name", "")
        key = signature_name or DEFAULT_SIGNATURE
        spec = request_log.model_spec(self.name, self.url_version, signature_name)
        if self.label is not None:
            spec.version_label = self.label
        answer_spec = request_log.model_spec(self.name, version, key)
        answer = json.loads(self.answer)
        if self.verb == "predict":
            signature = self.upstream.signature_defs(self.name, version)[key]
            if "instances" in request:
                inputs = dev_server.parse_instances(request["instances"], signature.inputs)
            else:
                inputs = dev_server.parse_columns(request["inputs"], signature.inputs)
            dtypes = {name: signature.inputs[name].dtype for name in inputs}
            proto_request = request_log.predict_request(spec, inputs, dtypes)
            proto_response = request_log.predict_response(
                answer_spec, _predict_outputs(answer, signature.outputs)
            )
        else:
            context, examples = dev_server.parse_examples(request, self.verb)
            proto_request = request_log.classification_request(spec, examples, context)
            classes, scores = _classifications(answer)
            proto_response = request_log.classification_response(answer_spec, classes, scores)
        self._parsed = {
            "request": proto_request,
            "response": proto_response,
            "metadata": request_log.log_metadata(self.name, version, key),
        }
        return self._parsed

    def request(self):
        return self._parse()["request"]

    def response(self):
        return self._parse()["response"]

    def metadata(self):
        return self._parse()["metadata"]


def _predict_outputs(answer: dict, outputs) -> dict[str, np.ndarray]:
    """A REST predict answer -> output name -> array (the reverse of json_tensor.cc
    MakeJsonFromTensors): one output is written bare, several keyed by name, per row
    ("predictions") or per column ("outputs")."""
    dtypes = {name: info.dtype for name, info in outputs.items()}
    rows = "predictions" in answer
    values = answer["predictions"] if rows else answer["outputs"]
    if len(dtypes) == 1:
        ((name, dtype),) = dtypes.items()
        return {name: dev_server.parse_tensor(values, dtype, f"output {name!r}")}
    if rows:
        values = {name: [row[name] for row in values] for name in dtypes}
    return {
        name: dev_server.parse_tensor(value, dtypes[name], f"output {name!r}")
        for name, value in values.items()
    }


def _classifications(answer: dict) -> tuple[np.ndarray, np.ndarray]:
    """{"results": [[[label, score], ...], ...]} -> (labels [batch, n], scores [batch, n])
    (the reverse of MakeJsonFromClassificationResult)."""
    results = answer["results"]
    labels = np.array([[label for label, _ in row] for row in results], dtype=object)
    scores = np.array([[score for _, score in row] for row in results], dtype=np.float32)
    return labels.reshape(scores.shape), scores


class UpstreamError(Exception):
    """An answer other than success from the upstream (counted as rejected, not logged)."""


class _ProxyResponse(Response):
    default_mimetype = None  # the upstream's Content-Type, or none, exactly as it answered


class RestProxy:
    """A WSGI application forwarding every request to the upstream REST API and sampling
    answered :predict / :classify calls of `model_name` into `request_logger`."""

    def __init__(
        self,
        upstream_url: str,
        model_name: str,
        request_logger: request_log.RequestLogger | None = None,
        timeout: float = 60.0,
        version_ttl: float = 2.0,
        pool_size: int = 16,
    ):
        if "://" not in upstream_url:
            upstream_url = "http://" + upstream_url
        self.upstream_url = upstream_url.rstrip("/")
        self.model_name = model_name
        self.request_logger = request_logger
        self.timeout = timeout
        self.pool = urllib3.PoolManager(maxsize=pool_size, block=False)
        self.upstream = _Upstream(self.pool, self.upstream_url, version_ttl, timeout)

    def __call__(self, environ, start_response):
        request = Request(environ)
        try:
            response = self._forward(request, environ)
        except Exception as e:  # every request gets an answer
            log.exception("forwarding %s %s failed", request.method, request.path)
            response = Response(
                json.dumps({"error": f"Internal error: {type(e).__name__}: {e}"}),
                status=500,
                mimetype="application/json",
            )
        return response(environ, start_response)

    def _forward(self, request: Request, environ) -> Response:
        body = request.get_data(cache=False)
        # The path as the client sent it (percent-encoding intact), then the query string.
        target = environ.get("RAW_URI") or environ.get("REQUEST_URI")
        if not target:
            target = quote(environ.get("PATH_INFO", "/"))
            if environ.get("QUERY_STRING"):
                target += "?" + environ["QUERY_STRING"]
        headers = {
            k: v for k, v in request.headers.items() if k.lower() not in _NOT_FORWARDED_REQUEST
        }
        try:
            answer = self.pool.request(
                request.method,
                self.upstream_url + target,
                body=body if body or request.method in ("POST", "PUT", "PATCH") else None,
                headers=headers,
                timeout=self.timeout,
                retries=False,
                redirect=False,
                decode_content=False,
            )
        except urllib3.exceptions.ReadTimeoutError:
            return self._unavailable(
                504, f"upstream model server did not answer within {self.timeout:g} s"
            )
        except urllib3.exceptions.HTTPError as e:
            return self._unavailable(503, f"upstream model server unavailable: {e}")
        url = _INFER_URL.fullmatch(request.path) if request.method == "POST" else None
        if url is not None and self.request_logger is not None and url["name"] == self.model_name:
            self._log(url, body, answer)
        return _ProxyResponse(
            answer.data,
            status=answer.status,
            headers=[
                (k, v)
                for k, v in answer.headers.items()
                if k.lower() not in _NOT_FORWARDED_RESPONSE
            ],
        )

    def _unavailable(self, status: int, message: str) -> Response:
        """TF Serving's JSON error body with the status of UNAVAILABLE (503) or
        DEADLINE_EXCEEDED (504), as http_server.cc maps them."""
        log.warning("%s (%s)", message, self.upstream_url)
        return Response(json.dumps({"error": message}), status=status, mimetype="application/json")

    def _log(self, url: re.Match, body: bytes, answer) -> None:
        """Offers an answered call to the logger (parsing waits for the writer thread)."""
        if answer.status != 200:
            self.request_logger.log(None, UpstreamError(answer.status), None)
            return
        if url["version"] and int(url["version"]) > _INT64_MAX:
            return  # TF Serving refuses it; never answered 200
        hint = self.upstream.peek_version(url["name"], url["label"])
        exchange = _RestExchange(self.upstream, url, body, answer.data, hint)
        self.request_logger.log(exchange.request, exchange.response, exchange.metadata)

    def close(self) -> None:
        self.pool.clear()


class GrpcProxy(grpc.GenericRpcHandler):
    """Forwards every unary-unary method as raw bytes on `channel` (TF Serving's services are
    all unary) and returns the upstream's answer, or its status code and details, unchanged.
    Answered Predict / Classify calls of `model_name` are sampled into `request_logger`."""

    def __init__(
        self,
        channel: grpc.Channel,
        model_name: str,
        request_logger: request_log.RequestLogger | None = None,
        timeout: float | None = 60.0,
    ):
        self.channel = channel
        self.model_name = model_name
        self.request_logger = request_logger
        self.timeout = timeout
        self._calls: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _call(self, method: str):
        with self._lock:
            call = self._calls.get(method)
            if call is None:  # no (de)serializers: bytes in, bytes out
                call = self._calls[method] = self.channel.unary_unary(method)
        return call

    def service(self, handler_call_details):
        method = handler_call_details.method
        return grpc.unary_unary_rpc_method_handler(functools.partial(self._forward, method))

    def _forward(self, method: str, request: bytes, context: grpc.ServicerContext) -> bytes:
        timeouts = [t for t in (context.time_remaining(), self.timeout) if t is not None]
        timeout = min(timeouts) if timeouts else None  # the client's deadline carries over
        metadata = [
            (k, v)
            for k, v in context.invocation_metadata()
            if not k.startswith(":") and not k.lower().startswith(_GRPC_RESERVED)
        ]
        logged = method in _GRPC_LOGGED and self.request_logger is not None
        try:
            answer, call = self._call(method).with_call(request, timeout=timeout, metadata=metadata)
        except grpc.RpcError as e:
            if logged:
                self._rejected(method, request, e)
            _set_trailing(context, e.trailing_metadata())
            context.abort(e.code(), e.details() or "")
        _set_trailing(context, call.trailing_metadata())
        if logged:
            self._log(method, request, answer)
        return answer

    def _log(self, method: str, request: bytes, answer: bytes) -> None:
        """Offers an answered call to the logger. The response (a few hundred bytes) is parsed
        here for its model_spec, which names the model, version and resolved signature; the
        request is parsed on the writer thread."""
        request_type, response_type = _GRPC_LOGGED[method]
        response = response_type.FromString(answer)
        spec = response.model_spec
        if spec.name != self.model_name:
            return
        self.request_logger.log(
            functools.partial(request_type.FromString, request),
            response,
            functools.partial(
                request_log.log_metadata, spec.name, spec.version.value, spec.signature_name
            ),
        )

    def _rejected(self, method: str, request: bytes, error: grpc.RpcError) -> None:
        request_type, _ = _GRPC_LOGGED[method]
        try:
            name = request_type.FromString(request).model_spec.name
        except Exception:  # noqa: BLE001 -- unparseable: the upstream refused it, count it
            name = self.model_name
        if name == self.model_name:
            self.request_logger.log(None, UpstreamError(error.code()), None)


def _set_trailing(context: grpc.ServicerContext, metadata) -> None:
    """Passes the upstream's trailing metadata on (gRPC's own `grpc-*` keys are set again by
    the library)."""
    trailing = [(k, v) for k, v in (metadata or ()) if not k.startswith("grpc-")]
    if trailing:
        context.set_trailing_metadata(trailing)


class _RequestHandler(WSGIRequestHandler):
    """werkzeug's handler, logging to our logger (requests at DEBUG, errors at ERROR)."""

    def log(self, type: str, message: str, *args) -> None:
        (log.error if type == "error" else log.debug)("%s " + message, self.address_string(), *args)


class Sidecar:
    """The REST and gRPC proxies and the request logger; port 0 picks a free port, read back
    from `rest_port` / `grpc_port`. The logger is closed (its last file finished) after both
    front ends have stopped."""

    def __init__(
        self,
        upstream_rest: str,
        upstream_grpc: str,
        model_name: str = MODEL_NAME,
        host: str = "127.0.0.1",
        rest_port: int = 8501,
        grpc_port: int = 8500,
        request_log_config: request_log.RequestLogConfig | None = None,
        upstream_timeout: float = 60.0,
        version_ttl: float = 2.0,
        grpc_workers: int = 16,
    ):
        self.request_logger = (
            request_log.RequestLogger(request_log_config)
            if request_log_config is not None and request_log_config.sampling_rate > 0
            else None
        )
        self.rest_proxy = RestProxy(
            upstream_rest, model_name, self.request_logger, upstream_timeout, version_ttl
        )
        self.http = make_server(
            host, rest_port, self.rest_proxy, threaded=True, request_handler=_RequestHandler
        )
        unlimited = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]
        # Reconnect within a second once the model server is back (gRPC's default backoff
        # grows to two minutes).
        self.channel = grpc.insecure_channel(
            upstream_grpc,
            options=[
                *unlimited,
                ("grpc.initial_reconnect_backoff_ms", 100),
                ("grpc.min_reconnect_backoff_ms", 100),
                ("grpc.max_reconnect_backoff_ms", 1000),
            ],
        )
        self.grpc_proxy = GrpcProxy(self.channel, model_name, self.request_logger, upstream_timeout)
        self.grpc = grpc.server(
            futures.ThreadPoolExecutor(max_workers=grpc_workers),
            handlers=[self.grpc_proxy],
            options=unlimited,
        )
        self.grpc_port = self.grpc.add_insecure_port(f"{host}:{grpc_port}")
        self.rest_port = self.http.server_address[1]
        self._http_thread: threading.Thread | None = None

    def start(self) -> Sidecar:
        if self.request_logger is not None:
            self.request_logger.start()
        self.grpc.start()
        self._http_thread = threading.Thread(
            target=self.http.serve_forever, daemon=True, name="sidecar-rest"
        )
        self._http_thread.start()
        return self

    def stop(self) -> None:
        self.http.shutdown()
        self.http.server_close()
        self.grpc.stop(grace=2).wait()
        self.channel.close()
        self.rest_proxy.close()
        if self.request_logger is not None:
            self.request_logger.close()
            log.info("request log: %s", self.request_logger.counters())

    def __enter__(self) -> Sidecar:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model_name", default=MODEL_NAME, help="the model whose requests are logged"
    )
    parser.add_argument("--rest_api_port", type=int, default=8501)
    parser.add_argument("--port", type=int, default=8500, help="gRPC port")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind; the default accepts local connections only (0.0.0.0 in a pod)",
    )
    parser.add_argument(
        "--upstream_rest",
        default="http://127.0.0.1:8511",
        help="TF Serving's REST address (its --rest_api_port)",
    )
    parser.add_argument(
        "--upstream_grpc", default="127.0.0.1:8510", help="TF Serving's gRPC address (its --port)"
    )
    parser.add_argument(
        "--upstream_timeout_seconds",
        type=float,
        default=60.0,
        help="longest wait for an upstream answer (REST 504 / gRPC DEADLINE_EXCEEDED beyond)",
    )
    parser.add_argument(
        "--version_cache_seconds",
        type=float,
        default=2.0,
        help="how long the version answering unpinned REST requests is cached for the logs",
    )
    dev_server.add_request_log_flags(parser)
    args = parser.parse_args(argv)
    log_config = dev_server.request_log_config(parser, args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    sidecar = Sidecar(
        args.upstream_rest,
        args.upstream_grpc,
        args.model_name,
        args.host,
        args.rest_api_port,
        args.port,
        log_config,
        args.upstream_timeout_seconds,
        args.version_cache_seconds,
    )
    sidecar.start()
    if log_config is not None:
        log.info(
            "logging %g of answered requests to %s",
            args.request_log_sampling_rate,
            args.request_log_dir,
        )
    log.info(
        "REST on %s:%d -> %s, gRPC on %s:%d -> %s",
        args.host,
        sidecar.rest_port,
        args.upstream_rest,
        args.host,
        sidecar.grpc_port,
        args.upstream_grpc,
    )
    stopping = threading.Event()
    # SIGTERM (Kubernetes) stops cleanly, as Ctrl-C does, so the last log file is finished.
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        stopping.wait()
    except KeyboardInterrupt:
        pass
    sidecar.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
