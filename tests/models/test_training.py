"""The Trainer's and Tuner's input: raw window examples transformed in-process by the graph.

Transform runs with materialize=False; `training._load` applies the transform graph to the
raw examples itself. It must give the tensors Transform would have materialized: the same
transform_fn applied by tf.Transform's Beam TransformDataset, written as tf.Examples and read
back with the transformed schema (the path the Trainer used before).
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.component


def _materialized(records, transform_output_dir, tmp_path):
    """Transform's materialization of `records`: Beam TransformDataset, tf.Examples on disk,
    read back as Transform's consumers read them ({feature: [n]}, label [n])."""
    import apache_beam as beam
    import tensorflow as tf
    import tensorflow_transform as tft
    import tensorflow_transform.beam as tft_beam
    from tfx_bsl.coders import example_coder
    from tfx_bsl.public import tfxio

    from transforms import features as F
    from transforms import schema

    source = tfxio.TFExampleRecord(file_pattern=str(tmp_path / "unused*"), schema=schema.load())
    written = tmp_path / "transformed" / "part"
    with tft_beam.Context(temp_dir=str(tmp_path / "tmp")):
        with beam.Pipeline() as p:
            raw = p | beam.Create(records, reshuffle=False) | source.RawRecordToRecordBatch()
            transform_fn = p | tft_beam.ReadTransformFn(str(transform_output_dir))
            transformed, _ = ((raw, source.TensorAdapterConfig()), transform_fn) | (
                tft_beam.TransformDataset(output_record_batches=True)
            )
            _ = (
                transformed
                | beam.FlatMap(lambda batch: example_coder.RecordBatchToExamples(batch[0]))
                | beam.io.WriteToTFRecord(str(written), file_name_suffix=".gz")
            )
    output = tft.TFTransformOutput(str(transform_output_dir))
    parsed = tf.io.parse_example(
        list(tf.data.TFRecordDataset(tf.io.gfile.glob(f"{written}*"), "GZIP").as_numpy_iterator()),
        output.transformed_feature_spec(),
    )
    label = parsed.pop(F.LABEL_KEY).numpy()
    return {k: v.numpy() for k, v in parsed.items()}, label


def test_raw_examples_transformed_in_process_equal_transforms_materialization(
    records, transform_output_dir, tf_transform_output, tmp_path
):
    from tfx.components.trainer.fn_args_utils import DataAccessor, FnArgs
    from tfx.components.util import tfxio_utils

    from artifacts import examples_artifact
    from models import training
    from transforms import features as F

    window = examples_artifact(tmp_path / "window", {"train": records})
    fn_args = FnArgs(
        train_files=[f"{window.uri}/Split-train/*"],
        data_accessor=DataAccessor(
            tf_dataset_factory=tfxio_utils.get_tf_dataset_factory_from_artifact([window], []),
            record_batch_factory=None,
            data_view_decode_fn=None,
        ),
    )
    features, label = training._load(fn_args, fn_args.train_files, tf_transform_output)
    expected, expected_label = _materialized(records, transform_output_dir, tmp_path)

    # Both keep the rows' order (one file, no shuffling).
    assert label.shape == (len(records), 1)
    np.testing.assert_array_equal(label.numpy()[:, 0], expected_label)
    assert sorted(features) == sorted(expected)
    assert F.LABEL_KEY not in features
    for name, values in expected.items():
        got = features[name].numpy()
        assert got.dtype == values.dtype, name
        assert got.shape == values.shape, name
        if values.dtype.kind == "f":
            np.testing.assert_allclose(got, values, rtol=1e-6, atol=1e-6, err_msg=name)
        else:
            np.testing.assert_array_equal(got, values, err_msg=name)
    # Not a trivial equality: the z-scored features vary and the vocabularies map to ids.
    assert np.std(expected[F.transformed_name("distance")]) > 0.5
    assert len(np.unique(expected[F.transformed_name("carrier")])) > 5
