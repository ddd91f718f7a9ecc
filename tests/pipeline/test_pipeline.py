"""create_pipeline and eval_config: the graph's nodes and the Evaluator's gate, from config."""

from __future__ import annotations

import dataclasses

import pytest

from models.constants import EXAMPLES_SIGNATURE, OUTPUT_KEY
from pipeline.config import local_config
from pipeline.constants import EVAL_METRICS, GATED_METRIC, NodeId, month_node
from pipeline.months import Month
from transforms import features as F

pytestmark = pytest.mark.component

PER_MONTH = {NodeId.EXAMPLE_GEN, NodeId.STATISTICS_GEN}
# The default run: one ExampleGen and StatisticsGen per month of 2013, then one of each other.
ALL_NODES = {month_node(node, Month(2013, m)) for node in PER_MONTH for m in range(1, 13)} | {
    value for name, value in vars(NodeId).items() if name.isupper() and value not in PER_MONTH
}


def test_eval_config_slices_by_the_registry_and_gates_the_overall_auc(tmp_path):
    from pipeline.pipeline import eval_config

    config = local_config(tmp_path, min_eval_auc=0.65, max_auc_drop=0.02)
    evaluation = eval_config(config)
    (spec,) = evaluation.model_specs
    assert (spec.signature_name, spec.label_key, spec.prediction_key) == (
        EXAMPLES_SIGNATURE,
        F.LABEL_KEY,
        OUTPUT_KEY,
    )
    slices = [list(s.feature_keys) for s in evaluation.slicing_specs]
    assert slices == [[]] + [[key] for key in F.SLICE_KEYS]
    metrics = {m.class_name: m for m in evaluation.metrics_specs[0].metrics}
    assert set(metrics) == {*EVAL_METRICS, "ConfusionMatrixPlot", "CalibrationPlot"}
    gated = [name for name, m in metrics.items() if m.per_slice_thresholds]
    assert gated == [GATED_METRIC]
    (threshold,) = metrics[GATED_METRIC].per_slice_thresholds
    assert list(threshold.slicing_specs[0].feature_keys) == []  # the overall slice only
    assert threshold.threshold.value_threshold.lower_bound.value == 0.65
    assert threshold.threshold.change_threshold.absolute.value == -0.02


@pytest.mark.parametrize(
    "overrides, absent",
    [
        ({}, set()),
        ({"tune": False}, {NodeId.TUNER}),
        ({"mobile_model_dir": None}, {NodeId.MOBILE_EXPORT}),
    ],
)
def test_the_graph_has_the_named_nodes(tmp_path, overrides, absent):
    from pipeline.pipeline import create_pipeline

    pipeline = create_pipeline(dataclasses.replace(local_config(tmp_path), **overrides))
    assert {c.id for c in pipeline.components} == ALL_NODES - absent


def test_resources_for_an_unknown_node_are_refused(tmp_path):
    from pipeline.config import Resources
    from pipeline.pipeline import create_pipeline

    config = dataclasses.replace(
        local_config(tmp_path), resources={"Trainerr": Resources(cpu=2, memory_gib=4)}
    )
    with pytest.raises(ValueError, match=r"resources for unknown components \['Trainerr'\]"):
        create_pipeline(config)


def test_the_windows_follow_the_config_and_never_give_training_an_evaluation_month(tmp_path):
    import json

    from pipeline.pipeline import create_pipeline

    config = local_config(tmp_path, eval_months=(Month(2013, 7),), train_window=4)
    nodes = {c.id: c for c in create_pipeline(config).components}
    assert {n for n in nodes if n.startswith(NodeId.EXAMPLE_GEN)} == {
        month_node(NodeId.EXAMPLE_GEN, Month(2013, m)) for m in range(3, 8)
    }
    training = json.loads(nodes[NodeId.TRAINING_WINDOW].exec_properties["splits"])
    evaluation = json.loads(nodes[NodeId.EVALUATION_WINDOW].exec_properties["splits"])
    assert training == {"train": [201303, 201304, 201305], "validation": [201306]}
    assert evaluation == {"eval": [201307]}
    transform_inputs = {ch.producer_component_id for ch in nodes[NodeId.TRANSFORM].inputs.values()}
    assert transform_inputs == {NodeId.TRAINING_WINDOW, NodeId.SCHEMA_GEN}
    evaluator_examples = nodes[NodeId.EVALUATOR].inputs["examples"].producer_component_id
    assert evaluator_examples == NodeId.EVALUATION_WINDOW
