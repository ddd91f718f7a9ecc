"""MobileExport: nothing is converted or published for a model that is not blessed."""

from __future__ import annotations

import dataclasses
import json

import pytest
from tfx.types import standard_artifacts

from artifacts import make_artifact
from mobile.config import MobileConfig
from pipeline.components.mobile_export import MobileExport, MobileModels

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "blessed, pushed, reason",
    [(0, 0, "the model was not blessed"), (1, 0, "the model was not pushed for serving")],
)
def test_nothing_is_converted_or_published_for_an_unblessed_model(
    tmp_path, blessed, pushed, reason
):
    out = make_artifact(MobileModels, tmp_path / "out")
    blessing = make_artifact(standard_artifacts.ModelBlessing, tmp_path, blessed=blessed)
    pushed_model = make_artifact(standard_artifacts.PushedModel, tmp_path, pushed=pushed)
    inputs = {
        "model": [make_artifact(standard_artifacts.Model, tmp_path)],
        "transform_graph": [make_artifact(standard_artifacts.TransformGraph, tmp_path)],
        "examples": [make_artifact(standard_artifacts.Examples, tmp_path)],
        "model_blessing": [blessing],
        "pushed_model": [pushed_model],
    }
    MobileExport.EXECUTOR_SPEC.executor_class().Do(
        inputs,
        {"mobile_models": [out]},
        {
            "mobile_model_dir": str(tmp_path / "mobile"),
            "data_span": "",
            "config_json": json.dumps(dataclasses.asdict(MobileConfig())),
        },
    )
    assert out.get_int_custom_property("published") == 0
    assert out.get_string_custom_property("reason") == reason
    assert not (tmp_path / "mobile").exists()
