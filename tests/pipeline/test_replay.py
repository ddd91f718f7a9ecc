"""The replay on monthly samples: spans in ML Metadata, windows that respect time, the
champion kept or replaced, and a second replay that re-executes nothing."""

from __future__ import annotations

import dataclasses
import json
import pathlib

import numpy as np
import pandas as pd
import pytest

from mobile.config import MobileConfig
from models.config import TrainingConfig
from pipeline import landing, replay, summary
from pipeline.config import local_config
from pipeline.months import Month

pytestmark = pytest.mark.e2e

MARCH, APRIL, MAY = Month(2013, 3), Month(2013, 4), Month(2013, 5)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> pathlib.Path:
    return tmp_path_factory.mktemp("replay")


@pytest.fixture(scope="module")
def base(workspace):
    return local_config(
        workspace,
        rows_per_month=300,
        tune=False,
        train_window=3,
        min_eval_auc=0.5,
        max_auc_drop=0.05,  # small samples: a new window may score a little lower
        training=TrainingConfig(batch_size=128, max_epochs=3),
        mobile=MobileConfig(
            min_parity_rows=200, representative_rows=100, latency_runs=20, auc_tolerance=0.1
        ),
    )


def _replay(base, workspace, first, last):
    return replay.replay(base, first, last, workspace / "runs", workspace / "replay")


@pytest.fixture(scope="module")
def steps(base, workspace):
    return _replay(base, workspace, MARCH, APRIL)


def _lineage_spans(store, artifact_id: int) -> set[int]:
    """Spans of every Examples artifact upstream of an artifact, through ML Metadata events."""
    from ml_metadata.proto import metadata_store_pb2 as mlmd

    spans, seen, todo = set(), set(), [artifact_id]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        [artifact] = store.get_artifacts_by_id([current])
        if "span" in artifact.properties:
            spans.add(artifact.properties["span"].int_value)
        producers = [
            e.execution_id
            for e in store.get_events_by_artifact_ids([current])
            if e.type == mlmd.Event.OUTPUT
        ]
        for event in store.get_events_by_execution_ids(producers):
            if event.type == mlmd.Event.INPUT:
                todo.append(event.artifact_id)
    return spans


def _node_outputs(store, node: str, key: str):
    """Output artifacts of every execution of one node, oldest first."""
    from ml_metadata.proto import metadata_store_pb2 as mlmd

    contexts = [c for c in store.get_contexts_by_type("node") if c.name.endswith(f".{node}")]
    executions = store.get_executions_by_context(contexts[0].id)
    events = [
        e
        for e in store.get_events_by_execution_ids([x.id for x in executions])
        if e.type == mlmd.Event.OUTPUT and e.path.steps[0].key == key
    ]
    return store.get_artifacts_by_id([e.artifact_id for e in events])


def test_each_month_is_ingested_once_as_its_span(steps, base):
    store = summary.open_store(base.metadata_path)
    for month in (Month(2013, 1), Month(2013, 2), MARCH, APRIL):
        outputs = _node_outputs(store, f"ExampleGen_{month.year}_{month.month:02d}", "examples")
        # One Examples artifact per month although two runs read the early months: cached.
        assert [a.properties["span"].int_value for a in outputs] == [month.span]
        assert outputs[0].properties["version"].int_value > 0


def test_the_model_sees_only_its_window_and_is_judged_on_a_newer_month(steps, base):
    store = summary.open_store(base.metadata_path)
    models = _node_outputs(store, "Trainer", "model")
    evaluations = _node_outputs(store, "Evaluator", "evaluation")
    assert len(models) == len(evaluations) == 2
    # March: window Jan (train) + Feb (validation); April: Jan, Feb (train) + Mar.
    for model, evaluation, window in (
        (models[0], evaluations[0], {201301, 201302}),
        (models[1], evaluations[1], {201301, 201302, 201303}),
    ):
        model_spans = _lineage_spans(store, model.id)
        assert model_spans == window
        judged_on = _lineage_spans(store, evaluation.id) - model_spans
        assert len(judged_on) == 1 and min(judged_on) > max(model_spans)


def test_replay_reports_each_month_and_the_champion_is_replaced_when_the_candidate_wins(
    steps, workspace
):
    march, april = steps
    assert [s.month for s in steps] == ["2013-03", "2013-04"]
    assert march.status == april.status == "succeeded"
    assert march.training_months == "2013-01..2013-02"
    assert april.training_months == "2013-01..2013-03"
    assert march.rows == april.rows == 300
    assert march.champion_auc is None and march.decision == "pushed"
    assert march.frozen_auc == pytest.approx(march.candidate_auc, abs=2e-3)
    assert april.champion_auc is not None and april.frozen_auc is not None
    assert april.decision == "pushed (replaces the champion)"
    assert april.pushed_version != march.pushed_version
    written = json.loads((workspace / "replay" / "replay.json").read_text())
    assert [w["month"] for w in written] == ["2013-03", "2013-04"]
    assert written[1]["candidate_auc"] == april.candidate_auc
    # The replay's report: the last month's run with a row (and a point) per replayed month.
    page = (workspace / "replay" / "report.html").read_text()
    replay_section = page[page.index('id="replay"') :]
    assert "No replay" not in replay_section
    assert "2013-03" in replay_section and "2013-04" in replay_section
    assert "pushed (replaces the champion)" in replay_section


def test_a_second_replay_of_the_same_months_re_executes_nothing(steps, base, workspace):
    again = _replay(base, workspace, MARCH, APRIL)
    assert [s.all_cached for s in again] == [True, True]
    assert [s.pushed_version for s in again] == [s.pushed_version for s in steps]


def _shuffle_labels(landing_root: pathlib.Path, month: Month) -> None:
    """Re-delivers a month with its arrival delays shuffled: the labels become noise."""
    path = landing_root / str(month) / landing.DROP_FILES["flights"]
    flights = pd.read_csv(path, low_memory=False)
    flights["arr_delay"] = np.random.default_rng(0).permutation(flights["arr_delay"].to_numpy())
    flights.to_csv(path, index=False)


def test_the_champion_is_kept_when_the_candidate_loses(steps, base, workspace):
    for month in (Month(2013, 2), MARCH, APRIL):
        _shuffle_labels(pathlib.Path(base.landing_root), month)
    strict = dataclasses.replace(base, max_auc_drop=0.0)
    [may] = _replay(strict, workspace, MAY, MAY)
    assert may.status == "succeeded"
    assert may.candidate_auc < may.champion_auc
    assert may.decision.startswith("kept the champion")
    assert may.pushed_version is None
    served = sorted(p.name for p in pathlib.Path(base.serving_model_dir).iterdir())
    assert served[-1] == steps[-1].pushed_version  # still April's model
