"""The whole pipeline on a sample of the real data, with LocalDagRunner and SQLite MLMD.

One module-scoped run, then: an unchanged re-run (fully cached), a run whose AUC floor cannot
be met (nothing pushed), and a run over a corrupted span (stopped before Pusher).
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import shutil

import pytest
import tensorflow as tf

from mobile import runtime
from mobile.config import MobileConfig
from mobile.quantize import QUANTIZERS
from models.config import TrainingConfig
from models.constants import EXAMPLES_SIGNATURE, OUTPUT_KEY, PREDICT_SIGNATURE
from pipeline import local
from pipeline.config import local_config
from pipeline.constants import NodeId
from serving import contract, warmup
from transforms import features as F

pytestmark = pytest.mark.e2e

ROWS_PER_MONTH = 250
COMPONENTS = {value for name, value in vars(NodeId).items() if name.isupper()}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> pathlib.Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="module")
def config(workspace):
    return local_config(
        workspace,
        rows_per_month=ROWS_PER_MONTH,
        min_eval_auc=0.5,
        training=TrainingConfig(batch_size=128, max_epochs=2, tuner_trials=2, tuner_epochs=1),
        # 500 eval rows here; a tiny model may lose more AUC to int8 than a real one.
        mobile=MobileConfig(
            min_parity_rows=400, representative_rows=100, latency_runs=50, auc_tolerance=0.05
        ),
    )


@pytest.fixture(scope="module")
def first_run(config, workspace) -> dict:
    return local.run(config, workspace / "runs")


def _versions(config, base: str | None = None) -> list[str]:
    base = pathlib.Path(base or config.serving_model_dir)
    return sorted(p.name for p in base.iterdir()) if base.exists() else []


def _states(summary: dict) -> dict[str, list[str]]:
    states: dict[str, list[str]] = {}
    for component in summary["components"]:
        states.setdefault(component["component"], []).append(component["state"])
    return states


def test_every_component_executes_once(first_run):
    assert first_run["status"] == "succeeded", first_run["error"]
    assert _states(first_run) == {name: ["ran"] for name in COMPONENTS}


def test_summary_reports_rows_metrics_blessing_and_push(first_run, config):
    assert first_run["rows"] == {"train": 10 * ROWS_PER_MONTH, "eval": 2 * ROWS_PER_MONTH}
    overall = first_run["eval_metrics"]["overall"]
    assert overall["example_count"] == 2 * ROWS_PER_MONTH
    assert 0.5 <= overall["auc"] <= 1.0
    assert 0.0 < overall["mean_prediction"] < 1.0
    slices = set(first_run["eval_metrics"])
    assert {"month=11", "month=12", "origin=EWR", "origin=JFK", "origin=LGA"} <= slices
    assert any(s.startswith("carrier=") for s in slices)
    assert first_run["blessed"] is True and first_run["validation"]["ok"] is True
    assert first_run["infra_validation"]["ok"] is True
    assert first_run["infra_validation"]["detail"] == (
        f"{len(warmup.PREDICT_BATCHES) + len(warmup.CLASSIFY_BATCHES)} requests answered"
    )
    assert first_run["pushed"] is True
    assert first_run["pushed_destination"] == str(
        pathlib.Path(config.serving_model_dir) / first_run["pushed_version"]
    )

    written = json.loads(pathlib.Path(first_run["summary_file"]).read_text())
    assert written == first_run


def test_blessed_model_gets_tflite_variants_under_the_serving_version(first_run, config):
    mobile = first_run["mobile"]
    version = first_run["pushed_version"]
    assert mobile["published"] is True
    assert mobile["destination"] == str(pathlib.Path(config.mobile_model_dir) / version)
    assert set(mobile["variants"]) == set(QUANTIZERS)
    assert mobile["variants"]["float32"]["published"] is True
    assert mobile["variants"]["float32"]["max_abs_diff"] <= 1e-4
    published = {name for name, v in mobile["variants"].items() if v["published"]}
    files = {p.name for p in pathlib.Path(mobile["destination"]).iterdir()}
    assert files == {runtime.file_name(n) for n in published} | {
        "labels.txt",
        "contract.json",
        "metrics.json",
    }
    contract = json.loads((pathlib.Path(mobile["destination"]) / "contract.json").read_text())
    assert contract["version"] == int(version)
    assert contract["training_data"] == "trained on 2013-01..2013-10, evaluated on 2013-11..2013-12"


def test_pushed_model_uses_the_tf_serving_layout_and_answers_both_signatures(first_run, config):
    (version,) = _versions(config)
    assert version.isdigit() and version == first_run["pushed_version"]
    model_dir = pathlib.Path(config.serving_model_dir) / version
    assert (model_dir / "saved_model.pb").exists() and (model_dir / "variables").is_dir()
    assert [p.name for p in model_dir.parent.iterdir()] == [version]  # no staging left behind
    assert contract.check(str(model_dir)) == []

    eval_file = pathlib.Path(config.data_root) / "eval" / "2013-12.tfrecord"
    records = [r.numpy() for r in tf.data.TFRecordDataset(str(eval_file)).take(5)]
    parsed = tf.io.parse_example(records, F.raw_feature_spec())
    request = {}
    for feature in F.FEATURES:
        value = parsed[feature.name]
        if isinstance(value, tf.SparseTensor):
            value = tf.sparse.to_dense(
                tf.sparse.reset_shape(value, [len(records), 1]),
                "" if feature.dtype is str else float("nan"),
            )
        request[feature.name] = tf.reshape(value, [-1])

    model = tf.saved_model.load(str(model_dir))
    by_examples = model.signatures[EXAMPLES_SIGNATURE](examples=tf.constant(records))
    by_raw = model.signatures[PREDICT_SIGNATURE](**request)
    assert by_raw[OUTPUT_KEY].shape == (5,)
    tf.debugging.assert_near(by_raw[OUTPUT_KEY], by_examples[OUTPUT_KEY], atol=1e-5)

    # TF Serving replays these at load: real eval rows, both Predict and Classify requests.
    logs = warmup.read(str(model_dir / "assets.extra" / "tf_serving_warmup_requests"))
    assert [log.WhichOneof("log_type") for log in logs] == (
        ["predict_log"] * len(warmup.PREDICT_BATCHES)
        + ["classify_log"] * len(warmup.CLASSIFY_BATCHES)
    )
    assert warmup.replay(model, logs) == []


def test_unchanged_rerun_is_fully_cached_and_pushes_nothing_new(first_run, config, workspace):
    second = local.run(config, workspace / "runs")
    assert second["status"] == "succeeded"
    assert second["run_id"] != first_run["run_id"]
    assert second["all_cached"] is True
    states = _states(second)
    assert states.pop("latest_blessed_model_resolver") == ["ran"]
    assert states == {name: ["cached"] for name in COMPONENTS - {"latest_blessed_model_resolver"}}
    assert _versions(config) == [first_run["pushed_version"]]


def test_unreachable_auc_floor_blocks_the_push_and_says_why(first_run, config, workspace):
    strict = dataclasses.replace(config, min_eval_auc=0.99)
    result = local.run(strict, workspace / "runs")
    assert result["status"] == "succeeded"
    assert _states(result)[NodeId.TRAINER] == ["cached"]
    assert _states(result)[NodeId.EVALUATOR] == ["ran"]
    assert result["blessed"] is False and result["pushed"] is False
    assert any(
        "auc" in reason and "below the floor 0.99" in reason
        for reason in result["validation"]["failures"]
    )
    assert _versions(config) == [first_run["pushed_version"]]
    assert result["mobile"] == {
        "published": False,
        "destination": None,
        "reason": "the model was not blessed",
        "variants": {},
    }
    assert _versions(config, config.mobile_model_dir) == [first_run["pushed_version"]]


def _drop_distance(example: tf.train.Example) -> None:
    del example.features.feature["distance"]


def _carrier_as_number(example: tf.train.Example) -> None:
    example.features.feature["carrier"].Clear()
    example.features.feature["carrier"].int64_list.value.append(7)


def _rewrite(span: pathlib.Path, corrupt) -> None:
    examples = []
    for record in tf.data.TFRecordDataset(str(span)):
        example = tf.train.Example.FromString(record.numpy())
        corrupt(example)
        examples.append(example.SerializeToString())
    with tf.io.TFRecordWriter(str(span)) as writer:
        for example in examples:
            writer.write(example)


@pytest.mark.parametrize(
    "corrupt, failed_component, named",
    [
        # An absent column is a schema anomaly: the gate stops the run and names it.
        (_drop_distance, "AnomaliesGate", ["AnomaliesFound", "feature 'distance'"]),
        # A column of the wrong type cannot even be profiled: StatisticsGen stops the run.
        (_carrier_as_number, NodeId.STATISTICS_GEN, ["wrong type", '"carrier"']),
    ],
    ids=["missing-column", "wrong-type"],
)
def test_bad_span_stops_the_run_before_pusher_and_names_the_column(
    first_run, config, workspace, corrupt, failed_component, named
):
    bad_root = workspace / f"bad-data-{corrupt.__name__}"
    shutil.copytree(config.data_root, bad_root)
    _rewrite(bad_root / "eval" / "2013-12.tfrecord", corrupt)
    before = _versions(config)

    result = local.run(dataclasses.replace(config, data_root=str(bad_root)), workspace / "runs")
    assert result["status"] == "failed"
    for text in named:
        assert text in result["error"]
    states = _states(result)
    assert states[failed_component] == ["failed"]
    assert NodeId.TRAINER not in states and NodeId.PUSHER not in states
    assert NodeId.MOBILE_EXPORT not in states
    assert _versions(config) == before


def test_a_new_model_is_compared_with_the_latest_blessed_one(first_run, config, workspace):
    retrained = dataclasses.replace(
        config,
        max_auc_drop=1.0,  # any change passes: this checks the comparison is made
        training=dataclasses.replace(config.training, max_epochs=1),
    )
    result = local.run(retrained, workspace / "runs")
    assert result["status"] == "succeeded", result["error"]
    assert _states(result)[NodeId.TRAINER] == ["ran"]
    assert result["baseline_model"] is not None
    assert result["baseline_model"] != first_run["baseline_model"]  # None the first time
    assert result["blessed"] is True and result["pushed"] is True
    overall = result["eval_metrics"]["overall"]
    assert 0.5 <= overall["auc"] <= 1.0
    assert "auc_diff" in overall and "auc_diff" not in first_run["eval_metrics"]["overall"]
    assert _versions(config) == sorted([first_run["pushed_version"], result["pushed_version"]])
    assert _versions(config, config.mobile_model_dir) == _versions(config)
