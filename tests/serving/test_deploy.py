"""TF Serving deployment files: they parse, agree with each other and with the pipeline."""

from __future__ import annotations

import pathlib
import re

import pytest
import yaml
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from models.constants import MODEL_NAME
from pipeline.config import local_config
from serving import warmup

pytestmark = pytest.mark.unit

DEPLOY = pathlib.Path(__file__).resolve().parents[2] / "serving" / "deploy"
BATCHING_FIELDS = {
    "max_batch_size",
    "batch_timeout_micros",
    "max_enqueued_batches",
    "num_batch_threads",
    "thread_pool_name",
    "allowed_batch_sizes",
    "pad_variable_length_inputs",
    "enable_large_batch_splitting",
}


def _manifests() -> dict[str, dict]:
    return {
        doc["kind"]: doc
        for name in ("deployment.yaml", "service.yaml", "serviceaccount.yaml")
        for doc in yaml.safe_load_all((DEPLOY / name).read_text())
    }


def _batching() -> dict[str, list[int]]:
    values: dict[str, list[int]] = {}
    for line in (DEPLOY / "batching_parameters.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            match = re.fullmatch(r"(\w+) \{ value: (\d+) \}", line)
            assert match, f"not a BatchingParameters line: {line!r}"
            values.setdefault(match[1], []).append(int(match[2]))
    return values


def test_model_config_serves_what_the_pusher_writes():
    config = text_format.Parse(
        (DEPLOY / "models.config").read_text(), model_server_config_pb2.ModelServerConfig()
    )
    (model,) = config.model_config_list.config
    name = local_config(pathlib.Path("unused")).pipeline_name
    assert model.name == name and model.base_path == f"/models/{name}"
    assert model.model_platform == "tensorflow"
    assert model.model_version_policy.latest.num_versions == 2


def test_batching_parameters_are_valid_and_warmup_covers_the_batch_sizes():
    values = _batching()
    assert set(values) <= BATCHING_FIELDS
    allowed = values["allowed_batch_sizes"]
    assert allowed == sorted(allowed) and allowed[-1] == values["max_batch_size"][0]
    # Padded batch shapes the server will run are warmed up before it takes traffic.
    assert set(warmup.PREDICT_BATCHES) <= set(allowed)


def test_kubernetes_manifests_are_locked_down_and_wired_to_the_configs():
    manifests = _manifests()
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    (generator,) = kustomization["configMapGenerator"]
    assert all((DEPLOY / f).exists() for f in generator["files"])
    assert set(kustomization["resources"]) == {
        "deployment.yaml",
        "service.yaml",
        "serviceaccount.yaml",
        "monitor-cronjob.yaml",
    }

    pod = manifests["Deployment"]["spec"]["template"]["spec"]
    containers = {c["name"]: c for c in pod["containers"]}
    assert set(containers) == {"tensorflow-serving", "request-logger"}
    container = containers["tensorflow-serving"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["config"]["configMap"]["name"] == generator["name"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["config"]["mountPath"] == "/config" and mounts["models"]["readOnly"]
    for file in generator["files"]:
        assert any(arg.endswith(f"=/config/{file}") for arg in container["args"])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    assert container["readinessProbe"]["httpGet"]["path"] == f"/v1/models/{MODEL_NAME}/metadata"
    assert pod["serviceAccountName"] == manifests["ServiceAccount"]["metadata"]["name"]

    service = manifests["Service"]["spec"]
    labels = manifests["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert service["selector"].items() <= labels.items()
    assert manifests["Deployment"]["spec"]["selector"]["matchLabels"] == service["selector"]


def _flags(container: dict) -> dict[str, str]:
    return dict(arg.removeprefix("--").split("=", 1) for arg in container["args"] if "=" in arg)


def test_the_service_reaches_tf_serving_only_through_the_logging_sidecar():
    manifests = _manifests()
    pod = manifests["Deployment"]["spec"]["template"]["spec"]
    containers = {c["name"]: c for c in pod["containers"]}
    serving, sidecar = containers["tensorflow-serving"], containers["request-logger"]
    service_ports = manifests["Service"]["spec"]["ports"]

    # The Service targets the sidecar's named ports, on TF Serving's usual numbers; TF
    # Serving's own ports carry no name the Service could target and are the sidecar's upstream.
    sidecar_ports = {p["name"]: p["containerPort"] for p in sidecar["ports"]}
    assert sidecar_ports == {"grpc": 8500, "http": 8501}
    assert {p["targetPort"] for p in service_ports} == set(sidecar_ports)
    assert {p["port"] for p in service_ports} == set(sidecar_ports.values())
    assert all("name" not in p for p in serving["ports"])
    tf_serving = _flags(serving)
    flags = _flags(sidecar)
    assert flags["upstream_grpc"] == f"127.0.0.1:{tf_serving['port']}"
    assert flags["upstream_rest"] == f"http://127.0.0.1:{tf_serving['rest_api_port']}"
    assert {int(flags["port"]), int(flags["rest_api_port"])} == set(sidecar_ports.values())
    assert int(tf_serving["port"]) not in sidecar_ports.values()
    assert int(tf_serving["rest_api_port"]) not in sidecar_ports.values()
    assert flags["host"] == "0.0.0.0"  # reachable from the Service

    # It runs our code from the pipeline image and logs where the monitor reads.
    assert sidecar["command"] == ["python", "-m", "serving.sidecar"]
    assert sidecar["image"].startswith("REGISTRY/flight-delay:")
    assert flags["model_name"] == MODEL_NAME
    assert 0 < float(flags["request_log_sampling_rate"]) <= 1
    assert flags["request_log_dir"].startswith("gs://")
    monitor = yaml.safe_load_all((DEPLOY / "monitor-cronjob.yaml").read_text())
    (cron,) = [d for d in monitor if d["kind"] == "CronJob"]
    (job,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert f"--logs {flags['request_log_dir']}" in " ".join(job["args"])
    assert sidecar["image"] == job["image"]

    # Locked down and bounded like the model server; ready once TF Serving answers through it.
    assert {"cpu", "memory"} <= set(sidecar["resources"]["requests"])
    assert {"cpu", "memory"} <= set(sidecar["resources"]["limits"])
    assert sidecar["securityContext"]["readOnlyRootFilesystem"] is True
    assert sidecar["securityContext"]["allowPrivilegeEscalation"] is False
    probe = sidecar["readinessProbe"]["httpGet"]
    assert (probe["path"], probe["port"]) == (f"/v1/models/{MODEL_NAME}/metadata", "http")
    assert serving["readinessProbe"]["httpGet"]["port"] == int(tf_serving["rest_api_port"])
    assert serving["livenessProbe"]["tcpSocket"]["port"] == int(tf_serving["port"])


def test_monitor_cronjob_runs_the_monitor_locked_down_one_at_a_time():
    docs = {d["kind"]: d for d in yaml.safe_load_all((DEPLOY / "monitor-cronjob.yaml").read_text())}
    cron = docs["CronJob"]["spec"]
    assert cron["concurrencyPolicy"] == "Forbid"
    job = cron["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 0  # exit 3 (alert) fails the Job once, it is not retried
    pod = job["template"]["spec"]
    (container,) = pod["containers"]
    command = " ".join(container["command"] + container["args"])
    assert "python -m pipeline.monitor" in command
    for flag in ("--logs", "--output-dir /output", "--since", "--until"):
        assert flag in command
    assert {m["mountPath"] for m in container["volumeMounts"]} >= {"/output", "/tmp"}
    assert pod["serviceAccountName"] == docs["ServiceAccount"]["metadata"]["name"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
