"""create_pipeline and eval_config: the graph's nodes and the Evaluator's gate, from config."""

from __future__ import annotations

import dataclasses

import pytest

from models.constants import EXAMPLES_SIGNATURE, OUTPUT_KEY
from pipeline.config import local_config
from pipeline.constants import EVAL_METRICS, GATED_METRIC, NodeId
from transforms import features as F

pytestmark = pytest.mark.component

ALL_NODES = {value for name, value in vars(NodeId).items() if name.isupper()}


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
    assert set(metrics) == set(EVAL_METRICS)
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
