"""ImportExampleGen's executor records span and version even when the orchestrator did not
hand them over (the Kubeflow v2 path)."""

from __future__ import annotations

import pytest
import tensorflow as tf
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import proto_utils

from artifacts import make_artifact
from pipeline.components.example_gen import SpanRecordingExecutor, resolve_span

pytestmark = pytest.mark.component


def _write(path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in records:
            writer.write(record)


def _exec_properties(input_base, pattern: str) -> dict:
    """What TFX's v2 container entrypoint hands the executor: no span, version, fingerprint."""
    splits = [
        example_gen_pb2.Input.Split(name=s, pattern=pattern.format(split=s))
        for s in ("train", "eval")
    ]
    return {
        "input_base": str(input_base),
        "input_config": proto_utils.proto_to_json(example_gen_pb2.Input(splits=splits)),
        "output_config": proto_utils.proto_to_json(example_gen_pb2.Output()),
        "output_data_format": example_gen_pb2.FORMAT_TF_EXAMPLE,
    }


def test_span_is_resolved_from_the_files_and_recorded_on_the_examples(records, tmp_path):
    for split, rows in (("train", records[:30]), ("eval", records[30:40])):
        _write(tmp_path / "in" / split / "span-7" / "part.tfrecord", rows)
    properties = _exec_properties(tmp_path / "in", "{split}/span-{{SPAN}}/*.tfrecord")
    examples = make_artifact(standard_artifacts.Examples, tmp_path / "out")

    SpanRecordingExecutor().Do({}, {"examples": [examples]}, properties)

    assert examples.span == 7
    assert examples.get_int_custom_property("span") == 7
    assert examples.get_string_custom_property("input_fingerprint")
    assert artifact_utils.decode_split_names(examples.split_names) == ["train", "eval"]
    counts = {
        split: sum(
            1
            for _ in tf.data.TFRecordDataset(
                tf.io.gfile.glob(str(tmp_path / "out" / f"Split-{split}" / "*")),
                compression_type="GZIP",
            )
        )
        for split in ("train", "eval")
    }
    assert counts == {"train": 30, "eval": 10}


def test_a_span_the_driver_resolved_is_kept():
    given = {"span": 3, "version": None, "input_config": "{}"}
    assert resolve_span(given) is given


def test_a_span_from_the_driver_without_a_version_is_recorded(records, tmp_path):
    """The driver hands over span and fingerprint but no version when the input has none."""
    for split, rows in (("train", records[:5]), ("eval", records[5:8])):
        _write(tmp_path / "in" / split / "part.tfrecord", rows)
    properties = {
        **_exec_properties(tmp_path / "in", "{split}/*.tfrecord"),
        "span": 4,
        "input_fingerprint": "given",
    }
    examples = make_artifact(standard_artifacts.Examples, tmp_path / "out")
    SpanRecordingExecutor().Do({}, {"examples": [examples]}, properties)
    assert examples.span == 4
    assert examples.get_string_custom_property("input_fingerprint") == "given"
