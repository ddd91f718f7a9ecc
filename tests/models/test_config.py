"""TrainingConfig: what Tuner and Trainer read from custom_config."""

from __future__ import annotations

import pytest

from models.config import TrainingConfig


@pytest.mark.unit
def test_training_config_ignores_tfx_keys_and_rejects_unknown_distributions():
    config = TrainingConfig.from_custom_config(
        {"max_epochs": 3, "distribution": "mirrored", "ai_platform_enable_vertex": True}
    )
    assert config.max_epochs == 3 and config.distribution == "mirrored"
    assert TrainingConfig.from_custom_config(None) == TrainingConfig()
    with pytest.raises(ValueError, match="distribution must be one of"):
        TrainingConfig(distribution="tpu")


@pytest.mark.component
def test_the_model_is_built_under_the_configured_strategy(tf_transform_output):
    import tensorflow as tf

    from models.model import build_model, search_space

    strategy = TrainingConfig(distribution="mirrored").strategy()
    assert isinstance(strategy, tf.distribute.MirroredStrategy)
    with strategy.scope():
        model = build_model(search_space(), tf_transform_output)
    assert all(isinstance(v, tf.distribute.DistributedValues) for v in model.weights)
    assert TrainingConfig().strategy() is tf.distribute.get_strategy()
