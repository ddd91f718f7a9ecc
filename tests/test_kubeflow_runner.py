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
from pipeline.constants import NodeId

ROOT = pathlib.Path(__file__).resolve().parent.parent
IMAGE = "us-central1-docker.pkg.dev/acme/ml/flight-delay:1.2.3"
BASE = ["--bucket-root", "gs://acme-ml/flight_delay", "--image", IMAGE]
CLOUD = ["--project", "acme", "--region", "us-central1"]
COMPONENTS = {
    NodeId.EXAMPLE_GEN,
    NodeId.STATISTICS_GEN,
    NodeId.SCHEMA_GEN,
    NodeId.EXAMPLE_VALIDATOR,
    NodeId.ANOMALIES_GATE,
    NodeId.TRANSFORM,
    NodeId.TUNER,
    NodeId.TRAINER,
    NodeId.EVALUATOR,
    NodeId.INFRA_VALIDATOR,
    NodeId.PUSHER,
    NodeId.MOBILE_EXPORT,
}


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
    value = _tasks(job)[task]["inputs"]["parameters"]["custom_config"]
    return json.loads(value["runtimeValue"]["constantValue"]["stringValue"])


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
    assert COMPONENTS <= set(tasks)
    resolvers = set(tasks) - COMPONENTS
    model_resolver = f"{NodeId.BASELINE_RESOLVER}-model-resolver"
    assert resolvers == {model_resolver, f"{NodeId.BASELINE_RESOLVER}-model-blessing-resolver"}
    depends = {name: set(task.get("dependentTasks", [])) for name, task in tasks.items()}
    assert depends[NodeId.TRANSFORM] == {
        NodeId.ANOMALIES_GATE,
        NodeId.EXAMPLE_GEN,
        NodeId.SCHEMA_GEN,
    }
    assert depends[NodeId.TRAINER] == {NodeId.TRANSFORM, NodeId.TUNER}
    assert depends[NodeId.EVALUATOR] == {NodeId.EXAMPLE_GEN, NodeId.TRAINER, model_resolver}
    assert depends[NodeId.PUSHER] == {NodeId.EVALUATOR, NodeId.INFRA_VALIDATOR, NodeId.TRAINER}
    assert depends[NodeId.MOBILE_EXPORT] == {
        NodeId.EVALUATOR,
        NodeId.EXAMPLE_GEN,
        NodeId.PUSHER,
        NodeId.TRAINER,
        NodeId.TRANSFORM,
    }
    assert '"gs://acme-ml/flight_delay/mobile/flight_delay"' in text

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
    args = _container(job, NodeId.STATISTICS_GEN)["args"]
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
    assert settings.data_root == "gs://other/fd/data" and submit is False
    assert settings.spec_file.endswith(".yaml")
    path = pathlib.Path(kr.compile_pipeline(settings))
    spec = json_format.ParseDict(yaml.safe_load(path.read_text()), pipeline_spec_pb2.PipelineSpec())
    assert spec.pipeline_info.name == kr.PIPELINE_NAME


@pytest.mark.unit
def test_missing_settings_are_listed_in_one_error_before_compiling(tmp_path):
    with pytest.raises(kr.SettingsError) as error:
        kr.settings_from(
            ["--beam", "dataflow", "--data-root", "/home/me/data", "--output-dir", str(tmp_path)],
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
        "--data-root must be a bucket URI",
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
        "data_root": "gs://acme-ml/fd/data",
        "serving_model_dir": "gs://acme-ml/fd/serving_model/flight_delay",
        "mobile_model_dir": "gs://acme-ml/fd/mobile/flight_delay",
    }
    assert {name: getattr(settings, name) for name in paths} == paths
    for name, field in FIELDS.items():
        if field.default is not dataclasses.MISSING:
            assert getattr(settings, name) == field.default, name
    assert (settings.beam, settings.dataflow_max_workers, settings.tune) == ("direct", 10, True)
    # A path set on its own wins over the one beneath the bucket root.
    assert _settings("--data-root", "gs://elsewhere/data").data_root == "gs://elsewhere/data"


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
                "--submit",
            ],
            {},
        )
    lines = str(error.value).splitlines()[1:]
    expected = [
        "--image (or FLIGHT_DELAY_IMAGE): the pipeline image",
        "--data-root (or FLIGHT_DELAY_DATA_ROOT): a bucket URI (or set --bucket-root)",
        "--serving-model-dir must be a bucket URI (gs://, s3://, hdfs://), got './serving'",
        "--mobile-model-dir (or FLIGHT_DELAY_MOBILE_MODEL_DIR)",
        "--dataflow-disk-gb must be at least 1, got 0",
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
            assert f"default:{field.default}]" in entry
    assert "[envvar:FLIGHT_DELAY_TUNE=false]" in entries["--no-tune"]
    assert "[envvar:FLIGHT_DELAY_SUBMIT=true]" in entries["--submit"]
    assert entries["--beam"].startswith("--beam[direct|dataflow|portable]")


@pytest.mark.unit
def test_pipeline_config_of_a_preset_sizes_components_by_node_id():
    direct = kr.pipeline_config(_settings())
    assert direct.resources[NodeId.TRANSFORM] == kr.Resources(8, 32)
    assert NodeId.TUNER in direct.resources and direct.tune
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
