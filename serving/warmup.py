"""Warmup requests and the load-and-query check that replays them.

TF Serving replays `assets.extra/tf_serving_warmup_requests` (a TFRecord of PredictionLog) when
it loads a version, so the first user request does not pay for graph tracing. The same records
are what infra validation replays against the candidate in a fresh process before a push.

    python -m serving.warmup MODEL_DIR WARMUP_FILE   # replay; prints a JSON report, exit 0/1
"""

from __future__ import annotations

import dataclasses
import json
import re
import signal
import subprocess
import sys
import time

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import classification_pb2, model_pb2, predict_pb2, prediction_log_pb2

from models.constants import (
    CLASSIFY_INPUT,
    CLASSIFY_OUTPUTS,
    CLASSIFY_SIGNATURE,
    OUTPUT_KEY,
    PREDICT_SIGNATURE,
)
from serving import contract
from transforms import codec

WARMUP_FILE = "tf_serving_warmup_requests"
WARMUP_DIR = "assets.extra"  # where TF Serving looks for WARMUP_FILE inside a version
PREDICT_BATCHES = (1, 1, 1, 1, 8, 64)  # batch 1 dominates online traffic; 8/64 warm batching
CLASSIFY_BATCHES = (1, 8)
EXAMPLES_NEEDED = max(sum(PREDICT_BATCHES), sum(CLASSIFY_BATCHES))


def build(serialized_examples: list[bytes], model_name: str = "") -> list:
    """PredictionLogs for serving_default and classify, cut from real raw tf.Examples."""
    if len(serialized_examples) < EXAMPLES_NEEDED:
        raise ValueError(f"warmup needs {EXAMPLES_NEEDED} examples, got {len(serialized_examples)}")
    columns = codec.columns_from_examples(serialized_examples[:EXAMPLES_NEEDED])
    logs, start = [], 0
    for batch in PREDICT_BATCHES:
        request = predict_pb2.PredictRequest(
            model_spec=model_pb2.ModelSpec(name=model_name, signature_name=PREDICT_SIGNATURE)
        )
        for key, proto in codec.tensor_protos(
            {k: v[start : start + batch] for k, v in columns.items()}
        ).items():
            request.inputs[key].CopyFrom(proto)
        logs.append(
            prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
        )
        start += batch
    start = 0
    for batch in CLASSIFY_BATCHES:
        request = classification_pb2.ClassificationRequest(
            model_spec=model_pb2.ModelSpec(name=model_name, signature_name=CLASSIFY_SIGNATURE)
        )
        request.input.example_list.examples.extend(
            codec.examples_from_columns({k: v[start : start + batch] for k, v in columns.items()})
        )
        logs.append(
            prediction_log_pb2.PredictionLog(
                classify_log=prediction_log_pb2.ClassifyLog(request=request)
            )
        )
        start += batch
    return logs


def write(path: str, logs: list) -> None:
    with tf.io.TFRecordWriter(path) as writer:
        for log in logs:
            writer.write(log.SerializeToString())


def read(path: str) -> list:
    logs = []
    for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
        log = prediction_log_pb2.PredictionLog()
        log.ParseFromString(record)
        logs.append(log)
    return logs


def _probabilities_problem(values: np.ndarray, batch: int) -> str | None:
    if values.shape != (batch,):
        return f"shape {values.shape}, expected ({batch},)"
    if not np.all(np.isfinite(values)) or np.any((values < 0) | (values > 1)):
        return f"probabilities outside [0, 1]: {values[:8].tolist()}"
    return None


def replay(loaded, logs: list) -> list[str]:
    """Sends every logged request to the loaded SavedModel; one problem line per bad answer."""
    problems = []
    for index, log in enumerate(logs):
        kind = log.WhichOneof("log_type")
        try:
            if kind == "predict_log":
                request = log.predict_log.request
                inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
                batch = len(next(iter(inputs.values())))
                signature = loaded.signatures[
                    request.model_spec.signature_name or PREDICT_SIGNATURE
                ]
                problem = _probabilities_problem(
                    signature(**{k: tf.constant(v) for k, v in inputs.items()})[OUTPUT_KEY].numpy(),
                    batch,
                )
            elif kind == "classify_log":
                request = log.classify_log.request
                examples = [e.SerializeToString() for e in request.input.example_list.examples]
                out = loaded.signatures[request.model_spec.signature_name](
                    **{CLASSIFY_INPUT: tf.constant(examples)}
                )
                scores = out[CLASSIFY_OUTPUTS[1]].numpy()
                problem = (
                    f"scores shape {scores.shape}"
                    if scores.shape != (len(examples), 2)
                    else _probabilities_problem(scores[:, 1], len(examples))
                )
                if problem is None and not np.allclose(scores.sum(axis=1), 1, atol=1e-5):
                    problem = "class scores do not sum to 1"
            else:
                problem = f"unsupported log type {kind!r}"
        except Exception as e:  # noqa: BLE001 -- any failure is the model's, report it
            problem = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e) else ''}"
        if problem:
            problems.append(f"request {index} ({kind}): {problem}")
    return problems


@dataclasses.dataclass
class Report:
    ok: bool
    problems: list[str]
    requests: int = 0
    load_seconds: float | None = None  # None: not loaded (strict JSON has no NaN)
    replay_seconds: float | None = None


class InfraFailure(RuntimeError):
    """The validation itself could not run (the process was killed, crashed, timed out or
    answered inconsistently): says nothing about the model, so the step must fail and run
    again, not mark the model unservable."""


# TensorFlow/absl start-up lines that say nothing about a failure.
_NOISE = re.compile(
    r"^([WIE]\d{4} |\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IW] |To enable the following|"
    r"WARNING: All log messages before absl|.*Unable to register cu)"
)


def _stderr_tail(stderr: str, lines: int = 5) -> str:
    useful = [line for line in stderr.strip().splitlines() if line and not _NOISE.match(line)]
    return " | ".join(useful[-lines:]) or "no error output"


def load_and_query(model_dir: str, warmup_path: str) -> Report:
    """Checks the contract, loads the SavedModel and replays the warmup requests."""
    problems = contract.check(model_dir)
    if problems:
        return Report(False, problems)
    logs = read(warmup_path)
    start = time.perf_counter()
    try:
        loaded = tf.saved_model.load(model_dir)
    except Exception as e:  # noqa: BLE001
        return Report(False, [f"loading failed: {type(e).__name__}: {e}"[:2000]], len(logs))
    loaded_at = time.perf_counter()
    problems = replay(loaded, logs)
    return Report(
        not problems,
        problems,
        len(logs),
        round(loaded_at - start, 3),
        round(time.perf_counter() - loaded_at, 3),
    )


def load_and_query_in_fresh_process(
    model_dir: str, warmup_path: str, timeout_seconds: float = 600
) -> Report:
    """`load_and_query` in a new Python process, as a model server would meet the model: no
    state of the training process (loaded ops, traced functions, files) can hide a problem.

    Returns the child's Report when it ran to the end (exit 0 with ok, 1 with the model's
    problems). Raises InfraFailure, naming what happened and the useful end of its error
    output, when the child timed out, was killed or crashed (e.g. a segfault), printed no
    report, or exited with a code that contradicts its report.
    """
    try:
        result = subprocess.run(
            [sys.executable, "-m", "serving.warmup", model_dir, warmup_path],
            capture_output=True,
            text=True,
            timeout=timeout_seconds,
        )
    except subprocess.TimeoutExpired:
        raise InfraFailure(
            f"loading and querying {model_dir} took over {timeout_seconds:.0f} s"
        ) from None
    if result.returncode < 0:
        signal_name = signal.Signals(-result.returncode).name
        raise InfraFailure(
            f"the validation process was killed by {signal_name}: {_stderr_tail(result.stderr)}"
        )
    lines = result.stdout.strip().splitlines()
    try:
        report = Report(**json.loads(lines[-1]))
    except (IndexError, ValueError, TypeError):
        raise InfraFailure(
            f"the validation process exited with {result.returncode} without a report: "
            f"{_stderr_tail(result.stderr)}"
        ) from None
    if result.returncode != (0 if report.ok else 1):
        raise InfraFailure(
            f"the validation process reported ok={report.ok} but exited with "
            f"{result.returncode}: {_stderr_tail(result.stderr)}"
        )
    return report


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    report = load_and_query(*argv)
    print(json.dumps(dataclasses.asdict(report)))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
