"""TFLite variants of the newest pushed model, measured on all of Nov-Dec; prints the figures.

    python3 scripts/dev.py run                     # once: a pushed model and the eval data
    python3 scripts/dev.py benchmark-mobile

Goals: full-integer int8 <= 30% of the float32 file, dynamic-range <= 35%, float16 <= 55%;
AUC drop <= 0.005 for every published variant; int8 batch-1 latency <= float32 (tflite-runtime,
one thread). Also prints how much of each file is weights, the part quantization shrinks.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import tempfile

import tensorflow as tf
from tensorflow.lite.python import schema_py_generated as schema

from mobile import gates, publish, runtime
from models.constants import MODEL_NAME
from pipeline.summary import open_store

ROOT = pathlib.Path(__file__).resolve().parent.parent
SIZE_GOALS = {"int8": 0.30, "dynamic_int8": 0.35, "float16": 0.55}


def weight_bytes(path: str) -> int:
    """Bytes of constant buffers of float/int8 tensors with 2+ dimensions (weights)."""
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(open(path, "rb").read(), 0))
    total = 0
    for graph in model.subgraphs:
        for tensor in graph.tensors:
            data = model.buffers[tensor.buffer].data
            if (
                data is not None
                and tensor.shape is not None
                and len(tensor.shape) >= 2
                and tensor.type
                in (schema.TensorType.FLOAT32, schema.TensorType.FLOAT16, schema.TensorType.INT8)
            ):
                total += len(data)
    return total


def _input(store, execution_id: int, key: str):
    from ml_metadata.proto import metadata_store_pb2

    for event in store.get_events_by_execution_ids([execution_id]):
        if event.type == metadata_store_pb2.Event.INPUT and event.path.steps[0].key == key:
            return store.get_artifacts_by_id([event.artifact_id])[0]
    raise LookupError(f"execution {execution_id} has no input {key!r}")


def _producer(store, artifact) -> int:
    from ml_metadata.proto import metadata_store_pb2

    return next(
        e.execution_id
        for e in store.get_events_by_artifact_ids([artifact.id])
        if e.type == metadata_store_pb2.Event.OUTPUT
    )


def _newest_pushed(output: pathlib.Path) -> tuple[str, str, str, str]:
    """The model behind the newest push, the transform graph it was trained with and the
    evaluation / training windows its TFLite variants were measured and calibrated on,
    followed through ML Metadata's lineage (Pusher <- MobileExport)."""
    store = open_store(str(output / "metadata" / f"{MODEL_NAME}.sqlite"))
    pushed = [
        a
        for a in store.get_artifacts_by_type("PushedModel")
        if a.custom_properties["pushed"].int_value == 1
    ]
    if not pushed:
        sys.exit(f"no pushed model in {output}; run `python3 scripts/dev.py run` first")
    pusher = _producer(store, max(pushed, key=lambda a: a.id))
    model = _input(store, pusher, "model")
    mobile_export = _producer(store, _input(store, pusher, "mobile_models"))
    graph = _input(store, mobile_export, "transform_graph")
    evaluation = _input(store, mobile_export, "examples")
    training = _input(store, mobile_export, "representative_examples")
    model_dir = str(pathlib.Path(model.uri) / "Format-Serving")
    return model_dir, graph.uri, evaluation.uri, training.uri


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=pathlib.Path, default=ROOT / "output")
    parser.add_argument(
        "--results", type=pathlib.Path, default=ROOT / "benchmark-output" / "mobile.json"
    )
    args = parser.parse_args(argv)
    model_dir, graph_dir, evaluation_uri, training_uri = _newest_pushed(args.output_dir)

    def read(uri: str, split: str) -> list[bytes]:
        files = sorted(tf.io.gfile.glob(f"{uri}/Split-{split}/*"))
        dataset = tf.data.TFRecordDataset(files, compression_type="GZIP")
        return list(dataset.as_numpy_iterator())

    eval_examples = read(evaluation_uri, "eval")
    train = read(training_uri, "train")
    representative = [train[i] for i in range(0, len(train), len(train) // 300)][:300]
    print(f"[benchmark] {model_dir}: {len(eval_examples)} eval rows", flush=True)

    with tempfile.TemporaryDirectory() as work:
        results, baseline = gates.build_variants(
            model_dir, graph_dir, eval_examples, representative, work
        )
        by_name = {r.variant: r for r in results}
        weights = {
            r.variant: weight_bytes(f"{work}/{runtime.file_name(r.variant)}")
            for r in results
            if r.size_bytes
        }
    float32 = by_name["float32"]
    print(f"\nSavedModel AUC {baseline['auc']:.4f} on {baseline['rows']} rows\n")
    print(
        f"{'variant':<13} {'bytes':>8} {'ratio':>6} {'weights':>8} {'w.ratio':>7} "
        f"{'AUC':>7} {'drop':>7} {'max|d|':>8} {'p50 ms':>7} {'p99 ms':>7}  published"
    )
    for r in results:
        if not r.size_bytes:
            print(f"{r.variant:<13} {r.reason}")
            continue
        print(
            f"{r.variant:<13} {r.size_bytes:>8} {r.size_bytes / float32.size_bytes:>6.2f} "
            f"{weights[r.variant]:>8} {weights[r.variant] / weights['float32']:>7.2f} "
            f"{r.auc:>7.4f} {baseline['auc'] - r.auc:>+7.4f} {r.max_abs_diff:>8.5f} "
            f"{r.latency_p50_ms:>7.3f} {r.latency_p99_ms:>7.3f}  {r.published}: {r.reason}"
        )
    print()
    for name, goal in SIZE_GOALS.items():
        ratio = by_name[name].size_bytes / float32.size_bytes
        print(
            f"{name} file <= {goal:.0%} of float32: {ratio:.0%}  "
            f"{'met' if ratio <= goal else 'MISSED'} (weights alone: "
            f"{weights[name] / weights['float32']:.0%})"
        )
    drops = {r.variant: baseline["auc"] - r.auc for r in results if r.published}
    print(
        f"AUC drop <= 0.005 for every published variant: max {max(drops.values()):+.4f}  "
        f"{'met' if max(drops.values()) <= 0.005 else 'MISSED'}"
    )
    int8, f32 = by_name["int8"].latency_p50_ms, float32.latency_p50_ms
    print(
        f"int8 p50 latency <= float32: {int8:.3f} vs {f32:.3f} ms  "
        f"{'met' if int8 <= f32 else 'MISSED'}"
    )
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(
        json.dumps({**publish.metrics(results, baseline), "weights_bytes": weights}, indent=2)
    )
    print(f"figures: {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
