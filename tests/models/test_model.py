"""The Keras model on transformed features."""

from __future__ import annotations

import pytest

from models.model import build_model, embedding_dim, model_inputs, search_space
from transforms import features as F


@pytest.mark.unit
def test_embedding_dim_grows_with_vocabulary_and_respects_the_cap():
    assert embedding_dim(4, 8) == 3
    assert embedding_dim(120, 8) == 8
    assert embedding_dim(120, 16) == 16
    assert embedding_dim(120, 32) == 23
    assert embedding_dim(2, 8) == 2


@pytest.mark.component
def test_model_reads_every_transformed_feature_and_sizes_embeddings_from_vocabularies(
    tf_transform_output,
):
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


@pytest.mark.component
def test_training_steps_traced_without_autograph_learn_what_autograph_traced_ones_learn(
    tf_transform_output, flight_rows
):
    """build_model traces train_step/test_step without AutoGraph (15 s less per model); the
    weights after three steps and the evaluated metrics equal those of Keras's default."""
    import numpy as np
    import tensorflow as tf
    import tf_keras

    from pipeline import data

    raw = tf.io.parse_example(data.encode_examples(flight_rows), F.raw_feature_spec())
    x = tf_transform_output.transform_raw_features(raw)
    y = tf.reshape(x.pop(F.LABEL_KEY), [-1, 1])

    def fitted(autograph: bool):
        tf_keras.utils.set_random_seed(0)
        model = build_model(search_space(), tf_transform_output)
        if autograph:  # Keras's own methods, traced with AutoGraph
            model.train_step = tf_keras.Model.train_step.__get__(model)
            model.test_step = tf_keras.Model.test_step.__get__(model)
        before = [w.copy() for w in model.get_weights()]
        model.fit(x, y, batch_size=200, epochs=1, shuffle=False, verbose=0)
        return before, model.get_weights(), model.evaluate(x, y, verbose=0, return_dict=True)

    before, plain, plain_metrics = fitted(autograph=False)
    _, converted, converted_metrics = fitted(autograph=True)
    assert any(not np.allclose(a, b) for a, b in zip(before, plain, strict=True))  # it learned
    for a, b in zip(plain, converted, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert plain_metrics.keys() == converted_metrics.keys() == {"loss", "auc", "accuracy"}
    for name, value in plain_metrics.items():
        assert value == pytest.approx(converted_metrics[name], rel=1e-5), name
