"""The anomalies gate: a run stops naming every anomaly; clean data is approved."""

from __future__ import annotations

import pytest
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.types import artifact_utils, standard_artifacts

from artifacts import make_artifact
from pipeline.components.anomalies_gate import (
    ANOMALIES_FILE,
    AnomaliesFound,
    AnomaliesGate,
    describe_anomalies,
)

pytestmark = pytest.mark.unit


def _anomalies_dir(root, by_split: dict[str, anomalies_pb2.Anomalies]):
    for split, anomalies in by_split.items():
        (root / f"Split-{split}").mkdir(parents=True)
        (root / f"Split-{split}" / ANOMALIES_FILE).write_bytes(anomalies.SerializeToString())
    artifact = make_artifact(standard_artifacts.ExampleAnomalies, root)
    artifact.split_names = artifact_utils.encode_split_names(list(by_split))
    return artifact


def _dropped_distance() -> anomalies_pb2.Anomalies:
    anomalies = anomalies_pb2.Anomalies()
    info = anomalies.anomaly_info["distance"]
    info.short_description = "Column dropped"
    info.description = "The feature was present in fewer examples than expected."
    return anomalies


def test_anomaly_report_names_split_feature_and_problem(tmp_path):
    _anomalies_dir(tmp_path, {"train": anomalies_pb2.Anomalies(), "eval": _dropped_distance()})
    lines = describe_anomalies(str(tmp_path), ["train", "eval"])
    assert lines == [
        "split 'eval', feature 'distance': Column dropped: The feature was "
        "present in fewer examples than expected."
    ]


def _run_gate(anomalies, out):
    out.mkdir()
    approved = make_artifact(standard_artifacts.ExampleAnomalies, out)
    AnomaliesGate.EXECUTOR_SPEC.executor_class().Do(
        {"anomalies": [anomalies]}, {"approved": [approved]}, {}
    )
    return approved


def test_gate_stops_on_any_anomaly_and_names_it(tmp_path):
    anomalies = _anomalies_dir(
        tmp_path / "in", {"train": anomalies_pb2.Anomalies(), "eval": _dropped_distance()}
    )
    with pytest.raises(AnomaliesFound, match="split 'eval', feature 'distance': Column dropped"):
        _run_gate(anomalies, tmp_path / "out")


def test_gate_approves_clean_splits_as_readable_anomalies(tmp_path):
    clean = {"train": anomalies_pb2.Anomalies(), "eval": anomalies_pb2.Anomalies()}
    approved = _run_gate(_anomalies_dir(tmp_path / "in", clean), tmp_path / "out")
    assert artifact_utils.decode_split_names(approved.split_names) == ["train", "eval"]
    assert describe_anomalies(approved.uri, ["train", "eval"]) == []
