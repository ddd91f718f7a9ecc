"""Compiles the pipeline for Kubeflow Pipelines v2 / Vertex AI Pipelines, and optionally submits it.

    python kubeflow_runner.py --project my-project --region us-central1 \\
        --bucket-root gs://my-bucket/flight_delay \\
        --image us-central1-docker.pkg.dev/my-project/ml/flight-delay:1.0.0 [--beam dataflow] \\
        [--vertex-training] [--submit | --submit --kfp-host https://kfp.example.com]

Every setting is a flag or an environment variable FLIGHT_DELAY_<FLAG> (e.g.
FLIGHT_DELAY_PROJECT); flags win. `--bucket-root` fills in the pipeline root, data root and
push destinations; each can be set on its own instead. Without --submit this only compiles
(Vertex: PipelineJob JSON; --kfp-host: KFP pipeline-spec YAML) and prints where it wrote it.

The same `create_pipeline` as the local runner; this file holds only paths, orchestrator and
Beam settings. User code runs from the image by dotted module path.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import Any, Callable, Sequence

from models.model import MODEL_NAME
from models.training import DISTRIBUTIONS, TrainingConfig
from pipeline.config import Baseline, PipelineConfig, Resources, VertexTraining

ENV_PREFIX = "FLIGHT_DELAY_"
PIPELINE_NAME = MODEL_NAME.replace("_", "-")  # KFP v2 names: [a-z0-9][a-z0-9-]*
IMAGE_SOURCE_DIR = "/pipeline"  # where the Dockerfile copies the project inside the image
IMAGE_SCHEMA_FILE = f"{IMAGE_SOURCE_DIR}/transforms/schema/schema.pbtxt"
BEAM_RUNNERS = ("direct", "dataflow", "portable")
REMOTE_SCHEMES = ("gs://", "s3://", "hdfs://")

# CPU (vCPU) and memory (GiB) limits per component on Vertex / KFP. With Beam on Dataflow or
# a cluster the Beam-heavy components only drive jobs and need less.
RESOURCES = {
    "direct": {"StatisticsGen": Resources(4, 16), "Transform": Resources(8, 32),
               "Evaluator": Resources(8, 32), "Tuner": Resources(8, 32),
               "Trainer": Resources(8, 32), "InfraValidator": Resources(2, 8),
               "MobileExport": Resources(4, 16)},
    "remote": {"Tuner": Resources(8, 32), "Trainer": Resources(8, 32),
               "InfraValidator": Resources(2, 8), "MobileExport": Resources(4, 16)},
}


@dataclasses.dataclass(frozen=True)
class ProductionSettings:
    """What a production compile needs; see `--help` for each field."""

    image: str
    pipeline_root: str
    data_root: str
    serving_model_dir: str
    mobile_model_dir: str
    project: str | None = None
    region: str | None = None
    service_account: str | None = None
    beam: str = "direct"
    dataflow_temp_location: str | None = None
    dataflow_machine_type: str = "n1-standard-4"
    dataflow_max_workers: int = 10
    dataflow_disk_gb: int = 50
    portable_job_endpoint: str | None = None
    portable_environment: str = "EXTERNAL:localhost:50000"
    vertex_training: bool = False
    training_machine_type: str = "n1-standard-8"
    training_replicas: int = 1
    distribution: str = "none"
    tune: bool = True
    enable_cache: bool = True
    kfp_host: str | None = None
    output_dir: str = "build"

    @property
    def spec_file(self) -> str:
        suffix = "yaml" if self.kfp_host else "json"  # KFP's client reads YAML pipeline specs
        return os.path.join(self.output_dir, f"{PIPELINE_NAME}-pipeline.{suffix}")


class SettingsError(ValueError):
    """Settings are missing or wrong; the message lists every problem at once."""


def problems(s: ProductionSettings, submit: bool) -> list[str]:
    found = []

    def need(value: Any, flag: str, why: str) -> None:
        if value in (None, ""):
            found.append(f"--{flag} (or {ENV_PREFIX}{flag.upper().replace('-', '_')}): {why}")

    need(s.image, "image", "the pipeline image every step runs in")
    for value, flag in ((s.pipeline_root, "pipeline-root"), (s.data_root, "data-root"),
                        (s.serving_model_dir, "serving-model-dir"),
                        (s.mobile_model_dir, "mobile-model-dir")):
        need(value, flag, "a bucket URI (or set --bucket-root)")
        if value and not value.startswith(REMOTE_SCHEMES):
            found.append(f"--{flag} must be a bucket URI ({', '.join(REMOTE_SCHEMES)}), got "
                         f"{value!r}: steps run in containers that cannot see this machine")
    if s.beam not in BEAM_RUNNERS:
        found.append(f"--beam must be one of {', '.join(BEAM_RUNNERS)}, got {s.beam!r}")
    if s.distribution not in DISTRIBUTIONS:
        found.append(f"--distribution must be one of {', '.join(DISTRIBUTIONS)}")
    cloud_reasons = [reason for wanted, reason in (
        (s.beam == "dataflow", "Dataflow"), (s.vertex_training, "Vertex AI Training"),
        (submit and not s.kfp_host, "submitting to Vertex AI Pipelines")) if wanted]
    if cloud_reasons:
        need(s.project, "project", f"needed for {', '.join(cloud_reasons)}")
        need(s.region, "region", f"needed for {', '.join(cloud_reasons)}")
    if s.beam == "portable":
        need(s.portable_job_endpoint, "portable-job-endpoint",
             "the Flink or Spark job server, host:port")
    return found


def beam_args(s: ProductionSettings) -> tuple[str, ...]:
    """Beam presets: in-container DirectRunner, Dataflow, or a Flink/Spark job server."""
    if s.beam == "dataflow":
        args = ["--runner=DataflowRunner", f"--project={s.project}", f"--region={s.region}",
                f"--temp_location={s.dataflow_temp_location or s.pipeline_root + '/beam-tmp'}",
                f"--machine_type={s.dataflow_machine_type}",
                f"--max_num_workers={s.dataflow_max_workers}",
                f"--disk_size_gb={s.dataflow_disk_gb}",
                "--autoscaling_algorithm=THROUGHPUT_BASED",
                # Workers run our image, so they have the same TFX, TFT and our package.
                f"--sdk_container_image={s.image}", "--experiments=use_runner_v2"]
        if s.service_account:
            args.append(f"--service_account_email={s.service_account}")
        return tuple(args)
    if s.beam == "portable":
        environment_type, _, environment_config = s.portable_environment.partition(":")
        return ("--runner=PortableRunner", f"--job_endpoint={s.portable_job_endpoint}",
                f"--environment_type={environment_type}",
                f"--environment_config={environment_config or s.image}")
    # One container: all its cores (0 = as many workers as CPUs).
    return ("--direct_running_mode=multi_processing", "--direct_num_workers=0")


def pipeline_config(s: ProductionSettings) -> PipelineConfig:
    vertex = (VertexTraining(project=s.project, region=s.region, image=s.image,
                             machine_type=s.training_machine_type,
                             replica_count=s.training_replicas)
              if s.vertex_training else None)
    return PipelineConfig(
        pipeline_name=PIPELINE_NAME, pipeline_root=s.pipeline_root, data_root=s.data_root,
        serving_model_dir=s.serving_model_dir, mobile_model_dir=s.mobile_model_dir,
        metadata_path=None, tune=s.tune,
        training=TrainingConfig(distribution=s.distribution), enable_cache=s.enable_cache,
        beam_pipeline_args=beam_args(s), schema_file=IMAGE_SCHEMA_FILE,
        baseline=Baseline.LATEST_BLESSED, vertex_training=vertex,
        resources={node: r for node, r in
                   RESOURCES["direct" if s.beam == "direct" else "remote"].items()
                   if s.tune or node != "Tuner"})


def compile_pipeline(s: ProductionSettings) -> str:
    """Writes the pipeline spec and returns its path."""
    from tfx import v1 as tfx

    from pipeline.pipeline import create_pipeline

    config = pipeline_config(s)
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image=s.image, display_name=PIPELINE_NAME),
        output_dir=s.output_dir, output_filename=os.path.basename(s.spec_file))
    os.makedirs(s.output_dir, exist_ok=True)
    runner.run(create_pipeline(config))
    return s.spec_file


def submit_vertex(s: ProductionSettings, spec_file: str,
                  job_class: Callable | None = None) -> str:
    """Submits to Vertex AI Pipelines; returns the console link of the run."""
    if job_class is None:
        from google.cloud import aiplatform

        job_class = aiplatform.PipelineJob
    job = job_class(display_name=PIPELINE_NAME, template_path=spec_file,
                    pipeline_root=s.pipeline_root, project=s.project, location=s.region,
                    enable_caching=s.enable_cache)
    job.submit(service_account=s.service_account)
    job_id = job.resource_name.rsplit("/", 1)[-1]
    return (f"https://console.cloud.google.com/vertex-ai/locations/{s.region}/pipelines/runs/"
            f"{job_id}?project={s.project}")


def submit_kfp(s: ProductionSettings, spec_file: str, client_class: Callable | None = None
               ) -> str:
    """Submits to a self-hosted Kubeflow Pipelines; returns the run's link."""
    if client_class is None:
        import kfp

        client_class = kfp.Client
    client = client_class(host=s.kfp_host)
    run = client.create_run_from_pipeline_package(
        spec_file, arguments={}, experiment_name=PIPELINE_NAME, pipeline_root=s.pipeline_root,
        enable_caching=s.enable_cache, service_account=s.service_account)
    return f"{s.kfp_host.rstrip('/')}/#/runs/details/{run.run_id}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add = parser.add_argument
    add("--bucket-root", help="gs://bucket/prefix: pipeline root, data, serving pushes beneath")
    add("--pipeline-root", help="where TFX writes artifacts (default <bucket-root>/pipeline_root)")
    add("--data-root", help="prepared spans {train,eval}/*.tfrecord (default <bucket-root>/data)")
    add("--serving-model-dir", help="Pusher's destination, polled by TF Serving "
                                    "(default <bucket-root>/serving_model/flight_delay)")
    add("--mobile-model-dir", help="where TFLite variants are published for mobile builds "
                                   "(default <bucket-root>/mobile/flight_delay)")
    add("--image", help="the pipeline image (see Dockerfile)")
    add("--project", help="GCP project (Vertex, Dataflow)")
    add("--region", help="GCP region (Vertex, Dataflow)")
    add("--service-account", help="service account the pipeline (and Dataflow) run as")
    add("--beam", default="direct", choices=BEAM_RUNNERS,
        help="direct: in each step's container; dataflow; portable: Flink or Spark job server")
    add("--dataflow-temp-location", help="default <pipeline-root>/beam-tmp")
    add("--dataflow-machine-type", default="n1-standard-4")
    add("--dataflow-max-workers", type=int, default=10)
    add("--dataflow-disk-gb", type=int, default=50)
    add("--portable-job-endpoint", help="Flink/Spark job server host:port")
    add("--portable-environment", default="EXTERNAL:localhost:50000",
        help="TYPE:CONFIG of the SDK harness; EXTERNAL = a worker-pool sidecar running the "
             "image; DOCKER: uses the image")
    add("--vertex-training", action="store_true",
        help="run Tuner and Trainer as Vertex AI custom jobs")
    add("--training-machine-type", default="n1-standard-8")
    add("--training-replicas", type=int, default=1)
    add("--distribution", default="none", choices=sorted(DISTRIBUTIONS),
        help="tf.distribute strategy for Trainer and Tuner")
    add("--no-tune", dest="tune", action="store_false", help="skip Tuner")
    add("--no-cache", dest="enable_cache", action="store_false")
    add("--kfp-host", help="submit to this Kubeflow Pipelines endpoint instead of Vertex AI")
    add("--output-dir", default="build", help="where the compiled spec is written")
    add("--submit", action="store_true", help="submit after compiling")
    return parser


def settings_from(argv: Sequence[str], environ: dict[str, str]
                  ) -> tuple[ProductionSettings, bool]:
    """Flags, else FLIGHT_DELAY_* environment variables, else defaults; raises SettingsError
    listing every missing or wrong setting."""
    parser = _parser()
    for action in parser._actions:  # environment variables become defaults
        env = ENV_PREFIX + action.dest.upper()
        if action.dest != "help" and env in environ:
            raw = environ[env]
            if isinstance(action, argparse._StoreTrueAction):
                action.default = raw.lower() in ("1", "true", "yes")
            elif isinstance(action, argparse._StoreFalseAction):
                action.default = raw.lower() not in ("0", "false", "no")
            else:
                action.default = action.type(raw) if action.type else raw
    args = vars(parser.parse_args(list(argv)))
    submit, root = args.pop("submit"), args.pop("bucket_root")
    if root:
        root = root.rstrip("/")
        args["pipeline_root"] = args["pipeline_root"] or f"{root}/pipeline_root"
        args["data_root"] = args["data_root"] or f"{root}/data"
        args["serving_model_dir"] = (args["serving_model_dir"]
                                     or f"{root}/serving_model/{MODEL_NAME}")
        args["mobile_model_dir"] = args["mobile_model_dir"] or f"{root}/mobile/{MODEL_NAME}"
    settings = ProductionSettings(**args)
    found = problems(settings, submit)
    if found:
        raise SettingsError("cannot compile the pipeline; missing or invalid settings:\n  "
                            + "\n  ".join(found))
    return settings, submit


def main(argv: Sequence[str], environ: dict[str, str], job_class: Callable | None = None,
         client_class: Callable | None = None) -> int:
    """Compiles, and submits with --submit (job_class / client_class stand in for Vertex's
    PipelineJob and kfp.Client in tests)."""
    try:
        settings, submit = settings_from(argv, environ)
    except SettingsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    spec_file = compile_pipeline(settings)
    print(f"Compiled {PIPELINE_NAME} for {'Kubeflow Pipelines' if settings.kfp_host else 'Vertex AI'}"
          f" (Beam: {settings.beam}, Vertex training: {settings.vertex_training}): {spec_file}")
    if submit:
        link = (submit_kfp(settings, spec_file, client_class) if settings.kfp_host
                else submit_vertex(settings, spec_file, job_class))
        print(f"Submitted: {link}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], dict(os.environ)))
