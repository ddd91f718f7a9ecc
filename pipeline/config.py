"""The pipeline's typed configuration: built once by a runner, never read from the environment.

A leaf: importing it loads no TensorFlow, TFX or pandas."""

from __future__ import annotations

import dataclasses
import enum
import pathlib
from collections.abc import Mapping

from mobile.config import MobileConfig
from models.config import TrainingConfig
from models.constants import MODEL_NAME
from pipeline.constants import DATA_YEAR, MAX_MONTHS
from pipeline.months import Month, describe, months_before


class Baseline(enum.Enum):
    """Which earlier model the Evaluator compares a candidate with."""

    # The newest blessed model other than the candidate: an unchanged re-run stays cached.
    EXCLUDE_CANDIDATE = "exclude_candidate"
    # TFX's LatestBlessedModelStrategy, the only model resolver KFP v2 / Vertex compiles.
    LATEST_BLESSED = "latest_blessed"


class DriftAction(enum.Enum):
    """What drift of a month from the month before does to the run."""

    BLOCK = "block"  # stop before training, naming month, feature, metric, value, threshold
    WARN = "warn"  # record the finding in the summary and go on


DEFAULT_EVAL_MONTHS = (Month(DATA_YEAR, 11), Month(DATA_YEAR, 12))
DEFAULT_TRAIN_WINDOW = 10  # with the default evaluation months: 2013-01..2013-10


@dataclasses.dataclass(frozen=True)
class VertexTraining:
    """Run Tuner and Trainer as Vertex AI custom jobs (tfx.extensions.google_cloud_ai_platform)."""

    project: str
    region: str
    image: str  # the pipeline image: it holds run_fn / tuner_fn
    machine_type: str = "n1-standard-8"
    replica_count: int = 1  # > 1 with distribution "multi_worker_mirrored"
    parallel_tuning_trials: int = 2


@dataclasses.dataclass(frozen=True)
class Resources:
    """CPU and memory of one component's container, requested and limited (KFP v2 / Vertex)."""

    cpu: float
    memory_gib: float


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """Everything `create_pipeline` needs; paths may be local or gs:// URIs."""

    pipeline_name: str
    pipeline_root: str
    landing_root: str  # monthly drops: <landing_root>/<YYYY-MM>/{flights,weather,planes}.csv
    serving_model_dir: str  # Pusher writes <serving_model_dir>/<integer version>/
    # The Pusher publishes the TFLite variants MobileExport gated as
    # <mobile_model_dir>/<the same version>/; None leaves the mobile step out.
    mobile_model_dir: str | None = None
    mobile: MobileConfig = MobileConfig()
    metadata_path: str | None = None  # SQLite ML Metadata; None where the orchestrator has one
    # The candidate is judged on eval_months; it trains on the train_window months before
    # them: all but the last for training, the last for validation (early stopping, tuning).
    eval_months: tuple[Month, ...] = DEFAULT_EVAL_MONTHS
    train_window: int = DEFAULT_TRAIN_WINDOW
    drift_action: DriftAction = DriftAction.BLOCK
    rows_per_month: int | None = None  # sample this many flights per month (None: all)
    tune: bool = True  # False skips Tuner and trains with the search space defaults
    training: TrainingConfig = TrainingConfig()
    min_eval_auc: float = 0.70  # value threshold on the overall eval AUC
    max_auc_drop: float = 0.01  # change threshold against the latest blessed model
    enable_cache: bool = True
    beam_pipeline_args: tuple[str, ...] = ()  # set by the runner; () = Beam's defaults
    schema_file: str | None = None  # None: the curated schema shipped in the package
    baseline: Baseline = Baseline.EXCLUDE_CANDIDATE
    vertex_training: VertexTraining | None = None
    resources: Mapping[str, Resources] = dataclasses.field(default_factory=dict)  # by node id

    @property
    def window_months(self) -> tuple[Month, ...]:
        """The training window: the train_window months before the first evaluation month."""
        return months_before(min(self.eval_months), self.train_window)

    @property
    def train_months(self) -> tuple[Month, ...]:
        return self.window_months[:-1]

    @property
    def validation_month(self) -> Month:
        return self.window_months[-1]

    @property
    def months(self) -> tuple[Month, ...]:
        """Every month the run ingests, oldest first."""
        return self.window_months + tuple(sorted(self.eval_months))

    @property
    def data_span(self) -> str:
        """The months a model learns from and is judged on, as the mobile contract states it."""
        return (
            f"trained on {describe(self.window_months)} (validation {self.validation_month}), "
            f"evaluated on {describe(self.eval_months)}"
        )

    def __post_init__(self):
        if not self.eval_months or len(set(self.eval_months)) != len(self.eval_months):
            raise ValueError(f"eval_months must be distinct months, got {self.eval_months}")
        if self.train_window + len(self.eval_months) > MAX_MONTHS:
            raise ValueError(
                f"a run takes at most {MAX_MONTHS} months (train_window + evaluation months), "
                f"got {self.train_window} + {len(self.eval_months)}"
            )
        if self.train_window < 2:
            raise ValueError(
                f"train_window must be >= 2 (training months plus one validation month), "
                f"got {self.train_window}"
            )
        if self.rows_per_month is not None and self.rows_per_month < 1:
            raise ValueError(f"rows_per_month must be positive, got {self.rows_per_month}")
        if not 0.0 <= self.min_eval_auc <= 1.0:
            raise ValueError(f"min_eval_auc must be within [0, 1], got {self.min_eval_auc}")
        if self.max_auc_drop < 0:
            raise ValueError(f"max_auc_drop must be >= 0, got {self.max_auc_drop}")


def local_config(output_dir: pathlib.Path, **overrides) -> PipelineConfig:
    """Defaults for a laptop run: everything under one output folder."""
    output_dir = output_dir.resolve()
    name = overrides.pop("pipeline_name", MODEL_NAME)
    return PipelineConfig(
        pipeline_name=name,
        pipeline_root=str(output_dir / "pipeline_root" / name),
        landing_root=str(output_dir / "landing"),
        serving_model_dir=str(output_dir / "serving_model" / name),
        mobile_model_dir=str(output_dir / "mobile" / name),
        metadata_path=str(output_dir / "metadata" / f"{name}.sqlite"),
        **overrides,
    )
