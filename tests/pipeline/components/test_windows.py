"""ExamplesWindow: months' Examples gathered into one artifact whose splits list their spans."""

from __future__ import annotations

import json
import os

import pytest
import tensorflow as tf
from tfx import types
from tfx.types import artifact_utils, standard_artifacts

from artifacts import examples_artifact, make_artifact
from pipeline.components.windows import (
    MAX_MONTHS,
    ExamplesWindow,
    ExamplesWindowExecutor,
    month_channels,
    window_spans,
)
from pipeline.months import Month

pytestmark = pytest.mark.component

SPLITS = {"train": [201301, 201302], "validation": [201303]}


def _record(span: int, index: int) -> bytes:
    feature = {
        "span": tf.train.Feature(int64_list=tf.train.Int64List(value=[span])),
        "index": tf.train.Feature(int64_list=tf.train.Int64List(value=[index])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _month(root, span: int, count: int):
    """A month's Examples as MonthlyExampleGen leaves them: one split `month`, span set."""
    examples = examples_artifact(
        root / str(span), {"month": [_record(span, i) for i in range(count)]}
    )
    examples.span = span
    examples.set_string_custom_property("file_format", "tfrecords_gzip")
    examples.set_string_custom_property("payload_format", "FORMAT_TF_EXAMPLE")
    examples.set_string_custom_property("input_fingerprint", f"drop of {span}")
    return examples


def _months(root):
    return [_month(root, span, count) for span, count in ((201301, 3), (201302, 2), (201303, 4))]


def _run(inputs, out, splits=SPLITS):
    window = make_artifact(standard_artifacts.Examples, out)
    input_dict = {f"month_{i}": [examples] for i, examples in enumerate(inputs)}
    ExamplesWindowExecutor().Do(input_dict, {"examples": [window]}, {"splits": json.dumps(splits)})
    return window


def _read(directory) -> list[tuple[int, int]]:
    files = sorted(tf.io.gfile.glob(os.path.join(directory, "*")))
    rows = []
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        feature = tf.train.Example.FromString(record.numpy()).features.feature
        rows.append((feature["span"].int64_list.value[0], feature["index"].int64_list.value[0]))
    return rows


def test_months_land_in_the_splits_that_list_their_spans(tmp_path):
    window = _run(_months(tmp_path / "in"), tmp_path / "window")

    assert artifact_utils.decode_split_names(window.split_names) == ["train", "validation"]
    assert sorted(os.listdir(window.uri)) == ["Split-train", "Split-validation"]
    assert sorted(os.listdir(os.path.join(window.uri, "Split-train"))) == [
        "201301-data_tfrecord-00000-of-00001.gz",
        "201302-data_tfrecord-00000-of-00001.gz",
    ]
    train = _read(artifact_utils.get_split_uri([window], "train"))
    validation = _read(artifact_utils.get_split_uri([window], "validation"))
    assert train == [(201301, 0), (201301, 1), (201301, 2), (201302, 0), (201302, 1)]
    assert validation == [(201303, i) for i in range(4)]


def test_the_window_records_its_spans_and_the_months_formats(tmp_path):
    window = _run(_months(tmp_path / "in"), tmp_path / "window")
    assert window_spans(window) == SPLITS
    assert json.loads(window.get_string_custom_property("spans")) == SPLITS
    assert window.get_string_custom_property("file_format") == "tfrecords_gzip"
    assert window.get_string_custom_property("payload_format") == "FORMAT_TF_EXAMPLE"
    assert not window.has_custom_property("input_fingerprint")  # a month's, not the window's


def test_inputs_in_any_order_and_unused_months_are_left_out(tmp_path):
    months = _months(tmp_path / "in")
    window = _run(list(reversed(months)), tmp_path / "window", {"eval": [201302]})
    assert artifact_utils.decode_split_names(window.split_names) == ["eval"]
    assert _read(artifact_utils.get_split_uri([window], "eval")) == [(201302, 0), (201302, 1)]
    assert sorted(os.listdir(window.uri)) == ["Split-eval"]


def test_a_missing_month_is_named(tmp_path):
    january, february, _ = _months(tmp_path / "in")
    with pytest.raises(ValueError, match=r"the window needs months \['2013-03'\], which no input"):
        _run([january, february], tmp_path / "window")


def test_two_artifacts_for_one_month_are_refused(tmp_path):
    january = _month(tmp_path / "a", 201301, 1)
    again = _month(tmp_path / "b", 201301, 1)
    with pytest.raises(ValueError, match="two Examples artifacts for span 201301"):
        _run([january, again], tmp_path / "window", {"train": [201301]})


def test_window_spans_of_an_artifact_without_the_property_is_empty():
    assert window_spans(standard_artifacts.Examples()) == {}


def test_the_component_numbers_its_month_inputs_and_sorts_each_split():
    channels = [types.Channel(type=standard_artifacts.Examples) for _ in range(3)]
    component = ExamplesWindow(
        channels,
        {"train": [Month(2013, 2), Month(2013, 1)], "validation": [Month(2013, 3)]},
    )
    assert json.loads(component.exec_properties["splits"]) == SPLITS
    assert [component.inputs[f"month_{i}"] for i in range(3)] == channels
    assert "month_3" not in component.inputs


def test_more_months_than_a_window_takes_are_refused():
    channels = [types.Channel(type=standard_artifacts.Examples)] * (MAX_MONTHS + 1)
    with pytest.raises(ValueError, match=f"at most {MAX_MONTHS} months per window, got 25"):
        month_channels(channels)
