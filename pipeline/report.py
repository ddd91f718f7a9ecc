"""The run report: `<run dir>/report.html`, one page to look at rather than a summary to read.

Its facts come from the run's summary (pipeline/summary.py) and from the artifacts the run's
executions recorded in ML Metadata: each month's StatisticsGen statistics (rows, label rate,
feature distributions), the Tuner's trials, the Trainer's TensorBoard logs (loss and AUC per
epoch) and the Evaluator's TFMA plots (ROC, calibration); a replay adds its steps. Figures are
drawn by matplotlib's Agg backend and inlined as base64 PNG, and the page's only style is
inline: it loads nothing from anywhere and opens from disk offline. A section whose inputs are
missing (a failed run, no Tuner, no champion) says so instead of failing the report.

Reading (`read_*`), plotting (`plot_*`, PNG bytes from plain data) and the page (`sections`,
`render`) are separate, so each is testable on small synthetic inputs.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import os
import pathlib
from collections.abc import Callable

from models.constants import AUC_METRIC
from pipeline import summary as run_summary
from pipeline.constants import (
    EVAL_METRICS,
    EVAL_SPLIT,
    GATED_METRIC,
    MIN_SLICE_EXAMPLES,
    MONTH_SPLIT,
    TRAIN_SPLIT,
    VALIDATION_SPLIT,
    NodeId,
)
from transforms import features as F

REPORT_FILE = "report.html"
TEMPLATE = pathlib.Path(__file__).with_name("report.html.jinja")
TRAINING, EVALUATION = "training window", "evaluation"
GROUP_ROLES = {TRAINING: (TRAIN_SPLIT, VALIDATION_SPLIT), EVALUATION: (EVAL_SPLIT,)}
"""Feature distributions compare what the model learned from with what it was judged on."""
TOP_VALUES = 10  # categorical values shown per feature
BINS = 20  # histogram bins of a numeric feature over the months' common range
DPI = 96
COLORS = {
    TRAINING: "tab:blue",
    EVALUATION: "tab:orange",
    "candidate": "tab:blue",
    "champion": "tab:green",
    "frozen": "tab:gray",
}
_AUC, _ACCURACY, _COUNT = (
    EVAL_METRICS[k] for k in (GATED_METRIC, "BinaryAccuracyFromHistogram", "ExampleCount")
)


# --- the page's building blocks ---------------------------------------------------------------


@dataclasses.dataclass
class Figure:
    """A PNG figure; `data` is its base64 text for a data: URL."""

    png: bytes
    alt: str
    caption: str = ""
    kind: str = "figure"

    @property
    def data(self) -> str:
        return base64.b64encode(self.png).decode("ascii")


@dataclasses.dataclass
class Gallery:
    """Small figures side by side."""

    figures: list[Figure]
    kind: str = "gallery"


@dataclasses.dataclass
class Table:
    """Rows of text cells under column names."""

    columns: list[str]
    rows: list[list[str]]
    caption: str = ""
    row_classes: list[str] = dataclasses.field(default_factory=list)  # CSS class per row
    kind: str = "table"


@dataclasses.dataclass
class Text:
    """A paragraph."""

    text: str
    note: bool = False  # something missing or wrong: shown highlighted
    kind: str = "text"


@dataclasses.dataclass
class Section:
    """One part of the page (`id` is its HTML id): blocks shown in order."""

    id: str
    title: str
    blocks: list = dataclasses.field(default_factory=list)


# --- plots: plain data in, PNG bytes out ------------------------------------------------------


def _figure(width: float, height: float, columns: int = 1):
    """A matplotlib figure on an Agg canvas (no pyplot, no global backend) and its axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure

    figure = MplFigure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, columns, squeeze=False)[0]
    return figure, axes


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def plot_months(months: dict[str, dict]) -> bytes:
    """Rows per month (bars coloured by role) and the label rate (line, right axis)."""
    figure, (ax,) = _figure(6, 2.6)
    names = list(months)
    roles = [m.get("role", "ingested") for m in months.values()]
    palette = {TRAIN_SPLIT: "tab:blue", VALIDATION_SPLIT: "tab:cyan", EVAL_SPLIT: "tab:orange"}
    for role in dict.fromkeys(roles):
        picked = [i for i, r in enumerate(roles) if r == role]
        ax.bar(
            [names[i] for i in picked],
            [months[names[i]].get("rows", 0) for i in picked],
            color=palette.get(role, "tab:gray"),
            label=role,
        )
    ax.set_ylabel("rows")
    rates = [m.get("label_rate") for m in months.values()]
    if any(r is not None for r in rates):
        rate_ax = ax.twinx()
        rate_ax.plot(names, [r if r is not None else float("nan") for r in rates], "ko-")
        rate_ax.set_ylabel("label rate (delayed)")
        rate_ax.set_ylim(0, max(r for r in rates if r is not None) * 1.3 or 1)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncols=3, fontsize="small")
    return _png(figure)


def plot_distribution(feature: dict) -> bytes:
    """One feature, training window vs evaluation: a histogram of fractions for a numeric
    feature (`edges`), the top values' fractions for a categorical one (`values`); each
    group's missing rate in the legend."""
    figure, (ax,) = _figure(3.6, 2.4)
    groups = feature["groups"]
    labels = {name: f"{name} ({g['missing_rate']:.0%} missing)" for name, g in groups.items()}
    if "edges" in feature:
        for name, group in groups.items():
            ax.stairs(group["fractions"], feature["edges"], label=labels[name], color=COLORS[name])
        ax.set_ylabel("fraction", fontsize="x-small")
    else:
        values = [v if len(v) <= 16 else v[:15] + "…" for v in feature["values"]]
        height = 0.8 / max(len(groups), 1)
        for i, (name, group) in enumerate(groups.items()):
            ax.barh(
                [y + i * height for y in range(len(values))],
                group["fractions"],
                height=height,
                label=labels[name],
                color=COLORS[name],
            )
        ax.set_yticks([y + height * (len(groups) - 1) / 2 for y in range(len(values))], values)
        ax.invert_yaxis()
        ax.set_xlabel("fraction", fontsize="x-small")
    ax.tick_params(labelsize="x-small")
    ax.set_title(feature["name"], fontsize="small")
    ax.legend(fontsize="xx-small")
    return _png(figure)


def plot_training(curves: dict[str, dict[str, list[float]]], kept_epoch: int | None) -> bytes:
    """Loss and AUC per epoch (1-based) for train and validation; the kept epoch marked."""
    figure, axes = _figure(7, 2.6, columns=2)
    for ax, metric in zip(axes, ("loss", AUC_METRIC), strict=True):
        for split, values in curves.items():
            if series := values.get(metric):
                ax.plot(range(1, len(series) + 1), series, "o-", label=split)
        if kept_epoch:
            ax.axvline(kept_epoch, color="gray", linestyle="--", label="kept (early stopping)")
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend(fontsize="small")
    return _png(figure)


def plot_roc(curves: dict[str, tuple[list[float], list[float]]]) -> bytes:
    """ROC curves (false positive rate, true positive rate) per model, with the chance line."""
    figure, (ax,) = _figure(3.6, 3.4)
    for model, (fpr, tpr) in curves.items():
        ax.plot(fpr, tpr, label=model, color=COLORS.get(model))
    ax.plot([0, 1], [0, 1], color="lightgray", linestyle="--", label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC", aspect="equal")
    ax.legend(fontsize="small", loc="lower right")
    return _png(figure)


def plot_calibration(buckets: dict[str, list[tuple[float, float, float]]]) -> bytes:
    """Reliability diagram: observed delay rate against the mean predicted probability per
    bucket (marker area grows with the bucket's examples), per model; the diagonal is ideal."""
    figure, (ax,) = _figure(3.6, 3.4)
    for model, points in buckets.items():
        predicted, observed, examples = zip(*points, strict=True) if points else ((), (), ())
        biggest = max(examples, default=1) or 1
        ax.plot(predicted, observed, "-", color=COLORS.get(model), alpha=0.6)
        ax.scatter(
            predicted,
            observed,
            s=[10 + 90 * n / biggest for n in examples],
            color=COLORS.get(model),
            label=model,
        )
    ax.plot([0, 1], [0, 1], color="lightgray", linestyle="--", label="perfect calibration")
    ax.set(
        xlabel="mean predicted probability",
        ylabel="observed delay rate",
        title="Calibration",
        xlim=(0, 1),
        ylim=(0, 1),
        aspect="equal",
    )
    ax.legend(fontsize="small", loc="lower right")
    return _png(figure)


def plot_slices(metrics: dict[str, dict]) -> bytes:
    """AUC and accuracy per slice as horizontal bars with the example count; small slices
    hatched and marked, an undefined AUC written as "undefined" instead of a bar."""
    names = sorted(metrics, key=lambda n: (n != "overall", n))
    figure, axes = _figure(7.5, 0.6 + 0.28 * len(names), columns=2)
    for ax, metric in zip(axes, (_AUC, _ACCURACY), strict=True):
        for y, name in enumerate(names):
            m = metrics[name]
            small = (m.get(_COUNT) or 0) < MIN_SLICE_EXAMPLES
            value = m.get(metric)
            if value is None:
                ax.text(0.01, y, "undefined", va="center", fontsize="small", color="darkred")
                continue
            ax.barh(
                y,
                value,
                color="lightgray" if small else "tab:blue",
                hatch="//" if small else None,
                edgecolor="gray",
            )
            ax.text(value + 0.01, y, f"{value:.3f}", va="center", fontsize="x-small")
        ax.set(xlim=(0, 1.15), title=metric)
        ax.set_yticks(range(len(names)))
        ax.set_yticklabels([])
        ax.invert_yaxis()
    from matplotlib.patches import Patch

    axes[1].legend(
        handles=[Patch(facecolor="lightgray", hatch="//", edgecolor="gray")],
        labels=[f"small slice (< {MIN_SLICE_EXAMPLES} examples)"],
        fontsize="x-small",
        loc="lower right",
    )
    axes[0].set_yticklabels(
        [
            f"{name} (n={int(metrics[name].get(_COUNT) or 0)}"
            + (", small)" if (metrics[name].get(_COUNT) or 0) < MIN_SLICE_EXAMPLES else ")")
            for name in names
        ],
        fontsize="small",
    )
    return _png(figure)


def plot_replay(steps: list[dict]) -> bytes:
    """AUC per replayed month of the candidate, the champion and the frozen first model; the
    months whose candidate was pushed are marked."""
    figure, (ax,) = _figure(7, 3)
    months = [s["month"] for s in steps]
    for model in ("candidate", "champion", "frozen"):
        values = [s.get(f"{model}_auc") for s in steps]
        ax.plot(
            months,
            [v if v is not None else float("nan") for v in values],
            "o-",
            label=model,
            color=COLORS[model],
        )
    pushed = [s for s in steps if s.get("pushed_version") and s.get("candidate_auc") is not None]
    ax.scatter(
        [s["month"] for s in pushed],
        [s["candidate_auc"] for s in pushed],
        s=160,
        marker="*",
        color="gold",
        edgecolor="black",
        zorder=3,
        label="pushed",
    )
    ax.set(xlabel="evaluation month", ylabel="AUC", title="AUC per month")
    ax.legend(fontsize="small")
    return _png(figure)


# --- reading the run's artifacts --------------------------------------------------------------


def read_run_artifacts(metadata_path: str, run_id: str) -> tuple[dict, dict]:
    """Node id -> output key -> artifacts, and node id -> execution, of one pipeline run
    (ML Metadata's `pipeline_run` context named `run_id`); empty when none is recorded."""
    if not metadata_path or not os.path.exists(metadata_path):
        return {}, {}
    store = run_summary.open_store(metadata_path)
    run = store.get_context_by_type_and_name("pipeline_run", run_id)
    if run is None:
        return {}, {}
    outputs, executions = {}, {}
    for execution in store.get_executions_by_context(run.id):
        node = run_summary.node_id(store, execution)
        outputs[node] = run_summary.execution_outputs(store, execution)
        executions[node] = execution
    return outputs, executions


def read_statistics(outputs: dict) -> dict[str, object]:
    """Month ("2013-01") -> its StatisticsGen's DatasetFeatureStatistics."""
    from tensorflow_data_validation import load_stats_binary

    result = {}
    for node, produced in outputs.items():
        kind, _, month = node.partition("_")
        if kind == NodeId.STATISTICS_GEN and (statistics := produced.get("statistics")):
            path = os.path.join(statistics[0].uri, f"Split-{MONTH_SPLIT}", "FeatureStats.pb")
            result[month.replace("_", "-")] = load_stats_binary(path).datasets[0]
    return dict(sorted(result.items()))


def label_rate(statistics) -> float | None:
    """Share of delayed flights in one month's statistics (the label's mean)."""
    for feature in statistics.features:
        if list(feature.path.step) == [F.LABEL_KEY]:
            return feature.num_stats.mean
    return None


def _present_missing(stats) -> tuple[int, int]:
    common = getattr(stats, stats.WhichOneof("stats")).common_stats
    return int(common.num_non_missing), int(common.num_missing)


def _rebin(buckets, edges) -> list[float]:
    """Counts of equal-width histogram buckets spread over new `edges` (uniform within a
    bucket; a zero-width bucket goes to the bin holding it)."""
    import numpy as np

    counts = np.zeros(len(edges) - 1)
    for b in buckets:
        low, high = b.low_value, b.high_value
        if high <= low:
            counts[min(max(np.searchsorted(edges, low, "right") - 1, 0), len(counts) - 1)] += (
                b.sample_count
            )
            continue
        overlap = np.clip(np.minimum(edges[1:], high) - np.maximum(edges[:-1], low), 0, None)
        counts += b.sample_count * overlap / (high - low)
    return counts.tolist()


def feature_distributions(
    statistics: dict[str, object], groups: dict[str, list[str]]
) -> list[dict]:
    """Per feature (not the label): kind, missing rate and distribution of each group of
    months. Numeric: fractions over BINS equal bins spanning every month's range
    (`edges`); categorical: fractions of the TOP_VALUES most frequent values (`values`)."""
    import numpy as np

    by_feature: dict[str, dict[str, list]] = {}
    for group, months in groups.items():
        for month in months:
            if month not in statistics:
                continue
            for feature in statistics[month].features:
                name = ".".join(feature.path.step)
                if name != F.LABEL_KEY:
                    by_feature.setdefault(name, {}).setdefault(group, []).append(feature)
    result = []
    for name, per_group in sorted(by_feature.items()):
        first = next(iter(per_group.values()))[0]
        entry: dict = {"name": name, "groups": {}}
        if first.WhichOneof("stats") == "num_stats":
            histograms = [
                h
                for features in per_group.values()
                for f in features
                for h in f.num_stats.histograms
                if h.type == h.STANDARD and h.buckets
            ]
            low = min((h.buckets[0].low_value for h in histograms), default=0.0)
            high = max((h.buckets[-1].high_value for h in histograms), default=1.0)
            edges = np.linspace(low, high if high > low else low + 1, BINS + 1)
            entry.update(kind="numeric", edges=edges.tolist())
        else:
            totals: dict[str, float] = {}
            for features in per_group.values():
                for f in features:
                    for v in f.string_stats.top_values:
                        totals[v.value] = totals.get(v.value, 0) + v.frequency
            values = sorted(totals, key=lambda v: -totals[v])[:TOP_VALUES]
            entry.update(kind="categorical", values=values)
        for group, features in per_group.items():
            present = sum(_present_missing(f)[0] for f in features)
            missing = sum(_present_missing(f)[1] for f in features)
            if entry["kind"] == "numeric":
                counts = np.zeros(BINS)
                for f in features:
                    standard = [h for h in f.num_stats.histograms if h.type == h.STANDARD]
                    if standard:
                        counts += _rebin(standard[0].buckets, edges)
            else:
                frequency: dict[str, float] = {}
                for f in features:
                    for v in f.string_stats.top_values:
                        frequency[v.value] = frequency.get(v.value, 0) + v.frequency
                counts = np.array([frequency.get(v, 0.0) for v in entry["values"]])
            entry["groups"][group] = {
                "fractions": (counts / max(present, 1)).tolist(),
                "missing_rate": missing / max(present + missing, 1),
            }
        result.append(entry)
    return result


def read_tuning(outputs: dict) -> tuple[list[dict], dict | None]:
    """The Tuner's trials (trial_id, score, hyperparameters; from `tuner_results`, best
    first) and the best hyperparameters' values; ([], None) without a Tuner."""
    tuner = outputs.get(NodeId.TUNER, {})
    trials: list[dict] = []
    if results := tuner.get("tuner_results"):
        path = os.path.join(results[0].uri, "tuner_results.json")
        if os.path.exists(path):
            with open(path) as f:
                trials = json.load(f)
    best = None
    if hyperparameters := tuner.get("best_hyperparameters"):
        path = os.path.join(hyperparameters[0].uri, "best_hyperparameters.txt")
        if os.path.exists(path):
            with open(path) as f:
                best = json.load(f)["values"]
    return trials, best


def read_training_curves(log_dir: str) -> dict[str, dict[str, list[float]]]:
    """Loss and AUC per epoch from the Trainer's TensorBoard logs: {"train": {"loss": [...],
    "auc": [...]}, "validation": {...}}; splits without logs are left out."""
    import tensorflow as tf

    curves: dict[str, dict[str, list[float]]] = {}
    for split in ("train", "validation"):
        by_step: dict[str, dict[int, float]] = {}
        for path in sorted(tf.io.gfile.glob(os.path.join(log_dir, split, "events.out.tfevents.*"))):
            for record in tf.data.TFRecordDataset(path):
                event = tf.compat.v1.Event.FromString(record.numpy())
                for value in event.summary.value:
                    metric = value.tag.removeprefix("epoch_")
                    if value.tag.startswith("epoch_") and metric in ("loss", AUC_METRIC):
                        number = (
                            float(tf.make_ndarray(value.tensor))
                            if value.HasField("tensor")
                            else value.simple_value
                        )
                        by_step.setdefault(metric, {})[event.step] = number
        if by_step:
            curves[split] = {m: [v[s] for s in sorted(v)] for m, v in by_step.items()}
    return curves


def read_eval_plots(evaluation_uri: str) -> dict[str, dict]:
    """The overall slice's ROC points and calibration buckets per model ("candidate", and
    "champion" when a baseline was evaluated): {"roc": (fpr, tpr), "calibration":
    [(mean prediction, observed rate, examples)]}; {} when the evaluation has no plots."""
    import tensorflow as tf
    import tensorflow_model_analysis as tfma

    if not tf.io.gfile.glob(os.path.join(evaluation_uri, "plots*")):
        return {}
    result: dict[str, dict] = {}
    for plots in tfma.load_plots(evaluation_uri):
        if plots.slice_key.single_slice_keys:
            continue  # per-slice plots are not shown
        for item in plots.plot_keys_and_values:
            model = "champion" if item.key.model_name == tfma.BASELINE_KEY else "candidate"
            value = item.value
            if value.HasField("confusion_matrix_at_thresholds"):
                matrices = value.confusion_matrix_at_thresholds.matrices
                points = sorted(
                    (
                        m.false_positives / max(m.false_positives + m.true_negatives, 1),
                        m.true_positives / max(m.true_positives + m.false_negatives, 1),
                    )
                    for m in matrices
                )
                result.setdefault(model, {})["roc"] = tuple(map(list, zip(*points, strict=True)))
            if value.HasField("calibration_histogram_buckets"):
                result.setdefault(model, {})["calibration"] = [
                    (
                        b.total_weighted_refined_prediction.value / b.num_weighted_examples.value,
                        b.total_weighted_label.value / b.num_weighted_examples.value,
                        b.num_weighted_examples.value,
                    )
                    for b in value.calibration_histogram_buckets.buckets
                    if b.num_weighted_examples.value > 0
                ]
    return result


# --- the sections -----------------------------------------------------------------------------


def _number(value, spec: str = ".4f", missing: str = "n/a") -> str:
    return missing if value is None else format(value, spec)


def _no_record(what: str) -> Text:
    return Text(f"No {what} in this run's ML Metadata record.", note=True)


def data_section(summary: dict, statistics: dict, findings: list[dict] | None) -> Section:
    """Rows and label rate per month and role, anomalies and drift (`findings`, else the
    summary's drift), and each feature's distribution in the training window vs evaluation."""
    section = Section("data", "Data")
    months = {m: dict(v) for m, v in summary.get("data", {}).get("months", {}).items()}
    for month, stats in statistics.items():
        months.setdefault(month, {})["label_rate"] = label_rate(stats)
    if not months:
        section.blocks.append(_no_record("ingested months"))
        return section
    section.blocks += [
        Table(
            ["month", "span", "version", "role", "rows", "label rate (delayed)"],
            [
                [
                    month,
                    str(m.get("span", "")),
                    str(m.get("version", "")),
                    m.get("role", "ingested"),
                    f"{m['rows']:,}" if "rows" in m else "n/a",
                    _number(m.get("label_rate"), ".1%"),
                ]
                for month, m in months.items()
            ],
            "Rows and label rate per month (span) and role: train and validation make the "
            "training window, eval is what the candidate is judged on.",
        ),
        Figure(plot_months(months), "rows and label rate per month"),
    ]
    findings = findings if findings is not None else summary.get("data", {}).get("drift", [])
    section.blocks.append(
        Table(
            ["month", "feature", "kind", "finding"],
            [[f["month"], f["feature"], f["kind"], f["description"]] for f in findings],
            "Anomalies (against the curated schema) and drift (against the month before).",
        )
        if findings
        else Text("No schema anomaly and no drift beyond the schema's thresholds.")
    )
    groups = {
        group: [m for m, v in months.items() if v.get("role") in roles]
        for group, roles in GROUP_ROLES.items()
    }
    distributions = feature_distributions(statistics, groups)
    if not distributions:
        section.blocks.append(_no_record("per-month statistics"))
        return section
    section.blocks += [
        Text(
            "Feature distributions, "
            + " vs ".join(f"{g} ({', '.join(ms) or 'no month'})" for g, ms in groups.items())
            + ": histograms of numeric features, the most frequent values of categorical ones, "
            "as fractions of the present values; missing rates in the legends."
        ),
        Gallery(
            [Figure(plot_distribution(d), f"distribution of {d['name']}") for d in distributions]
        ),
    ]
    return section


def tuning_section(trials: list[dict], best: dict | None) -> Section:
    """The Tuner's trials (hyperparameters and objective) and the best hyperparameters."""
    section = Section("tuning", "Tuning")
    if not trials and best is None:
        section.blocks.append(
            Text("No tuning in this run (the Tuner is off, e.g. with --fast, or it failed).", True)
        )
        return section
    if trials:
        names = [k for k in trials[0] if k not in ("trial_id", "score")]
        section.blocks.append(
            Table(
                ["trial", "objective (best validation AUC)", *names],
                [
                    [t["trial_id"], _number(t.get("score")), *(str(t.get(n)) for n in names)]
                    for t in trials
                ],
                "Completed trials, best first; the Trainer uses the best one's hyperparameters.",
                ["best" if t.get("score") == trials[0].get("score") else "" for t in trials],
            )
        )
    if best is not None:
        section.blocks.append(
            Text("Best hyperparameters: " + ", ".join(f"{k}={v}" for k, v in best.items()))
        )
    return section


def training_section(
    curves: dict[str, dict[str, list[float]]], max_epochs: int | None = None
) -> Section:
    """Loss and AUC per epoch and the epoch early stopping kept: the best validation AUC's
    (EarlyStopping restores its weights at the end of training)."""
    section = Section("training", "Training")
    if not curves:
        section.blocks.append(_no_record("Trainer logs (TensorBoard)"))
        return section
    validation_auc = curves.get("validation", {}).get(AUC_METRIC) or []
    ran = max((len(s) for c in curves.values() for s in c.values()), default=0)
    kept = (
        max(range(len(validation_auc)), key=validation_auc.__getitem__) + 1
        if validation_auc
        else None
    )
    stopped = (
        f"stopped early after epoch {ran} of at most {max_epochs}"
        if max_epochs and ran < max_epochs
        else f"ran {ran} epoch(s)" + (f" (the most allowed: {max_epochs})" if max_epochs else "")
    )
    section.blocks += [
        Text(
            f"Training {stopped}; early stopping kept epoch {kept} "
            f"(best validation AUC {validation_auc[kept - 1]:.4f}; its weights are restored)."
            if kept
            else f"Training {stopped}; no validation AUC was logged."
        ),
        Figure(plot_training(curves, kept), "loss and AUC per epoch, train and validation"),
        Table(
            ["epoch", *(f"{split} {m}" for split, c in curves.items() for m in c)],
            [
                [
                    str(e + 1),
                    *(
                        _number(s[e] if e < len(s) else None)
                        for c in curves.values()
                        for s in c.values()
                    ),
                ]
                for e in range(ran)
            ],
        ),
    ]
    return section


def evaluation_section(summary: dict, plots: dict[str, dict]) -> Section:
    """Candidate vs champion, the blessing, ROC and calibration (`plots`, read_eval_plots) and
    AUC / accuracy / examples per slice."""
    section = Section("evaluation", "Evaluation")
    metrics = summary.get("eval_metrics")
    if not metrics:
        section.blocks.append(_no_record("evaluation"))
        return section
    champion = summary.get("champion_auc")
    validation = summary.get("validation", {})
    section.blocks.append(
        Text(
            f"Candidate AUC {_number(summary.get('candidate_auc'))}; champion AUC "
            + (
                f"{champion:.4f} on the same months"
                if champion is not None
                else "n/a (no champion yet)"
            )
            + f". Blessed: {'yes' if summary.get('blessed') else 'no'} ("
            + ("; ".join(validation.get("failures", [])) or "all thresholds met")
            + ")."
        )
    )
    if plots:
        figures = []
        if roc := {m: p["roc"] for m, p in plots.items() if "roc" in p}:
            figures.append(Figure(plot_roc(roc), "ROC curve", "ROC, overall"))
        if calibration := {m: p["calibration"] for m, p in plots.items() if "calibration" in p}:
            figures.append(
                Figure(plot_calibration(calibration), "reliability diagram", "Calibration, overall")
            )
        section.blocks.append(Gallery(figures))
        if "champion" not in plots:
            section.blocks.append(
                Text("No champion to compare with: the curves are the candidate's.")
            )
    else:
        section.blocks.append(
            Text("The evaluation has no ROC or calibration plots (not computed in this run).", True)
        )
    names = sorted(metrics, key=lambda n: (n != "overall", n))
    section.blocks += [
        Figure(plot_slices(metrics), "AUC and accuracy per slice"),
        Table(
            ["slice", "AUC", "AUC vs champion", "accuracy", "calibration", "examples"],
            [
                [
                    name,
                    _number(m.get(_AUC), ".4f", "undefined"),
                    _number(m.get(f"{_AUC}_diff"), "+.4f"),
                    _number(m.get(_ACCURACY)),
                    _number(m.get("calibration"), ".3f"),
                    f"{int(m.get(_COUNT) or 0):,}"
                    + (" (small)" if (m.get(_COUNT) or 0) < MIN_SLICE_EXAMPLES else ""),
                ]
                for name, m in ((n, metrics[n]) for n in names)
            ],
            f"Slices with fewer than {MIN_SLICE_EXAMPLES} examples are marked small; AUC is "
            "undefined on a slice holding one class only.",
            ["small" if (metrics[n].get(_COUNT) or 0) < MIN_SLICE_EXAMPLES else "" for n in names],
        ),
    ]
    return section


def serving_section(summary: dict) -> Section:
    """The pushed version, infra validation and each TFLite variant's verdict and figures."""
    section = Section("serving", "Serving and mobile")
    if "pushed" in summary:
        section.blocks.append(
            Text(
                f"Pushed version {summary.get('pushed_version')} "
                f"to {summary.get('pushed_destination')}"
                + (
                    " (already serving this model; no new version)."
                    if summary.get("already_pushed")
                    else "."
                )
                if summary["pushed"]
                else "Nothing pushed: "
                + (
                    "the model was not blessed."
                    if not summary.get("blessed")
                    else "infra validation failed."
                )
            )
        )
    else:
        section.blocks.append(_no_record("push"))
    if infra := summary.get("infra_validation"):
        section.blocks.append(
            Text(
                f"Infra validation (load and query in a fresh process): "
                f"{'passed' if infra['ok'] else 'FAILED'} ({infra.get('detail')})",
                note=not infra["ok"],
            )
        )
    mobile = summary.get("mobile")
    if not mobile:
        section.blocks.append(_no_record("TFLite export"))
        return section
    base = mobile.get("savedmodel_auc")
    section.blocks += [
        Text(
            "TFLite variants: "
            + (
                mobile["destination"]
                if mobile["published"]
                else f"not published ({mobile['reason']})"
            )
            + (f"; SavedModel AUC on the same rows {base:.4f}." if base is not None else ".")
        ),
        Table(
            ["variant", "verdict", "size (KB)", "AUC", "AUC drop", "p50 latency (ms)", "reason"],
            [
                [
                    name,
                    "published" if v["published"] else "rejected",
                    _number(v["size_bytes"] / 1024 if v.get("size_bytes") else None, ".1f"),
                    _number(v.get("auc")),
                    _number(
                        base - v["auc"] if base is not None and v.get("auc") is not None else None,
                        "+.4f",
                    ),
                    _number(v.get("latency_p50_ms"), ".3f"),
                    v.get("reason") or "",
                ]
                for name, v in mobile["variants"].items()
            ],
            row_classes=["" if v["published"] else "small" for v in mobile["variants"].values()],
        ),
    ]
    return section


def replay_section(steps: list[dict] | None) -> Section:
    """AUC per replayed month of the candidate, the champion and the frozen model, with the
    decisions (`steps`: dicts of pipeline/replay.Step)."""
    section = Section("replay", "Replay")
    if not steps:
        section.blocks.append(
            Text("No replay: this report is of one run (`dev.py replay` plays months one by one).")
        )
        return section
    section.blocks += [
        Figure(
            plot_replay(steps), "AUC per month of the candidate, the champion and the frozen model"
        ),
        Table(
            [
                "month",
                "rows",
                "trained on",
                "candidate AUC",
                "champion AUC",
                "frozen AUC",
                "decision",
            ],
            [
                [
                    s["month"],
                    f"{s['rows']:,}" if s.get("rows") is not None else "n/a",
                    s.get("training_months", ""),
                    _number(s.get("candidate_auc")),
                    _number(s.get("champion_auc")),
                    _number(s.get("frozen_auc")),
                    s.get("decision", ""),
                ]
                for s in steps
            ],
            row_classes=["best" if s.get("pushed_version") else "" for s in steps],
        ),
    ]
    return section


def _guarded(section_id: str, title: str, build: Callable[[], Section]) -> Section:
    """A section, or one saying why it could not be built (the report still gets written)."""
    try:
        return build()
    except Exception as exc:  # noqa: BLE001 -- one unreadable artifact must not lose the page
        return Section(
            section_id,
            title,
            [Text(f"Could not build this section: {type(exc).__name__}: {exc}", True)],
        )


def sections(
    summary: dict, metadata_path: str, replay_steps: list[dict] | None = None
) -> list[Section]:
    """The report's sections, in order: data, tuning, training, evaluation, serving, replay."""
    # A reused run (pipeline/run_cache.py) has no record in ML Metadata: the run it reused has.
    run_id = summary.get("reused_run") or summary.get("run_id", "")
    outputs, executions = read_run_artifacts(metadata_path, run_id)

    def data():
        findings = None
        if anomalies := outputs.get(NodeId.DATA_VALIDATOR, {}).get("anomalies"):
            from pipeline.components.data_validator import read_findings

            findings = read_findings(anomalies[0].uri)
        return data_section(summary, read_statistics(outputs), findings)

    def training():
        run = outputs.get(NodeId.TRAINER, {}).get("model_run")
        max_epochs = None
        if execution := executions.get(NodeId.TRAINER):
            config = execution.custom_properties.get("custom_config")
            max_epochs = json.loads(config.string_value).get("max_epochs") if config else None
        return training_section(read_training_curves(run[0].uri) if run else {}, max_epochs)

    def evaluation():
        evaluation = outputs.get(NodeId.EVALUATOR, {}).get("evaluation")
        return evaluation_section(summary, read_eval_plots(evaluation[0].uri) if evaluation else {})

    return [
        _guarded("data", "Data", data),
        _guarded("tuning", "Tuning", lambda: tuning_section(*read_tuning(outputs))),
        _guarded("training", "Training", training),
        _guarded("evaluation", "Evaluation", evaluation),
        _guarded("serving", "Serving and mobile", lambda: serving_section(summary)),
        _guarded("replay", "Replay", lambda: replay_section(replay_steps)),
    ]


def render(summary: dict, page_sections: list[Section]) -> str:
    """The page's HTML (jinja2, autoescaped) from the summary's header facts and sections."""
    import jinja2

    environment = jinja2.Environment(
        autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True
    )
    template = environment.from_string(TEMPLATE.read_text())
    return template.render(summary=summary, sections=page_sections)


def write_report(
    summary: dict,
    metadata_path: str,
    run_dir: pathlib.Path,
    replay_steps: list[dict] | None = None,
) -> pathlib.Path:
    """Writes `<run_dir>/report.html` for a run's summary (pipeline/summary.py, plus the
    status fields pipeline/local.py adds) and, for a replay, its steps (dicts of
    pipeline/replay.Step); returns its path."""
    path = pathlib.Path(run_dir) / REPORT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(summary, sections(summary, metadata_path, replay_steps)))
    return path
