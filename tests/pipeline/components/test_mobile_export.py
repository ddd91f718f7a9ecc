"""MobileExport: nothing converted for a model missing a blessing; what it converts is left for
the Pusher (tests/pipeline/components/test_publication.py runs both)."""

from __future__ import annotations

import dataclasses
import json

import pytest
from tfx.types import standard_artifacts

from artifacts import make_artifact
from mobile.config import MobileConfig
from pipeline.components.mobile_export import MobileExport, MobileModels


@pytest.mark.unit
@pytest.mark.parametrize(
    "blessed, infra_blessed, reason",
    [(0, 1, "the model was not blessed"), (1, 0, "the model failed infra validation")],
)
def test_nothing_is_converted_for_a_model_missing_a_blessing(
    tmp_path, blessed, infra_blessed, reason
):
    (tmp_path / "out").mkdir()
    out = make_artifact(MobileModels, tmp_path / "out")
    inputs = {
        "model": [make_artifact(standard_artifacts.Model, tmp_path / "model")],
        "transform_graph": [make_artifact(standard_artifacts.TransformGraph, tmp_path)],
        "examples": [make_artifact(standard_artifacts.Examples, tmp_path)],
        "representative_examples": [make_artifact(standard_artifacts.Examples, tmp_path)],
        "model_blessing": [
            make_artifact(standard_artifacts.ModelBlessing, tmp_path, blessed=blessed)
        ],
        "infra_blessing": [
            make_artifact(standard_artifacts.InfraBlessing, tmp_path, blessed=infra_blessed)
        ],
    }
    MobileExport.EXECUTOR_SPEC.executor_class().Do(
        inputs,
        {"mobile_models": [out]},
        {"data_span": "", "config_json": json.dumps(dataclasses.asdict(MobileConfig()))},
    )
    assert out.get_string_custom_property("reason") == reason
    assert list((tmp_path / "out").iterdir()) == []
