"""The compiled Kubeflow / Vertex AI spec, executed offline task by task (tests/kfp_local.py).

The spec comes from `kubeflow_runner.compile_pipeline` with production flags; every task runs
the spec's own container command (TFX's KFP v2 entrypoint, ImportExampleGen's driver first)
with real TFX, TF and Beam, gs:// mapped to a local folder and /pipeline to this checkout. Two
jobs: the first runs all 14 tasks; the second hits the cache upstream, resolves the first job's
blessed model as baseline, and must not push the same model again.

One test knob, recorded in the helper's copy of the spec (the production command line has
none): the Trainer runs 2 epochs. Beam runs with the spec's own `--beam direct` arguments
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
from pipeline import data
from pipeline.constants import EVAL_MONTHS, TRAIN_MONTHS, NodeId
from serving import warmup

pytestmark = pytest.mark.e2e

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUCKET_ROOT = "gs://test-bucket/flight_delay"
ROWS_PER_MONTH = 150
FLAGS = [
    "--bucket-root",
    BUCKET_ROOT,
    "--image",
    "img:1",
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
COMPONENTS = {
    value
    for name, value in vars(NodeId).items()
    if name.isupper() and value not in (NodeId.TUNER, NodeId.BASELINE_RESOLVER)
}
UPSTREAM = {  # inputs unchanged in the second job: cache hits
    NodeId.EXAMPLE_GEN,
    NodeId.SCHEMA_GEN,
    NodeId.STATISTICS_GEN,
    NodeId.EXAMPLE_VALIDATOR,
    NodeId.ANOMALIES_GATE,
    NodeId.TRANSFORM,
    NodeId.TRAINER,
    NodeId.INFRA_VALIDATOR,
}


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    """The spec compiled by the production code, ready to run offline, with the sample data
    prepared in the mapped data root."""
    workspace = tmp_path_factory.mktemp("kfp-offline")
    settings, _ = kr.settings_from([*FLAGS, "--output-dir", str(workspace / "build")], environ={})
    spec_file = kr.compile_pipeline(settings)
    trainer_config = json.loads(
        json.loads(pathlib.Path(spec_file).read_text())["pipelineSpec"]["root"]["dag"]["tasks"][
            NodeId.TRAINER
        ]["inputs"]["parameters"]["custom_config"]["runtimeValue"]["constantValue"]["stringValue"]
    )
    offline = kfp_local.OfflineRunner(
        spec_file,
        workspace / "run",
        image_paths={kr.IMAGE_SOURCE_DIR: str(ROOT)},  # what the Dockerfile copies
        workdir=ROOT,  # the image's WORKDIR
        parameter_overrides={
            NodeId.TRAINER: {"custom_config": json.dumps({**trainer_config, "max_epochs": 2})}
        },
    )
    assert offline.paths.applied == {
        "gs://test-bucket": str(workspace / "run" / "gcs" / "test-bucket"),
        kr.IMAGE_SOURCE_DIR: str(ROOT),
    }
    data.prepare(
        pathlib.Path(offline.paths.local(settings.data_root)),
        TRAIN_MONTHS,
        EVAL_MONTHS,
        ROWS_PER_MONTH,
    )
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


def test_import_example_gen_records_the_span(first_job):
    job, _ = first_job
    examples = job.artifact(NodeId.EXAMPLE_GEN, "examples")
    assert examples is not None, job.report()
    assert examples.metadata.get("span") == 0, (
        f"ImportExampleGen's Examples carry no span: metadata {examples.metadata}"
    )
    assert json.loads(examples.metadata["split_names"]) == ["train", "eval"]


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


def test_mobile_variants_are_published_under_the_serving_version(runner, first_job):
    job, versions = first_job
    mobile = job.artifact(NodeId.MOBILE_EXPORT, "mobile_models")
    assert mobile is not None, job.report()
    assert mobile.schema_title == "pipeline.MobileModels"
    assert mobile.metadata.get("published") == 1, mobile.metadata
    folder = runner.local(runner.settings.mobile_model_dir) / versions[0]
    assert mobile.metadata["destination"] == str(folder)
    files = {p.name for p in folder.iterdir()}
    assert {"contract.json", "metrics.json", "labels.txt"} <= files
    assert any(name.endswith(".tflite") for name in files), files
    assert json.loads((folder / "contract.json").read_text())["version"] == int(versions[0])


def test_a_second_job_hits_the_cache_upstream_and_pushes_no_duplicate(first_job, second_job):
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
    mobile = job.artifact(NodeId.MOBILE_EXPORT, "mobile_models")
    assert mobile.metadata.get("version") in (None, int(versions_before[0])), mobile.metadata
