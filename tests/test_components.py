"""Custom pipeline pieces: the baseline resolver strategy and the anomaly report."""

from __future__ import annotations

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.types import standard_artifacts

from pipeline.components import ANOMALIES_FILE, LatestBlessedBaselineStrategy, describe_anomalies


def _model(artifact_id: int):
    model = standard_artifacts.Model()
    model.id = artifact_id
    return model


def _blessing(model_id: int, blessed: bool):
    blessing = standard_artifacts.ModelBlessing()
    blessing.set_int_custom_property("current_model_id", model_id)
    blessing.set_int_custom_property("blessed", int(blessed))
    return blessing


def _resolve(models, blessings, candidate):
    return LatestBlessedBaselineStrategy().resolve_artifacts(
        None, {"model": models, "model_blessing": blessings, "candidate": candidate})


def test_baseline_is_the_newest_blessed_model_other_than_the_candidate():
    models = [_model(1), _model(2), _model(3), _model(4)]
    blessings = [_blessing(1, True), _blessing(2, True), _blessing(3, False)]
    result = _resolve(models, blessings, [models[3]])
    assert [m.id for m in result["model"]] == [2]
    assert [b.get_int_custom_property("current_model_id") for b in result["model_blessing"]] == [2]


def test_a_cached_candidate_is_never_its_own_baseline():
    models = [_model(1)]
    result = _resolve(models, [_blessing(1, True)], [models[0]])
    assert result["model"] == [] and result["model_blessing"] == []


def test_no_blessed_model_means_no_baseline():
    models = [_model(1), _model(2)]
    result = _resolve(models, [_blessing(1, False)], [models[1]])
    assert result["model"] == []


def test_anomaly_report_names_split_feature_and_problem(tmp_path):
    anomalies = anomalies_pb2.Anomalies()
    info = anomalies.anomaly_info["distance"]
    info.short_description = "Column dropped"
    info.description = "The feature was present in fewer examples than expected."
    split_dir = tmp_path / "Split-eval"
    split_dir.mkdir()
    (split_dir / ANOMALIES_FILE).write_bytes(anomalies.SerializeToString())
    (tmp_path / "Split-train").mkdir()
    (tmp_path / "Split-train" / ANOMALIES_FILE).write_bytes(
        anomalies_pb2.Anomalies().SerializeToString())

    lines = describe_anomalies(str(tmp_path), ["train", "eval"])
    assert lines == ["split 'eval', feature 'distance': Column dropped: The feature was "
                     "present in fewer examples than expected."]
