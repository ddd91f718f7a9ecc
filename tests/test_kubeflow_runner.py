"""kubeflow_runner.py, offline. Unit: the command line (flags, FLIGHT_DELAY_* variables,
defaults, errors, --help) without TFX. Component: compile each preset, read the spec back with
KFP's protobuf, and submit to fake Vertex / KFP clients."""

from __future__ import annotations

import dataclasses
import json
import pathlib
import re
import subprocess
import sys
import typing

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

import kubeflow_runner as kr
from pipeline.config import DEFAULT_EVAL_MONTHS, DEFAULT_TRAIN_WINDOW, DriftAction
from pipeline.constants import NodeId
from pipeline.constants import month_node as node
from pipeline.months import Month, months_before

ROOT = pathlib.Path(__file__).resolve().parent.parent
IMAGE = "us-central1-docker.pkg.dev/acme/ml/flight-delay:1.2.3"
BASE = ["--bucket-root", "gs://acme-ml/flight_delay", "--image", IMAGE]
CLOUD = ["--project", "acme", "--region", "us-central1"]
LANDING = "gs://acme-ml/flight_delay/landing"
# The default run: 2013-01..2013-10 (the last for validation), judged on 2013-11 and 2013-12.
DEFAULT_MONTHS = (
    *months_before(min(DEFAULT_EVAL_MONTHS), DEFAULT_TRAIN_WINDOW),
    *DEFAULT_EVAL_MONTHS,
)
PER_MONTH = (NodeId.EXAMPLE_GEN, NodeId.STATISTICS_GEN)
RESOLVERS = {
    f"{NodeId.BASELINE_RESOLVER}-model-resolver",
    f"{NodeId.BASELINE_RESOLVER}-model-blessing-resolver",
}


def _components(months=DEFAULT_MONTHS) -> set[str]:
    """The container tasks of a run of these months: one ExampleGen and StatisticsGen each."""
    return {node(kind, m) for kind in PER_MONTH for m in months} | {
        NodeId.SCHEMA_GEN,
        NodeId.DATA_VALIDATOR,
        NodeId.TRAINING_WINDOW,
        NodeId.EVALUATION_WINDOW,
        NodeId.TRANSFORM,
        NodeId.TUNER,
        NodeId.TRAINER,
        NodeId.EVALUATOR,
        NodeId.INFRA_VALIDATOR,
        NodeId.PUSHER,
        NodeId.MOBILE_EXPORT,
    }


COMPONENTS = _components()


def _compile(tmp_path, *flags, environ=None) -> tuple[str, pipeline_spec_pb2.PipelineJob]:
    out = tmp_path / "build"
    settings, _ = kr.settings_from([*BASE, *flags, "--output-dir", str(out)], environ or {})
    path = pathlib.Path(kr.compile_pipeline(settings))
    text = path.read_text()
    job = pipeline_spec_pb2.PipelineJob()
    if path.suffix == ".yaml":  # KFP's client format: the pipeline spec alone
        json_format.ParseDict(yaml.safe_load(text), job.pipeline_spec)
    else:
        json_format.Parse(text, job)
    return text, job


def _spec(job) -> dict:
    return json_format.MessageToDict(job.pipeline_spec)


def _tasks(job) -> dict:
    return _spec(job)["root"]["dag"]["tasks"]


def _executors(job) -> dict:
    return _spec(job)["deploymentSpec"]["executors"]


def _container(job, node: str) -> dict:
    """The container of a node's executor."""
    return _executors(job)[f"{node}_executor"]["container"]


def _custom_config(job, task: str) -> dict:
    params = _spec(job)["components"][task]["inputDefinitions"]["parameters"]
    assert "custom_config" in params
    return json.loads(_parameter(job, task, "custom_config"))


def _parameter(job, task: str, name: str) -> str:
    """A task's constant string parameter, as compiled."""
    return _tasks(job)[task]["inputs"]["parameters"][name]["runtimeValue"]["constantValue"][
        "stringValue"
    ]


def _inputs(job, task: str) -> dict[str, str]:
    """A task's input artifacts: key -> producer task."""
    artifacts = _tasks(job)[task].get("inputs", {}).get("artifacts", {})
    return {key: a["taskOutputArtifact"]["producerTask"] for key, a in artifacts.items()}


def _assert_portable(text: str, tmp_path) -> None:
    """Nothing in the spec points at this machine: every absolute path is inside the image."""
    for local in (str(ROOT), str(tmp_path), str(pathlib.Path.home())):
        assert local not in text
    absolute = set(re.findall(r'"(/[^"]*)"', text))
    assert absolute and all(p.startswith(kr.IMAGE_SOURCE_DIR + "/") for p in absolute), absolute
    assert "file://" not in text


@pytest.mark.component
def test_in_container_preset_has_every_component_wired_and_runs_our_image(tmp_path):
    text, job = _compile(tmp_path)
    tasks = _tasks(job)
    assert set(tasks) == COMPONENTS | RESOLVERS
    model_resolver = f"{NodeId.BASELINE_RESOLVER}-model-resolver"
    depends = {name: set(task.get("dependentTasks", [])) for name, task in tasks.items()}
    window, evaluation = DEFAULT_MONTHS[:DEFAULT_TRAIN_WINDOW], DEFAULT_EVAL_MONTHS
    for month in DEFAULT_MONTHS:
        assert depends[node(NodeId.EXAMPLE_GEN, month)] == set()
        assert depends[node(NodeId.STATISTICS_GEN, month)] == {node(NodeId.EXAMPLE_GEN, month)}
    assert depends[NodeId.DATA_VALIDATOR] == {NodeId.SCHEMA_GEN} | {
        node(NodeId.STATISTICS_GEN, m) for m in DEFAULT_MONTHS
    }
    assert depends[NodeId.TRAINING_WINDOW] == {node(NodeId.EXAMPLE_GEN, m) for m in window}
    assert depends[NodeId.EVALUATION_WINDOW] == {node(NodeId.EXAMPLE_GEN, m) for m in evaluation}
    assert depends[NodeId.TRANSFORM] == {
        NodeId.DATA_VALIDATOR,
        NodeId.SCHEMA_GEN,
        NodeId.TRAINING_WINDOW,
    }
    # Transform only analyzes; the Tuner and the Trainer read the raw training window.
    assert depends[NodeId.TRAINER] == {NodeId.TRAINING_WINDOW, NodeId.TRANSFORM, NodeId.TUNER}
    assert _inputs(job, NodeId.TRAINER)["examples"] == NodeId.TRAINING_WINDOW
    assert depends[NodeId.EVALUATOR] == {NodeId.EVALUATION_WINDOW, NodeId.TRAINER, model_resolver}
    # The variants are converted and gated before the Pusher publishes them with the model;
    # the Tuner and the windows feed the model card (pipeline/model_card.py).
    assert depends[NodeId.PUSHER] == {
        NodeId.EVALUATOR,
        NodeId.INFRA_VALIDATOR,
        NodeId.MOBILE_EXPORT,
        NodeId.TRAINER,
        NodeId.TUNER,
        NodeId.TRAINING_WINDOW,
        NodeId.EVALUATION_WINDOW,
    }
    assert depends[NodeId.MOBILE_EXPORT] == {
        NodeId.EVALUATION_WINDOW,
        NodeId.EVALUATOR,
        NodeId.INFRA_VALIDATOR,
        NodeId.TRAINER,
        NodeId.TRAINING_WINDOW,
        NodeId.TRANSFORM,
    }
    assert '"gs://acme-ml/flight_delay/mobile/flight_delay"' in text
    assert json.loads(_parameter(job, NodeId.TRAINING_WINDOW, "splits")) == {
        "train": [m.span for m in window[:-1]],
        "validation": [window[-1].span],
    }
    assert json.loads(_parameter(job, NodeId.EVALUATION_WINDOW, "splits")) == {
        "eval": [201311, 201312]
    }
    assert _parameter(job, NodeId.DATA_VALIDATOR, "drift_action") == "block"

    containers = {name: e["container"] for name, e in _executors(job).items() if "container" in e}
    assert len(containers) == len(COMPONENTS)
    assert {c["image"] for c in containers.values()} == {IMAGE}
    args = _container(job, NodeId.TRANSFORM)["args"]
    assert "--direct_running_mode=multi_processing" in args
    assert "DataflowRunner" not in text and "PortableRunner" not in text
    assert _container(job, NodeId.TRANSFORM)["resources"] == {
        "cpuLimit": 8.0,
        "memoryLimit": 32.0,
        "cpuRequest": 8.0,
        "memoryRequest": 32.0,
    }
    # StatisticsGen's row of the table sizes every month's StatisticsGen.
    for month in DEFAULT_MONTHS:
        assert _container(job, node(NodeId.STATISTICS_GEN, month))["resources"] == {
            "cpuLimit": 4.0,
            "memoryLimit": 16.0,
            "cpuRequest": 4.0,
            "memoryRequest": 16.0,
        }
        assert "resources" not in _container(job, node(NodeId.EXAMPLE_GEN, month))
    from pipeline.components.pusher import AtomicPushExecutor

    assert _container(job, NodeId.PUSHER)["args"][:2] == [
        "--executor_class_path",
        f"{AtomicPushExecutor.__module__}.{AtomicPushExecutor.__qualname__}",
    ]
    assert (
        '"models.training.run_fn"' in text and '"transforms.preprocessing.preprocessing_fn"' in text
    )
    _assert_portable(text, tmp_path)
    assert job.runtime_config.gcs_output_directory == "gs://acme-ml/flight_delay/pipeline_root"
    assert all(
        t.get("cachingOptions", {}).get("enableCache")
        for name, t in tasks.items()
        if name in COMPONENTS
    )


@pytest.mark.component
def test_the_run_of_months_is_fixed_in_the_spec_from_the_window_settings(tmp_path):
    """A monthly scheduler's compile: one ExampleGen per month of the run, reading that
    month's drop in the bucket's landing zone; the windows list the months' spans; only the
    evaluation window reaches the Evaluator, only the training window Transform."""
    text, job = _compile(
        tmp_path, "--eval-month", "2013-04", "--train-window", "3", "--drift-action", "warn"
    )
    months = (Month(2013, 1), Month(2013, 2), Month(2013, 3), Month(2013, 4))
    tasks = _tasks(job)
    assert {t for t in tasks if t.startswith(NodeId.EXAMPLE_GEN)} == {
        node(NodeId.EXAMPLE_GEN, m) for m in months
    }
    assert set(tasks) - RESOLVERS == _components(months)
    for month in months:
        example_gen = node(NodeId.EXAMPLE_GEN, month)
        assert _parameter(job, example_gen, "input_base") == LANDING
        (split,) = json.loads(_parameter(job, example_gen, "input_config"))["splits"]
        assert split["pattern"] == f"{month}/*"
        assert _custom_config(job, example_gen)["custom_config"]["value"]["month"] == str(month)
        # The driver (span, version, fingerprint of the drop's files) runs before the cache check.
        assert "preCacheCheck" in _container(job, example_gen)["lifecycle"]
    assert json.loads(_parameter(job, NodeId.TRAINING_WINDOW, "splits")) == {
        "train": [201301, 201302],
        "validation": [201303],
    }
    assert json.loads(_parameter(job, NodeId.EVALUATION_WINDOW, "splits")) == {"eval": [201304]}
    assert _inputs(job, NodeId.TRAINING_WINDOW) == {
        f"month_{i}": node(NodeId.EXAMPLE_GEN, m) for i, m in enumerate(months[:3])
    }
    assert _inputs(job, NodeId.EVALUATION_WINDOW) == {
        "month_0": node(NodeId.EXAMPLE_GEN, months[3])
    }
    assert _parameter(job, NodeId.DATA_VALIDATOR, "drift_action") == "warn"
    assert json.loads(_parameter(job, NodeId.DATA_VALIDATOR, "months")) == [str(m) for m in months]

    assert _inputs(job, NodeId.TRANSFORM) == {
        "examples": NodeId.TRAINING_WINDOW,
        "schema": NodeId.SCHEMA_GEN,
    }
    evaluator = _inputs(job, NodeId.EVALUATOR)
    assert evaluator["examples"] == NodeId.EVALUATION_WINDOW
    assert NodeId.TRAINING_WINDOW not in evaluator.values()
    depends = set(tasks[NodeId.EVALUATOR].get("dependentTasks", []))
    assert NodeId.EVALUATION_WINDOW in depends
    assert not {t for t in depends if t.startswith((NodeId.EXAMPLE_GEN, NodeId.TRAINING_WINDOW))}
    assert _inputs(job, NodeId.INFRA_VALIDATOR)["examples"] == NodeId.EVALUATION_WINDOW
    _assert_portable(text, tmp_path)
    # The bucket's landing zone, and no other landing zone, is in the spec.
    assert text.count('"gs://acme-ml/flight_delay/landing"') == len(months)


@pytest.mark.component
def test_dataflow_preset_sends_beam_to_dataflow_with_the_same_image(tmp_path):
    text, job = _compile(
        tmp_path,
        "--beam",
        "dataflow",
        *CLOUD,
        "--dataflow-max-workers",
        "25",
        "--service-account",
        "runner@acme.iam.gserviceaccount.com",
    )
    args = _container(job, NodeId.TRANSFORM)["args"]
    assert "--runner=DataflowRunner" in args and "--max_num_workers=25" in args
    assert f"--sdk_container_image={IMAGE}" in args
    assert "--temp_location=gs://acme-ml/flight_delay/pipeline_root/beam-tmp" in args
    assert "--service_account_email=runner@acme.iam.gserviceaccount.com" in args
    assert "--direct_running_mode=multi_processing" not in text
    # Beam work runs on Dataflow: the Transform step only drives it.
    assert "resources" not in _container(job, NodeId.TRANSFORM)
    _assert_portable(text, tmp_path)


@pytest.mark.component
def test_portable_preset_targets_a_flink_or_spark_job_server(tmp_path):
    text, job = _compile(
        tmp_path, "--beam", "portable", "--portable-job-endpoint", "flink-jobserver:8099"
    )
    args = _container(job, node(NodeId.STATISTICS_GEN, Month(2013, 1)))["args"]
    assert {
        "--runner=PortableRunner",
        "--job_endpoint=flink-jobserver:8099",
        "--environment_type=EXTERNAL",
        "--environment_config=localhost:50000",
        f"--job_server_timeout={kr.PORTABLE_JOB_TIMEOUT_SECONDS}",
        f"--sdk_container_image={IMAGE}",
    } <= set(args)
    assert "DataflowRunner" not in text


@pytest.mark.component
def test_vertex_training_preset_runs_tuner_and_trainer_as_custom_jobs(tmp_path):
    text, job = _compile(
        tmp_path,
        *CLOUD,
        "--vertex-training",
        "--training-replicas",
        "3",
        "--distribution",
        "multi_worker_mirrored",
    )
    assert _container(job, NodeId.TRAINER)["args"][1] == (
        "tfx.extensions.google_cloud_ai_platform.trainer.executor.GenericExecutor"
    )
    assert "google_cloud_ai_platform.tuner.executor" in _container(job, NodeId.TUNER)["args"][1]
    config = _custom_config(job, NodeId.TRAINER)
    assert config["ai_platform_enable_vertex"] is True
    assert config["ai_platform_vertex_region"] == "us-central1"
    pools = config["ai_platform_training_args"]["worker_pool_specs"]
    assert [p["replica_count"] for p in pools] == [1, 2]
    assert {p["container_spec"]["image_uri"] for p in pools} == {IMAGE}
    assert config["distribution"] == "multi_worker_mirrored"
    assert _custom_config(job, NodeId.TUNER)["ai_platform_tuning_args"]["project"] == "acme"
    assert "DataflowRunner" not in text
    _assert_portable(text, tmp_path)


@pytest.mark.component
def test_without_vertex_training_trainer_runs_in_the_pipeline(tmp_path):
    _, job = _compile(tmp_path, "--no-tune", "--no-cache")
    tasks = _tasks(job)
    assert NodeId.TUNER not in tasks
    assert _container(job, NodeId.TRAINER)["args"][1] == (
        "tfx.components.trainer.executor.GenericExecutor"
    )
    assert "ai_platform_enable_vertex" not in _custom_config(job, NodeId.TRAINER)
    assert not any(t.get("cachingOptions", {}).get("enableCache") for t in tasks.values())


@pytest.mark.component
def test_settings_come_from_the_environment_and_kfp_gets_yaml(tmp_path):
    environ = {
        "FLIGHT_DELAY_BUCKET_ROOT": "gs://other/fd",
        "FLIGHT_DELAY_IMAGE": IMAGE,
        "FLIGHT_DELAY_KFP_HOST": "https://kfp.acme.dev",
        "FLIGHT_DELAY_OUTPUT_DIR": str(tmp_path / "out"),
    }
    settings, submit = kr.settings_from([], environ)
    assert settings.landing_root == "gs://other/fd/landing" and submit is False
    assert settings.spec_file.endswith(".yaml")
    path = pathlib.Path(kr.compile_pipeline(settings))
    spec = json_format.ParseDict(yaml.safe_load(path.read_text()), pipeline_spec_pb2.PipelineSpec())
    assert spec.pipeline_info.name == kr.PIPELINE_NAME


@pytest.mark.unit
def test_missing_settings_are_listed_in_one_error_before_compiling(tmp_path):
    with pytest.raises(kr.SettingsError) as error:
        kr.settings_from(
            [
                "--beam",
                "dataflow",
                "--landing-root",
                "/home/me/landing",
                "--output-dir",
                str(tmp_path),
            ],
            {},
        )
    message = str(error.value)
    for missing in (
        "--image (or FLIGHT_DELAY_IMAGE)",
        "--pipeline-root",
        "--serving-model-dir",
        "--mobile-model-dir",
        "--project (or FLIGHT_DELAY_PROJECT): needed for Dataflow",
        "--region",
        "--landing-root must be a bucket URI",
    ):
        assert missing in message
    assert not any(tmp_path.iterdir())  # nothing compiled

    assert kr.main(["--submit", *BASE, "--output-dir", str(tmp_path)], {}) == 2
    assert not any(tmp_path.iterdir())


class _FakeJob:
    calls: typing.ClassVar[list] = []

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.resource_name = "projects/1/locations/us-central1/pipelineJobs/flight-delay-42"

    def submit(self, service_account=None):
        _FakeJob.calls.append((self.kwargs, service_account))


class _FakeKfp:
    calls: typing.ClassVar[list] = []

    def __init__(self, host):
        self.host = host

    def create_run_from_pipeline_package(self, spec_file, **kwargs):
        _FakeKfp.calls.append((self.host, spec_file, kwargs))
        return type("Run", (), {"run_id": "run-7"})()


@pytest.mark.component
def test_submit_to_vertex_passes_the_compiled_spec_and_settings(tmp_path, capsys):
    code = kr.main(
        [
            *BASE,
            *CLOUD,
            "--submit",
            "--service-account",
            "sa@acme.iam",
            "--output-dir",
            str(tmp_path),
        ],
        {},
        job_class=_FakeJob,
    )
    assert code == 0
    ((kwargs, service_account),) = _FakeJob.calls
    assert kwargs == {
        "display_name": "flight-delay",
        "template_path": str(tmp_path / "flight-delay-pipeline.json"),
        "pipeline_root": "gs://acme-ml/flight_delay/pipeline_root",
        "project": "acme",
        "location": "us-central1",
        "enable_caching": True,
    }
    assert service_account == "sa@acme.iam"
    assert json.loads(pathlib.Path(kwargs["template_path"]).read_text())["pipelineSpec"]
    assert (
        "https://console.cloud.google.com/vertex-ai/locations/us-central1/pipelines/runs/"
        "flight-delay-42?project=acme"
    ) in capsys.readouterr().out


@pytest.mark.component
def test_submit_to_kfp_uses_the_host_and_prints_the_run_link(tmp_path, capsys):
    code = kr.main(
        [
            *BASE,
            "--submit",
            "--kfp-host",
            "https://kfp.acme.dev/",
            "--no-cache",
            "--output-dir",
            str(tmp_path),
        ],
        {},
        client_class=_FakeKfp,
    )
    assert code == 0
    ((host, spec_file, kwargs),) = _FakeKfp.calls
    assert host == "https://kfp.acme.dev/" and spec_file.endswith("flight-delay-pipeline.yaml")
    assert kwargs["enable_caching"] is False
    assert kwargs["pipeline_root"] == "gs://acme-ml/flight_delay/pipeline_root"
    assert "https://kfp.acme.dev/#/runs/details/run-7" in capsys.readouterr().out


# ---- the command line, without TFX ----

FIELDS = {f.name: f for f in dataclasses.fields(kr.ProductionSettings)}


def _settings(*flags, **environ) -> kr.ProductionSettings:
    return kr.settings_from([*BASE, *flags], environ)[0]


@pytest.mark.unit
def test_importing_the_runner_loads_no_tensorflow_or_tfx():
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, kubeflow_runner; "
            "print(sorted(m for m in ('tensorflow', 'tfx', 'apache_beam') if m in sys.modules))",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert loaded.strip() == "[]"


@pytest.mark.unit
def test_defaults_are_the_dataclass_defaults_and_the_bucket_root_fills_the_paths():
    settings, submit = kr.settings_from(["--bucket-root", "gs://acme-ml/fd/", "--image", IMAGE], {})
    assert submit is False
    paths = {
        "pipeline_root": "gs://acme-ml/fd/pipeline_root",
        "landing_root": "gs://acme-ml/fd/landing",
        "serving_model_dir": "gs://acme-ml/fd/serving_model/flight_delay",
        "mobile_model_dir": "gs://acme-ml/fd/mobile/flight_delay",
    }
    assert {name: getattr(settings, name) for name in paths} == paths
    for name, field in FIELDS.items():
        if field.default is not dataclasses.MISSING:
            assert getattr(settings, name) == field.default, name
    assert (settings.beam, settings.dataflow_max_workers, settings.tune) == ("direct", 10, True)
    # The run's months default to the pipeline config's.
    assert settings.eval_months == DEFAULT_EVAL_MONTHS
    assert (settings.train_window, settings.drift_action) == (DEFAULT_TRAIN_WINDOW, "block")
    # A path set on its own wins over the one beneath the bucket root.
    landing = _settings("--landing-root", "gs://elsewhere/landing").landing_root
    assert landing == "gs://elsewhere/landing"


@pytest.mark.unit
def test_every_setting_can_come_from_its_environment_variable():
    environ = {
        "FLIGHT_DELAY_BUCKET_ROOT": "gs://env/fd",
        "FLIGHT_DELAY_IMAGE": "env-image",
        "FLIGHT_DELAY_PROJECT": "env-project",
        "FLIGHT_DELAY_REGION": "europe-west4",
        "FLIGHT_DELAY_BEAM": "dataflow",
        "FLIGHT_DELAY_DATAFLOW_MAX_WORKERS": "25",
        "FLIGHT_DELAY_VERTEX_TRAINING": "true",
        "FLIGHT_DELAY_TRAINING_REPLICAS": "2",
        "FLIGHT_DELAY_DISTRIBUTION": "multi_worker_mirrored",
        "FLIGHT_DELAY_TUNE": "false",
        "FLIGHT_DELAY_ENABLE_CACHE": "0",
        "FLIGHT_DELAY_EVAL_MONTHS": "2013-06,2013-07 2013-08",
        "FLIGHT_DELAY_TRAIN_WINDOW": "4",
        "FLIGHT_DELAY_DRIFT_ACTION": "warn",
        "FLIGHT_DELAY_LANDING_ROOT": "gs://drops/flights",
        "FLIGHT_DELAY_SUBMIT": "yes",
        "FLIGHT_DELAY_REGION_TYPO": "ignored",
    }
    settings, submit = kr.settings_from([], environ)
    assert submit is True
    expected = {
        "image": "env-image",
        "pipeline_root": "gs://env/fd/pipeline_root",
        "project": "env-project",
        "region": "europe-west4",
        "beam": "dataflow",
        "dataflow_max_workers": 25,
        "vertex_training": True,
        "training_replicas": 2,
        "distribution": "multi_worker_mirrored",
        "tune": False,
        "enable_cache": False,
        "eval_months": (Month(2013, 6), Month(2013, 7), Month(2013, 8)),
        "train_window": 4,
        "drift_action": "warn",
        "landing_root": "gs://drops/flights",
    }
    assert {name: getattr(settings, name) for name in expected} == expected
    # An empty variable is unset, as in click.
    assert _settings(FLIGHT_DELAY_OUTPUT_DIR="").output_dir == FIELDS["output_dir"].default


@pytest.mark.unit
@pytest.mark.parametrize(
    "name, flags, environ, from_flag, from_env",
    [
        (
            "dataflow_max_workers",
            ["--dataflow-max-workers", "3"],
            {"FLIGHT_DELAY_DATAFLOW_MAX_WORKERS": "7"},
            3,
            7,
        ),
        (
            "beam",
            ["--beam", "direct"],
            {"FLIGHT_DELAY_BEAM": "portable", "FLIGHT_DELAY_PORTABLE_JOB_ENDPOINT": "js:8099"},
            "direct",
            "portable",
        ),
        ("tune", ["--no-tune"], {"FLIGHT_DELAY_TUNE": "true"}, False, True),
        (
            "eval_months",
            ["--eval-month", "2013-09", "--eval-month", "2013-10"],
            {"FLIGHT_DELAY_EVAL_MONTHS": "2013-05"},
            (Month(2013, 9), Month(2013, 10)),
            (Month(2013, 5),),
        ),
        ("train_window", ["--train-window", "6"], {"FLIGHT_DELAY_TRAIN_WINDOW": "4"}, 6, 4),
        (
            "drift_action",
            ["--drift-action", "block"],
            {"FLIGHT_DELAY_DRIFT_ACTION": "warn"},
            "block",
            "warn",
        ),
        (
            "vertex_training",
            ["--vertex-training", *CLOUD],
            {"FLIGHT_DELAY_VERTEX_TRAINING": "false"},
            True,
            False,
        ),
        (
            "output_dir",
            ["--output-dir", "from-flag"],
            {"FLIGHT_DELAY_OUTPUT_DIR": "from-env"},
            "from-flag",
            "from-env",
        ),
    ],
)
def test_a_flag_wins_over_its_environment_variable_which_wins_over_the_default(
    name, flags, environ, from_flag, from_env
):
    assert getattr(_settings(*flags, **environ), name) == from_flag
    assert getattr(_settings(**environ), name) == from_env
    assert getattr(_settings(), name) == FIELDS[name].default


@pytest.mark.unit
def test_os_environ_is_never_read(monkeypatch):
    monkeypatch.setenv("FLIGHT_DELAY_PROJECT", "from-os-environ")
    monkeypatch.setenv("FLIGHT_DELAY_IMAGE", "from-os-environ")
    assert _settings().project is None
    with pytest.raises(kr.SettingsError, match="--image"):
        kr.settings_from(["--bucket-root", "gs://b/fd"], {})


@pytest.mark.unit
def test_one_error_lists_every_problem_of_the_preset():
    with pytest.raises(kr.SettingsError) as error:
        kr.settings_from(
            [
                "--vertex-training",
                "--training-replicas",
                "4",
                "--beam",
                "portable",
                "--pipeline-root",
                "gs://b/root",
                "--serving-model-dir",
                "./serving",
                "--dataflow-disk-gb",
                "0",
                "--train-window",
                "1",
                "--eval-month",
                "2013-11,2013-12",
                "--eval-month",
                "2013-11",
                "--submit",
            ],
            {},
        )
    lines = str(error.value).splitlines()[1:]
    expected = [
        "--image (or FLIGHT_DELAY_IMAGE): the pipeline image",
        "--landing-root (or FLIGHT_DELAY_LANDING_ROOT): a bucket URI (or set --bucket-root)",
        "--serving-model-dir must be a bucket URI (gs://, s3://, hdfs://), got './serving'",
        "--mobile-model-dir (or FLIGHT_DELAY_MOBILE_MODEL_DIR)",
        "--dataflow-disk-gb must be at least 1, got 0",
        "--train-window must be at least 2 (training months plus one validation month), got 1",
        "--eval-month names 2013-11 more than once",
        "--training-replicas above 1 needs --distribution multi_worker_mirrored, got 'none'",
        "--project (or FLIGHT_DELAY_PROJECT): needed for Vertex AI Training, submitting to "
        "Vertex AI Pipelines",
        "--region (or FLIGHT_DELAY_REGION)",
        "--portable-job-endpoint (or FLIGHT_DELAY_PORTABLE_JOB_ENDPOINT)",
    ]
    assert len(lines) == len(expected)
    for line, start in zip(lines, expected, strict=True):
        assert line.strip().startswith(start), (line, start)


@pytest.mark.unit
@pytest.mark.parametrize(
    "flags, environ, named",
    [
        (["--dataflow-max-workers", "many"], {}, ["'--dataflow-max-workers'", "'many'", "integer"]),
        (
            [],
            {"FLIGHT_DELAY_DATAFLOW_MAX_WORKERS": "many"},
            ["FLIGHT_DELAY_DATAFLOW_MAX_WORKERS (--dataflow-max-workers)", "'many'"],
        ),
        (["--beam", "spark"], {}, ["'--beam'", "'spark'", "'direct', 'dataflow', 'portable'"]),
        ([], {"FLIGHT_DELAY_DISTRIBUTION": "tpu"}, ["FLIGHT_DELAY_DISTRIBUTION", "'tpu'"]),
        ([], {"FLIGHT_DELAY_TUNE": "maybe"}, ["FLIGHT_DELAY_TUNE (--no-tune)", "'maybe'"]),
        (["--projcet", "acme"], {}, ["--projcet", "--project", "--help"]),
        (
            ["--eval-month", "11/2013"],
            {},
            [
                "'--eval-month'",
                "a month is written YYYY-MM with MM 01-12 (e.g. 2013-01), got '11/2013'",
            ],
        ),
        (["--eval-month", "2013-11,2013-13"], {}, ["'--eval-month'", "got '2013-13'"]),
        (
            [],
            {"FLIGHT_DELAY_EVAL_MONTHS": "2013-11,Dec"},
            ["FLIGHT_DELAY_EVAL_MONTHS (--eval-month)", "got 'Dec'"],
        ),
        (["--train-window", "ten"], {}, ["'--train-window'", "'ten'", "integer"]),
        (["--drift-action", "ignore"], {}, ["'--drift-action'", "'ignore'", "'block', 'warn'"]),
    ],
)
def test_a_bad_value_is_named_with_where_it_came_from(flags, environ, named, capsys):
    with pytest.raises(kr.SettingsError) as error:
        kr.settings_from([*BASE, *flags], environ)
    for part in named:
        assert part in str(error.value)
    assert kr.main([*BASE, *flags], environ) == 2
    assert capsys.readouterr().err.startswith("error: ")


@pytest.mark.unit
def test_help_documents_every_option_its_environment_variable_and_default(capsys):
    assert kr.main(["--help"], {}) == 0
    # One entry per option; whitespace dropped, as click wraps lines (also after hyphens).
    entries = {
        entry.split()[0]: "".join(entry.split())
        for entry in re.split(r"\n(?=  --)", capsys.readouterr().out)[1:]
    }
    options = {name: field.metadata["option"] or kr.flag(name) for name, field in FIELDS.items()}
    assert set(entries) == {*options.values(), "--bucket-root", "--submit", "--help"}
    for name, field in FIELDS.items():
        entry = entries[options[name]]
        assert f"[envvar:{kr.env_var(name)}" in entry
        if field.default not in (None, dataclasses.MISSING) and not isinstance(field.default, bool):
            assert f"default:{kr.shown(field.default)}]" in entry
    assert "[envvar:FLIGHT_DELAY_TUNE=false]" in entries["--no-tune"]
    assert "[envvar:FLIGHT_DELAY_SUBMIT=true]" in entries["--submit"]
    assert entries["--beam"].startswith("--beam[direct|dataflow|portable]")
    assert "default:2013-11,2013-12]" in entries["--eval-month"]
    # The window is fixed when compiling; a scheduler compiles again for a new month.
    assert "fixedwhencompiling" in entries["--eval-month"]
    assert "fixedwhencompiling" in entries["--train-window"]
    assert "(default<bucket-root>/landing)" in entries["--landing-root"]


@pytest.mark.unit
def test_pipeline_config_of_a_preset_sizes_components_by_node_id():
    direct = kr.pipeline_config(_settings())
    assert direct.resources[NodeId.TRANSFORM] == kr.Resources(8, 32)
    assert NodeId.TUNER in direct.resources and direct.tune
    # A per-month kind's row sizes each month's node; the kind itself is no node id.
    assert NodeId.STATISTICS_GEN not in direct.resources
    assert {n for n in direct.resources if n.startswith(NodeId.STATISTICS_GEN)} == {
        node(NodeId.STATISTICS_GEN, m) for m in DEFAULT_MONTHS
    }
    assert set(direct.resources[node(NodeId.STATISTICS_GEN, m)] for m in DEFAULT_MONTHS) == {
        kr.RESOURCES["direct"][NodeId.STATISTICS_GEN]
    }
    dataflow = kr.pipeline_config(_settings("--beam", "dataflow", *CLOUD, "--no-tune"))
    assert NodeId.TRANSFORM not in dataflow.resources and NodeId.TUNER not in dataflow.resources
    assert dataflow.resources[NodeId.TRAINER] == kr.Resources(8, 32) and not dataflow.tune
    vertex = kr.pipeline_config(
        _settings(
            *CLOUD,
            "--vertex-training",
            "--distribution",
            "mirrored",
            "--training-machine-type",
            "a2-highgpu-1g",
        )
    )
    assert vertex.training.distribution == "mirrored"
    assert (vertex.vertex_training.machine_type, vertex.vertex_training.image) == (
        "a2-highgpu-1g",
        IMAGE,
    )
    assert kr.pipeline_config(_settings()).vertex_training is None


@pytest.mark.unit
def test_pipeline_config_gets_the_landing_zone_and_the_run_of_months():
    config = kr.pipeline_config(
        _settings("--eval-month", "2014-01", "--train-window", "4", "--drift-action", "warn")
    )
    assert config.landing_root == LANDING
    assert config.eval_months == (Month(2014, 1),) and config.train_window == 4
    assert config.drift_action is DriftAction.WARN
    assert [str(m) for m in config.months] == [
        "2013-09",
        "2013-10",
        "2013-11",
        "2013-12",
        "2014-01",
    ]
    assert {n for n in config.resources if n.startswith(NodeId.STATISTICS_GEN)} == {
        node(NodeId.STATISTICS_GEN, m) for m in config.months
    }
    default = kr.pipeline_config(_settings())
    assert (default.eval_months, default.train_window) == (
        DEFAULT_EVAL_MONTHS,
        DEFAULT_TRAIN_WINDOW,
    )
    assert default.drift_action is DriftAction.BLOCK


PRESETS = {
    "direct": [],
    "dataflow": [*CLOUD, "--beam", "dataflow"],
    "portable": ["--beam", "portable", "--portable-job-endpoint", "flink:8099"],
    "vertex-training": [*CLOUD, "--vertex-training"],
    "no-tune": ["--no-tune"],
    "kfp": ["--kfp-host", "https://kfp.example.com"],
}
USER_FUNCTIONS = ("preprocessing_fn", "run_fn", "tuner_fn")


@pytest.mark.component
@pytest.mark.parametrize("preset", PRESETS)
def test_every_task_of_the_compiled_spec_can_start_in_the_image(tmp_path, preset):
    """What TFX's v2 container entrypoint does before a task's code runs: import the
    executor class and the user functions by path, and rebuild every input and output artifact
    from its schema title (kubeflow_v2_run_executor.py, kubeflow_v2_entrypoint_utils.py). A
    title that is not an importable `module.Class` fails here, not on Vertex."""
    from kfp.pipeline_spec import pipeline_spec_pb2 as spec_pb2
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils as entry
    from tfx.types import artifact as tfx_artifact
    from tfx.utils import import_utils

    _, job = _compile(tmp_path, *PRESETS[preset])
    executors = {}
    for name, executor in _executors(job).items():
        if "container" not in executor:
            continue  # resolver nodes: the launcher resolves them, no container runs
        args = executor["container"]["args"]
        path = args[args.index("--executor_class_path") + 1]
        executors[name] = import_utils.import_class_by_path(path)
    assert len(executors) == len(COMPONENTS) - (preset == "no-tune")

    functions = {}
    for task in _tasks(job).values():
        for key, value in task.get("inputs", {}).get("parameters", {}).items():
            if key in USER_FUNCTIONS:
                runtime = value["runtimeValue"]  # pipeline spec 2.1 or 2.0 spelling
                path = runtime.get("constant") or runtime["constantValue"]["stringValue"]
                functions[key] = import_utils.import_class_by_path(path)
    assert set(functions) == set(USER_FUNCTIONS) - ({"tuner_fn"} if preset == "no-tune" else set())
    assert all(callable(f) for f in functions.values())

    titles = set()
    for component in _spec(job)["components"].values():
        for side in ("inputDefinitions", "outputDefinitions"):
            for key, definition in component.get(side, {}).get("artifacts", {}).items():
                artifact_type = json_format.ParseDict(
                    definition["artifactType"], spec_pb2.ArtifactTypeSchema()
                )
                runtime = spec_pb2.RuntimeArtifact(type=artifact_type, uri="gs://x/y")
                parsed = entry.parse_raw_artifact_dict(
                    {key: spec_pb2.ArtifactList(artifacts=[runtime])}, {}
                )[key][0]
                assert isinstance(parsed, tfx_artifact.Artifact)
                titles.add(parsed.type_name)
    assert "pipeline.MobileModels" in titles


@pytest.mark.unit
def test_the_package_installs_on_the_local_and_the_image_python():
    """setup.py's python_requires must admit 3.11 (the lock) and 3.10 (the tfx:1.16.0 image the
    Dockerfile builds on), or `pip install .` refuses the package in the image."""
    from packaging.specifiers import SpecifierSet

    text = (ROOT / "setup.py").read_text()
    specifier = SpecifierSet(re.search(r'python_requires="([^"]+)"', text)[1])
    assert "3.11.7" in specifier and "3.10.12" in specifier
    assert "FROM gcr.io/tfx-oss-public/tfx:1.16.0" in (ROOT / "Dockerfile").read_text()


@pytest.mark.unit
@pytest.mark.parametrize("beam", ["direct", "dataflow", "portable"])
def test_no_beam_preset_makes_tfx_pack_itself_per_component(beam):
    """Without a dependency flag TFX builds an sdist of its own install for every Beam
    component (tfx/utils/dependency_utils.py): ~1 s and a 51 MB copy under /tmp each. Every
    preset names one, so TFX passes the arguments through unchanged."""
    from tfx.utils import dependency_utils

    args = list(kr.beam_args(_settings(*PRESETS[beam])))
    assert dependency_utils.make_beam_dependency_flags(args) == args
    if beam == "direct":
        assert f"--setup_file={kr.IMAGE_SOURCE_DIR}/setup.py" in args
