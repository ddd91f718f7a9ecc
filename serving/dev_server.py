"""A development model server speaking TF Serving's REST and gRPC APIs, for laptops and tests.

Production runs TensorFlow Serving (see serving/README.md). This server exists because the
model server binary cannot run here; it implements the part of TF Serving 2.16's surface our
clients use, with TF Serving's flag names, URLs, messages, status codes and JSON formats:

    REST  GET  /v1/models/<name>[/versions/<v>]              model status
          GET  /v1/models/<name>[/versions/<v>]/metadata     signature defs
          POST /v1/models/<name>[/versions/<v>]:predict      `instances` rows or `inputs` columns
          POST /v1/models/<name>[/versions/<v>]:classify     `examples` (+ optional `context`)
    gRPC  PredictionService/Predict, Classify, GetModelMetadata; ModelService/GetModelStatus

The REST rules mirror tensorflow_serving/model_servers/http_rest_api_handler.cc,
http_rest_api_util.cc and util/json_tensor.cc; serving/README.md lists where we differ on
purpose. The REST half runs on werkzeug (routing, body limits, chunked bodies, threads); the
gRPC half on grpcio with TF Serving's generated servicers.

It serves the newest integer version(s) under --model_base_path and polls for new ones; a new
version is loaded and warmed up before it replaces the old one, and requests already running
finish on the version they started with. With --request_log_sampling_rate > 0 and
--request_log_dir, answered Predict and Classify requests of both protocols are sampled into
TF Serving's PredictionLog files, off the request path (serving/request_log.py).

    python -m serving.dev_server --model_name=flight_delay \\
        --model_base_path=output/serving_model/flight_delay --rest_api_port=8501 --port=8500
"""

from __future__ import annotations

import argparse
import base64
import binascii
import dataclasses
import functools
import json
import logging
import math
import os
import re
import signal
import threading
from collections.abc import Mapping
from concurrent import futures
from typing import Any

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    prediction_service_pb2_grpc,
    status_pb2,
)
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.routing import BaseConverter, Map, Rule
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from models.constants import CLASSIFY_METHOD, MODEL_NAME, PREDICT_SIGNATURE
from serving import contract, push, request_log, warmup

log = logging.getLogger("serving.dev_server")

DEFAULT_SIGNATURE = PREDICT_SIGNATURE
REGRESS_METHOD = "tensorflow/serving/regress"
MAX_BODY_BYTES = 4 << 20

# TF Serving's mapping from canonical status to HTTP status (model_servers/http_server.cc).
HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}
_STATUS_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}
_NUMPY = {
    types_pb2.DT_STRING: object,
    types_pb2.DT_INT64: np.int64,
    types_pb2.DT_FLOAT: np.float32,
    types_pb2.DT_DOUBLE: np.float64,
    types_pb2.DT_INT32: np.int32,
    types_pb2.DT_BOOL: np.bool_,
}


class ServingError(Exception):
    """A request the server cannot answer; `code` is the canonical (gRPC) status."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def _invalid(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def _describe(error: BaseException) -> str:
    """ "<type>: <message>" of an unexpected exception, or just its type if it cannot be
    printed (an answer must not fail on the error it reports)."""
    try:
        return f"{type(error).__name__}: {error}"
    except Exception:  # noqa: BLE001 -- a broken __str__
        return type(error).__name__


def _dtype_name(dtype: int) -> str:
    """TensorFlow's DataTypeString: DT_FLOAT -> "float", DT_INT64 -> "int64"."""
    return types_pb2.DataType.Name(dtype)[3:].lower()


_TF_NOISE = re.compile(
    r"^(Graph execution error:|Detected at node|<stack traces unavailable>"
    r"|\s|File \")"
)
_TF_SUFFIX = re.compile(r"\s*(\[\[\{\{node [^}]*\}\}\]\]|\[Op:[^\]]*\]).*$")


def first_useful_line(message: str) -> str:
    """The line of a TensorFlow error message that says what went wrong.

    Eager function calls wrap the kernel's message in "Graph execution error:", a "Detected at
    node ... defined at" traceback and " [[{{node ...}}]]" / "[Op:...]" suffixes; TF Serving
    answers with the kernel's own status message, e.g. "Name: <unknown>, Key: distance, Index:
    0.  Data types don't match. Data type: int64 but expected type: float". Falls back to the
    first non-empty line.
    """
    lines = [line for line in message.splitlines() if line.strip()]
    for line in lines:
        if not _TF_NOISE.match(line):
            cleaned = _TF_SUFFIX.sub("", line).strip()
            if cleaned:
                return cleaned
    return lines[0].strip() if lines else message


@dataclasses.dataclass
class Servable:
    """One loaded, warmed-up version."""

    name: str
    version: int
    path: str
    loaded: Any
    signature_defs: dict

    def signature(self, key: str, method: str | None = None) -> Signature:
        """The SignatureDef and concrete function of `key` ("" = serving_default).

        Predict may call any signature (TF Serving's predict_util.cc checks no method name);
        Classify and Regress need their method (servables/tensorflow/classifier.cc,
        regressor.cc). Raises ServingError(INVALID_ARGUMENT) naming the key and the keys
        there are."""
        key = key or DEFAULT_SIGNATURE
        sig = self.signature_defs.get(key)
        if sig is None or key not in self.loaded.signatures:
            known = sorted(self.loaded.signatures.keys())
            if method is None:
                raise _invalid(
                    f'Serving signature name: "{key}" not found in signature def '
                    f"(signatures: {known})"
                )
            raise _invalid(f"No signature was found with the name: {key} (signatures: {known})")
        if method is not None and sig.method_name != method:
            kind = "classification" if method == CLASSIFY_METHOD else "regression"
            raise _invalid(
                f"Expected {kind} signature method_name to be {method}. Was: {sig.method_name}"
            )
        return Signature(key, sig, self.loaded.signatures[key])


@dataclasses.dataclass(frozen=True)
class Signature:
    """A signature resolved once per request: its key, SignatureDef and concrete function."""

    key: str
    definition: Any
    function: Any


class ModelManager:
    """Keeps the newest `num_versions` versions under `base_path` loaded (TF Serving's
    `latest` version policy) and swaps new ones in atomically."""

    def __init__(self, name: str, base_path: str, num_versions: int = 1, poll_seconds: float = 1.0):
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
        for version in on_disk[-self.num_versions :]:
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
            keep = set(candidates[-self.num_versions :])
            for version in set(loaded) - keep:
                del self._servables[version]  # running requests keep their own reference
                log.info("unloaded %s version %d", self.name, version)

    def start(self) -> ModelManager:
        self.poll()
        self._thread = threading.Thread(target=self._poll_forever, daemon=True, name="model-poller")
        self._thread.start()
        return self

    def _poll_forever(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.poll()
            except Exception:
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
        raise ServingError(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: {spec}")

    def status(
        self, name: str, version: int | None = None
    ) -> get_model_status_pb2.GetModelStatusResponse:
        if name != self.name:
            raise ServingError(
                grpc.StatusCode.NOT_FOUND, f"Could not find any versions of model {name}"
            )
        with self._lock:
            versions = sorted(self._servables)
        if version is not None:
            if version not in versions:
                raise ServingError(
                    grpc.StatusCode.NOT_FOUND, f"Could not find version {version} of model {name}"
                )
            versions = [version]
        response = get_model_status_pb2.GetModelStatusResponse()
        for v in versions:
            response.model_version_status.add(
                version=v,
                state=get_model_status_pb2.ModelVersionStatus.AVAILABLE,
                status=status_pb2.StatusProto(),
            )  # error_code OK, as TF Serving reports it
        return response


# --- Protocol-neutral request handling -------------------------------------------------------


def _check_inputs(sig, inputs: Mapping[str, np.ndarray]) -> int:
    """Validates keys, ranks and batch sizes against the signature; returns the batch size.

    Key rules and messages: predict_util.cc (VerifyRequestInputsSize and the alias check).
    Rank and batch-size checks are ours: TF Serving lets TensorFlow fail on them later."""
    sent, wanted = set(inputs), set(sig.inputs)
    if len(sent) != len(wanted):
        raise _invalid(
            f"input size does not match signature: {len(sent)}!={len(wanted)} "
            f"len({{{','.join(sorted(sent))}}}) != len({{{','.join(sorted(wanted))}}})"
            f". Sent extra: {{{','.join(sorted(sent - wanted))}}}. Missing but "
            f"required: {{{','.join(sorted(wanted - sent))}}}."
        )
    for key in sorted(sent - wanted):
        raise _invalid(
            f"input tensor alias not found in signature: {key}. Inputs expected to "
            f"be in the set {{{','.join(sorted(wanted))}}}."
        )
    sizes = set()
    for key, value in inputs.items():
        shape = sig.inputs[key].tensor_shape
        expected = [d.size for d in shape.dim]
        if not shape.unknown_rank and value.ndim != len(expected):
            raise _invalid(
                f"input {key!r} has shape {list(value.shape)}; the signature expects "
                f"{expected} (-1 = any size)"
            )
        if value.ndim:
            sizes.add(value.shape[0])
    if len(sizes) > 1:
        raise _invalid(f"inputs have different batch sizes: {sorted(sizes)}")
    return sizes.pop() if sizes else 1


def _run(function, tensors: dict) -> dict[str, np.ndarray]:
    """Calls a signature; TensorFlow's errors become ServingErrors with their first useful line
    and their own canonical code (TF Serving returns the session's status unchanged)."""
    try:
        return {k: v.numpy() for k, v in function(**tensors).items()}
    except tf.errors.OpError as e:
        code = _STATUS_BY_NUMBER.get(e.error_code, grpc.StatusCode.INTERNAL)
        raise ServingError(code, first_useful_line(e.message)) from None
    except (TypeError, ValueError) as e:
        raise _invalid(first_useful_line(str(e))) from None


def predict(signature: Signature, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Runs a signature (any method: Predict may call them all) on named arrays -> named
    output arrays.

    `inputs` must match the signature's input keys and ranks, and hold at least one row (an
    empty batch is refused in every format, as TF Serving refuses `"instances": []`); each
    array is converted to the input's dtype. Raises ServingError: INVALID_ARGUMENT for bad
    inputs, TensorFlow's own code for errors raised while running (INVALID_ARGUMENT for a
    value the signature's checks refuse, e.g. a non-finite number, see models/export.py)."""
    sig = signature.definition
    if _check_inputs(sig, inputs) == 0:
        raise _invalid(
            "No values in the request: the inputs have batch size 0; send at least one row "
            "(an empty batch is refused in every format, as 'instances': [] is)"
        )
    tensors = {}
    for name, value in inputs.items():
        dtype = tf.dtypes.as_dtype(sig.inputs[name].dtype)
        try:
            tensors[name] = tf.constant(value, dtype=dtype)
        except (TypeError, ValueError, OverflowError):
            raise _invalid(
                f"input {name!r} expects {_dtype_name(sig.inputs[name].dtype)}"
            ) from None
    return _run(signature.function, tensors)


def run_examples(signature: Signature, examples: list[bytes]) -> dict[str, np.ndarray]:
    """Runs a classify (or regress) signature on serialized tf.Examples -> named outputs
    (`classes` DT_STRING and `scores` DT_FLOAT, [batch, classes], for classify).

    The signature has one DT_STRING input (classifier.cc's rule, checked by serving/contract)."""
    if not examples:
        raise _invalid("Input is empty.")
    (input_key,) = signature.definition.inputs
    return _run(signature.function, {input_key: tf.constant(examples, dtype=tf.string)})


def metadata(servable: Servable) -> get_model_metadata_pb2.SignatureDefMap:
    """Every SignatureDef of the servable, `__saved_model_init_op` included, as TF Serving's
    GetModelMetadata returns them."""
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    for key, sig in servable.signature_defs.items():
        signature_map.signature_def[key].CopyFrom(sig)
    return signature_map


# --- REST JSON <-> tensors (tensorflow_serving/util/json_tensor.cc) ----------------------------

_INT32 = (-(1 << 31), (1 << 31) - 1)
_INT64 = (-(1 << 63), (1 << 63) - 1)
_UINT64_MAX = (1 << 64) - 1
_FLOAT_DIGITS = {
    types_pb2.DT_FLOAT: (24, float(np.finfo(np.float32).max), "float"),
    types_pb2.DT_DOUBLE: (53, float(np.finfo(np.float64).max), "double"),
}
_STATUS_PREFIX = "INVALID_ARGUMENT: "  # how absl::Status::ToString() prefixes a nested error


def _json_type(value: Any) -> str:
    """rapidjson's type names, as json_tensor.cc's JsonTypeString prints them."""
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "True" if value else "False"
    return {dict: "Object", list: "Array", str: "String"}.get(type(value), "Number")


def _json_text(value: Any, limit: int = 200) -> str:
    """A JSON value for an error message (ASCII-escaped, so lone surrogates print)."""
    if isinstance(value, _TooBig):
        return value.text
    try:
        text = json.dumps(value)
    except (ValueError, TypeError):  # an integer beyond Python's digit limit
        text = repr(type(value))
    return text if len(text) <= limit else text[:limit] + "..."


def _type_error(value: Any, dtype: int) -> ServingError:
    return _invalid(
        f"JSON Value: {_json_text(value)} Type: {_json_type(value)} is not of "
        f"expected type: {_dtype_name(dtype)}"
    )


class _TooBig(float):
    """A JSON decimal literal beyond a double (e.g. 1e400). Python reads it as +/-inf; rapidjson
    (TF Serving) refuses it as "Number too big to be stored in double". It keeps its text until
    it is converted for an input or feature, so the error can name both (see _number)."""

    text: str

    def __new__(cls, text: str) -> _TooBig:
        value = super().__new__(cls, text)
        value.text = text
        return value


def _parse_float(text: str) -> float:
    """json.loads' parse_float: decimals as floats, those that overflow a double as _TooBig.
    The literals NaN, Infinity and -Infinity stay floats (TF Serving parses them too and
    passes them to the model, whose checks refuse them where invalid)."""
    value = float(text)
    return _TooBig(text) if math.isinf(value) else value


def _number(value: Any) -> tuple[str, float | int]:
    """How rapidjson classifies a JSON number: ("int64" | "uint64" | "double", value).

    Integer literals beyond uint64 become doubles; beyond a double (integers, and decimal
    literals such as 1e400), a parse error quoting the literal."""
    if isinstance(value, _TooBig):
        raise _invalid(f"JSON Parse error: Number too big to be stored in double: {value.text}")
    if isinstance(value, float):
        return "double", value
    if _INT64[0] <= value <= _INT64[1]:
        return "int64", value
    if 0 <= value <= _UINT64_MAX:
        return "uint64", value
    try:
        return "double", float(value)
    except OverflowError:
        raise _invalid(
            f"JSON Parse error: Number too big to be stored in double: {_json_text(value, 40)}"
        ) from None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _lossless(value: Any, dtype: int) -> float:
    """A JSON number as float/double, refused if it would lose precision (IsLosslessDecimal:
    integers up to 2^24-1 for float, 2^53-1 for double; decimals within the type's range)."""
    digits, largest, name = _FLOAT_DIGITS[dtype]
    kind, number = _number(value)
    if kind == "double" and not math.isfinite(number):
        return number
    if (kind != "double" and abs(number) > (1 << digits) - 1) or abs(number) > largest:
        raise _invalid(
            f"Cannot convert JSON value: {_json_text(value, 40)} to {name} without "
            f"loss of precision."
        )
    return float(number)


def _utf8(text: str, where: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as e:  # "\ud800" is legal JSON but no UTF-8 string
        raise _invalid(
            f"{where}: JSON Value: {_json_text(text, 60)} is not valid UTF-8 (lone "
            f"surrogate at character {e.start}); strings must be Unicode text, "
            f'binary data goes in {{"b64": ...}}'
        ) from None


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _b64(value: Any, where: str) -> bytes:
    """{"b64": "<base64>"} -> bytes (JsonDecodeBase64Object)."""
    if not _is_b64(value):
        raise _invalid(f"JSON Value: {_json_text(value)} not formatted correctly for base64 data")
    text = value["b64"]
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise _invalid(f"Unable to base64 decode {where}: {_json_text(value, 60)}") from None


def _leaf(value: Any, dtype: int, where: str) -> Any:
    """One JSON scalar -> a value of `dtype` (json_tensor.cc AddValueToTensor)."""
    if dtype == types_pb2.DT_STRING:
        if isinstance(value, dict):
            return _b64(value, where)
        if not isinstance(value, str):
            raise _type_error(value, dtype)
        return _utf8(value, where)
    if dtype in _FLOAT_DIGITS:
        if not _is_number(value):
            raise _type_error(value, dtype)
        return _lossless(value, dtype)
    if dtype == types_pb2.DT_BOOL:
        if not isinstance(value, bool):
            raise _type_error(value, dtype)
        return value
    ranges = {types_pb2.DT_INT64: _INT64, types_pb2.DT_INT32: _INT32}
    if dtype in ranges:
        low, high = ranges[dtype]
        if not _is_number(value) or not isinstance(value, int) or not low <= value <= high:
            raise _type_error(value, dtype)
        return value
    raise ServingError(
        grpc.StatusCode.UNIMPLEMENTED,
        f"Conversion of JSON Value: {_json_text(value)} to type: {_dtype_name(dtype)}",
    )


def _dense_shape(value: Any) -> list[int]:
    """The shape a nested JSON list implies, read along its first elements."""
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def _fill(value: Any, level: int, shape: list[int], dtype: int, out: list, where: str) -> None:
    """Appends the leaves of `value` to `out`, checking it is dense (FillTensorProto)."""
    if not isinstance(value, list):
        if level != len(shape):
            raise _invalid(
                f"JSON Value: {_json_text(value)} found at incorrect level: "
                f"{level + 1} in the JSON DOM. Expected at level: {len(shape)}"
            )
        out.append(_leaf(value, dtype, where))
        return
    if level >= len(shape):
        raise _invalid(f"Encountered list at unexpected level: {level} expected < {len(shape)}")
    if len(value) != shape[level]:
        raise _invalid(
            f"Encountered list at unexpected size: {len(value)} at level: {level} "
            f"expected size: {shape[level]}"
        )
    for item in value:
        _fill(item, level + 1, shape, dtype, out, where)


_MAX_NESTING = 31
"""Deepest JSON list nesting of one value: NumPy arrays have at most 32 dimensions, one of
them the batch (TF Serving allows 254, then our rank-1 signatures refuse the tensor anyway)."""


def _tensor_values(value: Any, dtype: int, where: str) -> tuple[list, list[int]]:
    """A JSON value -> (its leaves converted to `dtype`, its dense shape). Raises ServingError
    (INVALID_ARGUMENT) for ragged or over-deep lists and for leaves of the wrong type."""
    shape, leaves = _dense_shape(value), []
    if len(shape) > _MAX_NESTING:
        raise _invalid(
            f"{where}: JSON value nested {len(shape)} lists deep; at most {_MAX_NESTING} "
            f"levels are supported"
        )
    _fill(value, 0, shape, dtype, leaves, where)
    return leaves, shape


def _array(leaves: list, shape: list[int], dtype: int) -> np.ndarray:
    array = np.empty(len(leaves), dtype=_NUMPY.get(dtype, object))
    array[:] = leaves
    return array.reshape(shape)


def parse_tensor(value: Any, dtype: int, where: str) -> np.ndarray:
    """One JSON value (nested lists of scalars, {"b64": ...} for DT_STRING) -> an array of
    `dtype` (types_pb2.DataType) with the dense shape the lists imply (json_tensor.cc
    FillTensorProto). Raises ServingError (INVALID_ARGUMENT) naming `where`."""
    leaves, shape = _tensor_values(value, dtype, where)
    return _array(leaves, shape, dtype)


def parse_instances(instances: Any, sig_inputs) -> dict[str, np.ndarray]:
    """The row format: {"instances": [...]} -> one array per input, batch first.

    Rules and messages: json_tensor.cc FillTensorMapFromInstancesList. Rows are objects with
    exactly the signature's input keys, or (one-input signatures only) plain values, which may
    be {"b64": ...} for DT_STRING inputs. Unknown keys in a row are refused, as there."""
    if not isinstance(instances, list):
        raise _invalid("Excepting 'instances' to be an list/array")
    if not instances:
        raise _invalid("No values in 'instances' array")

    def is_object(value):
        return isinstance(value, dict) and not _is_b64(value)

    objects = is_object(instances[0])
    if not objects and len(sig_inputs) > 1:
        raise _invalid(
            "instances is a plain list, but expecting list of objects as multiple "
            f"input tensors required as per tensorinfo_map: {sorted(sig_inputs)}"
        )
    leaves: dict[str, list] = {}
    shapes: dict[str, list[int]] = {}

    def add(name: str, value: Any) -> None:
        _utf8(name, "key")  # a lone surrogate: the signature's (protobuf) map cannot look it up
        if name not in sig_inputs:
            raise _invalid(f"JSON object: does not have named input: {name}")
        values, shape = _tensor_values(value, sig_inputs[name].dtype, f"input {name!r}")
        if name in shapes and shape != shapes[name]:
            raise _invalid(f"Expecting shape {shapes[name]} but got: {shape}")
        shapes[name] = shape
        leaves.setdefault(name, []).extend(values)

    for index, element in enumerate(instances):
        if objects:
            if not is_object(element):
                raise _invalid(
                    f"Expecting object but got {_json_type(element)} at item {index} of input list"
                )
            for name, value in element.items():
                try:
                    add(name, value)
                except ServingError as e:
                    raise ServingError(
                        e.code,
                        f"Failed to process element: {index} key: "
                        f"{name} of 'instances' list. Error: "
                        f"{_STATUS_PREFIX}{e.message}",
                    ) from None
            if set(element) != set(sig_inputs):
                missing = sorted(set(sig_inputs) - set(element))
                raise _invalid(
                    f"Failed to process element: {index} of 'instances' list. JSON "
                    f"object: {_json_text(element)} must only have keys: "
                    f"{','.join(sorted(sig_inputs))} (missing: {missing})"
                )
        else:
            if is_object(element):
                raise _invalid(f"Expecting value/list but got object at item {index} of input list")
            (name,) = sig_inputs
            try:
                add(name, element)
            except ServingError as e:
                raise ServingError(
                    e.code,
                    f"Failed to process element: {index} of 'instances' "
                    f"list (input {name!r}). Error: {_STATUS_PREFIX}"
                    f"{e.message}",
                ) from None
    return {
        name: _array(values, [len(instances)] + shapes[name], sig_inputs[name].dtype)
        for name, values in leaves.items()
    }


def parse_columns(inputs: Any, sig_inputs) -> dict[str, np.ndarray]:
    """The columnar format: {"inputs": ...} -> one array per input.

    json_tensor.cc FillTensorMapFromInputsMap: an object of named inputs (keys the signature
    does not take are ignored, as TF Serving ignores them), or, for one-input signatures, a
    bare value/list (or {"b64": ...}). Errors name the input (TF Serving's do not)."""
    if not isinstance(inputs, dict) or _is_b64(inputs):
        if len(sig_inputs) > 1:
            raise _invalid(
                "inputs is a plain value/list, but expecting an object as multiple "
                f"input tensors required as per tensorinfo_map: {sorted(sig_inputs)}"
            )
        named = {next(iter(sig_inputs)): inputs}
    else:
        named = {}
        for name in sig_inputs:
            if name not in inputs:
                raise _invalid(f"Missing named input: {name} in 'inputs' object.")
            named[name] = inputs[name]
    arrays = {}
    for name, value in named.items():
        dtype = sig_inputs[name].dtype
        try:
            values, shape = _tensor_values(value, dtype, f"input {name!r}")
        except ServingError as e:
            raise ServingError(e.code, f"{e.message} (input {name!r} of 'inputs')") from None
        arrays[name] = _array(values, shape, dtype)
    return arrays


def _feature(values: list, name: str, example) -> None:
    """JSON values of one classify feature -> a tf.train.Feature (AddValueToFeature): strings
    and {"b64"} -> bytes_list, JSON decimals -> float_list, JSON integers and booleans ->
    int64_list. A JSON integer in a float feature is therefore an int64 feature, which the
    model's tf.Example parser refuses, as it does behind TF Serving."""
    kinds: dict[str, list] = {}

    def add(kind: str, value: Any) -> None:
        if kinds and kind not in kinds:
            raise _invalid(
                f"Unexpected element type in feature: {name} expecting type: {next(iter(kinds))}"
            )
        kinds.setdefault(kind, []).append(value)

    for value in values:
        where = f"feature {name!r}"
        if (
            value is None
            or isinstance(value, list)
            or (isinstance(value, dict) and not _is_b64(value))
        ):
            raise _invalid(
                f"Feature: {name} has element with unexpected JSON type: {_json_type(value)}"
            )
        if isinstance(value, bool):
            add("int64", int(value))
        elif isinstance(value, dict):
            add("bytes", _b64(value, where))
        elif isinstance(value, str):
            add("bytes", _utf8(value, where))
        else:
            try:
                kind, number = _number(value)
                if kind == "double":
                    number = _lossless(value, types_pb2.DT_FLOAT)
            except ServingError as e:  # TF Serving's messages here name no feature; ours do
                raise ServingError(e.code, f"Feature: {name}: {e.message}") from None
            if kind == "double":
                add("float", number)
            elif kind == "uint64":
                raise _invalid(f"Feature: {name} has uint64 element. Only int64 is supported.")
            else:
                add("int64", number)
    feature = example.features.feature[name]
    for kind, items in kinds.items():
        getattr(feature, f"{kind}_list").value.extend(items)


def _example(row: Any, what: str):
    """A JSON object -> tf.train.Example (MakeExampleFromJsonObject)."""
    if not isinstance(row, dict):
        raise _invalid(f"{what}: Example must be JSON object but got JSON {_json_type(row)}")
    example = tf.train.Example()
    for name, value in row.items():
        _utf8(name, f"{what}: feature name")
        _feature(value if isinstance(value, list) else [value], name, example)
    return example


def parse_examples(body: dict, verb: str) -> tuple[Any, list]:
    """{"examples": [...], "context": {...}} -> (the context tf.Example or None, the
    tf.Examples), as a gRPC ClassificationRequest carries them (example_list, or
    example_list_with_context). `_merged` serializes them as the model reads them."""
    context = None
    if "context" in body:
        context = _example(body["context"], "'context'")
    if "examples" not in body:
        raise _invalid(
            f"JSON Value: {_json_text(body)} When method is {verb}, key 'examples' "
            f"is expected and was not found"
        )
    examples = body["examples"]
    if not isinstance(examples, list):
        raise _invalid("Expecting 'examples' value to be an list/array")
    if not examples:
        raise _invalid("'examples' value is an empty array")
    return context, [_example(row, f"'examples' element {i}") for i, row in enumerate(examples)]


def _merged(context: Any, examples: list) -> list[bytes]:
    """Serialized tf.Examples, each merged with the context as TF Serving's
    ExampleListWithContext does (concatenated serializations: the example's features win)."""
    prefix = context.SerializeToString() if context is not None else b""
    return [prefix + example.SerializeToString() for example in examples]


def _flat_json(array: np.ndarray, as_b64: bool) -> list:
    """Array values as JSON values: float32 in its shortest round-trip form (as TF Serving's
    WriteDecimal prints it), bytes as text, or as {"b64": ...} for outputs named *_bytes."""
    flat = array.ravel()
    if flat.dtype == np.float32 or flat.dtype == np.float16:
        return [float(text) for text in flat.astype(str).tolist()]
    if flat.dtype == object or flat.dtype.kind == "S":
        if as_b64:
            return [{"b64": base64.b64encode(v).decode()} for v in flat.tolist()]
        return [
            v.decode("utf-8", errors="replace") if isinstance(v, bytes) else v
            for v in flat.tolist()
        ]
    return flat.tolist()


def _nest(flat: list, shape: tuple) -> Any:
    if not shape:
        return flat[0]
    if len(shape) == 1:
        return flat
    step = len(flat) // shape[0] if shape[0] else 0
    return [_nest(flat[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]


def _jsonable(name: str, array: np.ndarray) -> Any:
    return _nest(_flat_json(array, name.endswith("_bytes")), array.shape)


def _predict_response(outputs: dict[str, np.ndarray], rows: bool) -> dict:
    """Named outputs -> TF Serving's predict response (MakeJsonFromTensors): one output is
    written bare, several as objects keyed by output name (per row, or per column)."""
    if not rows:
        if len(outputs) == 1:
            ((name, values),) = outputs.items()
            return {"outputs": _jsonable(name, values)}
        return {"outputs": {name: _jsonable(name, values) for name, values in outputs.items()}}
    batch = None
    for name, values in outputs.items():
        if values.ndim == 0:
            raise _invalid(f"Tensor name: {name} has no shape information ")
        if batch is not None and values.shape[0] != batch:
            raise _invalid(
                f"Tensor name: {name} has inconsistent batch size: "
                f"{values.shape[0]} expecting: {batch}"
            )
        batch = values.shape[0]
    columns = {name: _jsonable(name, values) for name, values in outputs.items()}
    if len(columns) == 1:
        return {"predictions": next(iter(columns.values()))}
    return {
        "predictions": [{name: column[i] for name, column in columns.items()} for i in range(batch)]
    }


def _classify_response(outputs: dict[str, np.ndarray]) -> dict:
    """Classes and scores -> {"results": [[[label, score], ...], ...]}
    (MakeJsonFromClassificationResult)."""
    scores = outputs["scores"]
    classes = outputs.get("classes")
    labels = (
        _jsonable("classes", classes)
        if classes is not None
        else [[""] * scores.shape[1]] * scores.shape[0]
    )
    return {
        "results": [
            [[label, score] for label, score in zip(row_labels, row_scores, strict=True)]
            for row_labels, row_scores in zip(labels, _jsonable("scores", scores), strict=True)
        ]
    }


# --- REST server (werkzeug) --------------------------------------------------------------------


class _ModelName(BaseConverter):
    regex = r"[^/:]+"  # http_rest_api_util.cc: ([^/:]+)


class _Digits(BaseConverter):
    regex = r"\d+"


_VERBS = "any(predict, classify, regress)"
_PREFIXES = (
    "/v1/models/<name:model>",
    "/v1/models/<name:model>/versions/<digits:version>",
    "/v1/models/<name:model>/labels/<name:label>",
)
_URLS = Map(
    [Rule("/v1/models", endpoint="no_model", methods=["GET"])]
    + [Rule(prefix, endpoint="status", methods=["GET"]) for prefix in _PREFIXES]
    + [Rule(prefix + "/metadata", endpoint="metadata", methods=["GET"]) for prefix in _PREFIXES]
    + [
        Rule(prefix + f":<{_VERBS}:verb>", endpoint="infer", methods=["POST"])
        for prefix in _PREFIXES
    ],
    converters={"name": _ModelName, "digits": _Digits},
    merge_slashes=False,
    strict_slashes=True,
)


def _read_json(request: Request) -> dict:
    """The request body as a JSON object (json_tensor.cc ParseJson). Raises
    RequestEntityTooLarge over the body limit and ServingError for anything not an object."""
    data = request.get_data(cache=False)
    # A chunked body is cut at the limit without complaint; one more read past it raises
    # RequestEntityTooLarge (werkzeug's LimitedStream.on_exhausted).
    request.stream.read(1)
    return parse_json(data)


def parse_json(data: bytes) -> dict:
    """A REST request body -> its JSON object, with json_tensor.cc's (rapidjson's) rules:
    decimals beyond a double are kept for a "Number too big" error where they are used.
    Raises ServingError (INVALID_ARGUMENT) with TF Serving's wording for anything else."""
    if not data.strip():
        raise _invalid("JSON Parse error: The document is empty")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _invalid(
            f"JSON Parse error: Invalid encoding in string. at offset: {e.start}"
        ) from None
    try:
        body = json.loads(text, parse_float=_parse_float)
    except json.JSONDecodeError as e:
        raise _invalid(f"JSON Parse error: {e.msg} at offset: {e.pos}") from None
    except RecursionError:  # Python's parser refuses nesting past its recursion limit
        raise _invalid("JSON Parse error: the document is nested too deeply") from None
    except ValueError as e:  # e.g. an integer literal past Python's 4300-digit limit
        raise _invalid(f"JSON Parse error: {e}") from None
    if not isinstance(body, dict):
        raise _invalid(f"JSON Value: {_json_text(body)} Is not object")
    return body


class RestApp:
    """TF Serving's REST API as a WSGI application.

    Every request gets a JSON answer: ServingErrors map to TF Serving's HTTP statuses, bodies
    over `max_body_bytes` to 413, and any other exception to a 500 carrying its message."""

    def __init__(
        self,
        manager: ModelManager,
        max_body_bytes: int = MAX_BODY_BYTES,
        request_logger: request_log.RequestLogger | None = None,
    ):
        self.manager = manager
        self.max_body_bytes = max_body_bytes
        self.request_logger = request_logger
        self.request_class = type(
            "LimitedRequest", (Request,), {"max_content_length": max_body_bytes}
        )

    def __call__(self, environ, start_response):
        try:
            status, body = self._answer(environ)
        except Exception:  # the last resort: every request gets an answer
            log.exception(
                "answering %s %s failed", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")
            )
            status, body = 500, json.dumps({"error": "Internal error"})
        return Response(body, status=status, mimetype="application/json")(environ, start_response)

    def _answer(self, environ) -> tuple[int, str]:
        """(HTTP status, JSON body) for one request; exceptions are turned into error bodies,
        with the traceback of unexpected ones logged."""
        request = self.request_class(environ)
        try:
            status, payload = self._dispatch(request)
        except ServingError as e:
            status, payload = HTTP_STATUS.get(e.code, 500), {"error": e.message}
        except RequestEntityTooLarge:
            status, payload = (
                413,
                {"error": f"Request body exceeds the limit of {self.max_body_bytes} bytes"},
            )
        except HTTPException:  # no route: TF Serving's own wording
            status, payload = 400, {"error": f"Malformed request: {request.method} {request.path}"}
        except RecursionError:
            status, payload = 400, {"error": "the request is nested too deeply"}
        except Exception as e:
            log.exception("%s %s failed", request.method, request.path)
            status, payload = 500, {"error": f"Internal error: {_describe(e)}"}
        try:
            body = json.dumps(payload)
        except Exception as e:
            log.exception("answer to %s %s not serializable", request.method, request.path)
            status, body = 500, json.dumps({"error": f"Internal error: {type(e).__name__}"})
        return status, body

    def _servable(self, args: dict) -> Servable:
        if "label" in args:  # version labels need a model config file; we have none
            raise _invalid(f"Unrecognized servable version label: {args['label']}")
        version = args.get("version")
        if version is not None:
            if int(version) > _INT64[1]:
                raise _invalid(f"Failed to convert version: {version} to numeric.")
            version = int(version)
        return self.manager.get(args["model"], version)

    def _dispatch(self, request: Request) -> tuple[int, Any]:
        endpoint, args = _URLS.bind_to_environ(request.environ).match()
        if endpoint == "no_model":
            raise _invalid("Missing model name in request.")
        if endpoint == "status":
            if "label" in args:
                self._servable(args)
            version = int(args["version"]) if "version" in args else None
            return 200, json_format.MessageToDict(
                self.manager.status(args["model"], version),
                preserving_proto_field_name=True,
                including_default_value_fields=True,
            )
        if endpoint == "infer":
            try:
                return self._infer(request, args)
            except Exception as e:
                if self.request_logger is not None:  # counted as rejected, never logged
                    self.request_logger.log(None, e, None)
                raise
        servable = self._servable(args)
        if endpoint == "metadata":
            # TF Serving prints with always_print_primitive_fields (http_rest_api_util.cc).
            return 200, {
                "model_spec": {
                    "name": servable.name,
                    "signature_name": "",
                    "version": str(servable.version),
                },
                "metadata": {
                    "signature_def": json_format.MessageToDict(
                        metadata(servable),
                        preserving_proto_field_name=True,
                        including_default_value_fields=True,
                    )
                },
            }
        raise AssertionError(f"unrouted endpoint {endpoint}")

    def _infer(self, request: Request, args: dict) -> tuple[int, Any]:
        """:predict, :classify and :regress. An answered Predict or Classify is offered to the
        request logger in the form a gRPC client would have sent it (request_log)."""
        servable = self._servable(args)
        body = _read_json(request)
        signature_name = body.get("signature_name", "")
        if not isinstance(signature_name, str):
            raise _invalid(
                f"JSON Value: {_json_text(body)} not formatted correctly. "
                f"'signature_name' key must be a string value."
            )
        _utf8(signature_name, "'signature_name'")
        verb = args["verb"]
        if verb == "predict":
            signature = servable.signature(signature_name)
            sig = signature.definition
            if "instances" in body and "inputs" in body:
                raise _invalid(
                    "Not formatted correctly expecting only one of 'inputs' or "
                    "'instances' keys to exist"
                )
            if "instances" in body:
                inputs, rows = parse_instances(body["instances"], sig.inputs), True
            elif "inputs" in body:
                inputs, rows = parse_columns(body["inputs"], sig.inputs), False
            else:
                raise _invalid("Missing 'inputs' or 'instances' key")
            outputs = predict(signature, inputs)
            answer = _predict_response(outputs, rows)
            if self.request_logger is not None:
                spec = request_log.model_spec(servable.name, _url_version(args), signature_name)
                dtypes = {name: sig.inputs[name].dtype for name in inputs}
                self.request_logger.log(
                    functools.partial(request_log.predict_request, spec, inputs, dtypes),
                    functools.partial(_predict_proto, servable, signature.key, outputs),
                    functools.partial(_log_metadata, servable, signature.key),
                )
            return 200, answer
        context, examples = parse_examples(body, verb)
        method = CLASSIFY_METHOD if verb == "classify" else REGRESS_METHOD
        signature = servable.signature(signature_name, method)
        outputs = run_examples(signature, _merged(context, examples))
        if verb == "classify":
            answer = _classify_response(outputs)
            if self.request_logger is not None:
                spec = request_log.model_spec(servable.name, _url_version(args), signature_name)
                self.request_logger.log(
                    functools.partial(request_log.classification_request, spec, examples, context),
                    functools.partial(_classification_proto, servable, signature.key, outputs),
                    functools.partial(_log_metadata, servable, signature.key),
                )
            return 200, answer
        return 200, {"results": _flat_json(outputs["outputs"], False)}


def _url_version(args: dict) -> int | None:
    """The version pinned in a REST URL (already checked by RestApp._servable), or None."""
    return int(args["version"]) if "version" in args else None


def _log_metadata(servable: Servable, signature_key: str):
    return request_log.log_metadata(servable.name, servable.version, signature_key)


def _predict_proto(servable: Servable, signature_key: str, outputs: dict, output_filter=()):
    """The PredictResponse TF Serving answers (model_spec = the servable that answered)."""
    spec = request_log.model_spec(servable.name, servable.version, signature_key)
    return request_log.predict_response(spec, outputs, output_filter)


def _classification_proto(servable: Servable, signature_key: str, outputs: dict):
    """The ClassificationResponse TF Serving answers, from `classes` and `scores`."""
    spec = request_log.model_spec(servable.name, servable.version, signature_key)
    return request_log.classification_response(spec, outputs.get("classes"), outputs["scores"])


class _RequestHandler(WSGIRequestHandler):
    """werkzeug's handler, logging to our logger (requests at DEBUG, errors at ERROR)."""

    def log(self, type: str, message: str, *args) -> None:
        (log.error if type == "error" else log.debug)("%s " + message, self.address_string(), *args)


# --- gRPC --------------------------------------------------------------------------------------


def _version(model_spec) -> int | None:
    return model_spec.version.value if model_spec.HasField("version") else None


def _abort_on_error(method):
    """ServingErrors abort with their code; anything else with INTERNAL and its message (the
    traceback is logged). Messages are made valid UTF-8 first: gRPC must encode them."""

    def wrapper(self, request, context):
        try:
            return method(self, request, context)
        except ServingError as e:
            code, message = e.code, e.message
        except Exception as e:
            log.exception("gRPC %s failed", method.__name__)
            code, message = grpc.StatusCode.INTERNAL, _describe(e)
        context.abort(code, message.encode("utf-8", "backslashreplace").decode("utf-8"))

    return wrapper


class _PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(
        self, manager: ModelManager, request_logger: request_log.RequestLogger | None = None
    ):
        self.manager = manager
        self.request_logger = request_logger

    @staticmethod
    def _spec(response_spec, servable: Servable, signature_name: str) -> None:
        response_spec.name = servable.name
        response_spec.version.value = servable.version
        response_spec.signature_name = signature_name

    def _logged(self, answer, request):
        """Runs `answer(request)` -> (response, LogMetadata builder) and offers the pair to the
        request logger; a failure is counted as rejected and re-raised."""
        try:
            response, metadata = answer(request)
        except Exception as e:
            if self.request_logger is not None:
                self.request_logger.log(request, e, None)
            raise
        if self.request_logger is not None:
            self.request_logger.log(request, response, metadata)
        return response

    @_abort_on_error
    def Predict(self, request, context):
        return self._logged(self._predict, request)

    def _predict(self, request):
        spec = request.model_spec
        servable = self.manager.get(spec.name, _version(spec))
        signature = servable.signature(spec.signature_name)
        inputs = {}
        for key, proto in request.inputs.items():
            expected = signature.definition.inputs.get(key)
            if expected is not None and proto.dtype != expected.dtype:
                raise _invalid(
                    f"Expects arg[{key}] to be {_dtype_name(expected.dtype)} but "
                    f"{_dtype_name(proto.dtype)} is provided"
                )
            try:
                inputs[key] = tf.make_ndarray(proto)
            except (TypeError, ValueError) as e:
                raise _invalid(f"tensor parsing error: {key}: {e}") from None
        outputs = predict(signature, inputs)
        response = _predict_proto(servable, signature.key, outputs, request.output_filter)
        return response, functools.partial(_log_metadata, servable, signature.key)

    @_abort_on_error
    def Classify(self, request, context):
        return self._logged(self._classify, request)

    def _classify(self, request):
        spec = request.model_spec
        kind = request.input.WhichOneof("kind")
        if kind == "example_list":
            examples = [e.SerializeToString() for e in request.input.example_list.examples]
        elif kind == "example_list_with_context":
            with_context = request.input.example_list_with_context
            context_bytes = with_context.context.SerializeToString()  # concatenation = merge
            examples = [context_bytes + e.SerializeToString() for e in with_context.examples]
        else:
            raise _invalid("Input is empty.")
        servable = self.manager.get(spec.name, _version(spec))
        signature = servable.signature(spec.signature_name, CLASSIFY_METHOD)
        outputs = run_examples(signature, examples)
        response = _classification_proto(servable, signature.key, outputs)
        return response, functools.partial(_log_metadata, servable, signature.key)

    @_abort_on_error
    def GetModelMetadata(self, request, context):
        if list(request.metadata_field) != ["signature_def"]:
            raise _invalid(
                f"Metadata field(s) {list(request.metadata_field)} not supported; "
                f"use ['signature_def']"
            )
        spec = request.model_spec
        servable = self.manager.get(spec.name, _version(spec))
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        self._spec(response.model_spec, servable, "")
        response.metadata["signature_def"].Pack(metadata(servable))
        return response


class _ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, manager: ModelManager):
        self.manager = manager

    @_abort_on_error
    def GetModelStatus(self, request, context):
        spec = request.model_spec
        return self.manager.status(spec.name, _version(spec))


# --- Running it --------------------------------------------------------------------------------


class DevServer:
    """The model manager plus REST (werkzeug, threaded) and gRPC front ends; port 0 picks a
    free port, read back from `rest_port` / `grpc_port`.

    With `request_log` (a RequestLogConfig with a sampling rate > 0), answered Predict and
    Classify requests of both protocols are sampled into PredictionLog files by
    `request_logger` (serving/request_log.py); it is closed, and its last file finished, after
    both front ends have stopped."""

    def __init__(
        self,
        model_name: str,
        model_base_path: str,
        host: str = "127.0.0.1",
        rest_port: int = 8501,
        grpc_port: int = 8500,
        num_versions: int = 1,
        poll_seconds: float = 1.0,
        max_body_bytes: int = MAX_BODY_BYTES,
        grpc_workers: int = 8,
        request_log_config: request_log.RequestLogConfig | None = None,
    ):
        self.manager = ModelManager(model_name, model_base_path, num_versions, poll_seconds)
        self.request_logger = (
            request_log.RequestLogger(request_log_config)
            if request_log_config is not None and request_log_config.sampling_rate > 0
            else None
        )
        self.rest_app = RestApp(self.manager, max_body_bytes, self.request_logger)
        self.http = make_server(
            host, rest_port, self.rest_app, threaded=True, request_handler=_RequestHandler
        )
        self.grpc = grpc.server(
            futures.ThreadPoolExecutor(max_workers=grpc_workers),
            options=[("grpc.max_receive_message_length", max_body_bytes)],
        )
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            _PredictionService(self.manager, self.request_logger), self.grpc
        )
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(
            _ModelService(self.manager), self.grpc
        )
        self.grpc_port = self.grpc.add_insecure_port(f"{host}:{grpc_port}")
        self.rest_port = self.http.server_address[1]
        self.host = host
        self._http_thread: threading.Thread | None = None

    def start(self) -> DevServer:
        if self.request_logger is not None:
            self.request_logger.start()
        self.manager.start()
        self.grpc.start()
        self._http_thread = threading.Thread(
            target=self.http.serve_forever, daemon=True, name="rest"
        )
        self._http_thread.start()
        return self

    def stop(self) -> None:
        self.http.shutdown()
        self.http.server_close()
        self.grpc.stop(grace=2).wait()
        self.manager.stop()
        if self.request_logger is not None:
            self.request_logger.close()
            log.info("request log: %s", self.request_logger.counters())

    def __enter__(self) -> DevServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model_name", default=MODEL_NAME)
    parser.add_argument(
        "--model_base_path", required=True, help="folder of integer versions, as Pusher writes it"
    )
    parser.add_argument("--rest_api_port", type=int, default=8501)
    parser.add_argument("--port", type=int, default=8500, help="gRPC port")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind; the default accepts local connections only",
    )
    parser.add_argument(
        "--num_versions",
        type=int,
        default=1,
        help="how many of the newest versions to serve (TF Serving's 'latest' policy)",
    )
    parser.add_argument("--file_system_poll_wait_seconds", type=float, default=1.0)
    add_request_log_flags(parser)
    args = parser.parse_args(argv)
    log_config = request_log_config(parser, args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if not push.versions(args.model_base_path):
        log.warning("no integer version under %s yet; waiting for one", args.model_base_path)
    server = DevServer(
        args.model_name,
        args.model_base_path,
        args.host,
        args.rest_api_port,
        args.port,
        args.num_versions,
        args.file_system_poll_wait_seconds,
        request_log_config=log_config,
    )
    server.start()
    if log_config is not None:
        log.info(
            "logging %g of answered requests to %s", log_config.sampling_rate, log_config.log_dir
        )
    log.info(
        "REST on http://%s:%d, gRPC on %s:%d (development server; production runs "
        "TensorFlow Serving)",
        args.host,
        server.rest_port,
        args.host,
        server.grpc_port,
    )
    stopping = threading.Event()
    # SIGTERM (docker stop, Kubernetes, Popen.terminate) stops cleanly, as Ctrl-C does, so the
    # last request log file is finished rather than left under its temporary name.
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        stopping.wait()
    except KeyboardInterrupt:
        pass
    server.stop()
    return 0


def add_request_log_flags(parser: argparse.ArgumentParser) -> None:
    """The request-log flags (read back by request_log_config), shared with serving/sidecar."""
    parser.add_argument(
        "--request_log_sampling_rate",
        type=float,
        default=0.0,
        help="fraction of answered Predict/Classify requests written as PredictionLogs, in "
        "[0, 1] (TF Serving's sampling_config.sampling_rate); 0 = off",
    )
    parser.add_argument(
        "--request_log_dir", default="", help="folder (or gs:// path) of the request log files"
    )
    parser.add_argument(
        "--request_log_max_file_bytes",
        type=int,
        default=request_log.RequestLogConfig.max_file_bytes,
        help="a log file is finished once it holds this many bytes",
    )
    parser.add_argument(
        "--request_log_max_file_seconds",
        type=float,
        default=request_log.RequestLogConfig.max_file_seconds,
        help="a log file is finished once it has been open this long",
    )
    parser.add_argument(
        "--request_log_queue_size",
        type=int,
        default=request_log.RequestLogConfig.queue_size,
        help="records waiting for the writer; beyond it they are dropped (and counted)",
    )


def request_log_config(parser, args) -> request_log.RequestLogConfig | None:
    """The request-log flags as a RequestLogConfig (None when the sampling rate is 0); an
    invalid combination exits through parser.error with the flag named."""
    rate = args.request_log_sampling_rate
    if not 0.0 <= rate <= 1.0:  # also refuses NaN
        parser.error(f"--request_log_sampling_rate must be in [0, 1], got {rate}")
    if rate == 0.0:
        if args.request_log_dir:
            log.warning("--request_log_dir is set but --request_log_sampling_rate is 0: no logging")
        return None
    if not args.request_log_dir:
        parser.error("--request_log_sampling_rate > 0 needs --request_log_dir")
    try:
        return request_log.RequestLogConfig(
            log_dir=args.request_log_dir,
            sampling_rate=rate,
            max_file_bytes=args.request_log_max_file_bytes,
            max_file_seconds=args.request_log_max_file_seconds,
            queue_size=args.request_log_queue_size,
        )
    except ValueError as e:
        parser.error(f"request log flags: {e}")


if __name__ == "__main__":
    raise SystemExit(main())
