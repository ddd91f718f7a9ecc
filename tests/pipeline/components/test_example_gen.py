"""MonthlyExampleGen: one delivered month -> Examples with span YYYYMM, version = delivery time,
one split `month` holding the month's tf.Examples."""

from __future__ import annotations

import os
import shutil

import pytest
import tensorflow as tf
from google.protobuf import message
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import proto_utils

from artifacts import make_artifact
from pipeline import data, ingestion, landing
from pipeline.components.example_gen import (
    MonthlyDropExecutor,
    MonthlyExampleGen,
    delivery_version,
    settings,
)
from pipeline.months import Month
from transforms import features as F

pytestmark = pytest.mark.component

JAN, FEB = Month(2013, 1), Month(2013, 2)
ROWS = 50
DELIVERED_AT = 1_700_000_000  # seconds since the epoch


def _stamp(drop, seconds: int) -> None:
    """Sets the drop's files' modification times: the newest, `seconds` + 0.7 s, on planes."""
    for offset, name in enumerate(("weather.csv", "flights.csv", "planes.csv")):
        nanos = (seconds - 2 + offset) * 1_000_000_000 + 700_000_000
        os.utime(drop / name, ns=(nanos, nanos))


@pytest.fixture(scope="module")
def tables():
    return data.load_tables(data.package_data_dir())


@pytest.fixture()
def landing_root(tmp_path, tables):
    """January and February 2013 delivered from the package tables."""
    root = tmp_path / "landing"
    landing.deliver(root, [JAN, FEB], tables)
    for month in (JAN, FEB):
        _stamp(root / str(month), DELIVERED_AT)
    return root


def _exec_properties(component) -> dict:
    """The component's exec_properties as the launcher hands them to the executor: protos as
    JSON text, unset (None) properties left out."""
    return {
        name: proto_utils.proto_to_json(value) if isinstance(value, message.Message) else value
        for name, value in component.exec_properties.items()
        if value is not None
    }


def _run(landing_root, month: Month, out, rows=ROWS):
    component = MonthlyExampleGen(str(landing_root), month, rows_per_month=rows)
    examples = make_artifact(standard_artifacts.Examples, out)
    MonthlyDropExecutor().Do({}, {"examples": [examples]}, _exec_properties(component))
    return examples


def _records(examples) -> list[bytes]:
    files = tf.io.gfile.glob(os.path.join(examples.uri, "Split-month", "*"))
    assert files, f"no files under {examples.uri}/Split-month"
    return [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]


def test_the_component_states_the_month_and_its_drop(tmp_path):
    component = MonthlyExampleGen(str(tmp_path), FEB, rows_per_month=ROWS, seed=3)
    properties = _exec_properties(component)
    assert properties["input_base"] == str(tmp_path)
    assert '"pattern": "2013-02/*"' in properties["input_config"]
    assert settings(properties) == (FEB, ROWS, 3)
    assert settings(_exec_properties(MonthlyExampleGen(str(tmp_path), JAN))) == (JAN, None, 0)


def test_a_month_becomes_examples_with_its_span_version_and_split(landing_root, tmp_path):
    examples = _run(landing_root, FEB, tmp_path / "out")

    assert examples.span == 201302
    assert examples.version == DELIVERED_AT
    assert artifact_utils.decode_split_names(examples.split_names) == ["month"]
    assert sorted(os.listdir(examples.uri)) == ["Split-month"]
    assert examples.get_string_custom_property("file_format") == "tfrecords_gzip"
    assert examples.get_string_custom_property("payload_format") == "FORMAT_TF_EXAMPLE"

    records = _records(examples)
    assert len(records) == ROWS
    parsed = tf.io.parse_example(records, F.raw_feature_spec())
    assert set(parsed) == {f.name for f in F.FEATURES} | {F.LABEL_KEY}
    assert set(parsed["month"].numpy().ravel()) == {2}
    # The same rows ingestion draws for the month (sample of 50, seed 0), in some order.
    expected = ingestion.month_examples(str(landing_root), FEB, ROWS)
    got = sorted(
        zip(parsed["carrier"].numpy().ravel(), parsed["distance"].numpy().ravel(), strict=True)
    )
    want = sorted(zip(expected["carrier"].str.encode("utf-8"), expected["distance"], strict=True))
    assert got == [(c, pytest.approx(d)) for c, d in want]
    assert sum(parsed[F.LABEL_KEY].numpy().ravel()) == expected[F.LABEL_KEY].sum()


def test_a_redelivered_month_has_a_higher_version(landing_root, tables, tmp_path):
    first = _run(landing_root, FEB, tmp_path / "first", rows=5)
    drop = landing_root / "2013-02"
    shutil.rmtree(drop)  # upstream delivers the month again
    assert landing.deliver(landing_root, [FEB], tables) == [FEB]
    _stamp(drop, DELIVERED_AT + 3600)

    second = _run(landing_root, FEB, tmp_path / "second", rows=5)
    assert first.version == DELIVERED_AT
    assert second.version == DELIVERED_AT + 3600
    assert second.span == first.span == 201302


def test_delivery_version_is_the_newest_file_in_whole_seconds(landing_root):
    drop = landing_root / "2013-01"
    assert delivery_version(str(landing_root), JAN) == DELIVERED_AT
    nanos = (DELIVERED_AT + 10) * 1_000_000_000 + 999_999_999
    os.utime(drop / "weather.csv", ns=(nanos, nanos))
    assert delivery_version(str(landing_root), JAN) == DELIVERED_AT + 10


def test_a_bad_drop_fails_naming_the_month(landing_root, tmp_path):
    (landing_root / "2013-02" / "weather.csv").unlink()
    with pytest.raises(Exception, match=r"month 2013-02: .*2013-02/weather\.csv: file not found"):
        _run(landing_root, FEB, tmp_path / "out")
