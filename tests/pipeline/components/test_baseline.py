"""The baseline resolver: the newest blessed model older than the candidate."""

from __future__ import annotations

import pytest
from tfx.types import standard_artifacts

from pipeline.components.baseline import LatestBlessedBaselineStrategy

pytestmark = pytest.mark.unit


def _model(artifact_id: int):
    model = standard_artifacts.Model()
    model.id = artifact_id
    return model


def _blessing(model_id: int, blessed: bool):
    blessing = standard_artifacts.ModelBlessing()
    blessing.set_int_custom_property("current_model_id", model_id)
    blessing.set_int_custom_property("blessed", int(blessed))
    return blessing


def _resolve(models, blessings, candidate):
    return LatestBlessedBaselineStrategy().resolve_artifacts(
        None, {"model": models, "model_blessing": blessings, "candidate": candidate}
    )


def test_baseline_is_the_newest_blessed_model_other_than_the_candidate():
    models = [_model(1), _model(2), _model(3), _model(4)]
    blessings = [_blessing(1, True), _blessing(2, True), _blessing(3, False)]
    result = _resolve(models, blessings, [models[3]])
    assert [m.id for m in result["model"]] == [2]
    assert [b.get_int_custom_property("current_model_id") for b in result["model_blessing"]] == [2]


def test_a_cached_candidate_is_never_its_own_baseline():
    models = [_model(1)]
    result = _resolve(models, [_blessing(1, True)], [models[0]])
    assert result["model"] == [] and result["model_blessing"] == []


def test_no_blessed_model_means_no_baseline():
    models = [_model(1), _model(2)]
    result = _resolve(models, [_blessing(1, False)], [models[1]])
    assert result["model"] == []


def test_a_model_trained_after_the_candidate_is_never_its_baseline():
    """A second replay of March meets April's model, blessed later and trained on March."""
    march, april = _model(5), _model(6)
    models = [_model(1), march, april]
    blessings = [_blessing(1, True), _blessing(5, True), _blessing(6, True)]
    assert [m.id for m in _resolve(models, blessings, [march])["model"]] == [1]
    assert [m.id for m in _resolve(models, blessings, [april])["model"]] == [5]
