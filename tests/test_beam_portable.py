"""Beam beyond one process: the pipeline's Beam components on Beam's PortableRunner.

The real `create_pipeline`, run by LocalDagRunner up to Transform and the evaluation window
(per month of the run an ExampleGen ingesting the month's drop from the landing zone and a
StatisticsGen; ImportSchemaGen, DataValidator, TrainingWindow, EvaluationWindow, Transform)
on drops delivered with `landing.deliver` and sampled to ROWS_PER_MONTH flights a month, once
with the DirectRunner arguments of a local run and once with the `portable` preset's
arguments pointed at Beam's own Python job service and an EXTERNAL SDK worker pool
(tests/beam_services.py): the Job API, artifact staging and the worker-pool protocol that a
Flink or Spark job server and the preset's sidecar speak. Statistics and transform output
must agree. Drift between the sampled months is recorded, not blocking (drift_action=warn):
the DataValidator's thresholds are not what this file tests.

Two ways a portable run ends in DEADLINE_EXCEEDED are pinned down as well.

Each pipeline run is a subprocess of this file (`python -P tests/test_beam_portable.py ...`)
with a timeout, so absl flags, TensorFlow state and Beam's gRPC threads stay out of pytest.
"""

from __future__ import annotations

import dataclasses
import glob
import math
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
# Run as a script (`python -P`): the project's regular packages must be on the path, or the
# namespace directory tests/pipeline/ would shadow `pipeline`; tests/ for beam_services.
for _entry in (str(REPO), str(REPO / "tests")):
    if _entry not in sys.path:
        sys.path.append(_entry)

from beam_services import PortableServices, portable_services  # noqa: E402

from pipeline.constants import MONTH_SPLIT, NodeId, month_node  # noqa: E402  (leaves)
from pipeline.months import Month, months_before  # noqa: E402

pytestmark = pytest.mark.e2e

RUN_TIMEOUT_S = 480  # one run of the pipeline head: ~175 s direct, ~190 s portable on 2 cores
ROWS_PER_MONTH = 100
EVAL_MONTH, TRAIN_WINDOW = Month(2013, 3), 2  # train 2013-01, validation 2013-02
MONTHS = (*months_before(EVAL_MONTH, TRAIN_WINDOW), EVAL_MONTH)
SPLITS = ("train", "validation")  # the training window's splits


# ---- the subprocess side ----


def run_pipeline_head(output_dir: str, landing_root: str, beam_args: list[str]) -> None:
    """Runs create_pipeline's nodes up to Transform and the evaluation window with these Beam
    arguments, ingesting the drops of `landing_root`."""
    from tfx import v1 as tfx
    from tfx.orchestration import pipeline as pipeline_py

    from pipeline.config import DriftAction, local_config
    from pipeline.pipeline import create_pipeline

    config = dataclasses.replace(
        local_config(
            pathlib.Path(output_dir),
            rows_per_month=ROWS_PER_MONTH,
            eval_months=(EVAL_MONTH,),
            train_window=TRAIN_WINDOW,
            drift_action=DriftAction.WARN,
            tune=False,
            enable_cache=False,
            beam_pipeline_args=tuple(beam_args),
        ),
        landing_root=landing_root,
        mobile_model_dir=None,
    )
    assert config.months == MONTHS, config.months
    tfx.orchestration.LocalDagRunner().run(
        create_pipeline(config),
        run_options=pipeline_py.RunOptions(to_nodes=[NodeId.TRANSFORM, NodeId.EVALUATION_WINDOW]),
    )


def run_sleeping_job(seconds: float, beam_args: list[str]) -> None:
    """A plain Beam job whose one element takes `seconds`."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    with beam.Pipeline(options=PipelineOptions(beam_args)) as p:
        _ = p | beam.Create([seconds]) | beam.Map(lambda s: time.sleep(s) or s)


def _script(args: list[str], log: pathlib.Path, tmp: pathlib.Path, timeout_s: float):
    """Runs this file with `args`; returns (exit code, seconds, output). Killed on timeout."""
    tmp.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "TMPDIR": str(tmp), "TF_CPP_MIN_LOG_LEVEL": "2"}
    start = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-P", __file__, *args],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            code = proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            code = None
    return code, time.monotonic() - start, log.read_text(errors="replace")


# ---- fixtures ----


@pytest.fixture(scope="module")
def landing_zone(tmp_path_factory) -> pathlib.Path:
    """The months' drops, whole (ExampleGen samples ROWS_PER_MONTH after the join)."""
    from pipeline import landing

    root = tmp_path_factory.mktemp("landing")
    assert landing.deliver(root, MONTHS) == list(MONTHS)
    return root


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    with portable_services(tmp_path_factory.mktemp("services")) as running:
        yield running


@dataclasses.dataclass
class Run:
    root: pathlib.Path  # the pipeline root
    seconds: float
    job_service_log: str = ""  # what the job service logged during the run

    def one(self, pattern: str) -> pathlib.Path:
        (found,) = glob.glob(str(self.root / pattern))
        return pathlib.Path(found)


def _run_head(tmp: pathlib.Path, landing_root: pathlib.Path, beam_args: list[str]) -> Run:
    code, seconds, output = _script(
        ["head", str(tmp / "out"), str(landing_root), *beam_args],
        tmp / "run.log",
        tmp / "tmp",
        RUN_TIMEOUT_S,
    )
    assert code == 0, f"exit {code} after {seconds:.0f} s:\n{output[-6000:]}"
    (root,) = (tmp / "out" / "pipeline_root").iterdir()
    return Run(root, seconds)


@pytest.fixture(scope="module")
def portable_run(services, landing_zone, tmp_path_factory) -> Run:
    before = len(services.job_service_log())
    run = _run_head(tmp_path_factory.mktemp("portable"), landing_zone, services.pipeline_args())
    run.job_service_log = services.job_service_log()[before:]
    return run


@pytest.fixture(scope="module")
def direct_run(landing_zone, tmp_path_factory) -> Run:
    import local_runner

    return _run_head(tmp_path_factory.mktemp("direct"), landing_zone, list(local_runner.BEAM_ARGS))


# ---- comparison helpers ----


def _assert_close(a, b, where: str = "", *, rel_tol: float = 1e-6, abs_tol: float = 1e-9) -> None:
    """Equal structures; floats within `rel_tol`/`abs_tol` (the combine order may differ)."""
    if isinstance(a, dict):
        assert sorted(a) == sorted(b), f"{where}: keys {sorted(a)} != {sorted(b)}"
        for key in a:
            _assert_close(a[key], b[key], f"{where}.{key}", rel_tol=rel_tol, abs_tol=abs_tol)
    elif isinstance(a, list):
        assert len(a) == len(b), f"{where}: {len(a)} != {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_close(x, y, f"{where}[{i}]", rel_tol=rel_tol, abs_tol=abs_tol)
    elif isinstance(a, float) or isinstance(b, float):
        assert math.isclose(a, b, rel_tol=rel_tol, abs_tol=abs_tol), f"{where}: {a} != {b}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def _statistics_file(run: Run, month: Month) -> pathlib.Path:
    """A month's statistics (its StatisticsGen's one split, `month`)."""
    node = month_node(NodeId.STATISTICS_GEN, month)
    return run.one(f"{node}/statistics/*/Split-{MONTH_SPLIT}/FeatureStats.pb")


def _statistics(run: Run, month: Month) -> dict:
    from google.protobuf import json_format
    from tensorflow_metadata.proto.v0 import statistics_pb2

    stats = statistics_pb2.DatasetFeatureStatisticsList()
    stats.ParseFromString(_statistics_file(run, month).read_bytes())
    return json_format.MessageToDict(stats)


def _window_records(run: Run) -> list[bytes]:
    """The raw tf.Examples of the run's training window (train and validation splits)."""
    import tensorflow as tf

    files = sorted(glob.glob(str(run.root / "TrainingWindow/examples/*/Split-*/*")))
    assert files
    return [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]


def _transformed(run: Run, records: list[bytes]) -> dict:
    """`records` through the run's transform graph, as the Trainer applies it (materialize is
    off): {feature: list of values}, rows in the records' order."""
    import tensorflow as tf
    import tensorflow_transform as tft

    from transforms import features as F

    output = tft.TFTransformOutput(str(run.one("Transform/transform_graph/*")))
    raw = tf.io.parse_example(records, F.raw_feature_spec())
    return {k: v.numpy().tolist() for k, v in output.transform_raw_features(raw).items()}


# ---- tests ----


def test_the_pipeline_head_runs_through_the_job_service_and_external_workers(
    portable_run, services: PortableServices
):
    jobs = portable_run.job_service_log
    # One Beam job per Beam component: per month an ExampleGen and a StatisticsGen; Transform.
    beam_jobs = 2 * len(MONTHS) + 1
    assert jobs.count("Running job") == beam_jobs, jobs[-4000:]
    assert jobs.count("with state DONE") == beam_jobs, jobs[-4000:]
    assert "Starting worker with command" in services.worker_pool_log()
    # Without --sdk_container_image (or --setup_file / --extra_package(s)) TFX would pack its
    # own install into an sdist and stage it with every job (tfx/utils/dependency_utils.py,
    # make_beam_dependency_flags); the preset names the image, so nothing of TFX is staged.
    assert glob.glob(str(services.staging_dir / "*" / "*tfx_ephemeral-*.tar.gz")) == []
    for month in MONTHS:
        assert _statistics_file(portable_run, month)
    # Transform analyzes only: the Trainer applies the graph to the raw window itself.
    assert portable_run.one("Transform/transform_graph/*/transform_fn/saved_model.pb")
    assert glob.glob(str(portable_run.root / "Transform/transformed_examples")) == []
    # The windows gather the months' Examples by span; the DataValidator saw every month.
    assert len(glob.glob(str(portable_run.root / "TrainingWindow/examples/*/Split-train/*"))) >= 1
    assert glob.glob(str(portable_run.root / "EvaluationWindow/examples/*/Split-eval/*"))
    assert portable_run.one("DataValidator/anomalies/*/findings.json")
    print(f"portable run of the pipeline head: {portable_run.seconds:.0f} s")


def test_statistics_equal_the_direct_runners(portable_run, direct_run):
    for month in MONTHS:
        portable, direct = _statistics(portable_run, month), _statistics(direct_run, month)
        (dataset,) = portable["datasets"]
        assert int(dataset["numExamples"]) == ROWS_PER_MONTH
        assert len(dataset["features"]) > 20
        _assert_close(portable, direct, f"statistics[{month}]")
    print(f"direct run of the pipeline head: {direct_run.seconds:.0f} s")


def test_the_transform_graph_equals_the_direct_runners(portable_run, direct_run):
    graph_p = portable_run.one("Transform/transform_graph/*")
    graph_d = direct_run.one("Transform/transform_graph/*")
    vocabularies = sorted(p.name for p in (graph_d / "transform_fn/assets").iterdir())
    assert len(vocabularies) >= 5
    assert sorted(p.name for p in (graph_p / "transform_fn/assets").iterdir()) == vocabularies
    for name in vocabularies:
        assert (graph_p / "transform_fn/assets" / name).read_bytes() == (
            graph_d / "transform_fn/assets" / name
        ).read_bytes(), f"vocabulary {name} differs"
    schema = "transformed_metadata/schema.pbtxt"
    assert (graph_p / schema).read_text() == (graph_d / schema).read_text()
    records = _window_records(direct_run)
    assert len(records) == ROWS_PER_MONTH * len(SPLITS)  # train 2013-01, validation 2013-02
    portable, direct = _transformed(portable_run, records), _transformed(direct_run, records)
    # float32 z-scores, (x - mean) / std, of O(1): the analyzers' mean and variance summed
    # in another order differ in their last float32 bits (2^-24 ~ 6e-8 relative), and
    # x - mean amplifies that (CI saw 0.5148645 vs 0.5148639). A wrong analysis (another
    # mean, a missing row) differs by far more than 1e-5.
    _assert_close(portable, direct, "transformed", rel_tol=1e-5, abs_tol=1e-5)


def test_a_job_longer_than_job_server_timeout_ends_in_deadline_exceeded(
    services: PortableServices, tmp_path
):
    """--job_server_timeout (default 300 s) is also the deadline of the client's job state
    stream: a job that runs longer fails in the client although it is still running."""
    code, seconds, output = _script(
        ["sleep", "12", *services.pipeline_args(job_server_timeout_s=4)],
        tmp_path / "run.log",
        tmp_path / "tmp",
        120,
    )
    assert code not in (0, None), output[-4000:]
    assert "DEADLINE_EXCEEDED" in output, output[-4000:]
    assert seconds < 60


def test_a_worker_pool_whose_python_lacks_beam_never_starts_a_worker(tmp_path):
    """The pool runs `python -c ...SdkHarness...` from its PATH: if that `python` cannot run
    the harness, the worker dies, the job service waits for it forever, and the client gives
    up at --job_server_timeout with DEADLINE_EXCEEDED (no error names the cause: only the
    pool's log shows the worker's failure)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "python"
    fake.write_text(
        "#!/bin/sh\necho \"ModuleNotFoundError: No module named 'apache_beam'\" >&2\nexit 1\n"
    )
    fake.chmod(0o755)
    with portable_services(tmp_path / "services", worker_path=f"{bin_dir}:/usr/bin:/bin") as s:
        code, _, output = _script(
            ["sleep", "0", *s.pipeline_args(job_server_timeout_s=8)],
            tmp_path / "run.log",
            tmp_path / "tmp",
            120,
        )
        assert code not in (0, None), output[-4000:]
        assert "DEADLINE_EXCEEDED" in output, output[-4000:]
        pool = s.worker_pool_log()
        assert "Starting worker with command ['python', '-c'" in pool
        assert "No module named 'apache_beam'" in pool
        assert "Completed job" not in s.job_service_log()


if __name__ == "__main__":
    command, *rest = sys.argv[1:]
    if command == "head":
        run_pipeline_head(rest[0], rest[1], rest[2:])
    elif command == "sleep":
        run_sleeping_job(float(rest[0]), rest[1:])
    else:
        sys.exit(f"unknown command {command!r}")
