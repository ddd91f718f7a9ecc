"""A development model server speaking TF Serving's REST and gRPC APIs, for laptops and tests.

Production runs TensorFlow Serving (see serving/README.md). This server exists because the
model server binary cannot run here; it implements the part of TF Serving's surface our clients
use, with TF Serving's flag names, URLs, messages, status codes and JSON formats:

    REST  GET  /v1/models/<name>[/versions/<v>]              model status
          GET  /v1/models/<name>[/versions/<v>]/metadata     signature defs
          POST /v1/models/<name>[/versions/<v>]:predict      `instances` rows or `inputs` columns
          POST /v1/models/<name>[/versions/<v>]:classify     `examples`
    gRPC  PredictionService/Predict, Classify, GetModelMetadata; ModelService/GetModelStatus

It serves the newest integer version(s) under --model_base_path and polls for new ones; a new
version is loaded and warmed up before it replaces the old one, and requests already running
finish on the version they started with.

    python -m serving.dev_server --model_name=flight_delay \\
        --model_base_path=output/serving_model/flight_delay --rest_api_port=8501 --port=8500
"""

from __future__ import annotations

import argparse
import dataclasses
import http.server
import json
import logging
import os
import re
import threading
from concurrent import futures
from typing import Any, Mapping

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2,
                                     get_model_status_pb2, model_service_pb2_grpc,
                                     prediction_service_pb2_grpc, status_pb2)

from models.model import MODEL_NAME
from serving import contract, push, warmup

log = logging.getLogger("serving.dev_server")

DEFAULT_SIGNATURE = contract.PREDICT_SIGNATURE
MAX_BODY_BYTES = 4 << 20
MAX_JSON_DEPTH = 16  # instances rows are 3 deep; nothing legitimate comes close

# TF Serving's mapping from canonical status to HTTP status (model_servers/http_rest_api_util).
HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400, grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403, grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409, grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429, grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNIMPLEMENTED: 501, grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}
_NUMPY = {types_pb2.DT_STRING: object, types_pb2.DT_INT64: np.int64,
          types_pb2.DT_FLOAT: np.float32, types_pb2.DT_DOUBLE: np.float64,
          types_pb2.DT_INT32: np.int32}


class ServingError(Exception):
    """A request the server cannot answer; `code` is the canonical (gRPC) status."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def _invalid(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


@dataclasses.dataclass
class Servable:
    """One loaded, warmed-up version."""

    name: str
    version: int
    path: str
    loaded: Any
    signature_defs: dict

    def signature(self, key: str, method: str):
        key = key or DEFAULT_SIGNATURE
        sig = self.signature_defs.get(key)
        if sig is None:
            raise _invalid(f'Serving signature key "{key}" not found.')
        if sig.method_name != method:
            raise _invalid(f"Expected signature method_name to be {method}. Was: "
                           f"{sig.method_name}")
        return sig, self.loaded.signatures[key]


class ModelManager:
    """Keeps the newest `num_versions` versions under `base_path` loaded (TF Serving's
    `latest` version policy) and swaps new ones in atomically."""

    def __init__(self, name: str, base_path: str, num_versions: int = 1,
                 poll_seconds: float = 1.0):
        self.name, self.base_path = name, base_path
        self.num_versions, self.poll_seconds = num_versions, poll_seconds
        self._servables: dict[int, Servable] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _load(self, version: int) -> Servable:
        path = os.path.join(self.base_path, str(version))
        problems = contract.check(path)
        if problems:
            raise ValueError("; ".join(problems))
        loaded = tf.saved_model.load(path)
        warmup_path = os.path.join(path, warmup.WARMUP_DIR, warmup.WARMUP_FILE)
        if tf.io.gfile.exists(warmup_path):  # as TF Serving does, before taking traffic
            problems = warmup.replay(loaded, warmup.read(warmup_path))
            if problems:
                raise ValueError("warmup failed: " + "; ".join(problems))
        return Servable(self.name, version, path, loaded, contract.signature_defs(path))

    def poll(self) -> None:
        """Loads versions that appeared, then retires versions that fell out of the policy."""
        on_disk = push.versions(self.base_path)
        for version in on_disk[-self.num_versions:]:
            if version in self._servables:
                continue
            try:
                servable = self._load(version)
            except Exception as e:  # noqa: BLE001 -- a bad version must not stop the server
                log.error("version %d of %s not loaded: %s", version, self.name, e)
                continue
            with self._lock:
                self._servables[version] = servable
            log.info("serving %s version %d", self.name, version)
        with self._lock:
            loaded = sorted(self._servables)
            # Versions deleted from disk go (a rollback); if none would remain, keep serving.
            candidates = [v for v in loaded if v in on_disk] or loaded
            keep = set(candidates[-self.num_versions:])
            for version in set(loaded) - keep:
                del self._servables[version]  # running requests keep their own reference
                log.info("unloaded %s version %d", self.name, version)

    def start(self) -> "ModelManager":
        self.poll()
        self._thread = threading.Thread(target=self._poll_forever, daemon=True,
                                        name="model-poller")
        self._thread.start()
        return self

    def _poll_forever(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.poll()
            except Exception:  # noqa: BLE001
                log.exception("polling %s failed", self.base_path)

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def get(self, name: str, version: int | None = None) -> Servable:
        with self._lock:
            servables = dict(self._servables) if name == self.name else {}
        if version is None and servables:
            return servables[max(servables)]
        if version in servables:
            return servables[version]
        spec = f"Specific({name}, {version})" if version is not None else f"Latest({name})"
        raise ServingError(grpc.StatusCode.NOT_FOUND,
                           f"Servable not found for request: {spec}")

    def status(self, name: str, version: int | None = None
               ) -> get_model_status_pb2.GetModelStatusResponse:
        if name != self.name:
            raise ServingError(grpc.StatusCode.NOT_FOUND,
                               f"Could not find any versions of model {name}")
        with self._lock:
            versions = sorted(self._servables)
        if version is not None:
            if version not in versions:
                raise ServingError(grpc.StatusCode.NOT_FOUND,
                                   f"Could not find version {version} of model {name}")
            versions = [version]
        response = get_model_status_pb2.GetModelStatusResponse()
        for v in versions:
            response.model_version_status.add(
                version=v, state=get_model_status_pb2.ModelVersionStatus.AVAILABLE,
                status=status_pb2.StatusProto())  # error_code OK, as TF Serving reports it
        return response


# --- Protocol-neutral request handling -------------------------------------------------------

def _check_inputs(sig, inputs: Mapping[str, np.ndarray]) -> int:
    """Validates keys, dtypes and batch sizes against the signature; returns the batch size."""
    missing = sorted(set(sig.inputs) - set(inputs))
    if missing:
        raise _invalid(f"Request is missing required inputs: {missing}")
    extra = sorted(set(inputs) - set(sig.inputs))
    if extra:
        raise _invalid(f"Request has inputs the signature does not take: {extra}; it takes "
                       f"{sorted(sig.inputs)}")
    sizes = set()
    for key, value in inputs.items():
        if value.ndim != 1:
            raise _invalid(f"input {key!r} must be a 1-D batch, got shape {list(value.shape)}")
        sizes.add(len(value))
    if len(sizes) != 1:
        raise _invalid(f"inputs have different batch sizes: {sorted(sizes)}")
    return sizes.pop()


def _call(function, **tensors) -> dict[str, np.ndarray]:
    try:
        return {k: v.numpy() for k, v in function(**tensors).items()}
    except (tf.errors.InvalidArgumentError, TypeError, ValueError) as e:
        raise _invalid(str(e).strip().splitlines()[0]) from None


def predict(manager: ModelManager, name: str, version: int | None, signature_name: str,
            inputs: Mapping[str, np.ndarray]) -> tuple[Servable, str, dict[str, np.ndarray]]:
    servable = manager.get(name, version)
    key = signature_name or DEFAULT_SIGNATURE
    sig, function = servable.signature(key, contract.PREDICT_METHOD)
    _check_inputs(sig, inputs)
    tensors = {}
    for k, value in inputs.items():
        dtype = tf.dtypes.as_dtype(sig.inputs[k].dtype)
        try:
            tensors[k] = tf.constant(value, dtype=dtype)
        except (TypeError, ValueError):
            raise _invalid(f"input {k!r} expects {dtype.name}") from None
    return servable, key, _call(function, **tensors)


def classify(manager: ModelManager, name: str, version: int | None, signature_name: str,
             examples: list[bytes]) -> tuple[Servable, str, np.ndarray, np.ndarray]:
    servable = manager.get(name, version)
    key = signature_name or DEFAULT_SIGNATURE
    _, function = servable.signature(key, contract.CLASSIFY_METHOD)
    if not examples:
        raise _invalid("Input is empty.")
    out = _call(function, inputs=tf.constant(examples))
    return servable, key, out["classes"], out["scores"]


def metadata(manager: ModelManager, name: str, version: int | None
             ) -> tuple[Servable, get_model_metadata_pb2.SignatureDefMap]:
    servable = manager.get(name, version)
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    for key, sig in servable.signature_defs.items():
        signature_map.signature_def[key].CopyFrom(sig)
    return servable, signature_map


# --- REST --------------------------------------------------------------------------------------

_URL = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?"
                  r"(?:(?P<metadata>/metadata)|:(?P<verb>[a-z]+))?/?$")


def json_depth(text: str) -> int:
    """Nesting depth of a JSON document, without parsing it (so depth bombs cost nothing)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _json_type(value: Any) -> str:
    return {str: "String", bool: "Bool", int: "Int", float: "Double", list: "Array",
            dict: "Object", type(None): "Null"}.get(type(value), type(value).__name__)


def _json_values(key: str, values: list, dtype: int, where: str) -> np.ndarray:
    """JSON values of one input -> an array of the signature's dtype, as TF Serving checks."""
    ok = {types_pb2.DT_STRING: lambda v: isinstance(v, str),
          types_pb2.DT_INT64: lambda v: isinstance(v, int) and not isinstance(v, bool),
          types_pb2.DT_INT32: lambda v: isinstance(v, int) and not isinstance(v, bool)
          }.get(dtype, lambda v: isinstance(v, (int, float)) and not isinstance(v, bool))
    for value in values:
        if not ok(value):
            raise _invalid(f"{where} key: {key}. JSON Value: {json.dumps(value)} Type: "
                           f"{_json_type(value)} is not of expected type: "
                           f"{tf.dtypes.as_dtype(dtype).name}")
    if dtype == types_pb2.DT_STRING:
        return np.array([v.encode() for v in values], dtype=object)
    return np.array(values, dtype=_NUMPY.get(dtype, np.float32))


def _rest_predict_inputs(body: dict, sig) -> tuple[dict[str, np.ndarray], bool]:
    """`instances` (row format) or `inputs` (columnar format) -> arrays; and which it was."""
    if ("instances" in body) == ("inputs" in body):
        raise _invalid("Missing 'inputs' or 'instances' key" if "instances" not in body
                       else "Request can have either 'inputs' or 'instances' key, not both")
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list) or not instances:
            raise _invalid("'instances' must be a non-empty JSON array")
        columns: dict[str, list] = {key: [] for key in sig.inputs}
        for index, row in enumerate(instances):
            if not isinstance(row, dict):
                raise _invalid(f"Failed to process element: {index} of 'instances' list. "
                               f"Expected a JSON object with named inputs "
                               f"{sorted(sig.inputs)}, got {_json_type(row)}")
            for key in sig.inputs:
                if key not in row:
                    raise _invalid(f"Failed to process element: {index} key: {key} of "
                                   f"'instances' list. Error: Invalid argument: JSON object: "
                                   f"does not have named input: {key}")
                columns[key].append(row[key])
            extra = sorted(set(row) - set(sig.inputs))
            if extra:
                raise _invalid(f"Failed to process element: {index} of 'instances' list. "
                               f"Unknown inputs {extra}")
        return {key: _json_values(key, values, sig.inputs[key].dtype,
                                  "Failed to process 'instances' list,")
                for key, values in columns.items()}, True
    inputs = body["inputs"]
    if not isinstance(inputs, dict):
        raise _invalid("'inputs' must be a JSON object of named input columns")
    arrays = {}
    for key, values in inputs.items():
        if key not in sig.inputs:
            continue  # reported by _check_inputs with the full list
        if not isinstance(values, list):
            raise _invalid(f"'inputs' key: {key} must be a JSON array (one value per row)")
        arrays[key] = _json_values(key, values, sig.inputs[key].dtype, "'inputs'")
    arrays.update({k: np.array([]) for k in inputs if k not in sig.inputs})
    return arrays, False


def _json_example(row: Any, index: int):
    """A REST classify example -> tf.Example, with TF Serving's typing of JSON values."""
    if not isinstance(row, dict):
        raise _invalid(f"'examples' element {index} must be a JSON object")
    example = tf.train.Example()
    for key, value in row.items():
        values = value if isinstance(value, list) else [value]
        feature = example.features.feature[key]
        if all(isinstance(v, str) for v in values):
            feature.bytes_list.value.extend(v.encode() for v in values)
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            feature.int64_list.value.extend(values)
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            feature.float_list.value.extend(values)
        else:
            raise _invalid(f"'examples' element {index} key: {key}: values must all be "
                           f"strings or all numbers, got {json.dumps(value)}")
    return example


class _RestHandler(http.server.BaseHTTPRequestHandler):
    server_version = "flight-delay-dev-server"
    protocol_version = "HTTP/1.1"
    manager: ModelManager
    max_body_bytes: int
    max_json_depth: int

    def log_message(self, format, *args):  # noqa: A002 -- the base class's signature
        log.debug("%s %s", self.address_string(), format % args)

    def _send(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _route(self):
        match = _URL.match(self.path.split("?", 1)[0])
        if not match:
            raise _invalid(f"Malformed request: {self.command} {self.path}")
        version = int(match["version"]) if match["version"] else None
        return match["name"], version, bool(match["metadata"]), match["verb"]

    def do_GET(self):  # noqa: N802 -- http.server's naming
        try:
            name, version, is_metadata, verb = self._route()
            if verb:
                raise _invalid(f"Malformed request: GET {self.path} (use POST)")
            if is_metadata:
                servable, signature_map = metadata(self.manager, name, version)
                self._send(200, {
                    "model_spec": {"name": name, "signature_name": "",
                                   "version": str(servable.version)},
                    "metadata": {"signature_def": json_format.MessageToDict(
                        signature_map, preserving_proto_field_name=True)}})
            else:
                self._send(200, json_format.MessageToDict(
                    self.manager.status(name, version), preserving_proto_field_name=True,
                    including_default_value_fields=True))
        except ServingError as e:
            self._send(HTTP_STATUS.get(e.code, 500), {"error": e.message})

    def _read_body(self) -> dict:
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                               "Content-Length header is required") from None
        if length > self.max_body_bytes:
            raise ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                               f"Request body of {length} bytes exceeds the limit of "
                               f"{self.max_body_bytes} bytes")
        text = self.rfile.read(length).decode("utf-8", errors="replace")
        if json_depth(text) > self.max_json_depth:
            raise _invalid(f"JSON nesting is deeper than {self.max_json_depth} levels")
        try:
            body = json.loads(text)
        except json.JSONDecodeError as e:
            raise _invalid(f"JSON Parse error: {e.msg} at offset {e.pos}") from None
        if not isinstance(body, dict):
            raise _invalid("The request body must be a JSON object")
        return body

    def do_POST(self):  # noqa: N802
        try:
            try:
                body = self._read_body()
            except ServingError as e:
                if e.code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                    self.close_connection = True  # the body was not read: drop the connection
                    self._send(413, {"error": e.message})
                    return
                raise
            name, version, is_metadata, verb = self._route()
            signature_name = body.get("signature_name", "")
            if not isinstance(signature_name, str):
                raise _invalid("'signature_name' must be a string")
            if verb == "predict" and not is_metadata:
                servable = self.manager.get(name, version)
                sig, _ = servable.signature(signature_name, contract.PREDICT_METHOD)
                inputs, rows = _rest_predict_inputs(body, sig)
                _, _, outputs = predict(self.manager, name, servable.version, signature_name,
                                        inputs)
                self._send(200, _rest_predict_response(outputs, rows))
            elif verb == "classify" and not is_metadata:
                examples = body.get("examples")
                if not isinstance(examples, list):
                    raise _invalid("'examples' must be a JSON array of objects")
                context = body.get("context", {})
                merged = [{**context, **row} if isinstance(row, dict) else row
                          for row in examples]
                serialized = [_json_example(row, i).SerializeToString()
                              for i, row in enumerate(merged)]
                _, _, classes, scores = classify(self.manager, name, version, signature_name,
                                                 serialized)
                self._send(200, {"results": [
                    [[c.decode(), float(s)] for c, s in zip(row_classes, row_scores)]
                    for row_classes, row_scores in zip(classes, scores)]})
            else:
                raise _invalid(f"Malformed request: POST {self.path}")
        except ServingError as e:
            self._send(HTTP_STATUS.get(e.code, 500), {"error": e.message})


def _jsonable(values: np.ndarray) -> Any:
    if values.dtype == object:
        return [v.decode() if isinstance(v, bytes) else v for v in values.tolist()]
    return values.tolist()


def _rest_predict_response(outputs: dict[str, np.ndarray], rows: bool) -> dict:
    if len(outputs) == 1:  # TF Serving drops the output name when there is only one
        (values,) = outputs.values()
        return {"predictions" if rows else "outputs": _jsonable(values)}
    if rows:
        size = len(next(iter(outputs.values())))
        return {"predictions": [{k: _jsonable(v[i:i + 1])[0] for k, v in outputs.items()}
                                for i in range(size)]}
    return {"outputs": {k: _jsonable(v) for k, v in outputs.items()}}


# --- gRPC --------------------------------------------------------------------------------------

def _version(model_spec) -> int | None:
    return model_spec.version.value if model_spec.HasField("version") else None


def _abort_on_error(method):
    def wrapper(self, request, context):
        try:
            return method(self, request, context)
        except ServingError as e:
            context.abort(e.code, e.message)
    return wrapper


class _PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, manager: ModelManager):
        self.manager = manager

    @staticmethod
    def _spec(response_spec, servable: Servable, signature_name: str) -> None:
        response_spec.name = servable.name
        response_spec.version.value = servable.version
        response_spec.signature_name = signature_name

    @_abort_on_error
    def Predict(self, request, context):  # noqa: N802 -- gRPC method names
        from tensorflow_serving.apis import predict_pb2

        spec = request.model_spec
        inputs = {}
        for key, proto in request.inputs.items():
            try:
                inputs[key] = tf.make_ndarray(proto)
            except (TypeError, ValueError) as e:
                raise _invalid(f"input {key!r}: {e}") from None
        servable = self.manager.get(spec.name, _version(spec))
        sig, _ = servable.signature(spec.signature_name, contract.PREDICT_METHOD)
        for key, proto in request.inputs.items():
            if key in sig.inputs and proto.dtype != sig.inputs[key].dtype:
                raise _invalid(f"Expects arg[{key}] to be "
                               f"{tf.dtypes.as_dtype(sig.inputs[key].dtype).name} but "
                               f"{tf.dtypes.as_dtype(proto.dtype).name} is provided")
        servable, key, outputs = predict(self.manager, spec.name, servable.version,
                                         spec.signature_name, inputs)
        response = predict_pb2.PredictResponse()
        self._spec(response.model_spec, servable, key)
        wanted = set(request.output_filter) or set(outputs)
        for name, value in outputs.items():
            if name in wanted:
                response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
        return response

    @_abort_on_error
    def Classify(self, request, context):  # noqa: N802
        spec = request.model_spec
        kind = request.input.WhichOneof("kind")
        if kind == "example_list":
            examples = list(request.input.example_list.examples)
        elif kind == "example_list_with_context":
            with_context = request.input.example_list_with_context
            examples = []
            for example in with_context.examples:
                merged = tf.train.Example()
                merged.CopyFrom(with_context.context)
                merged.MergeFrom(example)
                examples.append(merged)
        else:
            raise _invalid("Input is empty.")
        servable, key, classes, scores = classify(
            self.manager, spec.name, _version(spec), spec.signature_name,
            [e.SerializeToString() for e in examples])
        response = classification_pb2.ClassificationResponse()
        self._spec(response.model_spec, servable, key)
        for row_classes, row_scores in zip(classes, scores):
            result = response.result.classifications.add()
            for label, score in zip(row_classes, row_scores):
                result.classes.add(label=label.decode(), score=float(score))
        return response

    @_abort_on_error
    def GetModelMetadata(self, request, context):  # noqa: N802
        if list(request.metadata_field) != ["signature_def"]:
            raise _invalid(f"Metadata field(s) {list(request.metadata_field)} not supported; "
                           f"use ['signature_def']")
        spec = request.model_spec
        servable, signature_map = metadata(self.manager, spec.name, _version(spec))
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        self._spec(response.model_spec, servable, "")
        response.metadata["signature_def"].Pack(signature_map)
        return response


class _ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, manager: ModelManager):
        self.manager = manager

    @_abort_on_error
    def GetModelStatus(self, request, context):  # noqa: N802
        spec = request.model_spec
        return self.manager.status(spec.name, _version(spec))


# --- Running it --------------------------------------------------------------------------------

class DevServer:
    """The model manager plus REST and gRPC front ends; `port=0` picks a free port."""

    def __init__(self, model_name: str, model_base_path: str, host: str = "127.0.0.1",
                 rest_port: int = 8501, grpc_port: int = 8500, num_versions: int = 1,
                 poll_seconds: float = 1.0, max_body_bytes: int = MAX_BODY_BYTES,
                 max_json_depth: int = MAX_JSON_DEPTH, grpc_workers: int = 8):
        self.manager = ModelManager(model_name, model_base_path, num_versions, poll_seconds)
        handler = type("RestHandler", (_RestHandler,), dict(
            manager=self.manager, max_body_bytes=max_body_bytes,
            max_json_depth=max_json_depth))
        self.http = http.server.ThreadingHTTPServer((host, rest_port), handler)
        self.http.daemon_threads = True
        self.grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=grpc_workers),
                                options=[("grpc.max_receive_message_length", max_body_bytes)])
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            _PredictionService(self.manager), self.grpc)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(
            _ModelService(self.manager), self.grpc)
        self.grpc_port = self.grpc.add_insecure_port(f"{host}:{grpc_port}")
        self.rest_port = self.http.server_address[1]
        self.host = host
        self._http_thread: threading.Thread | None = None

    def start(self) -> "DevServer":
        self.manager.start()
        self.grpc.start()
        self._http_thread = threading.Thread(target=self.http.serve_forever, daemon=True,
                                             name="rest")
        self._http_thread.start()
        return self

    def stop(self) -> None:
        self.http.shutdown()
        self.http.server_close()
        self.grpc.stop(grace=2).wait()
        self.manager.stop()

    def __enter__(self) -> "DevServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model_name", default=MODEL_NAME)
    parser.add_argument("--model_base_path", required=True,
                        help="folder of integer versions, as Pusher writes it")
    parser.add_argument("--rest_api_port", type=int, default=8501)
    parser.add_argument("--port", type=int, default=8500, help="gRPC port")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind; the default accepts local connections only")
    parser.add_argument("--num_versions", type=int, default=1,
                        help="how many of the newest versions to serve (TF Serving's "
                             "'latest' policy)")
    parser.add_argument("--file_system_poll_wait_seconds", type=float, default=1.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if not push.versions(args.model_base_path):
        log.warning("no integer version under %s yet; waiting for one", args.model_base_path)
    server = DevServer(args.model_name, args.model_base_path, args.host, args.rest_api_port,
                       args.port, args.num_versions, args.file_system_poll_wait_seconds)
    server.start()
    log.info("REST on http://%s:%d, gRPC on %s:%d (development server; production runs "
             "TensorFlow Serving)", args.host, server.rest_port, args.host, server.grpc_port)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
