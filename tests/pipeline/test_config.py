"""The typed pipeline config: validation at construction and the local defaults."""

from __future__ import annotations

import pathlib

import pytest

from models.constants import MODEL_NAME
from pipeline.config import PipelineConfig, local_config

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(rows_per_month=0), "rows_per_month must be positive, got 0"),
        (dict(min_eval_auc=1.5), r"min_eval_auc must be within \[0, 1\], got 1.5"),
        (dict(max_auc_drop=-0.1), "max_auc_drop must be >= 0, got -0.1"),
    ],
)
def test_invalid_settings_are_refused_naming_the_setting(overrides, message):
    with pytest.raises(ValueError, match=message):
        PipelineConfig(
            pipeline_name="p", pipeline_root="r", data_root="d", serving_model_dir="s", **overrides
        )


def test_local_config_keeps_everything_under_one_output_folder(tmp_path):
    config = local_config(tmp_path, rows_per_month=300)
    root = tmp_path.resolve()
    assert config.pipeline_name == MODEL_NAME
    for path in (
        config.pipeline_root,
        config.data_root,
        config.serving_model_dir,
        config.mobile_model_dir,
        config.metadata_path,
    ):
        assert pathlib.Path(path).is_relative_to(root)
    assert config.data_root.endswith("data-sample300")
    assert local_config(tmp_path).data_root.endswith("data-full")
    assert config.serving_model_dir.endswith(f"serving_model/{MODEL_NAME}")


def test_data_span_states_the_training_and_evaluation_months(tmp_path):
    config = local_config(tmp_path, train_months=(1, 2, 3), eval_months=(4,))
    assert config.data_span == "trained on 2013-01..2013-03, evaluated on 2013-04..2013-04"
