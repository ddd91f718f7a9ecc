"""Compiles the pipeline for Kubeflow Pipelines v2 / Vertex AI Pipelines, and optionally submits it.

    python kubeflow_runner.py --project my-project --region us-central1 \\
        --bucket-root gs://my-bucket/flight_delay \\
        --image us-central1-docker.pkg.dev/my-project/ml/flight-delay:1.0.0 [--beam dataflow] \\
        [--eval-month 2013-11] [--train-window 10] [--drift-action block|warn] \\
        [--vertex-training] [--submit | --submit --kfp-host https://kfp.example.com]

Every setting is a flag or an environment variable FLIGHT_DELAY_<SETTING> (e.g.
FLIGHT_DELAY_PROJECT, FLIGHT_DELAY_TUNE=false for --no-tune, FLIGHT_DELAY_EVAL_MONTHS for
--eval-month); flags win. `--bucket-root` fills in the pipeline root, the landing zone and the
push destinations; each can be set on its own instead. Without --submit this only compiles
(Vertex: PipelineJob JSON; --kfp-host: KFP pipeline-spec YAML) and prints where it wrote it.

The run's months are fixed when compiling: one ExampleGen (and StatisticsGen) per month of the
training window and the evaluation month(s), read from `<landing-root>/<YYYY-MM>/`. A monthly
scheduler compiles and submits again with `--eval-month <the new month>`; a month whose drop is
unchanged has the same ExampleGen cache key (its driver fingerprints the drop's files).

The same `create_pipeline` as the local runner; this file holds only paths, orchestrator and
Beam settings. User code runs from the image by dotted module path.

Each setting is stated once, as a field of `ProductionSettings` (default and help); the click
command is generated from those fields, so `--help` shows every option, its default and its
environment variable.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import click

from models.config import DISTRIBUTIONS, TrainingConfig
from models.constants import MODEL_NAME
from pipeline.config import (
    DEFAULT_EVAL_MONTHS,
    DEFAULT_TRAIN_WINDOW,
    Baseline,
    DriftAction,
    PipelineConfig,
    Resources,
    VertexTraining,
)
from pipeline.constants import NodeId, month_node
from pipeline.months import Month

ENV_PREFIX = "FLIGHT_DELAY_"
PIPELINE_NAME = MODEL_NAME.replace("_", "-")  # KFP v2 names: [a-z0-9][a-z0-9-]*
IMAGE_SOURCE_DIR = "/pipeline"  # where the Dockerfile copies the project inside the image
IMAGE_SCHEMA_FILE = f"{IMAGE_SOURCE_DIR}/transforms/schema/schema.pbtxt"
BEAM_RUNNERS = ("direct", "dataflow", "portable")
REMOTE_SCHEMES = ("gs://", "s3://", "hdfs://")
BEAM_TEMP_DIR = "beam-tmp"  # Dataflow's temp location under the pipeline root, unless set
PORTABLE_JOB_TIMEOUT_SECONDS = 86_400  # the longest Beam job a portable runner may wait for

# CPU (vCPU) and memory (GiB) limits per component on Vertex / KFP. With Beam on Dataflow or
# a cluster the Beam-heavy components only drive jobs and need less. A per-month kind
# (PER_MONTH_NODES) applies to each of its nodes: StatisticsGen -> StatisticsGen_2013_01, ...
RESOURCES = {
    "direct": {
        NodeId.STATISTICS_GEN: Resources(4, 16),
        NodeId.TRANSFORM: Resources(8, 32),
        NodeId.EVALUATOR: Resources(8, 32),
        NodeId.TUNER: Resources(8, 32),
        NodeId.TRAINER: Resources(8, 32),
        NodeId.INFRA_VALIDATOR: Resources(2, 8),
        NodeId.MOBILE_EXPORT: Resources(4, 16),
    },
    "remote": {
        NodeId.TUNER: Resources(8, 32),
        NodeId.TRAINER: Resources(8, 32),
        NodeId.INFRA_VALIDATOR: Resources(2, 8),
        NodeId.MOBILE_EXPORT: Resources(4, 16),
    },
}
PER_MONTH_NODES = (NodeId.EXAMPLE_GEN, NodeId.STATISTICS_GEN)  # one node per month of the run


def flag(name: str) -> str:
    """The command-line flag of a setting: `dataflow_max_workers` -> `--dataflow-max-workers`."""
    return "--" + name.replace("_", "-")


def env_var(name: str) -> str:
    """The environment variable of a setting: `project` -> `FLIGHT_DELAY_PROJECT`."""
    return ENV_PREFIX + name.upper()


def setting(
    default: Any = dataclasses.MISSING,
    help: str = "",
    *,
    option: str | None = None,
    choices: Sequence[str] | None = None,
    under_bucket_root: str | None = None,
    months: bool = False,
) -> Any:
    """A ProductionSettings field; its default and help are also its command-line option's
    (help describes the option: `--no-tune` "skip Tuner").

    option: the flag when not `flag(field name)` (`--no-tune` sets `tune` to False);
    choices: the allowed values; under_bucket_root: the default path beneath --bucket-root;
    months: a tuple of Month, given as YYYY-MM, repeatable and comma-separated.
    """
    return dataclasses.field(
        default=default,
        metadata={
            "help": help,
            "option": option,
            "choices": choices,
            "under_bucket_root": under_bucket_root,
            "months": months,
        },
    )


@dataclasses.dataclass(frozen=True)
class ProductionSettings:
    """What a production compile needs. Each field is one option of the command line, and
    states its default and help once: `--help` and the flags are generated from these fields."""

    image: str = setting(help="the pipeline image (see Dockerfile)")
    pipeline_root: str = setting(
        help="where TFX writes artifacts", under_bucket_root="pipeline_root"
    )
    landing_root: str = setting(
        help="the landing zone: monthly drops <landing-root>/<YYYY-MM>/"
        "{flights,weather,planes}.csv",
        under_bucket_root="landing",
    )
    serving_model_dir: str = setting(
        help="Pusher's destination, polled by TF Serving",
        under_bucket_root=f"serving_model/{MODEL_NAME}",
    )
    mobile_model_dir: str = setting(
        help="where TFLite variants are published for mobile builds",
        under_bucket_root=f"mobile/{MODEL_NAME}",
    )
    project: str | None = setting(None, "GCP project (Vertex, Dataflow)")
    region: str | None = setting(None, "GCP region (Vertex, Dataflow)")
    service_account: str | None = setting(
        None, "service account the pipeline (and Dataflow) run as"
    )
    beam: str = setting(
        "direct",
        "direct: in each step's container; dataflow; portable: Flink or Spark job server",
        choices=BEAM_RUNNERS,
    )
    dataflow_temp_location: str | None = setting(
        None, f"Dataflow's temp files (default <pipeline-root>/{BEAM_TEMP_DIR})"
    )
    dataflow_machine_type: str = setting("n1-standard-4", "Dataflow worker machine type")
    dataflow_max_workers: int = setting(10, "Dataflow autoscaling limit")
    dataflow_disk_gb: int = setting(50, "disk of each Dataflow worker, GB")
    portable_job_endpoint: str | None = setting(None, "Flink/Spark job server host:port")
    portable_environment: str = setting(
        "EXTERNAL:localhost:50000",
        "TYPE:CONFIG of the SDK harness; EXTERNAL = a worker-pool "
        "sidecar running the image; DOCKER: uses the image",
    )
    vertex_training: bool = setting(False, "run Tuner and Trainer as Vertex AI custom jobs")
    # Defaults of the pipeline's own config classes are stated there.
    training_machine_type: str = setting(
        VertexTraining.machine_type, "Vertex training machine type"
    )
    training_replicas: int = setting(
        VertexTraining.replica_count, "Vertex training replicas (> 1 with multi_worker_mirrored)"
    )
    distribution: str = setting(
        TrainingConfig.distribution,
        "tf.distribute strategy for Trainer and Tuner",
        choices=DISTRIBUTIONS,
    )
    # The run's months, fixed in the compiled spec (see the module docstring).
    eval_months: tuple[Month, ...] = setting(
        DEFAULT_EVAL_MONTHS,
        "a month the candidate is judged on, YYYY-MM (repeatable or a comma list); fixed when "
        "compiling: a monthly scheduler compiles and submits with --eval-month <the new month>",
        option="--eval-month",
        months=True,
    )
    train_window: int = setting(
        DEFAULT_TRAIN_WINDOW,
        "months before the first evaluation month the candidate trains on, the last of them "
        "for validation; fixed when compiling",
    )
    drift_action: str = setting(
        DriftAction.BLOCK.value,
        "what drift of a month from the month before does: block stops the run before "
        "training, warn records it and goes on",
        choices=tuple(a.value for a in DriftAction),
    )
    tune: bool = setting(
        True, "skip Tuner (train with the search space defaults)", option="--no-tune"
    )
    enable_cache: bool = setting(True, "run every step, even if cached", option="--no-cache")
    kfp_host: str | None = setting(
        None, "submit to this Kubeflow Pipelines endpoint instead of Vertex AI"
    )
    output_dir: str = setting("build", "where the compiled spec is written")

    @property
    def spec_file(self) -> str:
        suffix = "yaml" if self.kfp_host else "json"  # KFP's client reads YAML pipeline specs
        return os.path.join(self.output_dir, f"{PIPELINE_NAME}-pipeline.{suffix}")


class SettingsError(ValueError):
    """Settings are missing or wrong; the message lists every problem at once."""


def problems(s: ProductionSettings, submit: bool) -> list[str]:
    """Every setting this preset lacks or that cannot work, one line each."""
    found = []

    def need(value: Any, name: str, why: str) -> None:
        if value in (None, ""):
            found.append(f"{flag(name)} (or {env_var(name)}): {why}")

    need(s.image, "image", "the pipeline image every step runs in")
    for field in dataclasses.fields(ProductionSettings):
        if field.metadata["under_bucket_root"]:
            value = getattr(s, field.name)
            need(value, field.name, "a bucket URI (or set --bucket-root)")
            if value and not value.startswith(REMOTE_SCHEMES):
                found.append(
                    f"{flag(field.name)} must be a bucket URI "
                    f"({', '.join(REMOTE_SCHEMES)}), got {value!r}: steps run in "
                    "containers that cannot see this machine"
                )
    for name in ("dataflow_max_workers", "dataflow_disk_gb", "training_replicas"):
        if getattr(s, name) < 1:
            found.append(f"{flag(name)} must be at least 1, got {getattr(s, name)}")
    if s.train_window < 2:
        found.append(
            f"--train-window must be at least 2 (training months plus one validation month), "
            f"got {s.train_window}"
        )
    repeated = sorted({str(m) for m in s.eval_months if s.eval_months.count(m) > 1})
    if repeated:
        found.append(f"--eval-month names {', '.join(repeated)} more than once")
    if s.vertex_training and s.training_replicas > 1 and s.distribution != "multi_worker_mirrored":
        found.append(
            "--training-replicas above 1 needs --distribution multi_worker_mirrored, "
            f"got {s.distribution!r}: each replica would train alone"
        )
    cloud_reasons = [
        reason
        for wanted, reason in (
            (s.beam == "dataflow", "Dataflow"),
            (s.vertex_training, "Vertex AI Training"),
            (submit and not s.kfp_host, "submitting to Vertex AI Pipelines"),
        )
        if wanted
    ]
    if cloud_reasons:
        need(s.project, "project", f"needed for {', '.join(cloud_reasons)}")
        need(s.region, "region", f"needed for {', '.join(cloud_reasons)}")
    if s.beam == "portable":
        need(
            s.portable_job_endpoint,
            "portable_job_endpoint",
            "the Flink or Spark job server, host:port",
        )
    return found


def beam_args(s: ProductionSettings) -> tuple[str, ...]:
    """Beam presets: in-container DirectRunner, Dataflow, or a Flink/Spark job server."""
    if s.beam == "dataflow":
        args = [
            "--runner=DataflowRunner",
            f"--project={s.project}",
            f"--region={s.region}",
            "--temp_location=" + (s.dataflow_temp_location or f"{s.pipeline_root}/{BEAM_TEMP_DIR}"),
            f"--machine_type={s.dataflow_machine_type}",
            f"--max_num_workers={s.dataflow_max_workers}",
            f"--disk_size_gb={s.dataflow_disk_gb}",
            "--autoscaling_algorithm=THROUGHPUT_BASED",
            # Workers run our image, so they have the same TFX, TFT and our package.
            f"--sdk_container_image={s.image}",
            "--experiments=use_runner_v2",
        ]
        if s.service_account:
            args.append(f"--service_account_email={s.service_account}")
        return tuple(args)
    if s.beam == "portable":
        environment_type, _, environment_config = s.portable_environment.partition(":")
        return (
            "--runner=PortableRunner",
            f"--job_endpoint={s.portable_job_endpoint}",
            f"--environment_type={environment_type}",
            f"--environment_config={environment_config or s.image}",
            # Beam applies it to the client's job state stream too (portable_runner.py,
            # GetStateStream(timeout=...)): the default 300 s would fail any longer job.
            f"--job_server_timeout={PORTABLE_JOB_TIMEOUT_SECONDS}",
            # Workers run our image: TFX then stages no tfx_ephemeral sdist of itself per
            # component (tfx/utils/dependency_utils.py); EXTERNAL environments ignore it.
            f"--sdk_container_image={s.image}",
        )
    # One container: all its cores (0 = as many workers as CPUs). The DirectRunner stages
    # nothing; naming the image's project keeps TFX from packing its own install into an
    # sdist per component (see local_runner.BEAM_ARGS).
    return (
        "--direct_running_mode=multi_processing",
        "--direct_num_workers=0",
        f"--setup_file={IMAGE_SOURCE_DIR}/setup.py",
    )


def pipeline_config(s: ProductionSettings) -> PipelineConfig:
    vertex = (
        VertexTraining(
            project=s.project,
            region=s.region,
            image=s.image,
            machine_type=s.training_machine_type,
            replica_count=s.training_replicas,
        )
        if s.vertex_training
        else None
    )
    config = PipelineConfig(
        pipeline_name=PIPELINE_NAME,
        pipeline_root=s.pipeline_root,
        landing_root=s.landing_root,
        serving_model_dir=s.serving_model_dir,
        mobile_model_dir=s.mobile_model_dir,
        metadata_path=None,
        eval_months=tuple(s.eval_months),
        train_window=s.train_window,
        drift_action=DriftAction(s.drift_action),
        tune=s.tune,
        training=TrainingConfig(distribution=s.distribution),
        enable_cache=s.enable_cache,
        beam_pipeline_args=beam_args(s),
        schema_file=IMAGE_SCHEMA_FILE,
        baseline=Baseline.LATEST_BLESSED,
        vertex_training=vertex,
    )
    table = RESOURCES["direct" if s.beam == "direct" else "remote"]
    return dataclasses.replace(config, resources=resources_by_node(table, config.months, s.tune))


def resources_by_node(
    table: Mapping[str, Resources], months: Sequence[Month], tune: bool
) -> dict[str, Resources]:
    """The table by the pipeline's node ids: a per-month kind (PER_MONTH_NODES) for each
    month's node (`StatisticsGen_2013_01`, ...); the Tuner's only when it runs."""
    resources = {}
    for node, r in table.items():
        if node == NodeId.TUNER and not tune:
            continue
        if node in PER_MONTH_NODES:
            resources.update({month_node(node, m): r for m in months})
        else:
            resources[node] = r
    return resources


def compile_pipeline(s: ProductionSettings) -> str:
    """Writes the pipeline spec and returns its path."""
    from tfx import v1 as tfx

    from pipeline.pipeline import create_pipeline

    config = pipeline_config(s)
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image=s.image, display_name=PIPELINE_NAME
        ),
        output_dir=s.output_dir,
        output_filename=os.path.basename(s.spec_file),
    )
    os.makedirs(s.output_dir, exist_ok=True)
    runner.run(create_pipeline(config))
    return s.spec_file


def submit_vertex(s: ProductionSettings, spec_file: str, job_class: Callable | None = None) -> str:
    """Submits to Vertex AI Pipelines; returns the console link of the run."""
    if job_class is None:
        from google.cloud import aiplatform

        job_class = aiplatform.PipelineJob
    job = job_class(
        display_name=PIPELINE_NAME,
        template_path=spec_file,
        pipeline_root=s.pipeline_root,
        project=s.project,
        location=s.region,
        enable_caching=s.enable_cache,
    )
    job.submit(service_account=s.service_account)
    job_id = job.resource_name.rsplit("/", 1)[-1]
    return (
        f"https://console.cloud.google.com/vertex-ai/locations/{s.region}/pipelines/runs/"
        f"{job_id}?project={s.project}"
    )


def submit_kfp(s: ProductionSettings, spec_file: str, client_class: Callable | None = None) -> str:
    """Submits to a self-hosted Kubeflow Pipelines; returns the run's link."""
    if client_class is None:
        import kfp

        client_class = kfp.Client
    client = client_class(host=s.kfp_host)
    run = client.create_run_from_pipeline_package(
        spec_file,
        arguments={},
        experiment_name=PIPELINE_NAME,
        pipeline_root=s.pipeline_root,
        enable_caching=s.enable_cache,
        service_account=s.service_account,
    )
    return f"{s.kfp_host.rstrip('/')}/#/runs/details/{run.run_id}"


# ---- command line: generated from ProductionSettings' fields ----


class _Months(click.ParamType):
    """`2013-11` or `2013-11,2013-12` -> a tuple of Month; errors are Month.parse's."""

    name = "YYYY-MM[,...]"

    def convert(self, value: Any, param, ctx) -> tuple[Month, ...]:
        if isinstance(value, Month):  # the default
            return (value,)
        parts = [part for part in str(value).split(",") if part.strip()] or [str(value)]
        try:
            return tuple(Month.parse(part) for part in parts)
        except ValueError as e:
            self.fail(str(e), param, ctx)


def shown(default: Any) -> str:
    """A default as --help shows it (months as YYYY-MM, comma-separated)."""
    if isinstance(default, tuple):
        return ",".join(str(v) for v in default)
    return str(default)


def _option(
    name: str,
    default: Any,
    help: str,
    flag_name: str | None = None,
    choices: Sequence[str] | None = None,
    months: bool = False,
) -> click.Option:
    """An option with the setting's default; a bool setting is a flag that flips its default,
    a months setting is repeatable. Its help ends with its environment variable and default,
    like click's own."""
    kwargs: dict[str, Any] = {"type": click.Choice(choices)} if choices else {}
    if months:
        kwargs.update(type=_Months(), multiple=True)
    extra = [f"env var: {env_var(name)}"]
    if isinstance(default, bool):
        kwargs.update(is_flag=True, flag_value=not default)
        extra[0] += f"={str(not default).lower()}"
    elif default is not None:
        extra.append(f"default: {shown(default)}")
    return click.Option(
        [flag_name or flag(name), name],
        default=default,
        help=f"{help}  [{'; '.join(extra)}]",
        **kwargs,
    )


def _command() -> click.Command:
    """--bucket-root, one option per ProductionSettings field, and --submit."""
    params = [
        _option(
            "bucket_root",
            None,
            "gs://bucket/prefix: pipeline root, landing zone, serving and mobile pushes beneath",
        )
    ]
    for field in dataclasses.fields(ProductionSettings):
        meta = field.metadata
        help_text = meta["help"]
        if meta["under_bucket_root"]:
            help_text += f" (default <bucket-root>/{meta['under_bucket_root']})"
        params.append(
            _option(
                field.name,
                None if field.default is dataclasses.MISSING else field.default,
                help_text,
                flag_name=meta["option"],
                choices=meta["choices"],
                months=meta["months"],
            )
        )
    params.append(_option("submit", False, "submit after compiling"))
    return click.Command(
        "kubeflow_runner.py",
        params=params,
        help=__doc__.split("\n\n")[0],
        epilog="Each option can be set by its environment variable instead; flags win over "
        "environment variables, which win over defaults.",
        context_settings={"max_content_width": 100},
    )


COMMAND = _command()


def _parse(argv: Sequence[str], environ: Mapping[str, str]) -> dict[str, Any]:
    """Flag values, else environment values, else defaults, converted to each option's type.

    The environment enters as click's `default_map`, which ranks below flags and above
    defaults; a repeatable option's variable holds its values separated by commas or spaces.
    Months come back as one flat tuple. Raises click.exceptions.Exit after printing --help,
    SettingsError otherwise.
    """
    from_environ = {
        p.name: environ[env_var(p.name)].split() if p.multiple else environ[env_var(p.name)]
        for p in COMMAND.params
        if environ.get(env_var(p.name))
    }  # empty = unset, as click treats it
    try:
        ctx = COMMAND.make_context(COMMAND.name, list(argv), default_map=from_environ)
    except click.BadParameter as e:
        if (
            e.ctx is not None
            and e.param is not None
            and e.param.name in from_environ
            and (e.ctx.get_parameter_source(e.param.name) is click.core.ParameterSource.DEFAULT_MAP)
        ):
            e.param_hint = f"{env_var(e.param.name)} ({e.param.opts[0]})"
        raise SettingsError(e.format_message()) from None
    except click.UsageError as e:
        raise SettingsError(f"{e.format_message()} (see --help)") from None
    return {
        name: tuple(m for group in value for m in group)
        if isinstance(value, tuple) and value and isinstance(value[0], tuple)
        else value
        for name, value in ctx.params.items()
    }


def settings_from(
    argv: Sequence[str], environ: Mapping[str, str]
) -> tuple[ProductionSettings, bool]:
    """Flags, else FLIGHT_DELAY_* environment variables, else defaults; raises SettingsError
    listing every missing or wrong setting (click.exceptions.Exit after printing --help)."""
    values = _parse(argv, environ)
    submit, root = values.pop("submit"), values.pop("bucket_root")
    if root:
        for field in dataclasses.fields(ProductionSettings):
            beneath = field.metadata["under_bucket_root"]
            if beneath and not values[field.name]:
                values[field.name] = f"{root.rstrip('/')}/{beneath}"
    settings = ProductionSettings(**values)
    found = problems(settings, submit)
    if found:
        raise SettingsError(
            "cannot compile the pipeline; missing or invalid settings:\n  " + "\n  ".join(found)
        )
    return settings, submit


def main(
    argv: Sequence[str],
    environ: Mapping[str, str],
    job_class: Callable | None = None,
    client_class: Callable | None = None,
) -> int:
    """Compiles, and submits with --submit (job_class / client_class stand in for Vertex's
    PipelineJob and kfp.Client in tests)."""
    try:
        settings, submit = settings_from(argv, environ)
    except click.exceptions.Exit as e:  # --help
        return e.exit_code
    except SettingsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    spec_file = compile_pipeline(settings)
    target = "Kubeflow Pipelines" if settings.kfp_host else "Vertex AI"
    print(
        f"Compiled {PIPELINE_NAME} for {target} (Beam: {settings.beam}, Vertex training: "
        f"{settings.vertex_training}): {spec_file}"
    )
    if submit:
        link = (
            submit_kfp(settings, spec_file, client_class)
            if settings.kfp_host
            else submit_vertex(settings, spec_file, job_class)
        )
        print(f"Submitted: {link}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], dict(os.environ)))
