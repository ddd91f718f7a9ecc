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
