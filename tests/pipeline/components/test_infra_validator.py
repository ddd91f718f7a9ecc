"""Load-and-query infra validation on a real export: a model that does not load is not
blessed; a good one is, with the warmup requests the Pusher ships."""

from __future__ import annotations

import json
import shutil

import pytest
from tfx.types import standard_artifacts

from artifacts import examples_artifact, make_artifact
from pipeline import data
from pipeline.components.infra_validator import (
    INFRA_BLESSED,
    INFRA_NOT_BLESSED,
    LoadAndQueryValidator,
)
from pipeline.constants import EVAL_SPLIT
from serving import warmup

pytestmark = pytest.mark.component


def _infra_validate(model_dir, examples, out):
    out.mkdir()
    blessing = make_artifact(standard_artifacts.InfraBlessing, out)
    model = make_artifact(standard_artifacts.Model, model_dir.parent)
    LoadAndQueryValidator.EXECUTOR_SPEC.executor_class().Do(
        {"model": [model], "examples": [examples]},
        {"blessing": [blessing]},
        {"timeout_seconds": 300},
    )
    return blessing


@pytest.fixture
def examples(flight_rows, tmp_path):
    return examples_artifact(
        tmp_path / "examples", {EVAL_SPLIT: data.encode_examples(flight_rows[:80])}
    )


@pytest.fixture
def model_dir(saved_model_dir, tmp_path):
    """A private copy of the exported model, laid out as Trainer's Model artifact."""
    target = tmp_path / "model" / "Format-Serving"
    shutil.copytree(saved_model_dir, target)
    return target


def test_a_model_that_does_not_load_is_not_blessed_and_says_why(model_dir, examples, tmp_path):
    for name in (model_dir / "variables").iterdir():
        name.write_bytes(b"not a checkpoint")  # loads no more, as a corrupt upload would

    infra = _infra_validate(model_dir, examples, tmp_path / "infra")
    assert infra.get_int_custom_property("blessed") == 0
    assert "loading failed" in infra.get_string_custom_property("reason")
    assert (tmp_path / "infra" / INFRA_NOT_BLESSED).exists()
    assert json.loads((tmp_path / "infra" / "report.json").read_text())["ok"] is False


def test_a_good_model_is_blessed_with_its_warmup_requests(model_dir, examples, tmp_path):
    infra = _infra_validate(model_dir, examples, tmp_path / "infra")
    assert infra.get_int_custom_property("blessed") == 1, infra.get_string_custom_property("reason")
    assert (tmp_path / "infra" / INFRA_BLESSED).exists()
    logs = warmup.read(str(tmp_path / "infra" / warmup.WARMUP_FILE))
    assert infra.get_int_custom_property("warmup_requests") == len(logs) > 0


def test_a_crashed_validation_fails_the_step_and_records_no_verdict(
    model_dir, examples, tmp_path, monkeypatch
):
    def crash(*args, **kwargs):
        raise warmup.InfraFailure("the validation process was killed by SIGSEGV: ...")

    monkeypatch.setattr(warmup, "load_and_query_in_fresh_process", crash)
    with pytest.raises(warmup.InfraFailure, match="SIGSEGV"):
        _infra_validate(model_dir, examples, tmp_path / "infra")
    # No blessing either way: the failed execution is not cached, the next run validates.
    assert not (tmp_path / "infra" / INFRA_NOT_BLESSED).exists()
    assert not (tmp_path / "infra" / INFRA_BLESSED).exists()
