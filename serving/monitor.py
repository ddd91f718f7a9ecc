"""Monitoring what is served: PredictionLogs back into raw feature rows, TFDV statistics over
them, and the checks that raise an alert naming the feature.

Pure functions; `pipeline/monitor.py` finds the training statistics and the evaluation of the
served version through ML Metadata and writes `monitor.json`.

1. **Rows.** `traffic(logs)` turns `tensorflow.serving.PredictionLog` records (serving/
   request_log.py writes them) back into raw feature rows, one per flight: `predict_log`
   requests of the raw-feature signature (REST rows and columns arrive as the same
   PredictRequest of named `[batch]` tensors), `predict_log` requests of the tf.Example
   signatures (`examples` / `inputs`: serialized tf.Examples) and `classify_log` requests
   (`example_list`, or `example_list_with_context` with the context's features on every
   example). TFDV and tfx-bsl have no PredictionLog converter. An absent optional value
   (`NaN` / `""` in a dense request, an absent feature or a NaN in a tf.Example) becomes
   missing, as in the training Examples. The served `probability` comes from the response
   (predict output `probability`; classify score of class `delayed`).
2. **Statistics.** `statistics(rows)` runs TFDV's in-memory statistics generator with
   default `StatsOptions` over an Arrow RecordBatch of one-value lists with nulls for missing
   values: the form tfx-bsl decodes training Examples into, so StatisticsGen's output and
   ours are comparable. `merge_statistics` pools several datasets' statistics (the training
   window's per-month StatisticsGen outputs) into one.
3. **Checks** (each a `Check`: feature, kind, metric, value, threshold, verdict):
   - `skew`: serving vs training statistics, with the schema's `skew_comparator`s
     (Jensen-Shannon divergence for numeric features, L-infinity distance for categorical
     ones; TFDV docs "Checking data skew and drift"), plus `missing`: the fraction of rows
     without a value, serving minus training (TFDV compares no presence between datasets).
   - `drift`: the same comparison against the previous window's statistics, with the
     schema's `drift_comparator`s.
   - `schema`: `tfdv.validate_statistics` in the SERVING environment (the label is not
     expected): unknown categories, missing required values, out-of-range values, more
     distinct values of an open categorical than the schema's `unique_constraints` allow.
   - `prediction`: Jensen-Shannon divergence of the served `probability` histogram against
     the evaluation-time histogram of the same version (the Evaluator's CalibrationPlot).

Distances between histograms grow as samples shrink: below `MIN_ROWS` rows the distribution
checks report verdict "too_few_rows" instead of a verdict (schema checks still run).

Importing this module loads no TensorFlow, TFDV or TFMA; the functions that need them import
them when called.
"""

from __future__ import annotations

import collections
import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from models.constants import CLASSIFY_INPUT, EXAMPLES_INPUT, OUTPUT_KEY
from transforms import features as F
from transforms.schema import SERVING, TRAINING

MIN_ROWS = 1000
"""Fewest rows a window needs for the distribution checks (skew, drift, missing, prediction).
Jensen-Shannon divergence and L-infinity distance of histograms grow as samples shrink: real
Nov-Dec samples of 1,000 rows stay within the thresholds (see SKEW_THRESHOLDS in
transforms/features.py); at 200 rows they do not."""

PROBABILITY_BUCKETS = 20
"""Buckets over [0, 1] of the prediction histograms; the Evaluator's CalibrationPlot has as
many (pipeline/pipeline.py eval_config)."""

PREDICTION_DRIFT_THRESHOLD = 0.1
"""Jensen-Shannon divergence (base 2) of the served `probability` histogram against the
evaluation-time one above which the prediction distribution has drifted. Measured with a small
model trained on Jan-Feb and evaluated on 500 Apr-May rows (the e2e test's run): real Nov-Dec
traffic, 1,200 rows, 0.035-0.05; more Apr-May rows 0.003."""

MISSING_SKEW_THRESHOLD = 0.15
"""Largest allowed change of a feature's missing fraction, serving minus training, in
absolute terms (0.15 = 15 points). Real 2013 months move by at most 0.05."""

DELAYED_CLASS = F.LABEL_CLASSES[1]

OK, ALERT, TOO_FEW_ROWS = "ok", "alert", "too_few_rows"
SKEW, MISSING, DRIFT, SCHEMA, PREDICTION = "skew", "missing", "drift", "schema", "prediction"
KINDS = (SCHEMA, SKEW, MISSING, DRIFT, PREDICTION)


class LogError(ValueError):
    """A PredictionLog that cannot be turned into rows (the message says why)."""


@dataclasses.dataclass
class Traffic:
    """What a window of PredictionLogs asked and answered.

    columns: feature name -> one value per row (str, int or float; None = missing), for every
        feature of the registry.
    probabilities: served probability of `delayed` per row (float64; NaN where the response
        carries none, e.g. the transform_features signature).
    requests: PredictionLog records turned into rows.
    unreadable: records not turned into rows, by reason (e.g. "regress_log").
    versions: model version -> records; sampling_rates: sampling rate -> records;
    first_timestamp / last_timestamp: LogMetadata timestamp_secs range (Unix seconds).
    """

    columns: dict[str, list] = dataclasses.field(
        default_factory=lambda: {f.name: [] for f in F.FEATURES}
    )
    probabilities: list[float] = dataclasses.field(default_factory=list)
    requests: int = 0
    unreadable: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    versions: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    sampling_rates: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    first_timestamp: int | None = None
    last_timestamp: int | None = None

    @property
    def rows(self) -> int:
        return len(self.probabilities)

    def counts(self) -> dict:
        """Counts for monitor.json: requests (logged records turned into rows), rows (flights
        in them), sampled (sampling rate of the logs and the served requests it implies),
        unreadable (records not turned into rows, by reason)."""
        rates = sorted(self.sampling_rates)
        rate = rates[0] if len(rates) == 1 else None
        return {
            "requests": self.requests,
            "rows": self.rows,
            "sampled": {
                "sampling_rates": rates,
                "estimated_served_requests": round(self.requests / rate) if rate else None,
            },
            "unreadable": sum(self.unreadable.values()),
            "unreadable_by_reason": dict(sorted(self.unreadable.items())),
        }


# --- PredictionLog -> rows ----------------------------------------------------------------------


def _clean(feature: F.Feature, value: Any) -> Any:
    """A raw request value as the registry's Python type; None when it means missing."""
    if value is None:
        return None
    if feature.dtype is str:
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        return None if text == "" else text
    if feature.dtype is int:
        return int(value)
    number = float(value)
    return None if math.isnan(number) else number


def _example_values(example, context=None) -> dict[str, Any]:
    """Feature name -> value of one tf.Example (context features first, the example's own
    override them, as TF Serving merges example_list_with_context); None when absent."""
    row: dict[str, Any] = {}
    for source in (context, example):
        if source is None:
            continue
        for name, feature in source.features.feature.items():
            if name not in F.BY_NAME:
                continue
            kind = feature.WhichOneof("kind")
            values = list(getattr(feature, kind).value) if kind else []
            row[name] = values[0] if values else None
    return {f.name: _clean(f, row.get(f.name)) for f in F.FEATURES}


def _parse_examples(serialized: Iterable[bytes], context=None) -> list[dict[str, Any]]:
    from tensorflow.core.example import example_pb2

    rows = []
    for i, data in enumerate(serialized):
        try:
            rows.append(_example_values(example_pb2.Example.FromString(data), context))
        except Exception as error:  # a DecodeError; the message names the example
            raise LogError(f"example {i} is not a serialized tf.Example ({error})") from error
    return rows


def _ndarray(tensor) -> np.ndarray:
    import tensorflow as tf

    return tf.make_ndarray(tensor)


def predict_rows(request) -> list[dict[str, Any]]:
    """Rows of a PredictRequest: of the raw-feature signature (one `[batch]` tensor per
    feature; a feature the request lacks is missing) or of a tf.Example signature (one DT_STRING
    input `examples` or `inputs` of serialized tf.Examples). Raises LogError when the inputs
    are neither, or their batch sizes differ."""
    inputs = request.inputs
    for key in (EXAMPLES_INPUT, CLASSIFY_INPUT):
        if set(inputs) == {key}:
            return _parse_examples(_ndarray(inputs[key]).reshape(-1).tolist())
    known = [f for f in F.FEATURES if f.name in inputs]
    if not known:
        raise LogError(f"predict inputs {sorted(inputs)} hold no feature of the registry")
    columns = {f.name: _ndarray(inputs[f.name]).reshape(-1).tolist() for f in known}
    sizes = {len(v) for v in columns.values()}
    if len(sizes) != 1:
        raise LogError(f"predict inputs have different batch sizes {sorted(sizes)}")
    (size,) = sizes
    return [
        {f.name: _clean(f, columns[f.name][i]) if f.name in columns else None for f in F.FEATURES}
        for i in range(size)
    ]


def classify_rows(request) -> list[dict[str, Any]]:
    """Rows of a ClassificationRequest's tf.Examples (example_list, or example_list_with_context
    with the context's features on every example)."""
    which = request.input.WhichOneof("kind")
    if which == "example_list":
        examples, context = request.input.example_list.examples, None
    elif which == "example_list_with_context":
        examples = request.input.example_list_with_context.examples
        context = request.input.example_list_with_context.context
    else:
        raise LogError("classify request without examples")
    return [_example_values(e, context) for e in examples]


def predict_probabilities(response, rows: int) -> list[float]:
    """The served probability of `delayed` per row of a PredictResponse: output `probability`
    ([batch]), or column 1 of `scores` ([batch, 2], the classify signature called through
    Predict); NaN for each row when the response has neither."""
    if OUTPUT_KEY in response.outputs:
        values = _ndarray(response.outputs[OUTPUT_KEY]).reshape(-1)
    elif "scores" in response.outputs:
        values = _ndarray(response.outputs["scores"]).reshape(rows, -1)[:, 1]
    else:
        return [math.nan] * rows
    if len(values) != rows:
        raise LogError(f"response has {len(values)} predictions for {rows} rows")
    return [float(v) for v in values]


def classify_probabilities(response, rows: int) -> list[float]:
    """Score of class `delayed` per example of a ClassificationResponse (NaN when absent)."""
    results = response.result.classifications
    if len(results) != rows:
        raise LogError(f"response has {len(results)} classifications for {rows} examples")
    found = []
    for result in results:
        scores = {c.label: c.score for c in result.classes}
        found.append(float(scores.get(DELAYED_CLASS, math.nan)))
    return found


def record_rows(record) -> tuple[list[dict[str, Any]], list[float]]:
    """(rows, served probabilities) of one PredictionLog. Raises LogError for a record of
    another kind (regress_log, multi_inference_log, session_run_log) or one that does not
    parse."""
    kind = record.WhichOneof("log_type")
    if kind == "predict_log":
        rows = predict_rows(record.predict_log.request)
        return rows, predict_probabilities(record.predict_log.response, len(rows))
    if kind == "classify_log":
        rows = classify_rows(record.classify_log.request)
        return rows, classify_probabilities(record.classify_log.response, len(rows))
    raise LogError(kind or "empty record")


def traffic(records: Iterable) -> Traffic:
    """Rows and probabilities of PredictionLog records (see the module docstring); records that
    cannot be read are counted in `unreadable` by reason (the reason's first word), never
    raised."""
    found = Traffic()
    for record in records:
        try:
            rows, probabilities = record_rows(record)
        except LogError as error:
            found.unreadable[str(error).split(" (")[0]] += 1
            continue
        except (TypeError, ValueError) as error:  # a tensor make_ndarray refuses
            found.unreadable[type(error).__name__] += 1
            continue
        metadata = record.log_metadata
        found.requests += 1
        found.versions[metadata.model_spec.version.value] += 1
        if metadata.HasField("sampling_config"):
            found.sampling_rates[metadata.sampling_config.sampling_rate] += 1
        stamp = metadata.timestamp_secs
        found.first_timestamp = min(stamp, found.first_timestamp or stamp)
        found.last_timestamp = max(stamp, found.last_timestamp or stamp)
        for row in rows:
            for name, values in found.columns.items():
                values.append(row[name])
        found.probabilities += probabilities
    return found


def rows_from_frame(frame) -> dict[str, list]:
    """Columns (see Traffic.columns) of a pandas DataFrame of raw features (NaN / None / "" =
    missing), e.g. rows read back from training data."""
    return {
        f.name: [_clean(f, None if _na(v) else v) for v in frame[f.name].tolist()]
        for f in F.FEATURES
    }


def _na(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


# --- Statistics ---------------------------------------------------------------------------------


def record_batch(columns: Mapping[str, Sequence]):
    """pyarrow RecordBatch of the registry's features: one-value lists (binary, int64 or
    float32, as tfx-bsl decodes tf.Examples), null where the value is missing."""
    import pyarrow as pa

    types = {str: pa.binary(), int: pa.int64(), float: pa.float32()}
    arrays, names = [], []
    for f in F.FEATURES:
        values = list(columns[f.name])
        missing = np.array([v is None for v in values], dtype=bool)
        flat = [v.encode() if f.dtype is str else v for v in values if v is not None]
        offsets = np.concatenate([[0], np.cumsum(~missing)]).astype(np.int32)
        arrays.append(
            pa.ListArray.from_arrays(
                pa.array(offsets), pa.array(flat, types[f.dtype]), mask=pa.array(missing)
            )
        )
        names.append(f.name)
    return pa.RecordBatch.from_arrays(arrays, names)


def statistics(columns: Mapping[str, Sequence]):
    """TFDV statistics (DatasetFeatureStatisticsList, one dataset) of rows given as columns,
    with TFDV's default StatsOptions, as StatisticsGen computes them."""
    from tensorflow_data_validation.statistics import stats_impl, stats_options

    return stats_impl.generate_statistics_in_memory(
        record_batch(columns), stats_options.StatsOptions()
    )


def _rebucket(buckets: list[tuple[float, float, float]], edges: list[float]) -> list[float]:
    """Counts of `buckets` ([(low, high, count)]) spread over the intervals between `edges`,
    uniformly within each bucket (as TFDV's histogram distances assume); a zero-width bucket
    goes to the interval holding its value."""
    counts = [0.0] * (len(edges) - 1)
    for low, high, count in buckets:
        if high <= low:
            index = max(0, min(len(counts) - 1, int(np.searchsorted(edges, low, "right")) - 1))
            counts[index] += count
            continue
        for i in range(len(counts)):
            overlap = min(high, edges[i + 1]) - max(low, edges[i])
            if overlap > 0:
                counts[i] += count * overlap / (high - low)
    return counts


def _merge_numeric(target, sources) -> None:
    """num_stats of one feature pooled over datasets: counts summed, mean and standard
    deviation pooled, min/max, the STANDARD histogram rebucketed onto the union of the
    bucket boundaries (the QUANTILES histogram and the median are not poolable and are
    left out)."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    present = [s for s in sources if s.common_stats.num_non_missing > 0]
    total = sum(s.common_stats.tot_num_values for s in present)
    if total:
        mean = sum(s.mean * s.common_stats.tot_num_values for s in present) / total
        square = sum((s.std_dev**2 + s.mean**2) * s.common_stats.tot_num_values for s in present)
        target.mean = mean
        target.std_dev = math.sqrt(max(0.0, square / total - mean**2))
        target.min = min(s.min for s in present)
        target.max = max(s.max for s in present)
    target.num_zeros = sum(s.num_zeros for s in sources)
    standard = statistics_pb2.Histogram.STANDARD
    histograms = [h for s in sources for h in s.histograms if h.type == standard]
    buckets = [(b.low_value, b.high_value, b.sample_count) for h in histograms for b in h.buckets]
    if not histograms:
        return
    merged = target.histograms.add(type=standard)
    merged.num_nan = sum(h.num_nan for h in histograms)
    merged.num_undefined = sum(h.num_undefined for h in histograms)
    edges = sorted({v for low, high, _ in buckets for v in (low, high)})
    if len(edges) == 1:
        merged.buckets.add(
            low_value=edges[0], high_value=edges[0], sample_count=sum(c for *_, c in buckets)
        )
        return
    for i, count in enumerate(_rebucket(buckets, edges)):
        merged.buckets.add(low_value=edges[i], high_value=edges[i + 1], sample_count=count)


def _merge_string(target, sources, top_values: int) -> None:
    """string_stats of one feature pooled over datasets: rank histograms summed by value
    (each source holds at most TFDV's num_rank_histogram_buckets values), top values and
    unique count from the pooled ranks, average length weighted by values."""
    counts: collections.Counter = collections.Counter()
    for s in sources:
        for bucket in s.rank_histogram.buckets:
            counts[bucket.label] += bucket.sample_count
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    for rank, (label, count) in enumerate(ranked):
        target.rank_histogram.buckets.add(
            low_rank=rank, high_rank=rank, label=label, sample_count=count
        )
    for label, count in ranked[:top_values]:
        target.top_values.add(value=label, frequency=count)
    target.unique = len(ranked)
    values = sum(s.common_stats.tot_num_values for s in sources)
    if values:
        target.avg_length = (
            sum(s.avg_length * s.common_stats.tot_num_values for s in sources) / values
        )


def _merge_common(target, sources) -> None:
    present = [s for s in sources if s.num_non_missing > 0]
    target.num_non_missing = sum(s.num_non_missing for s in sources)
    target.num_missing = sum(s.num_missing for s in sources)
    target.tot_num_values = sum(s.tot_num_values for s in sources)
    if present:
        target.min_num_values = min(s.min_num_values for s in present)
        target.max_num_values = max(s.max_num_values for s in present)
    if target.num_non_missing:
        target.avg_num_values = target.tot_num_values / target.num_non_missing


def merge_statistics(lists: Sequence):
    """One DatasetFeatureStatisticsList pooling the first dataset of each list, as if TFDV had
    profiled the union of the rows (e.g. the training months' StatisticsGen outputs). What
    skew, drift and schema validation read is pooled exactly (counts, missing values, value
    ranks) or as TFDV's distances assume (numeric histograms, rebucketed uniformly within
    buckets); quantiles and medians are left out. Raises ValueError for an empty sequence or
    a feature whose type differs between the lists."""
    from tensorflow_data_validation.statistics.stats_options import StatsOptions
    from tensorflow_metadata.proto.v0 import statistics_pb2

    if not lists:
        raise ValueError("no statistics to merge")
    datasets = [s.datasets[0] for s in lists]
    if len(datasets) == 1:
        return lists[0]
    merged = statistics_pb2.DatasetFeatureStatisticsList()
    out = merged.datasets.add(num_examples=sum(d.num_examples for d in datasets))
    by_path: dict[tuple, list] = {}
    for dataset in datasets:
        for feature in dataset.features:
            by_path.setdefault(tuple(feature.path.step) or (feature.name,), []).append(feature)
    top_values = StatsOptions().num_top_values
    for path, sources in sorted(by_path.items()):
        types = {s.type for s in sources}
        if len(types) != 1:
            raise ValueError(f"feature {'.'.join(path)} has different types in the statistics")
        target = out.features.add(type=sources[0].type)
        target.path.step.extend(path)
        stats = sources[0].WhichOneof("stats")
        if stats == "num_stats":
            _merge_numeric(target.num_stats, [s.num_stats for s in sources])
            _merge_common(
                target.num_stats.common_stats, [s.num_stats.common_stats for s in sources]
            )
        elif stats == "string_stats":
            _merge_string(target.string_stats, [s.string_stats for s in sources], top_values)
            _merge_common(
                target.string_stats.common_stats, [s.string_stats.common_stats for s in sources]
            )
    return merged


# --- Checks ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Check:
    """One finding for monitor.json and the console table.

    feature: a registry feature name, or "probability" for the prediction check.
    kind: one of KINDS. metric: "jensen_shannon_divergence", "l_infinity", "missing_fraction
    _change" or, for schema findings, TFDV's anomaly reason types. value / threshold: the
    distance and its limit (None for schema findings). verdict: OK, ALERT or TOO_FEW_ROWS.
    detail: why, in words (TFDV's description for schema findings).
    """

    feature: str
    kind: str
    metric: str
    value: float | None
    threshold: float | None
    verdict: str
    detail: str = ""

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


_MEASUREMENT_METRICS = {1: "l_infinity", 2: "jensen_shannon_divergence"}
# anomalies_pb2.DriftSkewInfo.Measurement.Type: L_INFTY = 1, JENSEN_SHANNON_DIVERGENCE = 2


def _verdict(value: float, threshold: float, enough: bool) -> str:
    if not enough:
        return TOO_FEW_ROWS
    return ALERT if value > threshold else OK


def rows_of(stats) -> int:
    """Examples in the first dataset of a DatasetFeatureStatisticsList."""
    return int(stats.datasets[0].num_examples) if stats.datasets else 0


def compare(current, baseline, schema, kind: str, min_rows: int = MIN_ROWS) -> list[Check]:
    """Skew (kind SKEW: `current` = serving statistics, `baseline` = training statistics,
    the schema's skew_comparators) or drift (kind DRIFT: `baseline` = the previous window's
    statistics, the drift_comparators), one Check per feature with a comparator, by name.
    Values are TFDV's (validate_statistics' drift_skew_info): Jensen-Shannon divergence of the
    numeric histograms, L-infinity distance of the categorical value frequencies. A feature
    without a single value on either side has no histogram, so TFDV measures nothing: it gets
    no Check here (the `missing` check sees it). With fewer than `min_rows` served rows (for
    drift: on either side) the verdict is TOO_FEW_ROWS; training statistics may be smaller
    (SKEW_THRESHOLDS hold against 500 training rows)."""
    import tensorflow_data_validation as tfdv

    if kind == SKEW:
        anomalies = tfdv.validate_statistics(
            baseline, schema, environment=TRAINING, serving_statistics=current
        )
    elif kind == DRIFT:
        anomalies = tfdv.validate_statistics(
            current, schema, environment=SERVING, previous_statistics=baseline
        )
    else:
        raise ValueError(f"kind must be {SKEW!r} or {DRIFT!r}, got {kind!r}")
    enough = rows_of(current) >= min_rows and (kind == SKEW or rows_of(baseline) >= min_rows)
    against = "training" if kind == SKEW else "the previous window"
    checks = []
    for info in anomalies.drift_skew_info:
        measurements = info.skew_measurements if kind == SKEW else info.drift_measurements
        for m in measurements:
            metric = _MEASUREMENT_METRICS.get(m.type, str(m.type))
            verdict = _verdict(m.value, m.threshold, enough)
            checks.append(
                Check(
                    ".".join(info.path.step),
                    kind,
                    metric,
                    round(m.value, 4),
                    m.threshold,
                    verdict,
                    f"{metric} vs {against} {m.value:.3f} "
                    f"{'>' if m.value > m.threshold else '<='} {m.threshold}",
                )
            )
    return sorted(checks, key=lambda c: c.feature)


def missing_fractions(stats) -> dict[str, float]:
    """Feature name -> fraction of rows without a value, in [0, 1]."""
    dataset = stats.datasets[0]
    fractions = {}
    for feature in dataset.features:
        which = feature.WhichOneof("stats")
        if which not in ("num_stats", "string_stats") or not dataset.num_examples:
            continue
        common = getattr(feature, which).common_stats
        name = ".".join(feature.path.step) or feature.name
        fractions[name] = 1.0 - common.num_non_missing / dataset.num_examples
    return fractions


def compare_missing(
    serving,
    training,
    threshold: float = MISSING_SKEW_THRESHOLD,
    min_rows: int = MIN_ROWS,
) -> list[Check]:
    """Presence skew, which TFDV's comparators do not measure: per feature of the registry,
    the missing fraction in serving minus that in training; ALERT when its absolute value
    exceeds `threshold` (e.g. a feature a client stopped sending)."""
    served, trained = missing_fractions(serving), missing_fractions(training)
    enough = rows_of(serving) >= min_rows
    checks = []
    for f in F.FEATURES:
        if f.name not in served or f.name not in trained:
            continue
        change = served[f.name] - trained[f.name]
        checks.append(
            Check(
                f.name,
                MISSING,
                "missing_fraction_change",
                round(change, 4),
                threshold,
                _verdict(abs(change), threshold, enough),
                f"missing in {served[f.name]:.1%} of served rows, {trained[f.name]:.1%} in "
                "training",
            )
        )
    return checks


def check_schema(serving, schema) -> list[Check]:
    """TFDV schema validation of the serving statistics in the SERVING environment (the label
    is not expected): one ALERT Check per feature with anomalies (unknown categories, missing
    required values, out-of-range values, wrong types, a flood of distinct values beyond
    `unique_constraints`), whatever the window size."""
    import tensorflow_data_validation as tfdv
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    anomalies = tfdv.validate_statistics(serving, schema, environment=SERVING)
    checks = []
    for name, info in sorted(anomalies.anomaly_info.items()):
        reasons = [anomalies_pb2.AnomalyInfo.Type.Name(r.type) for r in info.reason]
        checks.append(Check(name, SCHEMA, ",".join(reasons), None, None, ALERT, info.description))
    for reason in anomalies.dataset_anomaly_info.reason:
        kind = str(reason.type)
        checks.append(Check("(dataset)", SCHEMA, kind, None, None, ALERT, reason.description))
    return checks


# --- Predictions ----------------------------------------------------------------------------------


def probability_histogram(probabilities: Sequence[float], buckets: int = PROBABILITY_BUCKETS):
    """Counts of probabilities in `buckets` equal buckets over [0, 1] (float64 [buckets]);
    NaNs are left out, values outside [0, 1] go to the end buckets."""
    values = np.asarray(probabilities, dtype=np.float64)
    values = np.clip(values[~np.isnan(values)], 0.0, 1.0)
    counts, _ = np.histogram(values, bins=buckets, range=(0.0, 1.0))
    return counts.astype(np.float64)


def calibration_histogram(plots, buckets: int = PROBABILITY_BUCKETS):
    """Counts of predictions per bucket over [0, 1] (float64 [buckets]) from the overall
    slice's CalibrationPlot among `plots` (TFMA PlotsForSlice protos, e.g. from
    `tfma.load_plots(evaluation_uri)`): each CalibrationHistogramBuckets bucket's
    num_weighted_examples, by its lower threshold; TFMA's (-inf, 0) and [1, inf) buckets go to
    the end buckets. Raises LookupError when there is no overall CalibrationPlot."""
    for plot in plots:
        if plot.slice_key.single_slice_keys:
            continue
        found = [
            kv.value.calibration_histogram_buckets
            for kv in plot.plot_keys_and_values
            if kv.value.HasField("calibration_histogram_buckets")
        ]
        if not found:
            continue
        counts = np.zeros(buckets, dtype=np.float64)
        for bucket in found[0].buckets:
            low = bucket.lower_threshold_inclusive
            index = 0 if math.isinf(low) and low < 0 else math.floor(low * buckets + 1e-9)
            counts[max(0, min(buckets - 1, index))] += bucket.num_weighted_examples.value
        return counts
    raise LookupError("no CalibrationPlot for the overall slice in the evaluation's plots")


def jensen_shannon(p, q) -> float:
    """Jensen-Shannon divergence (base 2, in [0, 1]) of two histograms over the same buckets
    (counts; each is normalised). Raises ValueError when either is empty."""
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    if p.sum() <= 0 or q.sum() <= 0:
        raise ValueError("an empty histogram has no distribution to compare")
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2

    def kl(a, b):
        mask = a > 0
        return float(np.sum(a[mask] * np.log2(a[mask] / b[mask])))

    return max(0.0, (kl(p, m) + kl(q, m)) / 2)


def compare_predictions(
    probabilities: Sequence[float],
    evaluated,
    threshold: float = PREDICTION_DRIFT_THRESHOLD,
    min_rows: int = MIN_ROWS,
) -> Check:
    """Prediction drift: Jensen-Shannon divergence of the served probabilities' histogram
    against `evaluated` (counts per bucket at evaluation time, see calibration_histogram)."""
    served = probability_histogram(probabilities, len(evaluated))
    value = jensen_shannon(served, evaluated)
    enough = served.sum() >= min_rows
    return Check(
        OUTPUT_KEY,
        PREDICTION,
        "jensen_shannon_divergence",
        round(value, 4),
        threshold,
        _verdict(value, threshold, enough),
        f"served mean {_mean(served):.3f} vs evaluation {_mean(evaluated):.3f} "
        f"({int(served.sum())} vs {int(np.sum(evaluated))} predictions)",
    )


def _mean(counts) -> float:
    counts = np.asarray(counts, dtype=np.float64)
    centres = (np.arange(len(counts)) + 0.5) / len(counts)
    return float((counts * centres).sum() / counts.sum()) if counts.sum() else math.nan
