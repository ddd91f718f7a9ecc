"""What happened in a pipeline run, read back from ML Metadata and the run's artifacts.

Reading MLMD (not the runner's own bookkeeping) means the summary reports what the
orchestrator recorded: which executions ran or were cached, for how long, and what they made.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from pipeline.constants import (
    EVAL_METRICS,
    GATED_METRIC,
    MIN_SLICE_EXAMPLES,
    MONTH_SPLIT,
    NodeId,
)
from pipeline.months import Month

_STATE_NAMES = {
    metadata_store_pb2.Execution.COMPLETE: "ran",
    metadata_store_pb2.Execution.CACHED: "cached",
    metadata_store_pb2.Execution.FAILED: "failed",
    metadata_store_pb2.Execution.RUNNING: "running",
}
_RESOLVER_TYPE = "tfx.dsl.components.common.resolver.Resolver"
METRICS = (*EVAL_METRICS.values(), f"{EVAL_METRICS[GATED_METRIC]}_diff")


@dataclasses.dataclass
class ComponentRun:
    component: str
    state: str
    seconds: float


class NotAStore(LookupError):
    """The file at a store's path is not a readable ML Metadata store."""


def open_store(metadata_path: str) -> metadata_store.MetadataStore:
    """The SQLite ML Metadata store at `metadata_path`, opened read-only. Raises NotAStore
    naming the file when it is not one (not SQLite, empty, unreadable); ML Metadata's own
    errors quote a failed CREATE TABLE."""
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    try:
        return metadata_store.MetadataStore(config)
    except Exception as error:  # ml_metadata raises RuntimeError and its own error types
        reason = str(error).split(":", 1)[-1].split("\n")[0].strip()[:120]
        raise NotAStore(
            f"{metadata_path} is not a readable ML Metadata store ({reason})"
        ) from error


def _latest_run(store, pipeline_name: str, since: float | None = None):
    pipeline = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if pipeline is None:
        raise LookupError(f"no pipeline named {pipeline_name!r} in ML Metadata")
    runs = [
        c
        for c in store.get_children_contexts_by_context(pipeline.id)
        if store.get_context_types_by_id([c.type_id])[0].name == "pipeline_run"
    ]
    if not runs:  # older TFX versions do not link runs to the pipeline context
        runs = store.get_contexts_by_type("pipeline_run")
    if not runs:
        raise LookupError(f"pipeline {pipeline_name!r} has no recorded run")
    latest = max(runs, key=lambda c: c.create_time_since_epoch)
    if since is not None and latest.create_time_since_epoch < since * 1000:
        raise LookupError(f"pipeline {pipeline_name!r} has no run recorded since {since}")
    return latest


def node_id(store, execution) -> str:
    """The pipeline node (e.g. `Trainer`) that ran an execution; `?` when none is recorded."""
    for context in store.get_contexts_by_execution(execution.id):
        if store.get_context_types_by_id([context.type_id])[0].name == "node":
            return context.name.split(".", 1)[-1]
    return "?"


def execution_outputs(store, execution) -> dict[str, list]:
    """Output key -> artifacts of one execution."""
    events = [
        e
        for e in store.get_events_by_execution_ids([execution.id])
        if e.type in (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)
    ]
    by_id = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
    outputs: dict[str, list] = {}
    for event in events:
        key = event.path.steps[0].key if event.path.steps else "?"
        outputs.setdefault(key, []).append(by_id[event.artifact_id])
    return outputs


def _custom(artifact, name: str):
    value = artifact.custom_properties.get(name)
    if value is None:
        return None
    return getattr(value, value.WhichOneof("value")) if value.WhichOneof("value") else None


def _month_rows(statistics) -> int:
    from tensorflow_data_validation import load_stats_binary

    path = os.path.join(statistics.uri, f"Split-{MONTH_SPLIT}", "FeatureStats.pb")
    return int(load_stats_binary(path).datasets[0].num_examples)


def _data(outputs: dict) -> dict:
    """Per month: span, version, rows and role (train / validation / eval), from the
    ExampleGen, StatisticsGen and window outputs; plus the DataValidator's drift findings."""
    from pipeline.components.data_validator import read_findings
    from pipeline.components.windows import SPANS_PROPERTY

    months: dict[str, dict] = {}
    for node, produced in outputs.items():
        kind, _, _ = node.partition("_")
        if kind == NodeId.EXAMPLE_GEN and (examples := produced.get("examples")):
            span = examples[0].properties["span"].int_value
            entry = months.setdefault(str(Month.from_span(span)), {})
            entry.update(span=span, version=examples[0].properties["version"].int_value)
        elif kind == NodeId.STATISTICS_GEN and (statistics := produced.get("statistics")):
            month = node.split("_", 1)[1].replace("_", "-")
            months.setdefault(month, {})["rows"] = _month_rows(statistics[0])
    for node in (NodeId.TRAINING_WINDOW, NodeId.EVALUATION_WINDOW):
        if window := outputs.get(node, {}).get("examples"):
            spans = json.loads(_custom(window[0], SPANS_PROPERTY) or "{}")
            for split, split_spans in spans.items():
                for span in split_spans:
                    months.setdefault(str(Month.from_span(span)), {})["role"] = split
    data = {"months": dict(sorted(months.items()))}
    if anomalies := outputs.get(NodeId.DATA_VALIDATOR, {}).get("anomalies"):
        data["drift"] = [f for f in read_findings(anomalies[0].uri) if f["kind"] == "drift"]
    return data


def _slice_name(slice_key) -> str:
    return ", ".join(f"{k}={v}" for k, v in slice_key) or "overall"


ONE_CLASS = "undefined: the slice holds one class only"


def _defined(metrics: dict[str, float]) -> dict[str, float | str | None]:
    """A slice's metrics with undefined values as None (strict JSON, never a score).

    AUC needs both classes: on a slice whose labels are all 0 or all 1 TFMA reports 0 (or
    NaN), which would read as the worst possible ranking; it becomes None with the reason in
    `auc_undefined`. Other non-finite values (a calibration over a zero mean label) become None.
    """
    result: dict[str, float | str | None] = {
        name: value if math.isfinite(value) else None for name, value in metrics.items()
    }
    mean_label = metrics.get(EVAL_METRICS["MeanLabelFromHistogram"])
    if mean_label in (0.0, 1.0) and EVAL_METRICS[GATED_METRIC] in result:
        result[EVAL_METRICS[GATED_METRIC]] = None
        result[f"{EVAL_METRICS[GATED_METRIC]}_undefined"] = ONE_CLASS
    return result


def _evaluation(evaluation_uri: str) -> tuple[dict[str, dict[str, float]], dict]:
    """Metrics per slice, and the validation outcome with a reason per failed threshold."""
    import tensorflow_model_analysis as tfma

    metrics = {}
    for slice_key, values in tfma.load_eval_result(evaluation_uri).slicing_metrics:
        flat = values.get("", {}).get("", {})
        metrics[_slice_name(slice_key)] = _defined(
            {name: float(next(iter(flat[name].values()))) for name in METRICS if name in flat}
        )
    validation = tfma.load_validation_result(evaluation_uri)
    reasons = []
    for failure in validation.metric_validations_per_slice:
        for f in failure.failures:
            threshold = f.metric_threshold
            value = f.metric_value.double_value.value
            if threshold.HasField("value_threshold"):
                reasons.append(
                    f"{f.metric_key.name} {value:.4f} is below the floor "
                    f"{threshold.value_threshold.lower_bound.value}"
                )
            else:
                reasons.append(
                    f"{f.metric_key.name} changed by {value:+.4f} against the "
                    f"baseline, beyond the allowed "
                    f"{threshold.change_threshold.absolute.value}"
                )
    return metrics, {"ok": bool(validation.validation_ok), "failures": reasons}


def _mobile(artifact, pushed) -> dict:
    """Where the TFLite variants went (the Pusher publishes them with the serving version) and,
    per variant, size, AUC, latency and verdict (MobileExport measured them)."""
    destination = (_custom(pushed, "mobile_destination") if pushed else None) or None
    reason = _custom(artifact, "reason") or None
    if destination is None and reason is None:
        reason = "the Pusher did not publish them"
    result = {
        "published": destination is not None,
        "destination": destination,
        "reason": reason,
        "variants": {},
    }
    metrics_file = os.path.join(artifact.uri, "metrics.json")
    if os.path.exists(metrics_file):
        with open(metrics_file) as f:
            metrics = json.load(f)
        result["savedmodel_auc"] = metrics["savedmodel"]["auc"]
        result["variants"] = {
            name: {
                k: v[k]
                for k in (
                    "published",
                    "reason",
                    "size_bytes",
                    "auc",
                    "latency_p50_ms",
                    "max_abs_diff",
                )
            }
            for name, v in metrics["variants"].items()
        }
    return result


def summarize(metadata_path: str, pipeline_name: str, since: float | None = None) -> dict:
    """A JSON-ready account of the pipeline's latest run; LookupError when there is none (or
    none started at or after `since`, in seconds since the epoch)."""
    store = open_store(metadata_path)
    run = _latest_run(store, pipeline_name, since)
    executions = sorted(
        store.get_executions_by_context(run.id), key=lambda e: e.create_time_since_epoch
    )
    summary: dict = {"pipeline": pipeline_name, "run_id": run.name, "components": []}
    outputs = {}
    resolvers = set()  # resolver nodes resolve anew each run; they have nothing to cache
    for execution in executions:
        node = node_id(store, execution)
        seconds = (
            execution.last_update_time_since_epoch - execution.create_time_since_epoch
        ) / 1000
        state = _STATE_NAMES.get(execution.last_known_state, "unknown")
        summary["components"].append(dataclasses.asdict(ComponentRun(node, state, seconds)))
        outputs[node] = execution_outputs(store, execution)
        if store.get_execution_types_by_id([execution.type_id])[0].name == _RESOLVER_TYPE:
            resolvers.add(node)

    summary["data"] = _data(outputs)
    if model := outputs.get(NodeId.TRAINER, {}).get("model"):
        summary["model_uri"] = model[0].uri
    if window := outputs.get(NodeId.EVALUATION_WINDOW, {}).get("examples"):
        summary["eval_examples_uri"] = window[0].uri
    if blessing := outputs.get(NodeId.EVALUATOR, {}).get("blessing"):
        evaluation = outputs[NodeId.EVALUATOR]["evaluation"][0]
        summary["eval_metrics"], summary["validation"] = _evaluation(evaluation.uri)
        summary["blessed"] = _custom(blessing[0], "blessed") == 1
        summary["baseline_model"] = _custom(blessing[0], "baseline_model")  # URI or None
        overall = summary["eval_metrics"].get("overall", {})
        auc = overall.get(EVAL_METRICS[GATED_METRIC])
        diff = overall.get(f"{EVAL_METRICS[GATED_METRIC]}_diff")
        # The champion is the baseline: TFMA stores the candidate's AUC and the difference.
        summary["candidate_auc"] = auc
        summary["champion_auc"] = auc - diff if auc is not None and diff is not None else None
    if infra := outputs.get(NodeId.INFRA_VALIDATOR, {}).get("blessing"):
        summary["infra_validation"] = {
            "ok": _custom(infra[0], "blessed") == 1,
            "detail": _custom(infra[0], "reason"),
        }
    if pushed := outputs.get(NodeId.PUSHER, {}).get("pushed_model"):
        summary["pushed"] = _custom(pushed[0], "pushed") == 1
        summary["pushed_destination"] = _custom(pushed[0], "pushed_destination")
        summary["already_pushed"] = _custom(pushed[0], "already_pushed") == 1
        summary["pushed_version"] = _custom(pushed[0], "pushed_version")
        if summary["pushed"]:
            summary["served_version"] = _served_version(summary["pushed_destination"])
    if mobile := outputs.get(NodeId.MOBILE_EXPORT, {}).get("mobile_models"):
        summary["mobile"] = _mobile(mobile[0], pushed[0] if pushed else None)
    summary["all_cached"] = all(
        c["state"] == "cached" for c in summary["components"] if c["component"] not in resolvers
    )
    return summary


def _served_version(pushed_destination: str) -> str | None:
    """The version TF Serving serves from the base folder of `pushed_destination`: the
    highest number there (its default version policy, `latest`; a cached Pusher's version
    may since have been overtaken by a model pushed from other data)."""
    from serving import push  # imports TensorFlow, loaded by the run already

    found = push.versions(os.path.dirname(pushed_destination.rstrip("/")))
    return str(found[-1]) if found else None


def _figure(value, spec: str, missing: str = "n/a") -> str:
    return missing if value is None else format(value, spec)


def format_summary(summary: dict) -> str:
    """The summary as a short report for a terminal."""
    lines = [
        f"Pipeline {summary['pipeline']}, run {summary['run_id']}: "
        f"{summary.get('status', 'finished')}"
        + (
            f" (nothing changed: the results of run {reused})"
            if (reused := summary.get("reused_run"))
            else ""
        )
    ]
    for c in summary["components"]:
        lines.append(f"  {c['component']:<32} {c['state']:<7} {c['seconds']:8.1f} s")
    if months := summary.get("data", {}).get("months"):
        by_role: dict[str, list[str]] = {}
        for month, m in months.items():
            by_role.setdefault(m.get("role", "ingested"), []).append(
                f"{month} ({m['rows']:,})" if "rows" in m else month
            )
        lines.append(
            "Months (rows): " + "; ".join(f"{r} {', '.join(ms)}" for r, ms in by_role.items())
        )
    if drift := summary.get("data", {}).get("drift"):
        from pipeline.components.data_validator import describe  # imports TFX

        lines.extend(f"Drift (warn): {describe(finding)}" for finding in drift)
    if summary.get("candidate_auc") is not None:
        champion = summary.get("champion_auc")
        lines.append(
            f"Candidate AUC {summary['candidate_auc']:.4f}; champion AUC "
            + (
                f"{champion:.4f} on the same months"
                if champion is not None
                else "n/a (no blessed model older than the candidate)"
            )
        )
    if "eval_metrics" in summary:
        lines.append("Eval metrics (AUC, accuracy, calibration, examples):")
        for name, m in sorted(
            summary["eval_metrics"].items(), key=lambda kv: (kv[0] != "overall", kv[0])
        ):
            lines.append(
                f"  {name:<20} AUC {_figure(m.get('auc'), '.4f', 'undefined')}  "
                f"acc {_figure(m.get('binary_accuracy'), '.4f')}  "
                f"cal {_figure(m.get('calibration'), '.3f')}  "
                f"n {int(m.get('example_count') or 0):,}"
                + (f"  AUC vs baseline {_figure(m['auc_diff'], '+.4f')}" if "auc_diff" in m else "")
                + (" (one class: AUC undefined)" if m.get("auc_undefined") else "")
                + (
                    f" (small: < {MIN_SLICE_EXAMPLES} examples)"
                    if (m.get("example_count") or 0) < MIN_SLICE_EXAMPLES
                    else ""
                )
            )
        validation = summary["validation"]
        why = (
            "; ".join(validation["failures"])
            if validation["failures"]
            else "all thresholds met"
            + (
                f", compared with {summary['baseline_model']}"
                if summary["baseline_model"]
                else "; no earlier blessed model to compare with"
            )
        )
        lines.append(f"Blessed: {'yes' if summary['blessed'] else 'no'} ({why})")
    if infra := summary.get("infra_validation"):
        lines.append(
            f"Infra validation (load and query in a fresh process): "
            f"{'passed' if infra['ok'] else 'FAILED'} ({infra['detail']})"
        )
    if summary.get("pushed"):
        lines.append(
            f"Pushed: {summary['pushed_destination']}"
            + (
                " (already serving this model; no new version)"
                if summary.get("already_pushed")
                else ""
            )
        )
        served = summary.get("served_version")
        if served and served != summary.get("pushed_version"):
            lines.append(
                f"NOT SERVED: TF Serving serves the highest version, {served}, which holds "
                f"another model, pushed later; this run's model is version "
                f"{summary['pushed_version']}. Removing the newer version folder rolls back "
                "to it; `--no-cache` retrains and competes with the served model."
            )
    elif "pushed" in summary:
        why = (
            "infra validation failed"
            if summary.get("blessed") and infra and not infra["ok"]
            else "the model was not blessed"
        )
        lines.append(f"Pushed: no ({why})")
    if mobile := summary.get("mobile"):
        where = (
            mobile["destination"] if mobile["published"] else f"not published ({mobile['reason']})"
        )
        lines.append(f"Mobile (TFLite): {where}")
        for name, v in mobile["variants"].items():
            figures = (
                f"{v['size_bytes'] / 1024:6.1f} KB  AUC {v['auc']:.4f}  "
                f"p50 {v['latency_p50_ms']:.3f} ms  "
                if v["auc"] is not None
                else ""
            )
            lines.append(
                f"  {name:<13} {'published' if v['published'] else 'REJECTED':<9} "
                f"{figures}{v['reason']}"
            )
    if summary.get("error"):
        lines.append(f"Error: {summary['error']}")
    return "\n".join(lines)
