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
