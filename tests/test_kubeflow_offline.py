"""The compiled Kubeflow / Vertex AI spec, executed offline task by task (tests/kfp_local.py).

The spec comes from `kubeflow_runner.compile_pipeline` with production flags for a small
continuous-training run (evaluation month 2013-04, a training window of 3 months: one
ExampleGen and StatisticsGen per month 2013-01..2013-04); the drops are delivered with
`landing.deliver` into the mapped bucket's landing zone. Every task runs the spec's own
container command (TFX's KFP v2 entrypoint, the FileBasedExampleGen driver first) with real
TFX, TF and Beam, gs:// mapped to a local folder and /pipeline to this checkout. Two jobs: the
first runs every task; the second hits the cache upstream (the drops are unchanged), resolves
the first job's blessed model as baseline, and must not push the same model again.

Three test knobs, recorded in the helper's copy of the spec (the production command line has
none): each ExampleGen samples ROWS_PER_MONTH flights of its month (after the join, as a
local `--rows-per-month` run does), the Trainer runs 2 epochs, and the Evaluator's AUC floor
is MIN_EVAL_AUC (a model trained on 2,000 flights of January and February reached 0.60 on
April, below production's 0.70). Beam runs with the spec's own `--beam direct` arguments
(DirectRunner, multi_processing, one worker per core).
"""

from __future__ import annotations

import json
import pathlib
import re
import typing

import kfp_local
import pytest

import kubeflow_runner as kr
from pipeline import landing
from pipeline.constants import EVAL_SPLIT, MONTH_SPLIT, TRAIN_SPLIT, VALIDATION_SPLIT, NodeId
from pipeline.constants import month_node as node
from pipeline.months import Month, months_before
from serving import warmup

pytestmark = pytest.mark.e2e

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUCKET_ROOT = "gs://test-bucket/flight_delay"
ROWS_PER_MONTH = 1000
MIN_EVAL_AUC = 0.5
EVAL_MONTH, TRAIN_WINDOW = Month(2013, 4), 3
WINDOW = months_before(EVAL_MONTH, TRAIN_WINDOW)  # 2013-01..2013-03, the last for validation
MONTHS = (*WINDOW, EVAL_MONTH)
FLAGS = [
    "--bucket-root",
    BUCKET_ROOT,
    "--image",
    "img:1",
    "--eval-month",
    str(EVAL_MONTH),
    "--train-window",
    str(TRAIN_WINDOW),
    "--no-tune",
    "--project",
    "p",
    "--region",
    "r",
]
RESOLVERS = {
    f"{NodeId.BASELINE_RESOLVER}-model-blessing-resolver",
    f"{NodeId.BASELINE_RESOLVER}-model-resolver",
}
PER_MONTH = {NodeId.EXAMPLE_GEN, NodeId.STATISTICS_GEN}
COMPONENTS = {
    value
    for name, value in vars(NodeId).items()
    if name.isupper() and value not in {NodeId.TUNER, NodeId.BASELINE_RESOLVER, *PER_MONTH}
} | {node(kind, month) for kind in PER_MONTH for month in MONTHS}
UPSTREAM = {  # inputs unchanged in the second job: cache hits
    *(node(kind, month) for kind in PER_MONTH for month in MONTHS),
    NodeId.SCHEMA_GEN,
    NodeId.DATA_VALIDATOR,
    NodeId.TRAINING_WINDOW,
    NodeId.EVALUATION_WINDOW,
    NodeId.TRANSFORM,
    NodeId.TRAINER,
    NodeId.INFRA_VALIDATOR,
}


def _constant(job: dict, task: str, parameter: str) -> str:
    value = job["pipelineSpec"]["root"]["dag"]["tasks"][task]["inputs"]["parameters"][parameter]
    return value["runtimeValue"]["constantValue"]["stringValue"]


def _floor(eval_config: str) -> str:
    """The Evaluator's eval_config (EvalConfig JSON) with the test's AUC floor."""
    config = json.loads(eval_config)
    (auc,) = [m for s in config["metrics_specs"] for m in s["metrics"] if m["class_name"] == "AUC"]
    (threshold,) = auc["per_slice_thresholds"]
    assert threshold["threshold"]["value_threshold"]["lower_bound"] == 0.7  # production's
    threshold["threshold"]["value_threshold"]["lower_bound"] = MIN_EVAL_AUC
    return json.dumps(config)


def _sampled(custom_config: str) -> str:
    """An ExampleGen's custom_config (CustomConfig JSON, a packed Struct) with the sample size."""
    config = json.loads(custom_config)
    config["custom_config"]["value"]["rows_per_month"] = ROWS_PER_MONTH
    return json.dumps(config)


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    """The spec compiled by the production code, ready to run offline, with the months'
    drops delivered to the mapped bucket's landing zone."""
    workspace = tmp_path_factory.mktemp("kfp-offline")
    settings, _ = kr.settings_from([*FLAGS, "--output-dir", str(workspace / "build")], environ={})
    assert settings.landing_root == f"{BUCKET_ROOT}/landing"
    spec_file = kr.compile_pipeline(settings)
    job = json.loads(pathlib.Path(spec_file).read_text())
    trainer_config = json.loads(_constant(job, NodeId.TRAINER, "custom_config"))
    overrides = {
        NodeId.TRAINER: {"custom_config": json.dumps({**trainer_config, "max_epochs": 2})},
        NodeId.EVALUATOR: {"eval_config": _floor(_constant(job, NodeId.EVALUATOR, "eval_config"))},
        **{
            node(NodeId.EXAMPLE_GEN, month): {
                "custom_config": _sampled(
                    _constant(job, node(NodeId.EXAMPLE_GEN, month), "custom_config")
                )
            }
            for month in MONTHS
        },
    }
    offline = kfp_local.OfflineRunner(
        spec_file,
        workspace / "run",
        image_paths={kr.IMAGE_SOURCE_DIR: str(ROOT)},  # what the Dockerfile copies
        workdir=ROOT,  # the image's WORKDIR
        parameter_overrides=overrides,
    )
    assert offline.paths.applied == {
        "gs://test-bucket": str(workspace / "run" / "gcs" / "test-bucket"),
        kr.IMAGE_SOURCE_DIR: str(ROOT),
    }
    landing_zone = pathlib.Path(offline.paths.local(settings.landing_root))
    assert landing.deliver(landing_zone, MONTHS) == list(MONTHS)
    return Offline(offline, settings)


class Offline(typing.NamedTuple):
    runner: kfp_local.OfflineRunner
    settings: kr.ProductionSettings

    @property
    def tasks(self) -> dict:
        return self.runner.tasks

    def local(self, uri: str) -> pathlib.Path:
        return pathlib.Path(self.runner.paths.local(uri))


def _versions(offline: Offline) -> list[str]:
    base = offline.local(offline.settings.serving_model_dir)
    return sorted(p.name for p in base.iterdir()) if base.exists() else []


def _records(path: pathlib.Path):
    import tensorflow as tf

    return tf.data.TFRecordDataset(str(path), compression_type="GZIP").as_numpy_iterator()


@pytest.fixture(scope="module")
def first_job(runner):
    job = runner.runner.run_job(check=False)
    return job, _versions(runner)


@pytest.fixture(scope="module")
def second_job(runner, first_job):
    return runner.runner.run_job(check=False), _versions(runner)


def test_every_task_of_the_spec_runs(runner, first_job):
    job, _ = first_job
    assert set(runner.tasks) == COMPONENTS | RESOLVERS
    expected = {name: "executed" for name in COMPONENTS} | {name: "resolved" for name in RESOLVERS}
    assert job.states() == expected, job.report()
    # Nothing blessed yet: the baseline resolvers find nothing, the Evaluator runs without one.
    assert {name: job.tasks[name].outputs for name in RESOLVERS} == {
        f"{NodeId.BASELINE_RESOLVER}-model-blessing-resolver": {"model_blessing": []},
        f"{NodeId.BASELINE_RESOLVER}-model-resolver": {"model": []},
    }


def test_each_month_is_ingested_from_the_landing_zone_with_its_span(runner, first_job):
    job, _ = first_job
    landing_zone = runner.local(runner.settings.landing_root)
    for month in MONTHS:
        examples = job.artifact(node(NodeId.EXAMPLE_GEN, month), "examples")
        assert examples is not None, job.report()
        assert examples.metadata.get("span") == month.span, (
            f"{month}: the Examples do not carry span {month.span}: metadata {examples.metadata}"
        )
        # The version is the drop's delivery: its newest file's modification time.
        delivered = max(p.stat().st_mtime_ns for p in (landing_zone / str(month)).iterdir())
        assert examples.metadata.get("version") == delivered // 1_000_000_000, examples.metadata
        assert json.loads(examples.metadata["split_names"]) == [MONTH_SPLIT]
        rows = sum(
            1
            for path in pathlib.Path(examples.uri, f"Split-{MONTH_SPLIT}").iterdir()
            for _ in _records(path)
        )
        assert rows == ROWS_PER_MONTH, month


def test_the_windows_gather_the_months_by_span_and_validation_passes(first_job):
    job, _ = first_job
    training = job.artifact(NodeId.TRAINING_WINDOW, "examples")
    assert json.loads(training.metadata["split_names"]) == [TRAIN_SPLIT, VALIDATION_SPLIT]
    assert json.loads(training.metadata["spans"]) == {
        TRAIN_SPLIT: [m.span for m in WINDOW[:-1]],
        VALIDATION_SPLIT: [WINDOW[-1].span],
    }
    evaluation = job.artifact(NodeId.EVALUATION_WINDOW, "examples")
    assert json.loads(evaluation.metadata["spans"]) == {EVAL_SPLIT: [EVAL_MONTH.span]}
    assert json.loads(evaluation.metadata["split_names"]) == [EVAL_SPLIT]
    anomalies = job.artifact(NodeId.DATA_VALIDATOR, "anomalies")
    assert json.loads(anomalies.metadata["split_names"]) == [str(m) for m in MONTHS]
    assert anomalies.metadata.get("drift_findings") == 0, anomalies.metadata


def test_the_blessed_model_is_pushed_with_its_warmup_requests(runner, first_job):
    job, versions = first_job
    pushed = job.artifact(NodeId.PUSHER, "pushed_model")
    assert pushed is not None, job.report()
    assert pushed.metadata.get("pushed") == 1, pushed.metadata
    assert job.artifact(NodeId.EVALUATOR, "blessing").metadata["blessed"] == 1
    version = pushed.metadata["pushed_version"]
    assert versions == [version] and re.fullmatch(r"\d+", version)
    folder = runner.local(runner.settings.serving_model_dir) / version
    assert pushed.metadata["pushed_destination"] == str(folder)
    assert (folder / "saved_model.pb").is_file()
    assert (folder / warmup.WARMUP_DIR / warmup.WARMUP_FILE).stat().st_size > 0


def test_mobile_variants_are_published_with_the_serving_version(runner, first_job):
    job, versions = first_job
    mobile = job.artifact(NodeId.MOBILE_EXPORT, "mobile_models")
    assert mobile is not None, job.report()
    assert mobile.schema_title == "pipeline.MobileModels"
    assert not mobile.metadata.get("reason"), mobile.metadata  # some variant passed its gate
    pushed = job.artifact(NodeId.PUSHER, "pushed_model")
    folder = runner.local(runner.settings.mobile_model_dir) / versions[0]
    assert pushed.metadata.get("mobile_destination") == str(folder), pushed.metadata
    files = {p.name for p in folder.iterdir()}
    assert {"contract.json", "metrics.json", "labels.txt"} <= files
    assert any(name.endswith(".tflite") for name in files), files
    contract = json.loads((folder / "contract.json").read_text())
    assert contract["version"] == int(versions[0])
    # The months the compiled spec fixed: the training window and the evaluation month.
    assert contract["training_data"] == (
        "trained on 2013-01..2013-03 (validation 2013-03), evaluated on 2013-04"
    )


def test_a_second_job_hits_the_cache_upstream_and_pushes_no_duplicate(
    runner, first_job, second_job
):
    first, versions_before = first_job
    job, versions_after = second_job
    assert versions_before, f"the first job pushed nothing:\n{first.report()}"
    states = job.states()
    assert {name: states[name] for name in UPSTREAM} == {name: "cached" for name in UPSTREAM}, (
        job.report()
    )
    model = first.artifact(NodeId.TRAINER, "model")
    assert job.artifact(NodeId.TRAINER, "model").name == model.name  # the same artifact
    # The resolvers find the first job's blessing and, through it, the same model.
    blessing = job.artifact(f"{NodeId.BASELINE_RESOLVER}-model-blessing-resolver", "model_blessing")
    assert blessing.name == first.artifact(NodeId.EVALUATOR, "blessing").name
    baseline = job.artifact(f"{NodeId.BASELINE_RESOLVER}-model-resolver", "model")
    assert baseline is not None and baseline.name == model.name
    # A new blessing: the Evaluator and what depends on it run again.
    assert states[NodeId.EVALUATOR] == "executed"

    pushed = job.artifact(NodeId.PUSHER, "pushed_model")
    assert versions_after == versions_before, (
        f"duplicate push: the second job pushed the same model ({model.name}, cached Trainer) "
        f"again as a new serving version: versions {versions_before} -> {versions_after}; "
        f"Pusher metadata {pushed.metadata}"
    )
    assert pushed.metadata.get("pushed_version") in (None, versions_before[0]), pushed.metadata
    assert not job.failures(), job.report()
    mobile_base = runner.local(runner.settings.mobile_model_dir)
    assert sorted(p.name for p in mobile_base.iterdir()) == versions_before
