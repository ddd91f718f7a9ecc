"""The Keras model on transformed features, and its hermetic serving export."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import tensorflow as tf

from models import export
from models.model import OUTPUT_KEY, build_model, embedding_dim, model_inputs, search_space
from models.training import TrainingConfig
from pipeline import data
from transforms import features as F


def test_embedding_dim_grows_with_vocabulary_and_respects_the_cap():
    assert embedding_dim(4, 8) == 3
    assert embedding_dim(120, 8) == 8
    assert embedding_dim(120, 16) == 16
    assert embedding_dim(120, 32) == 23
    assert embedding_dim(2, 8) == 2


def test_model_reads_every_transformed_feature_and_sizes_embeddings_from_vocabularies(
        tf_transform_output):
    hp = search_space()
    model = build_model(hp, tf_transform_output)
    assert sorted(model.input_names) == sorted(model_inputs(tf_transform_output))
    dest = model.get_layer(f"embed_{F.transformed_name('dest')}")
    buckets = tf_transform_output.num_buckets_for_transformed_feature(F.transformed_name("dest"))
    assert dest.input_dim == buckets
    assert dest.output_dim == embedding_dim(buckets, hp.get("max_embedding_dim"))
    hidden = [layer for layer in model.layers if layer.name.startswith("hidden_")]
    assert len(hidden) == hp.get("hidden_layers")
    assert model.output_shape == (None, 1)


def _dense_request(rows) -> dict[str, tf.Tensor]:
    """Rows as TF Serving `instances` would carry them: NaN / "" for absent values."""
    request = {}
    for feature in F.FEATURES:
        column = rows[feature.name]
        if feature.dtype is str:
            request[feature.name] = tf.constant(column.fillna("").astype(str).tolist())
        elif feature.dtype is int:
            request[feature.name] = tf.constant(column.astype(np.int64).to_numpy())
        else:
            request[feature.name] = tf.constant(column.astype(np.float32).to_numpy())
    return request


def test_export_serves_raw_features_and_examples_without_the_transform_output(
        trained_model, tf_transform_output, transform_output_dir, flight_rows, tmp_path):
    export_dir = str(tmp_path / "saved_model")
    export.export(trained_model, tf_transform_output, export_dir)

    # What the model predicts in-process on the same rows, for comparison.
    raw = tf.io.parse_example(data.encode_examples(flight_rows), F.raw_feature_spec())
    transformed = tf_transform_output.transform_raw_features(raw)
    inputs = {k: transformed[k] for k in trained_model.input_names}
    expected = trained_model(inputs).numpy().ravel()

    copied = tmp_path / "transform_graph_backup"
    shutil.copytree(transform_output_dir, copied)
    shutil.rmtree(transform_output_dir)  # hermetic: nothing but the SavedModel from here on
    try:
        loaded = tf.saved_model.load(export_dir)
        assert set(loaded.signatures) == {"serving_default", "serving_examples", "classify",
                                          "transform_features"}
        by_examples = loaded.signatures["serving_examples"](
            examples=tf.constant(data.encode_examples(flight_rows)))
        by_raw = loaded.signatures["serving_default"](**_dense_request(flight_rows))
        transformed_sig = loaded.signatures["transform_features"](
            examples=tf.constant(data.encode_examples(flight_rows)))
    finally:
        shutil.copytree(copied, transform_output_dir)

    np.testing.assert_allclose(by_examples[OUTPUT_KEY].numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(by_raw[OUTPUT_KEY].numpy(), expected, atol=1e-5)
    assert by_raw[OUTPUT_KEY].shape == (len(flight_rows),)
    assert np.all((expected > 0) & (expected < 1))
    np.testing.assert_array_equal(transformed_sig["plane_age_missing_xf"].numpy(),
                                  flight_rows["plane_age"].isna().to_numpy(np.float32))


def test_serving_signature_input_contract(saved_model_dir):
    signature = tf.saved_model.load(str(saved_model_dir)).signatures["serving_default"]
    inputs = signature.structured_input_signature[1]
    assert set(inputs) == {f.name for f in F.FEATURES}
    assert F.LABEL_KEY not in inputs
    assert inputs["carrier"].dtype == tf.string and inputs["distance"].dtype == tf.float32
    assert inputs["sched_dep_time"].dtype == tf.int64
    assert all(spec.shape.as_list() == [None] for spec in inputs.values())
    assert list(signature.structured_outputs) == [OUTPUT_KEY]


def test_training_config_ignores_tfx_keys_and_builds_the_model_under_its_strategy(
        tf_transform_output):
    config = TrainingConfig.from_custom_config(
        {"max_epochs": 3, "distribution": "mirrored", "ai_platform_enable_vertex": True})
    assert config.max_epochs == 3 and config.distribution == "mirrored"
    strategy = config.strategy()
    assert isinstance(strategy, tf.distribute.MirroredStrategy)
    with strategy.scope():
        model = build_model(search_space(), tf_transform_output)
    assert all(isinstance(v, tf.distribute.DistributedValues) for v in model.weights)
    with pytest.raises(ValueError, match="distribution must be one of"):
        TrainingConfig(distribution="tpu")
