"""The replay: 2013 played month by month, as a monthly scheduler would run the pipeline.

The months before the first replayed month are delivered as history; then each month is
dropped into the landing zone and the local pipeline runs with that month as the evaluation
month and the `train_window` months before it as the training window, on one output folder
and one ML Metadata store. The candidate replaces the served model (the champion) only when
the Evaluator blesses it on the new month. For comparison, the model trained in the first step
is kept frozen and scored on every later month.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

from pipeline import console, landing, local, report
from pipeline.config import PipelineConfig
from pipeline.months import Month, describe

DEFAULT_TRAIN_WINDOW = 6
MIN_HISTORY = 2  # months before the first replayed month: training months + validation month


@dataclasses.dataclass
class Step:
    """One replayed month, as printed and written to replay.json."""

    month: str
    status: str
    rows: int | None
    drift: list[str]
    training_months: str
    candidate_auc: float | None
    champion_auc: float | None
    frozen_auc: float | None
    decision: str
    pushed_version: str | None
    all_cached: bool  # nothing re-executed (a month replayed before, unchanged)
    wall_seconds: float

    def line(self) -> str:
        def auc(value):
            return "  n/a " if value is None else f"{value:.4f}"

        return (
            f"[replay] {self.month}: {self.rows or 0:>6,} rows, trained on {self.training_months}, "
            f"AUC candidate {auc(self.candidate_auc)} champion {auc(self.champion_auc)} "
            f"frozen {auc(self.frozen_auc)} -> {self.decision}"
            + (f" (version {self.pushed_version})" if self.pushed_version else "")
            + (f"; drift: {'; '.join(self.drift)}" if self.drift else "")
        )


def frozen_auc(model_uri: str, examples_uri: str) -> float:
    """AUC of a Trainer model on an evaluation window's `eval` split (serialized tf.Examples
    through the model's tf.Example signature), with 10,000 thresholds as TFMA's AUC."""
    import tensorflow as tf
    from tfx.types import artifact_utils, standard_artifacts
    from tfx.utils import path_utils

    from models.constants import EXAMPLES_INPUT, EXAMPLES_SIGNATURE, OUTPUT_KEY
    from pipeline.constants import EVAL_SPLIT
    from transforms import features as F

    model = tf.saved_model.load(path_utils.serving_model_path(model_uri))
    predict = model.signatures[EXAMPLES_SIGNATURE]
    examples = standard_artifacts.Examples()
    examples.uri = examples_uri
    examples.split_names = artifact_utils.encode_split_names([EVAL_SPLIT])
    files = tf.io.gfile.glob(f"{artifact_utils.get_split_uri([examples], EVAL_SPLIT)}/*")
    label_spec = {F.LABEL_KEY: tf.io.FixedLenFeature([1], tf.int64)}
    auc = tf.keras.metrics.AUC(num_thresholds=10_000)
    for batch in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(1024):
        scores = predict(**{EXAMPLES_INPUT: batch})[OUTPUT_KEY]
        auc.update_state(tf.io.parse_example(batch, label_spec)[F.LABEL_KEY], scores)
    return float(auc.result())


def _decision(result: dict) -> str:
    if result["status"] == "failed":
        return "run failed: " + (result.get("error") or "").splitlines()[0][:160]
    if result.get("pushed") and not result.get("already_pushed"):
        return "pushed (replaces the champion)" if result.get("champion_auc") else "pushed"
    if result.get("pushed"):
        return "kept (already serving this model)"
    reasons = result.get("validation", {}).get("failures") or ["not blessed"]
    return "kept the champion: " + "; ".join(reasons)


def replay(
    base: PipelineConfig,
    first_month: Month,
    last_month: Month,
    runs_dir: pathlib.Path,
    replay_dir: pathlib.Path,
    verbose: bool = False,
) -> list[Step]:
    """Runs the pipeline once per month from `first_month` to `last_month`; returns the steps
    (also written to `<replay_dir>/replay.json`, and drawn with the last month's run in
    `<replay_dir>/report.html`). `base` gives every setting but the months:
    its train_window is the most months a window takes (fewer while history is short).

    Raises ValueError when fewer than MIN_HISTORY months precede `first_month` in the data
    year or `last_month` is earlier than `first_month`.
    """
    history = [m for m in _months(Month(first_month.year, 1), first_month.shift(-1))]
    if len(history) < MIN_HISTORY:
        raise ValueError(
            f"the replay needs {MIN_HISTORY} months of history before its first month "
            f"(a training month and a validation month); start at "
            f"{Month(first_month.year, 1).shift(MIN_HISTORY)} or later, not {first_month}"
        )
    if last_month < first_month:
        raise ValueError(f"last month {last_month} is before first month {first_month}")
    root = pathlib.Path(base.landing_root)
    landing.deliver(root, history)
    console.say(f"[replay] history delivered: {describe(tuple(history))}")
    steps: list[Step] = []
    frozen_model = result = None
    for month in _months(first_month, last_month):
        landing.deliver(root, [month])
        window = min(base.train_window, len(history))
        config = dataclasses.replace(base, eval_months=(month,), train_window=window)
        result = local.run(config, runs_dir, verbose=verbose)
        months = result.get("data", {}).get("months", {})
        frozen = None
        if frozen_model is None and result.get("model_uri"):
            frozen_model = result["model_uri"]
        if frozen_model and result.get("eval_examples_uri"):
            frozen = frozen_auc(frozen_model, result["eval_examples_uri"])
        step = Step(
            month=str(month),
            status=result["status"],
            rows=months.get(str(month), {}).get("rows"),
            drift=[f"{f['month']} {f['feature']}" for f in result.get("data", {}).get("drift", [])],
            training_months=describe(config.window_months),
            candidate_auc=result.get("candidate_auc"),
            champion_auc=result.get("champion_auc"),
            frozen_auc=frozen,
            decision=_decision(result),
            pushed_version=result.get("pushed_version") if result.get("pushed") else None,
            all_cached=bool(result.get("all_cached")),
            wall_seconds=result["wall_seconds"],
        )
        console.say(step.line())
        steps.append(step)
        history.append(month)
    replay_dir.mkdir(parents=True, exist_ok=True)
    replayed = [dataclasses.asdict(s) for s in steps]
    (replay_dir / "replay.json").write_text(json.dumps(replayed, indent=2))
    if result is not None:  # the last month's run, with the replay's AUC per month
        report.write_report(result, base.metadata_path, replay_dir, replayed)
    return steps


def _months(first: Month, last: Month) -> list[Month]:
    months = []
    while first <= last:
        months.append(first)
        first = first.shift(1)
    return months
