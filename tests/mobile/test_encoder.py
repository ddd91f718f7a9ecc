"""The builtin-op encoder reproduces tf.Transform, feature by feature."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from mobile.encoder import BuiltinTransform
from models.constants import TRANSFORM_SIGNATURE
from transforms import codec
from transforms import features as F

pytestmark = pytest.mark.component


def test_builtin_transform_reproduces_tf_transform(tf_transform_output, saved_model_dir, records):
    transform = tf.saved_model.load(str(saved_model_dir)).signatures[TRANSFORM_SIGNATURE]
    expected = transform(examples=tf.constant(records))
    columns = codec.columns_from_examples(records)
    ours = BuiltinTransform(tf_transform_output)({k: tf.constant(v) for k, v in columns.items()})
    assert set(ours) == set(expected) - {F.LABEL_KEY}
    for name, values in ours.items():
        np.testing.assert_allclose(values.numpy(), expected[name].numpy(), atol=1e-5, err_msg=name)
    # Unseen and absent categories take the same buckets as in tf.Transform.
    odd = dict(
        columns,
        carrier=np.array([b"ZZ"] * len(records), dtype=object),
        plane_type=np.array([b""] * len(records), dtype=object),
    )
    ours = BuiltinTransform(tf_transform_output)({k: tf.constant(v) for k, v in odd.items()})
    odd_examples = codec.examples_from_columns(odd)
    for example in odd_examples:  # transform_features parses the label too
        example.features.feature[F.LABEL_KEY].int64_list.value.append(0)
    expected = transform(examples=tf.constant([e.SerializeToString() for e in odd_examples]))
    for name in ("carrier_xf", "plane_type_xf", "origin_x_dest_xf"):
        np.testing.assert_array_equal(ours[name].numpy(), expected[name].numpy())
    assert set(ours["carrier_xf"].numpy()) == {
        tf_transform_output.vocabulary_size_by_name("carrier")
    }
