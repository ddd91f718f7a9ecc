"""MobileExport: nothing converted for a model that is not blessed and pushed, nor for one
whose variants are already published."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
from tfx.types import standard_artifacts

from artifacts import make_artifact
from mobile import publish
from mobile.config import MobileConfig
from pipeline.components.mobile_export import MobileExport, MobileModels
from serving import push


@pytest.mark.unit
@pytest.mark.parametrize(
    "blessed, pushed, reason",
    [(0, 0, "the model was not blessed"), (1, 0, "the model was not pushed for serving")],
)
def test_nothing_is_converted_or_published_for_an_unblessed_model(
    tmp_path, blessed, pushed, reason
):
    out = _export(tmp_path, tmp_path, blessed, pushed)
    assert out.get_int_custom_property("published") == 0
    assert out.get_string_custom_property("reason") == reason
    assert not (tmp_path / "mobile").exists()


def _export(tmp_path, model_uri, blessed: int, pushed: int, version: str = ""):
    out = make_artifact(MobileModels, tmp_path / "out")
    blessing = make_artifact(standard_artifacts.ModelBlessing, tmp_path, blessed=blessed)
    pushed_model = make_artifact(standard_artifacts.PushedModel, tmp_path, pushed=pushed)
    pushed_model.set_string_custom_property("pushed_version", version)
    inputs = {
        "model": [make_artifact(standard_artifacts.Model, model_uri)],
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
    return out


@pytest.mark.component
def test_variants_already_published_for_this_model_are_not_converted_again(
    saved_model_dir, tmp_path
):
    """A re-run after a crash, or a model the Pusher found already served: the version's
    contract names this model's fingerprint, so MobileExport records it and stops."""
    model_uri = tmp_path / "model"
    shutil.copytree(saved_model_dir, model_uri / "Format-Serving")
    published = tmp_path / "mobile" / "7"
    published.mkdir(parents=True)
    contract = {"model_fingerprint": push.fingerprint(str(saved_model_dir))}
    (published / publish.CONTRACT_FILE).write_text(json.dumps(contract))
    before = sorted(p.name for p in published.iterdir())

    out = _export(tmp_path, model_uri, blessed=1, pushed=1, version="7")
    assert out.get_int_custom_property("published") == 1
    assert out.get_string_custom_property("destination") == str(published)
    assert out.get_string_custom_property("reason") == "already published for this model"
    assert sorted(p.name for p in published.iterdir()) == before

    (published / publish.CONTRACT_FILE).write_text(json.dumps({"model_fingerprint": "other"}))
    assert publish.published_for(str(tmp_path / "mobile"), 7, contract["model_fingerprint"]) is None
