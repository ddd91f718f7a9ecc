"""Custom pipeline pieces: the baseline resolver strategy, the anomaly report, infra
validation and the atomic pusher (executors run directly on hand-made artifacts)."""

from __future__ import annotations

import json
import shutil

import tensorflow as tf
from google.protobuf import json_format
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_artifacts

from artifacts import make_artifact
from pipeline import data
from pipeline.components import (ANOMALIES_FILE, INFRA_BLESSED, INFRA_NOT_BLESSED,
                                 AtomicPushExecutor, InfraValidator,
                                 LatestBlessedBaselineStrategy, describe_anomalies)
from serving import warmup


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



def _examples_artifact(root, records):
    split = root / "Split-eval"
    split.mkdir(parents=True)
    with tf.io.TFRecordWriter(str(split / "data_tfrecord-00000-of-00001.gz"),
                              options="GZIP") as writer:
        for record in records:
            writer.write(record)
    examples = make_artifact(standard_artifacts.Examples, root)
    examples.split_names = artifact_utils.encode_split_names(["eval"])
    return examples


def _infra_validate(model_dir, examples, out):
    out.mkdir()
    blessing = make_artifact(standard_artifacts.InfraBlessing, out)
    model = make_artifact(standard_artifacts.Model, model_dir.parent)
    InfraValidator.EXECUTOR_SPEC.executor_class().Do(
        {"model": [model], "examples": [examples]}, {"blessing": [blessing]},
        {"timeout_seconds": 300})
    return model, blessing


def _push(model, blessing, infra_blessing, base, out):
    out.mkdir()
    pushed = make_artifact(standard_artifacts.PushedModel, out)
    destination = pusher_pb2.PushDestination(
        filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=str(base)))
    AtomicPushExecutor().Do(
        {"model": [model], "model_blessing": [blessing], "infra_blessing": [infra_blessing]},
        {"pushed_model": [pushed]},
        {"push_destination": json_format.MessageToJson(destination)})
    return pushed


def test_infra_validation_blocks_a_broken_model_and_nothing_is_pushed(
        saved_model_dir, flight_rows, tmp_path):
    examples = _examples_artifact(tmp_path / "examples", data.encode_examples(flight_rows[:80]))
    model_dir = tmp_path / "model" / "Format-Serving"
    shutil.copytree(saved_model_dir, model_dir)
    for name in (model_dir / "variables").iterdir():
        name.write_bytes(b"not a checkpoint")  # loads no more, as a corrupt upload would

    model, infra = _infra_validate(model_dir, examples, tmp_path / "infra")
    assert infra.get_int_custom_property("blessed") == 0
    assert "loading failed" in infra.get_string_custom_property("reason")
    assert (tmp_path / "infra" / INFRA_NOT_BLESSED).exists()
    assert json.loads((tmp_path / "infra" / "report.json").read_text())["ok"] is False

    evaluator_blessing = make_artifact(standard_artifacts.ModelBlessing, tmp_path, blessed=1)
    pushed = _push(model, evaluator_blessing, infra, tmp_path / "serving", tmp_path / "pushed")
    assert pushed.get_int_custom_property("pushed") == 0
    assert not (tmp_path / "serving").exists()


def test_infra_validated_model_is_pushed_with_its_warmup_requests(saved_model_dir, flight_rows,
                                                                  tmp_path):
    examples = _examples_artifact(tmp_path / "examples", data.encode_examples(flight_rows[:80]))
    model_dir = tmp_path / "model" / "Format-Serving"
    shutil.copytree(saved_model_dir, model_dir)
    model, infra = _infra_validate(model_dir, examples, tmp_path / "infra")
    assert infra.get_int_custom_property("blessed") == 1, infra.get_string_custom_property(
        "reason")
    assert (tmp_path / "infra" / INFRA_BLESSED).exists()

    evaluator_blessing = make_artifact(standard_artifacts.ModelBlessing, tmp_path, blessed=1)
    pushed = _push(model, evaluator_blessing, infra, tmp_path / "serving", tmp_path / "pushed")
    version = pushed.get_string_custom_property("pushed_version")
    assert pushed.get_int_custom_property("pushed") == 1
    assert [p.name for p in (tmp_path / "serving").iterdir()] == [version]
    assert ((tmp_path / "serving" / version / "assets.extra" / warmup.WARMUP_FILE).read_bytes()
            == (tmp_path / "infra" / warmup.WARMUP_FILE).read_bytes())
