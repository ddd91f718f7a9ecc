"""Hand-made TFX artifacts for tests that run component executors directly."""

from __future__ import annotations


def make_artifact(kind, uri, **int_properties):
    """An artifact of type `kind` at `uri` with the given int custom properties."""
    artifact = kind()
    artifact.uri = str(uri)
    for name, value in int_properties.items():
        artifact.set_int_custom_property(name, value)
    return artifact


def examples_artifact(root, splits: dict[str, list[bytes]]):
    """An Examples artifact at `root` holding the serialized tf.Examples of each split,
    written as ExampleGen writes them (gzipped TFRecord files under Split-<name>/)."""
    import tensorflow as tf
    from tfx.types import artifact_utils, standard_artifacts

    for split, records in splits.items():
        directory = root / f"Split-{split}"
        directory.mkdir(parents=True)
        with tf.io.TFRecordWriter(
            str(directory / "data_tfrecord-00000-of-00001.gz"), options="GZIP"
        ) as writer:
            for record in records:
                writer.write(record)
    examples = make_artifact(standard_artifacts.Examples, root)
    examples.split_names = artifact_utils.encode_split_names(list(splits))
    return examples


def evaluation_artifact(root, evaluated: dict):
    """An Evaluator output at `root` holding `evaluated` ({slice key: {metric: value}}, a
    slice key being a tuple of (column, value) pairs, `<metric>_diff` for the change against
    the baseline), written as TFMA writes it: metrics and validations TFRecord files of
    MetricsForSlice / ValidationResult protos."""
    import tensorflow as tf
    from tensorflow_model_analysis.proto import metrics_for_slice_pb2, validation_result_pb2
    from tfx.types import standard_artifacts

    root.mkdir(parents=True)
    with tf.io.TFRecordWriter(str(root / "metrics-00000-of-00001.tfrecord")) as writer:
        for slice_key, values in evaluated.items():
            proto = metrics_for_slice_pb2.MetricsForSlice()
            for column, value in slice_key:
                single = proto.slice_key.single_slice_keys.add(column=column)
                if isinstance(value, bytes):
                    single.bytes_value = value
                else:
                    single.int64_value = value
            for name, value in values.items():
                entry = proto.metric_keys_and_values.add()
                entry.key.name = name.removesuffix("_diff")
                entry.key.is_diff = name.endswith("_diff")
                entry.key.example_weighted.SetInParent()
                entry.value.double_value.value = value
            writer.write(proto.SerializeToString())
    with tf.io.TFRecordWriter(str(root / "validations.tfrecord")) as writer:
        writer.write(validation_result_pb2.ValidationResult(validation_ok=True).SerializeToString())
    return make_artifact(standard_artifacts.ModelEvaluation, root)
