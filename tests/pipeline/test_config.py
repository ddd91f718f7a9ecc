"""The typed pipeline config: validation at construction, the months it derives, the local
defaults."""

from __future__ import annotations

import pathlib

import pytest

from models.constants import MODEL_NAME
from pipeline.config import DriftAction, PipelineConfig, local_config
from pipeline.months import Month

pytestmark = pytest.mark.unit


def _config(**overrides) -> PipelineConfig:
    return PipelineConfig(
        pipeline_name="p", pipeline_root="r", landing_root="l", serving_model_dir="s", **overrides
    )


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(rows_per_month=0), "rows_per_month must be positive, got 0"),
        (dict(min_eval_auc=1.5), r"min_eval_auc must be within \[0, 1\], got 1.5"),
        (dict(max_auc_drop=-0.1), "max_auc_drop must be >= 0, got -0.1"),
        (dict(train_window=1), r"train_window must be >= 2 \(training months plus one "),
        (dict(train_window=0), "train_window must be >= 2 .*got 0"),
        (
            dict(eval_months=(Month(2013, 11), Month(2013, 11))),
            "eval_months must be distinct months",
        ),
        (dict(eval_months=()), r"eval_months must be distinct months, got \(\)"),
    ],
)
def test_invalid_settings_are_refused_naming_the_setting(overrides, message):
    with pytest.raises(ValueError, match=message):
        _config(**overrides)


def test_defaults_train_on_january_to_october_and_evaluate_on_november_december():
    config = _config()
    assert config.window_months == tuple(Month(2013, m) for m in range(1, 11))
    assert config.train_months == tuple(Month(2013, m) for m in range(1, 10))
    assert config.validation_month == Month(2013, 10)
    assert config.eval_months == (Month(2013, 11), Month(2013, 12))
    assert config.months == tuple(Month(2013, m) for m in range(1, 13))
    assert config.drift_action is DriftAction.BLOCK


def test_the_window_is_the_train_window_months_before_the_first_eval_month():
    config = _config(eval_months=(Month(2013, 3), Month(2013, 2)), train_window=3)
    assert config.window_months == (Month(2012, 11), Month(2012, 12), Month(2013, 1))
    assert config.train_months == (Month(2012, 11), Month(2012, 12))
    assert config.validation_month == Month(2013, 1)
    assert config.months == (
        Month(2012, 11),
        Month(2012, 12),
        Month(2013, 1),
        Month(2013, 2),
        Month(2013, 3),
    )


def test_data_span_states_the_training_validation_and_evaluation_months():
    config = _config(eval_months=(Month(2013, 5),), train_window=4)
    assert config.data_span == (
        "trained on 2013-01..2013-04 (validation 2013-04), evaluated on 2013-05"
    )
    assert _config().data_span == (
        "trained on 2013-01..2013-10 (validation 2013-10), evaluated on 2013-11..2013-12"
    )


def test_drift_action_is_read_from_its_text():
    assert DriftAction("warn") is DriftAction.WARN
    assert DriftAction("block") is DriftAction.BLOCK
    with pytest.raises(ValueError, match="'stop' is not a valid DriftAction"):
        DriftAction("stop")


def test_local_config_keeps_everything_under_one_output_folder(tmp_path):
    config = local_config(tmp_path, rows_per_month=300)
    root = tmp_path.resolve()
    assert config.pipeline_name == MODEL_NAME
    assert config.rows_per_month == 300
    for path in (
        config.pipeline_root,
        config.landing_root,
        config.serving_model_dir,
        config.mobile_model_dir,
        config.metadata_path,
    ):
        assert pathlib.Path(path).is_relative_to(root)
    assert config.landing_root == str(root / "landing")
    assert config.pipeline_root == str(root / "pipeline_root" / MODEL_NAME)
    assert config.serving_model_dir.endswith(f"serving_model/{MODEL_NAME}")
    assert config.metadata_path.endswith(f"metadata/{MODEL_NAME}.sqlite")


def test_local_config_takes_a_pipeline_name_and_overrides(tmp_path):
    config = local_config(tmp_path, pipeline_name="other", drift_action=DriftAction.WARN)
    assert config.pipeline_name == "other"
    assert config.pipeline_root.endswith("pipeline_root/other")
    assert config.drift_action is DriftAction.WARN


def test_a_run_of_more_months_than_the_windows_take_is_refused(tmp_path):
    from pipeline.constants import MAX_MONTHS

    with pytest.raises(ValueError, match=rf"at most {MAX_MONTHS} months .*got 30 \+ 2"):
        local_config(tmp_path, train_window=30)
