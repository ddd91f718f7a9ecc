"""What TF Serving needs from a SavedModel, checked on the exported protocol buffer itself.

TF Serving reads `saved_model.pb` and looks signatures up by key, method name, input and output
keys and dtypes; these checks read the same proto, so a model that passes them is one whose
Predict, Classify and metadata requests TF Serving's C++ code would route.
"""

from __future__ import annotations

import os

import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

from models.constants import (
    CLASSIFY_INPUT,
    CLASSIFY_METHOD,
    CLASSIFY_OUTPUTS,
    CLASSIFY_SIGNATURE,
    EXAMPLES_INPUT,
    EXAMPLES_SIGNATURE,
    OUTPUT_KEY,
    PREDICT_METHOD,
    PREDICT_SIGNATURE,
)
from transforms import features as F

SERVE_TAG = "serve"
_DTYPES = {str: types_pb2.DT_STRING, int: types_pb2.DT_INT64, float: types_pb2.DT_FLOAT}


def signature_defs(model_dir: str) -> dict[str, meta_graph_pb2.SignatureDef]:
    """Signature key -> SignatureDef of the `serve` meta graph, as TF Serving loads it."""
    path = os.path.join(model_dir, "saved_model.pb")
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"{path}: no saved_model.pb, so this is not a SavedModel")
    saved_model = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(path, "rb") as f:
        saved_model.ParseFromString(f.read())
    for meta_graph in saved_model.meta_graphs:
        if SERVE_TAG in meta_graph.meta_info_def.tags:
            return dict(meta_graph.signature_def)
    raise ValueError(f"{path}: no meta graph tagged '{SERVE_TAG}'")


def _check_predict(sig: meta_graph_pb2.SignatureDef) -> list[str]:
    problems = []
    if sig.method_name != PREDICT_METHOD:
        problems.append(
            f"{PREDICT_SIGNATURE}: method {sig.method_name!r}, expected {PREDICT_METHOD!r}"
        )
    for feature in F.FEATURES:
        info = sig.inputs.get(feature.name)
        if info is None:
            problems.append(f"{PREDICT_SIGNATURE}: no input {feature.name!r}")
            continue
        if info.dtype != _DTYPES[feature.dtype]:
            problems.append(
                f"{PREDICT_SIGNATURE}: input {feature.name!r} has dtype "
                f"{types_pb2.DataType.Name(info.dtype)}, expected "
                f"{types_pb2.DataType.Name(_DTYPES[feature.dtype])}"
            )
        # REST `instances` rows need every input batched along dimension 0, one value per row.
        if [d.size for d in info.tensor_shape.dim] != [-1]:
            problems.append(f"{PREDICT_SIGNATURE}: input {feature.name!r} must have shape [batch]")
    extra = set(sig.inputs) - {f.name for f in F.FEATURES}
    if extra:
        problems.append(f"{PREDICT_SIGNATURE}: unexpected inputs {sorted(extra)}")
    if list(sig.outputs) != [OUTPUT_KEY]:
        problems.append(
            f"{PREDICT_SIGNATURE}: outputs {sorted(sig.outputs)}, expected ['{OUTPUT_KEY}']"
        )
    return problems


def _check_classify(sig: meta_graph_pb2.SignatureDef) -> list[str]:
    # The rules of TF Serving's classifier (servables/tensorflow/classifier.cc).
    problems = []
    if sig.method_name != CLASSIFY_METHOD:
        problems.append(
            f"{CLASSIFY_SIGNATURE}: method {sig.method_name!r}, expected {CLASSIFY_METHOD!r}"
        )
    if (
        list(sig.inputs) != [CLASSIFY_INPUT]
        or sig.inputs[CLASSIFY_INPUT].dtype != types_pb2.DT_STRING
    ):
        problems.append(
            f"{CLASSIFY_SIGNATURE}: needs exactly one DT_STRING input named "
            f"'{CLASSIFY_INPUT}' (serialized tf.Examples)"
        )
    expected = dict(zip(CLASSIFY_OUTPUTS, (types_pb2.DT_STRING, types_pb2.DT_FLOAT), strict=True))
    for key, dtype in expected.items():
        if key not in sig.outputs or sig.outputs[key].dtype != dtype:
            problems.append(
                f"{CLASSIFY_SIGNATURE}: needs output {key!r} of {types_pb2.DataType.Name(dtype)}"
            )
    return problems


def _check_examples(sig: meta_graph_pb2.SignatureDef) -> list[str]:
    if (
        list(sig.inputs) != [EXAMPLES_INPUT]
        or sig.inputs[EXAMPLES_INPUT].dtype != types_pb2.DT_STRING
        or OUTPUT_KEY not in sig.outputs
    ):
        return [
            f"{EXAMPLES_SIGNATURE}: needs one DT_STRING input '{EXAMPLES_INPUT}' and output "
            f"'{OUTPUT_KEY}' (TFMA feeds it serialized tf.Examples)"
        ]
    return []


def check(model_dir: str) -> list[str]:
    """Every way the SavedModel at `model_dir` falls short of the serving contract; [] if none."""
    try:
        signatures = signature_defs(model_dir)
    except (OSError, ValueError) as e:
        return [str(e)]
    checks = {
        PREDICT_SIGNATURE: _check_predict,
        CLASSIFY_SIGNATURE: _check_classify,
        EXAMPLES_SIGNATURE: _check_examples,
    }
    problems = []
    for key, check_one in checks.items():
        if key not in signatures:
            problems.append(f"no signature {key!r} (has {sorted(signatures)})")
        else:
            problems += check_one(signatures[key])
    return problems
