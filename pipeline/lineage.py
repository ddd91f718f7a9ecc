"""Lineage: where a served model came from, read back from ML Metadata.

Given a pushed version (the folder name under `serving_model/<name>/` or `mobile/<name>/`) or
any artifact's URI, `lineage` walks the store's events from the Pusher's `pushed_model` back to
the landing drops: months (span = YYYYMM, version = delivery time) and their role (training,
validation, evaluation, from the windows' `spans`), statistics and the DataValidator's
findings, schema, transform graph, the Tuner's best hyperparameters, the model, the
evaluation with its blessing and the champion it was compared with, the infra blessing, the
pushed version and the mobile variants. `spans` answers the other way round: what was trained
or evaluated on one month.

Only ML Metadata and the small files next to the artifacts (hyperparameters, tuner results,
findings, mobile metrics) are read; no model is loaded. Importing this module loads neither
TensorFlow nor TFX (running it does: the store is opened with pipeline.summary.open_store).
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import os
import pathlib
import sys

from ml_metadata.proto import metadata_store_pb2

from pipeline.constants import EVAL_SPLIT, TRAIN_SPLIT, VALIDATION_SPLIT, NodeId
from pipeline.months import Month, describe

_INPUTS = (metadata_store_pb2.Event.INPUT, metadata_store_pb2.Event.DECLARED_INPUT)
_OUTPUTS = (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)
_BASELINE_KEY = "baseline_model"
"""The Evaluator's input holding the champion: its ancestors are another model's lineage."""
_ROLES = {TRAIN_SPLIT: "training", VALIDATION_SPLIT: "validation", EVAL_SPLIT: "evaluation"}
"""Window split -> the role a month plays for the model."""
_BEST_HYPERPARAMETERS_FILE = "best_hyperparameters.txt"  # TFX Tuner's names
_TUNER_RESULTS_FILE = "tuner_results.json"
_MOBILE_METRICS_FILE = "metrics.json"  # MobileExport (mobile.publish.write)


class _Graph:
    """The whole store in memory, read once: artifacts, executions, events and each
    execution's node id (`ExampleGen_2013_01`, `Trainer`, ...). Stores of this pipeline hold
    thousands of rows at most; one read beats a query per step."""

    def __init__(self, store, metadata_path: str):
        self.path = metadata_path
        self.artifacts = {a.id: a for a in store.get_artifacts()}
        self.type_names = {t.id: t.name for t in store.get_artifact_types()}
        self.executions = {e.id: e for e in store.get_executions()}
        context_types = {t.id: t.name for t in store.get_context_types()}
        self.node: dict[int, str] = {}
        self.runs: dict[int, set[int]] = collections.defaultdict(set)  # execution -> runs
        for context in store.get_contexts():
            kind = context_types.get(context.type_id)
            if kind not in ("node", "pipeline_run"):
                continue
            for execution in store.get_executions_by_context(context.id):
                if kind == "node":
                    self.node[execution.id] = context.name.split(".", 1)[-1]
                else:
                    self.runs[execution.id].add(context.id)
        # execution -> [(key, artifact id)], artifact -> [(key, execution id)]
        self.inputs_of = collections.defaultdict(list)
        self.outputs_of = collections.defaultdict(list)
        self.producers = collections.defaultdict(list)
        self.consumers = collections.defaultdict(list)
        events = store.get_events_by_execution_ids(list(self.executions)) if self.executions else []
        for event in events:
            key = event.path.steps[0].key if event.path.steps else "?"
            if event.type in _INPUTS:
                self.inputs_of[event.execution_id].append((key, event.artifact_id))
                self.consumers[event.artifact_id].append((key, event.execution_id))
            elif event.type in _OUTPUTS:
                self.outputs_of[event.execution_id].append((key, event.artifact_id))
                self.producers[event.artifact_id].append((key, event.execution_id))

    def producer(self, artifact_id: int) -> int | None:
        """The execution that made the artifact (cached executions that re-publish it come
        later and ran nothing)."""
        ids = [e for _, e in self.producers.get(artifact_id, ())]
        return min(ids) if ids else None

    def produced_by(self, artifact_id: int) -> tuple[str, str] | None:
        """(node id, output key) of the artifact's producer."""
        execution = self.producer(artifact_id)
        if execution is None:
            return None
        key = next(k for k, e in self.producers[artifact_id] if e == execution)
        return self.node.get(execution, "?"), key

    def inputs(self, execution_id: int, key: str) -> list:
        return [self.artifacts[a] for k, a in self.inputs_of[execution_id] if k == key]

    def outputs(self, execution_id: int, key: str) -> list:
        return [self.artifacts[a] for k, a in self.outputs_of[execution_id] if k == key]

    def consumed_by(self, artifact_id: int, node: str, key: str | None = None) -> list[int]:
        """Executions of `node` that read the artifact (as input `key`, when given), oldest
        first."""
        return sorted(
            {
                e
                for k, e in self.consumers.get(artifact_id, ())
                if self.node.get(e) == node and key in (None, k)
            }
        )

    def upstream(self, artifact_ids) -> dict[str, dict[str, list]]:
        """Node id -> output key -> artifacts, for the given artifacts and everything they came
        from; the Evaluator's champion is not followed (its past is another lineage)."""
        found: dict[str, dict[str, dict[int, object]]] = {}
        todo, seen = list(artifact_ids), set()
        while todo:
            artifact_id = todo.pop()
            if artifact_id in seen or artifact_id not in self.artifacts:
                continue
            seen.add(artifact_id)
            execution = self.producer(artifact_id)
            if execution is None:
                continue
            node, key = self.produced_by(artifact_id)
            found.setdefault(node, {}).setdefault(key, {})[artifact_id] = self.artifacts[
                artifact_id
            ]
            todo += [a for k, a in self.inputs_of[execution] if k != _BASELINE_KEY]
        return {
            node: {key: [by_id[i] for i in sorted(by_id)] for key, by_id in keys.items()}
            for node, keys in found.items()
        }


def _value(artifact, name: str):
    """A property or custom property of an MLMD artifact (None when unset)."""
    for properties in (artifact.properties, artifact.custom_properties):
        if name in properties:
            value = properties[name]
            kind = value.WhichOneof("value")
            return getattr(value, kind) if kind else None
    return None


def _time(milliseconds_or_seconds: int, seconds: bool = False) -> str:
    stamp = milliseconds_or_seconds if seconds else milliseconds_or_seconds / 1000
    return datetime.datetime.fromtimestamp(stamp, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _read_json(folder: str, name: str):
    """JSON file `name` in an artifact's folder, or None when it is not there (local paths;
    the lineage command reads a local run's output folder)."""
    path = os.path.join(folder, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def _window_spans(window) -> dict[str, list[int]]:
    from pipeline.components.windows import SPANS_PROPERTY

    return json.loads(_value(window, SPANS_PROPERTY) or "{}")


def _last(upstream: dict, node: str, key: str):
    artifacts = upstream.get(node, {}).get(key)
    return artifacts[-1] if artifacts else None


def _is_node(node: str, kind: str) -> bool:
    """Whether `node` is `kind` or one of its per-month nodes (pipeline.constants.month_node)."""
    return node == kind or node.startswith(f"{kind}_")


# -- the chain ---------------------------------------------------------------------------------


def _months(g: _Graph, upstream: dict) -> list[dict]:
    """One entry per month in the chain's windows: its role, span, delivery, landing drop,
    Examples and statistics."""
    roles: dict[int, str] = {}
    for node in (NodeId.TRAINING_WINDOW, NodeId.EVALUATION_WINDOW):
        if window := _last(upstream, node, "examples"):
            for split, spans in _window_spans(window).items():
                for span in spans:
                    roles[span] = _ROLES.get(split, split)
    examples = {}
    for node, keys in upstream.items():
        if _is_node(node, NodeId.EXAMPLE_GEN):
            for artifact in keys.get("examples", ()):
                examples[_value(artifact, "span")] = artifact
    months = []
    for span in sorted(set(roles) | set(examples)):
        entry = {"month": str(Month.from_span(span)), "span": span, "role": roles.get(span)}
        if artifact := examples.get(span):
            producer = g.producer(artifact.id)
            execution = g.executions[producer]
            base = _value(execution, "input_base")
            version = _value(artifact, "version")
            entry.update(
                version=version,
                delivered=_time(version, seconds=True) if version else None,
                landing=os.path.join(base, entry["month"]) if base else None,
                examples_uri=artifact.uri,
                examples_id=artifact.id,
            )
            statistics = [
                a
                for e in g.consumers.get(artifact.id, ())
                if _is_node(g.node.get(e[1], ""), NodeId.STATISTICS_GEN)
                for a in g.outputs(e[1], "statistics")
            ]
            if statistics:
                entry["statistics_uri"] = statistics[0].uri
                entry["statistics_id"] = statistics[0].id
        months.append(entry)
    return months


def _validation(g: _Graph, months: list[dict], trainer_execution: int | None) -> dict | None:
    """The DataValidator run that checked the chain's months (it gates Transform without
    feeding it, so it is found from the months' statistics): the one of the Trainer's pipeline
    run, else the newest; its findings on the chain's months."""
    from pipeline.components.data_validator import read_findings

    statistics = [m["statistics_id"] for m in months if "statistics_id" in m]
    executions = sorted({e for s in statistics for e in g.consumed_by(s, NodeId.DATA_VALIDATOR)})
    if not executions:
        return None
    runs = g.runs.get(trainer_execution, set()) if trainer_execution else set()
    same_run = [e for e in executions if g.runs.get(e, set()) & runs]
    execution = (same_run or executions)[-1]
    anomalies = g.outputs(execution, "anomalies")
    if not anomalies:
        return None
    names = {m["month"] for m in months}
    findings = [f for f in read_findings(anomalies[0].uri) if f["month"] in names]
    return {
        "anomalies_uri": anomalies[0].uri,
        "months_checked": json.loads(_value(g.executions[execution], "months") or "[]"),
        "drift_action": _value(g.executions[execution], "drift_action"),
        "findings": findings,
    }


def _hyperparameters(g: _Graph, artifact) -> dict:
    """The Tuner's best hyperparameters and the trial that found them (with its score and the
    number of trials, from the Tuner's `tuner_results`)."""
    config = _read_json(artifact.uri, _BEST_HYPERPARAMETERS_FILE) or {}
    values = config.get("values", config)
    result = {"uri": artifact.uri, "values": values, "trial": None, "trials": None}
    producer = g.producer(artifact.id)
    for tuner_results in g.outputs(producer, "tuner_results") if producer else ():
        trials = _read_json(tuner_results.uri, _TUNER_RESULTS_FILE) or []
        result["trials"] = len(trials)
        for trial in trials:
            if all(trial.get(k) == v for k, v in values.items()):
                result["trial"] = {"trial_id": trial.get("trial_id"), "score": trial.get("score")}
                break
    return result


def _pushed_summary(pushed) -> dict:
    return {
        "pushed": _value(pushed, "pushed") == 1,
        "version": _value(pushed, "pushed_version") or None,
        "destination": _value(pushed, "pushed_destination") or None,
        "mobile_destination": _value(pushed, "mobile_destination") or None,
        "already_pushed": _value(pushed, "already_pushed") == 1,
        "uri": pushed.uri,
    }


def _pushes(g: _Graph, model) -> list:
    """The Pusher's `pushed_model` artifacts of one model that did publish it, oldest first."""
    return [
        pushed
        for e in g.consumed_by(model.id, NodeId.PUSHER, "model")
        for pushed in g.outputs(e, "pushed_model")
        if _value(pushed, "pushed") == 1
    ]


def _model_ref(g: _Graph, model) -> dict:
    """A model named by its URI, id, training time and the version it was pushed as."""
    pushes = _pushes(g, model)
    return {
        "id": model.id,
        "uri": model.uri,
        "trained_at": _time(model.create_time_since_epoch),
        "pushed_version": _value(pushes[0], "pushed_version") if pushes else None,
    }


def _evaluation(g: _Graph, blessing) -> dict:
    execution = g.producer(blessing.id)
    evaluation = g.outputs(execution, "evaluation")
    window = g.inputs(execution, "examples")
    baseline = g.inputs(execution, _BASELINE_KEY)
    months = (
        [str(Month.from_span(s)) for spans in _window_spans(window[0]).values() for s in spans]
        if window
        else []
    )
    return {
        "uri": evaluation[0].uri if evaluation else None,
        "blessing_uri": blessing.uri,
        "blessed": _value(blessing, "blessed") == 1,
        "evaluated_at": _time(g.executions[execution].create_time_since_epoch),
        "months": months,
        "model_uri": _value(blessing, "current_model"),
        "baseline_model": _model_ref(g, baseline[0]) if baseline else None,
    }


def _downstream(g: _Graph, model, node: str, key: str):
    """The newest output `key` of `node` executions that read `model` as their `model`."""
    outputs = [a for e in g.consumed_by(model.id, node, "model") for a in g.outputs(e, key)]
    return max(outputs, key=lambda a: a.id) if outputs else None


def _mobile(mobile_models, pushed) -> dict:
    destination = (_value(pushed, "mobile_destination") if pushed else None) or None
    metrics = _read_json(mobile_models.uri, _MOBILE_METRICS_FILE) or {}
    return {
        "uri": mobile_models.uri,
        "destination": destination,
        "reason": _value(mobile_models, "reason") or None,
        "variants": {
            name: {
                k: v.get(k) for k in ("published", "reason", "size_bytes", "auc", "latency_p50_ms")
            }
            for name, v in metrics.get("variants", {}).items()
        },
    }


def _chain(g: _Graph, anchor) -> dict:
    """Everything the anchor came from and, when a model is in it, what became of that
    model (evaluation, infra validation, mobile export, push)."""
    upstream = g.upstream([anchor.id])
    model = _last(upstream, NodeId.TRAINER, "model")
    if model is not None:
        # Later stages not behind the anchor: the newest of each that read this model.
        pinned = set(upstream)
        extra = [
            artifact.id
            for node, key in (
                (NodeId.EVALUATOR, "blessing"),
                (NodeId.INFRA_VALIDATOR, "blessing"),
                (NodeId.MOBILE_EXPORT, "mobile_models"),
                (NodeId.PUSHER, "pushed_model"),
            )
            if node not in pinned and (artifact := _downstream(g, model, node, key)) is not None
        ]
        upstream = g.upstream([anchor.id, *extra])
    months = _months(g, upstream)
    by_role = collections.defaultdict(list)
    for m in months:
        by_role[m["role"]].append(m["month"])
    trainer_execution = g.producer(model.id) if model is not None else None
    result: dict = {
        "months": months,
        "training_months": by_role["training"],
        "validation_months": by_role["validation"],
        "evaluation_months": by_role["evaluation"],
        "validation": _validation(g, months, trainer_execution),
        "schema": None,
        "transform_graph": None,
        "hyperparameters": None,
        "model": _model_ref(g, model) if model is not None else None,
        "evaluation": None,
        "infra_validation": None,
        "push": None,
        "mobile": None,
    }
    if schema := _last(upstream, NodeId.SCHEMA_GEN, "schema"):
        result["schema"] = {"uri": schema.uri}
    if graph := _last(upstream, NodeId.TRANSFORM, "transform_graph"):
        result["transform_graph"] = {"uri": graph.uri}
    if hyperparameters := _last(upstream, NodeId.TUNER, "best_hyperparameters"):
        result["hyperparameters"] = _hyperparameters(g, hyperparameters)
    if blessing := _last(upstream, NodeId.EVALUATOR, "blessing"):
        result["evaluation"] = _evaluation(g, blessing)
    if infra := _last(upstream, NodeId.INFRA_VALIDATOR, "blessing"):
        result["infra_validation"] = {
            "uri": infra.uri,
            "ok": _value(infra, "blessed") == 1,
            "detail": _value(infra, "reason"),
        }
    pushed = _last(upstream, NodeId.PUSHER, "pushed_model")
    if pushed is not None:
        result["push"] = _pushed_summary(pushed)
    if mobile := _last(upstream, NodeId.MOBILE_EXPORT, "mobile_models"):
        result["mobile"] = _mobile(mobile, pushed)
    return result


# -- targets -------------------------------------------------------------------------------


def _pushed_models(g: _Graph) -> list:
    return [
        a
        for execution, node in g.node.items()
        if node == NodeId.PUSHER
        for a in g.outputs(execution, "pushed_model")
        if _value(a, "pushed") == 1
    ]


def _same(text: str, path: str) -> bool:
    """Whether `text` names the folder `path` (as given, or relative to the working folder)."""
    return bool(path) and (text == path or ("://" not in text and os.path.abspath(text) == path))


def _resolve(g: _Graph, target: str) -> tuple[str, object]:
    """(what the target is, the artifact to start from); LookupError naming the target, the
    store and the versions it holds when nothing matches."""
    text = target.strip().rstrip("/")
    pushed = sorted(
        {a.id: a for a in _pushed_models(g)}.values(),
        key=lambda a: (_value(a, "already_pushed") == 1, a.id),
    )  # the push that wrote the version first
    for artifact in pushed:
        serving = (_value(artifact, "pushed_destination") or "").rstrip("/")
        mobile = (_value(artifact, "mobile_destination") or "").rstrip("/")
        version = _value(artifact, "pushed_version") or os.path.basename(serving)
        if text == version:
            kind = "serving and mobile version" if mobile else "serving version"
            return f"{kind} {version}", artifact
        if _same(text, serving):
            return f"serving version {version}", artifact
        if _same(text, mobile):
            return f"mobile version {version}", artifact
    candidates = {text, os.path.abspath(text)} if "://" not in text else {text}
    matches = [a for a in g.artifacts.values() if a.uri.rstrip("/") in candidates]
    if matches:
        artifact = max(matches, key=lambda a: a.id)
        node, key = g.produced_by(artifact.id) or ("?", "?")
        return f"artifact {artifact.uri} ({node}.{key})", artifact
    versions = sorted({_value(a, "pushed_version") for a in pushed if _value(a, "pushed_version")})
    held = f"pushed versions: {', '.join(versions[-5:])}" if versions else "no pushed version"
    raise LookupError(
        f"no pushed version and no artifact URI {target!r} in ML Metadata at {g.path} ({held})"
    )


def _graph(metadata_path: str) -> _Graph:
    from pipeline.summary import open_store

    if not os.path.isfile(metadata_path):
        raise FileNotFoundError(f"no ML Metadata store at {metadata_path}")
    return _Graph(open_store(metadata_path), metadata_path)


def lineage(metadata_path: str, target: str) -> dict:
    """Where `target` came from, as a JSON-ready dict.

    `target`: a pushed version (`"1764500000"`, the folder name under `serving_model/<name>/`
    and `mobile/<name>/`), either version folder's path, or the URI of any artifact in the
    store. The result: `target`, `kind` (e.g. "serving and mobile version 1764500000"),
    `artifact` {id, type, uri, node}; `months` [{month, span, role ("training" | "validation"
    | "evaluation"), version, delivered, landing, examples_uri, statistics_uri}],
    `training_months`, `validation_months`, `evaluation_months` (["YYYY-MM", ...]);
    `validation` {anomalies_uri, months_checked, drift_action, findings [{month, feature,
    kind, description}]}; `schema` / `transform_graph` {uri}; `hyperparameters` {uri, values,
    trial {trial_id, score}, trials}; `model` {id, uri, trained_at, pushed_version};
    `evaluation` {uri, blessing_uri, blessed, evaluated_at, months, model_uri, baseline_model
    (the champion: model ref or None)}; `infra_validation` {uri, ok, detail}; `push` {pushed,
    version, destination, mobile_destination, already_pushed, uri}; `mobile` {uri,
    destination, reason, variants {name: {published, reason, size_bytes, auc,
    latency_p50_ms}}}. A part the target does not reach (an artifact upstream of the model,
    a run that stopped early) is None or empty. Without a model in the chain, `used_by` lists
    the models trained on the target [model ref + training_months, validation_months,
    evaluation].

    Raises FileNotFoundError when the store does not exist, LookupError when no pushed
    version or artifact URI matches `target` (naming it, the store and the versions held).
    """
    g = _graph(metadata_path)
    kind, artifact = _resolve(g, target)
    node, _ = g.produced_by(artifact.id) or ("?", "?")
    result = {
        "target": target,
        "kind": kind,
        "metadata_path": metadata_path,
        "artifact": {
            "id": artifact.id,
            "type": g.type_names.get(artifact.type_id),
            "uri": artifact.uri,
            "node": node,
        },
        **_chain(g, artifact),
    }
    if result["model"] is None:
        result["used_by"] = [_trained(g, m) for m in _downstream_models(g, artifact.id)]
    return result


# -- spans ----------------------------------------------------------------------------------


def _uses(g: _Graph, span: int) -> dict:
    """Models whose training window held the span, evaluations whose evaluation window did."""
    windows = {}
    for artifact in g.artifacts.values():
        where = g.produced_by(artifact.id)
        if where and where[0] in (NodeId.TRAINING_WINDOW, NodeId.EVALUATION_WINDOW):
            for split, spans in _window_spans(artifact).items():
                if span in spans:
                    windows[artifact.id] = (artifact, _ROLES.get(split, split))
    trained, evaluated = {}, {}
    for artifact, role in windows.values():
        if role == "evaluation":
            for execution in g.consumed_by(artifact.id, NodeId.EVALUATOR, "examples"):
                for blessing in g.outputs(execution, "blessing"):
                    evaluation = _evaluation(g, blessing)
                    model = g.inputs(execution, "model")
                    evaluation["model"] = _model_ref(g, model[0]) if model else None
                    evaluated[blessing.id] = evaluation
            continue
        for model in _downstream_models(g, artifact.id):
            trained[model.id] = {**_trained(g, model), "role": role}
    return {
        "trained": [trained[k] for k in sorted(trained)],
        "evaluated": [evaluated[k] for k in sorted(evaluated)],
    }


def _trained(g: _Graph, model) -> dict:
    """A model ref (see `_model_ref`) with its training and validation months and the
    evaluation behind its first push (else its newest evaluation, else None)."""
    chain_months = _months(g, g.upstream([model.id]))
    pushes = _pushes(g, model)
    blessings = [
        b
        for e in (g.consumed_by(model.id, NodeId.EVALUATOR, "model"))
        for b in g.outputs(e, "blessing")
    ]
    if pushes:
        blessings += g.inputs(g.producer(pushes[0].id), "model_blessing")
    return {
        **_model_ref(g, model),
        "training_months": [m["month"] for m in chain_months if m["role"] == "training"],
        "validation_months": [m["month"] for m in chain_months if m["role"] == "validation"],
        "evaluation": _evaluation(g, blessings[-1]) if blessings else None,
    }


def _downstream_models(g: _Graph, artifact_id: int) -> list:
    """Trainer models made from the artifact (not following a champion into later runs)."""
    models, todo, seen = {}, [artifact_id], set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        for key, execution in g.consumers.get(current, ()):
            if key == _BASELINE_KEY or g.node.get(execution) == NodeId.BASELINE_RESOLVER:
                continue
            if g.node.get(execution) == NodeId.TRAINER:
                for model in g.outputs(execution, "model"):
                    models[model.id] = model
                continue
            todo += [a for _, a in g.outputs_of[execution]]
    return [models[k] for k in sorted(models)]


def spans(metadata_path: str, month: str) -> dict:
    """What was trained or evaluated on `month` ("YYYY-MM"), as a JSON-ready dict: `month`,
    `span`, `examples` [{uri, version, delivered}] (each delivery ingested), `trained`
    [model ref (see lineage) + role ("training" | "validation"), training_months,
    validation_months, evaluation (see lineage, or None)], `evaluated` [evaluation (see
    lineage) + model (the candidate's model ref)].

    Raises ValueError when `month` is not YYYY-MM, FileNotFoundError when the store does not
    exist, LookupError when no Examples of that month are in the store (naming the month, its
    span, the store and the months it holds).
    """
    wanted = Month.parse(month)
    g = _graph(metadata_path)
    examples = [
        a
        for execution, node in sorted(g.node.items())
        if _is_node(node, NodeId.EXAMPLE_GEN)
        for a in g.outputs(execution, "examples")
    ]
    ingested = sorted({_value(a, "span") for a in examples if _value(a, "span")})
    mine = sorted(
        {a.id: a for a in examples if _value(a, "span") == wanted.span}.values(), key=lambda a: a.id
    )
    if not mine:
        held = describe(tuple(Month.from_span(s) for s in ingested)) if ingested else "none"
        raise LookupError(
            f"no Examples of month {wanted} (span {wanted.span}) in ML Metadata at "
            f"{metadata_path} (months ingested: {held})"
        )
    return {
        "month": str(wanted),
        "span": wanted.span,
        "metadata_path": metadata_path,
        "examples": [
            {
                "uri": a.uri,
                "version": _value(a, "version"),
                "delivered": _time(_value(a, "version"), seconds=True)
                if _value(a, "version")
                else None,
            }
            for a in mine
        ],
        **_uses(g, wanted.span),
    }


# -- text ------------------------------------------------------------------------------------


def _months_text(months: list[str]) -> str:
    return describe(tuple(Month.parse(m) for m in months)) if months else "none"


def _model_text(ref: dict | None) -> str:
    if ref is None:
        return "none"
    pushed = f", pushed as version {ref['pushed_version']}" if ref.get("pushed_version") else ""
    return f"{ref['uri']} (trained {ref['trained_at']}{pushed})"


def _evaluation_text(evaluation: dict) -> str:
    champion = evaluation["baseline_model"]
    against = (
        f"compared with champion {_model_text(champion)}"
        if champion
        else "no earlier blessed model to compare with"
    )
    return (
        f"{'BLESSED' if evaluation['blessed'] else 'NOT blessed'} on "
        f"{_months_text(evaluation['months'])}, {against}"
    )


def format_lineage(result: dict) -> str:
    """A lineage (see `lineage`) or a month's uses (see `spans`) as text for a terminal."""
    if "trained" in result and "kind" not in result:
        return _format_spans(result)
    lines = [f"Lineage of {result['kind']} (ML Metadata: {result['metadata_path']})"]
    if result["months"]:
        lines.append("Data: landing drop -> Examples (span YYYYMM, version = delivery time)")
        for m in result["months"]:
            delivered = f"delivered {m['delivered']}" if m.get("delivered") else "not in chain"
            lines.append(
                f"  {m['month']}  span {m['span']}  {m['role'] or '-':<10}  {delivered}"
                + (f"  {m['landing']}" if m.get("landing") else "")
            )
        lines.append(
            f"  training {_months_text(result['training_months'])}; validation "
            f"{_months_text(result['validation_months'])}; evaluation "
            f"{_months_text(result['evaluation_months'])}"
        )
    statistics = [m["statistics_uri"] for m in result["months"] if m.get("statistics_uri")]
    if statistics:
        lines.append(f"Statistics: {len(statistics)} month(s), e.g. {statistics[0]}")
    if validation := result["validation"]:
        findings = validation["findings"]
        checked = validation["months_checked"]
        lines.append(
            f"Validation (DataValidator, drift action {validation['drift_action']}, "
            f"checked {_months_text(checked)}): "
            + (f"{len(findings)} finding(s)" if findings else "no anomalies, no drift")
            + f" ({validation['anomalies_uri']})"
        )
        if findings:
            from pipeline.components.data_validator import describe as describe_finding

            lines += [f"  {f['kind']}: {describe_finding(f)}" for f in findings]
    if result["schema"]:
        lines.append(f"Schema: {result['schema']['uri']}")
    if result["transform_graph"]:
        lines.append(f"Transform graph: {result['transform_graph']['uri']}")
    if hp := result["hyperparameters"]:
        trial = hp["trial"]
        which = (
            f"the best of {hp['trials']} Tuner trials: trial {trial['trial_id']}, "
            f"objective {trial['score']:.4f}"
            if trial and trial.get("score") is not None
            else "the Tuner's best trial"
        )
        values = ", ".join(f"{k}={v}" for k, v in sorted(hp["values"].items()))
        lines.append(f"Hyperparameters ({which}): {values}")
    if result["model"]:
        lines.append(f"Model: {result['model']['uri']} (trained {result['model']['trained_at']})")
    if evaluation := result["evaluation"]:
        lines.append(f"Evaluation: {evaluation['uri']}")
        lines.append(f"  {_evaluation_text(evaluation)}")
    if infra := result["infra_validation"]:
        lines.append(
            f"Infra validation: {'passed' if infra['ok'] else 'FAILED'}"
            + (f" ({infra['detail']})" if infra["detail"] else "")
        )
    if push := result["push"]:
        lines.append(
            f"Pushed: version {push['version']} -> {push['destination']}"
            if push["pushed"]
            else "Pushed: no"
        )
    if mobile := result["mobile"]:
        where = mobile["destination"] or f"not published ({mobile['reason'] or 'no destination'})"
        lines.append(f"Mobile variants: {where}")
        for name, v in mobile["variants"].items():
            size = f"{v['size_bytes'] / 1024:.1f} KB" if v.get("size_bytes") else "-"
            auc = f"AUC {v['auc']:.4f}" if v.get("auc") is not None else "AUC n/a"
            lines.append(
                f"  {name:<13} {'published' if v['published'] else 'REJECTED':<9} {size:>9}  {auc}"
                + ("" if v["published"] or not v.get("reason") else f"  ({v['reason']})")
            )
    if "used_by" in result:
        lines.append("Models trained on it:" if result["used_by"] else "No model trained on it")
        lines += [f"  {_model_text(t)}" for t in result["used_by"]]
    return "\n".join(lines)


def _format_spans(result: dict) -> str:
    lines = [
        f"Month {result['month']} (span {result['span']}; ML Metadata: {result['metadata_path']})"
    ]
    for e in result["examples"]:
        lines.append(f"  Examples {e['uri']} (delivered {e['delivered']})")
    lines.append("Trained on it:" if result["trained"] else "Trained on it: no model")
    for t in result["trained"]:
        lines.append(f"  {_model_text(t)}")
        lines.append(
            f"    as {t['role']}; training {_months_text(t['training_months'])}, validation "
            f"{_months_text(t['validation_months'])}"
            + (f"; {_evaluation_text(t['evaluation'])}" if t["evaluation"] else "; not evaluated")
        )
    lines.append("Evaluated on it:" if result["evaluated"] else "Evaluated on it: no evaluation")
    for e in result["evaluated"]:
        lines.append(f"  {e['uri']}: candidate {_model_text(e['model'])}")
        lines.append(f"    {_evaluation_text(e)}")
    return "\n".join(lines)


# -- command -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """`lineage <version | URI> [--output-dir DIR] [--json]` or `lineage --span YYYY-MM ...`:
    prints the lineage (or the month's uses) and returns 0; prints one line naming what was
    looked for and where, and returns 2, when the store, the target or the month is not
    found (argparse exits with 2 on bad arguments)."""
    from pipeline import console
    from pipeline.config import local_config

    console.quiet_libraries()
    parser = argparse.ArgumentParser(
        prog="lineage",
        description="Where a pushed version (or any artifact) came from, from ML Metadata; "
        "or, with --span, what was trained or evaluated on a month.",
    )
    parser.add_argument("target", nargs="?", help="serving/mobile version, or artifact URI")
    parser.add_argument("--span", metavar="YYYY-MM", help="list what used this month")
    parser.add_argument(
        "--output-dir", default="output", help="the run's output folder (holds metadata/)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    if (args.target is None) == (args.span is None):
        parser.print_usage(sys.stderr)
        print("lineage: give either a version/URI or --span YYYY-MM", file=sys.stderr)
        return 2
    metadata_path = local_config(pathlib.Path(args.output_dir)).metadata_path
    try:
        if args.span is not None:
            result = spans(metadata_path, args.span)
        else:
            result = lineage(metadata_path, args.target)
    except FileNotFoundError as error:
        print(
            f"lineage: {error} (looked under --output-dir {args.output_dir}; "
            "run the pipeline first or point --output-dir at a run's output folder)",
            file=sys.stderr,
        )
        return 2
    except (LookupError, ValueError) as error:
        print(f"lineage: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2) if args.json else format_lineage(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
