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


INT64_EXTREMES = (2**32 + 3, -(2**40), 2**63 - 1, -(2**63))
"""int64 values an int32 cast would wrap (2**32 + 3 -> 3) or that overflow hh*60 + mm."""


def test_int_inputs_beyond_int32_are_encoded_as_tf_transform_encodes_them(
    tf_transform_output, saved_model_dir, records
):
    """Every int feature of the registry at each of INT64_EXTREMES, one per row: the encoder's
    ids equal tf.Transform's exactly (an unseen day or hour is the OOV bucket, not the wrapped
    int32 value) and its clock angles' sin/cos equal Transform's."""
    ints = [f for f in F.FEATURES if f.dtype is int]
    base = codec.columns_from_examples(records[:1])
    columns = {k: np.repeat(v, len(ints) * len(INT64_EXTREMES)) for k, v in base.items()}
    for i, feature in enumerate(ints):
        rows = slice(i * len(INT64_EXTREMES), (i + 1) * len(INT64_EXTREMES))
        columns[feature.name][rows] = INT64_EXTREMES
    examples = codec.examples_from_columns(columns)
    for example in examples:  # transform_features parses the label too
        example.features.feature[F.LABEL_KEY].int64_list.value.append(0)
    transform = tf.saved_model.load(str(saved_model_dir)).signatures[TRANSFORM_SIGNATURE]
    expected = transform(examples=tf.constant([e.SerializeToString() for e in examples]))
    ours = BuiltinTransform(tf_transform_output)({k: tf.constant(v) for k, v in columns.items()})
    for name, values in ours.items():
        if values.dtype.is_integer:
            np.testing.assert_array_equal(values.numpy(), expected[name].numpy(), err_msg=name)
        else:
            np.testing.assert_allclose(
                values.numpy(), expected[name].numpy(), atol=1e-5, err_msg=name
            )
    oov = tf_transform_output.vocabulary_size_by_name("day_of_week")
    day = ints.index(F.BY_NAME["day_of_week"]) * len(INT64_EXTREMES)
    assert set(ours["day_of_week_xf"].numpy()[day : day + len(INT64_EXTREMES)]) == {oov}
