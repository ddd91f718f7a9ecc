"""MobileExport and the Pusher run as the pipeline wires them: a version's serving model and
its TFLite variants are published together, or neither when anything before fails."""

from __future__ import annotations

import json
import pathlib
import shutil

import pytest
from google.protobuf import json_format, message
from tfx.types import standard_artifacts

from artifacts import evaluation_artifact, examples_artifact, make_artifact
from mobile import quantize, runtime
from mobile.config import MobileConfig
from pipeline import model_card
from pipeline.config import local_config
from pipeline.constants import EVAL_SPLIT, TRAIN_SPLIT, NodeId
from pipeline.pipeline import create_pipeline
from serving import push, warmup

pytestmark = pytest.mark.component

PUBLISHING = (NodeId.MOBILE_EXPORT, NodeId.PUSHER)
CARD_FILES = (model_card.JSON_FILE, model_card.MARKDOWN_FILE, model_card.HTML_FILE)


@pytest.fixture
def run(saved_model_dir, transform_output_dir, records, tmp_path):
    """Runs the executors of MobileExport and the Pusher as an orchestrator does: in the
    pipeline's order, each input being the artifact its channel's producer made (upstream
    ones stand in for a blessed model), stopping at the first failure. Returns the config
    and the artifacts by (node id, output key)."""
    config = local_config(
        tmp_path / "output",
        mobile=MobileConfig(min_parity_rows=500, representative_rows=100, latency_runs=30),
    )
    shutil.copytree(saved_model_dir, tmp_path / "model" / "Format-Serving")
    (tmp_path / "tuner").mkdir()
    (tmp_path / "tuner" / "best_hyperparameters.txt").write_text(
        json.dumps({"space": [], "values": {"learning_rate": 0.003, "hidden_units": 64}})
    )
    (tmp_path / "infra").mkdir()
    (tmp_path / "infra" / warmup.WARMUP_FILE).write_bytes(b"warmup records")
    artifacts = {
        (NodeId.TRAINER, "model"): make_artifact(standard_artifacts.Model, tmp_path / "model"),
        (NodeId.TRANSFORM, "transform_graph"): make_artifact(
            standard_artifacts.TransformGraph, transform_output_dir
        ),
        (NodeId.EVALUATION_WINDOW, "examples"): examples_artifact(
            tmp_path / "eval", {EVAL_SPLIT: records}
        ),
        (NodeId.TRAINING_WINDOW, "examples"): examples_artifact(
            tmp_path / "train", {TRAIN_SPLIT: records[:100]}
        ),
        (NodeId.EVALUATOR, "blessing"): make_artifact(
            standard_artifacts.ModelBlessing, tmp_path, blessed=1
        ),
        (NodeId.EVALUATOR, "evaluation"): evaluation_artifact(
            tmp_path / "evaluation", {(): {"example_count": 500.0, "auc": 0.71}}
        ),
        (NodeId.TUNER, "best_hyperparameters"): make_artifact(
            standard_artifacts.HyperParameters, tmp_path / "tuner"
        ),
        (NodeId.INFRA_VALIDATOR, "blessing"): make_artifact(
            standard_artifacts.InfraBlessing, tmp_path / "infra", blessed=1
        ),
    }

    def publishing_nodes():
        for node in create_pipeline(config).components:
            if node.id not in PUBLISHING:
                continue
            inputs = {
                key: [artifacts[(channel.producer_component_id, channel.output_key)]]
                for key, channel in node.inputs.items()
            }
            outputs = {}
            for key, channel in node.outputs.items():
                (tmp_path / node.id / key).mkdir(parents=True)
                outputs[key] = [make_artifact(channel.type, tmp_path / node.id / key)]
                artifacts[(node.id, key)] = outputs[key][0]
            properties = {
                key: json_format.MessageToJson(value)
                if isinstance(value, message.Message)
                else value
                for key, value in node.exec_properties.items()
                if value is not None
            }
            node.executor_spec.executor_class().Do(inputs, outputs, properties)
        return config, artifacts

    return publishing_nodes


def _tree(folder: pathlib.Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_a_mobile_export_that_fails_leaves_serving_and_mobile_byte_identical(
    run, tmp_path, monkeypatch
):
    """E.g. the converter crashing on the model: no serving version without its variants."""
    output = tmp_path / "output"
    for base, name in (("serving_model", "saved_model.pb"), ("mobile", "contract.json")):
        (output / base / "flight_delay" / "1700000000").mkdir(parents=True)
        (output / base / "flight_delay" / "1700000000" / name).write_bytes(b"the served one")
    before = _tree(output / "serving_model"), _tree(output / "mobile")

    def crash(*args, **kwargs):
        raise RuntimeError("the converter crashed")

    monkeypatch.setattr(quantize, "export_for_conversion", crash)
    with pytest.raises(RuntimeError, match="the converter crashed"):
        run()
    assert (_tree(output / "serving_model"), _tree(output / "mobile")) == before
    assert not (tmp_path / NodeId.PUSHER).exists()  # the Pusher never started


def test_a_blessed_model_and_its_variants_are_published_under_one_version(run):
    config, artifacts = run()
    pushed = artifacts[(NodeId.PUSHER, "pushed_model")]
    mobile_models = artifacts[(NodeId.MOBILE_EXPORT, "mobile_models")]
    version = pushed.get_string_custom_property("pushed_version")
    assert push.versions(config.serving_model_dir) == push.versions(config.mobile_model_dir)
    assert [str(v) for v in push.versions(config.serving_model_dir)] == [version]
    destination = pathlib.Path(pushed.get_string_custom_property("mobile_destination"))
    assert destination == pathlib.Path(config.mobile_model_dir) / version
    assert mobile_models.get_string_custom_property("reason") == ""
    metrics = json.loads((destination / "metrics.json").read_text())
    accepted = {name for name, v in metrics["variants"].items() if v["published"]}
    assert accepted and set(metrics["variants"]) == set(quantize.QUANTIZERS)
    assert {p.name for p in destination.iterdir()} == {
        runtime.file_name(name) for name in accepted
    } | {"labels.txt", "contract.json", "metrics.json", *CARD_FILES}
    contract = json.loads((destination / "contract.json").read_text())
    served = pathlib.Path(config.serving_model_dir) / version
    # The version's model card, the same in both folders, with the evaluation's AUC.
    card_dir = served / model_card.SERVING_CARD_DIR
    assert {p.name for p in card_dir.iterdir()} == set(CARD_FILES)
    for name in CARD_FILES:
        assert (card_dir / name).read_bytes() == (destination / name).read_bytes()
    card = json.loads((destination / model_card.JSON_FILE).read_text())
    overall = {
        m["type"]: m["value"]
        for m in card["quantitative_analysis"]["performance_metrics"]
        if m["slice"] == "overall"
    }
    assert overall["auc"] == 0.71
    assert contract["version"] == int(version)
    assert contract["model_fingerprint"] == push.fingerprint(str(served)) is not None
