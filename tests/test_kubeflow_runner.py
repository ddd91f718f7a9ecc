"""kubeflow_runner.py, offline: compile each preset, read the spec back with KFP's protobuf, and
submit to fake Vertex / KFP clients."""

from __future__ import annotations

import json
import pathlib
import re

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

import kubeflow_runner as kr

ROOT = pathlib.Path(__file__).resolve().parent.parent
IMAGE = "us-central1-docker.pkg.dev/acme/ml/flight-delay:1.2.3"
BASE = ["--bucket-root", "gs://acme-ml/flight_delay", "--image", IMAGE]
CLOUD = ["--project", "acme", "--region", "us-central1"]
COMPONENTS = {"ImportExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator",
              "AnomaliesGate", "Transform", "Tuner", "Trainer", "Evaluator", "InfraValidator",
              "Pusher", "MobileExport"}


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


def test_in_container_preset_has_every_component_wired_and_runs_our_image(tmp_path):
    text, job = _compile(tmp_path)
    tasks = _tasks(job)
    assert COMPONENTS <= set(tasks)
    resolvers = set(tasks) - COMPONENTS
    assert resolvers == {"latest_blessed_model_resolver-model-resolver",
                         "latest_blessed_model_resolver-model-blessing-resolver"}
    depends = {name: set(task.get("dependentTasks", [])) for name, task in tasks.items()}
    assert depends["Transform"] == {"AnomaliesGate", "ImportExampleGen", "ImportSchemaGen"}
    assert depends["Trainer"] == {"Transform", "Tuner"}
    assert depends["Evaluator"] == {"ImportExampleGen", "Trainer",
                                    "latest_blessed_model_resolver-model-resolver"}
    assert depends["Pusher"] == {"Evaluator", "InfraValidator", "Trainer"}
    assert depends["MobileExport"] == {"Evaluator", "ImportExampleGen", "Pusher", "Trainer",
                                       "Transform"}
    assert '"gs://acme-ml/flight_delay/mobile/flight_delay"' in text

    containers = {name: e["container"] for name, e in _executors(job).items()
                  if "container" in e}
    assert len(containers) == len(COMPONENTS)
    assert {c["image"] for c in containers.values()} == {IMAGE}
    args = containers["Transform_executor"]["args"]
    assert "--direct_running_mode=multi_processing" in args
    assert "DataflowRunner" not in text and "PortableRunner" not in text
    assert containers["Transform_executor"]["resources"] == {
        "cpuLimit": 8.0, "memoryLimit": 32.0, "cpuRequest": 8.0, "memoryRequest": 32.0}
    assert containers["Pusher_executor"]["args"][:2] == [
        "--executor_class_path", "pipeline.components.AtomicPushExecutor"]
    assert '"models.training.run_fn"' in text and '"transforms.preprocessing.preprocessing_fn"' \
        in text
    _assert_portable(text, tmp_path)
    assert job.runtime_config.gcs_output_directory == "gs://acme-ml/flight_delay/pipeline_root"
    assert all(t.get("cachingOptions", {}).get("enableCache") for name, t in tasks.items()
               if name in COMPONENTS)


def test_dataflow_preset_sends_beam_to_dataflow_with_the_same_image(tmp_path):
    text, job = _compile(tmp_path, "--beam", "dataflow", *CLOUD, "--dataflow-max-workers", "25",
                         "--service-account", "runner@acme.iam.gserviceaccount.com")
    args = _executors(job)["Transform_executor"]["container"]["args"]
    assert "--runner=DataflowRunner" in args and "--max_num_workers=25" in args
    assert f"--sdk_container_image={IMAGE}" in args
    assert "--temp_location=gs://acme-ml/flight_delay/pipeline_root/beam-tmp" in args
    assert "--service_account_email=runner@acme.iam.gserviceaccount.com" in args
    assert "--direct_running_mode=multi_processing" not in text
    # Beam work runs on Dataflow: the Transform step only drives it.
    assert "resources" not in _executors(job)["Transform_executor"]["container"]
    _assert_portable(text, tmp_path)


def test_portable_preset_targets_a_flink_or_spark_job_server(tmp_path):
    text, job = _compile(tmp_path, "--beam", "portable", "--portable-job-endpoint",
                         "flink-jobserver:8099")
    args = _executors(job)["StatisticsGen_executor"]["container"]["args"]
    assert {"--runner=PortableRunner", "--job_endpoint=flink-jobserver:8099",
            "--environment_type=EXTERNAL", "--environment_config=localhost:50000"} <= set(args)
    assert "DataflowRunner" not in text


def test_vertex_training_preset_runs_tuner_and_trainer_as_custom_jobs(tmp_path):
    text, job = _compile(tmp_path, *CLOUD, "--vertex-training", "--training-replicas", "3",
                         "--distribution", "multi_worker_mirrored")
    executors = _executors(job)
    assert executors["Trainer_executor"]["container"]["args"][1] == (
        "tfx.extensions.google_cloud_ai_platform.trainer.executor.GenericExecutor")
    assert "google_cloud_ai_platform.tuner.executor" in executors["Tuner_executor"][
        "container"]["args"][1]
    config = _custom_config(job, "Trainer")
    assert config["ai_platform_enable_vertex"] is True
    assert config["ai_platform_vertex_region"] == "us-central1"
    pools = config["ai_platform_training_args"]["worker_pool_specs"]
    assert [p["replica_count"] for p in pools] == [1, 2]
    assert {p["container_spec"]["image_uri"] for p in pools} == {IMAGE}
    assert config["distribution"] == "multi_worker_mirrored"
    assert _custom_config(job, "Tuner")["ai_platform_tuning_args"]["project"] == "acme"
    assert "DataflowRunner" not in text
    _assert_portable(text, tmp_path)


def test_without_vertex_training_trainer_runs_in_the_pipeline(tmp_path):
    _, job = _compile(tmp_path, "--no-tune", "--no-cache")
    executors, tasks = _executors(job), _tasks(job)
    assert "Tuner" not in tasks
    assert executors["Trainer_executor"]["container"]["args"][1] == (
        "tfx.components.trainer.executor.GenericExecutor")
    assert "ai_platform_enable_vertex" not in _custom_config(job, "Trainer")
    assert not any(t.get("cachingOptions", {}).get("enableCache") for t in tasks.values())


def test_settings_come_from_the_environment_and_kfp_gets_yaml(tmp_path):
    environ = {"FLIGHT_DELAY_BUCKET_ROOT": "gs://other/fd", "FLIGHT_DELAY_IMAGE": IMAGE,
               "FLIGHT_DELAY_KFP_HOST": "https://kfp.acme.dev",
               "FLIGHT_DELAY_OUTPUT_DIR": str(tmp_path / "out")}
    settings, submit = kr.settings_from([], environ)
    assert settings.data_root == "gs://other/fd/data" and submit is False
    assert settings.spec_file.endswith(".yaml")
    path = pathlib.Path(kr.compile_pipeline(settings))
    spec = json_format.ParseDict(yaml.safe_load(path.read_text()),
                                 pipeline_spec_pb2.PipelineSpec())
    assert spec.pipeline_info.name == kr.PIPELINE_NAME


def test_missing_settings_are_listed_in_one_error_before_compiling(tmp_path):
    with pytest.raises(kr.SettingsError) as error:
        kr.settings_from(["--beam", "dataflow", "--data-root", "/home/me/data",
                          "--output-dir", str(tmp_path)], {})
    message = str(error.value)
    for missing in ("--image (or FLIGHT_DELAY_IMAGE)", "--pipeline-root", "--serving-model-dir",
                    "--mobile-model-dir",
                    "--project (or FLIGHT_DELAY_PROJECT): needed for Dataflow", "--region",
                    "--data-root must be a bucket URI"):
        assert missing in message
    assert not any(tmp_path.iterdir())  # nothing compiled

    assert kr.main(["--submit", *BASE, "--output-dir", str(tmp_path)], {}) == 2


class _FakeJob:
    calls: list = []

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.resource_name = "projects/1/locations/us-central1/pipelineJobs/flight-delay-42"

    def submit(self, service_account=None):
        _FakeJob.calls.append((self.kwargs, service_account))


class _FakeKfp:
    calls: list = []

    def __init__(self, host):
        self.host = host

    def create_run_from_pipeline_package(self, spec_file, **kwargs):
        _FakeKfp.calls.append((self.host, spec_file, kwargs))
        return type("Run", (), {"run_id": "run-7"})()


def test_submit_to_vertex_passes_the_compiled_spec_and_settings(tmp_path, capsys):
    code = kr.main([*BASE, *CLOUD, "--submit", "--service-account", "sa@acme.iam",
                    "--output-dir", str(tmp_path)], {}, job_class=_FakeJob)
    assert code == 0
    (kwargs, service_account), = _FakeJob.calls
    assert kwargs == {"display_name": "flight-delay",
                      "template_path": str(tmp_path / "flight-delay-pipeline.json"),
                      "pipeline_root": "gs://acme-ml/flight_delay/pipeline_root",
                      "project": "acme", "location": "us-central1", "enable_caching": True}
    assert service_account == "sa@acme.iam"
    assert json.loads(pathlib.Path(kwargs["template_path"]).read_text())["pipelineSpec"]
    assert ("https://console.cloud.google.com/vertex-ai/locations/us-central1/pipelines/runs/"
            "flight-delay-42?project=acme") in capsys.readouterr().out


def test_submit_to_kfp_uses_the_host_and_prints_the_run_link(tmp_path, capsys):
    code = kr.main([*BASE, "--submit", "--kfp-host", "https://kfp.acme.dev/", "--no-cache",
                    "--output-dir", str(tmp_path)], {}, client_class=_FakeKfp)
    assert code == 0
    (host, spec_file, kwargs), = _FakeKfp.calls
    assert host == "https://kfp.acme.dev/" and spec_file.endswith("flight-delay-pipeline.yaml")
    assert kwargs["enable_caching"] is False
    assert kwargs["pipeline_root"] == "gs://acme-ml/flight_delay/pipeline_root"
    assert "https://kfp.acme.dev/#/runs/details/run-7" in capsys.readouterr().out
