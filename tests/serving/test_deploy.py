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
    (container,) = pod["containers"]
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
    ports = {p["name"] for p in container["ports"]}
    assert {p["targetPort"] for p in service["ports"]} == ports == {"grpc", "http"}


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
