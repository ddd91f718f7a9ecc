"""Shared fixtures: a small real sample of the flights and a tf.Transform analysis of it."""

from __future__ import annotations

import os
import pathlib

import pandas as pd
import pytest

from pipeline import data

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # read when TensorFlow is first imported


@pytest.fixture(scope="session")
def flight_rows() -> pd.DataFrame:
    """600 real flights of 2013 (a reproducible sample), joined and labelled."""
    examples = data.build_examples(data.load_tables(data.package_data_dir()))
    return examples.sample(600, random_state=7).reset_index(drop=True)


@pytest.fixture(scope="session")
def records(flight_rows) -> list[bytes]:
    """`flight_rows` as serialized raw tf.Examples (with the label), as ExampleGen stores them."""
    return data.encode_examples(flight_rows)


@pytest.fixture(scope="session")
def transform_output_dir(flight_rows, tmp_path_factory) -> pathlib.Path:
    """A transform graph analyzed by tf.Transform on Beam over `flight_rows`."""
    import apache_beam as beam
    import tensorflow_transform as tft
    import tensorflow_transform.beam as tft_beam
    from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io
    from tfx_bsl.public import tfxio

    from transforms import preprocessing, schema

    out = tmp_path_factory.mktemp("transform")
    records = data.encode_examples(flight_rows)
    source = tfxio.TFExampleRecord(file_pattern=str(out / "unused*"), schema=schema.load())
    with tft_beam.Context(temp_dir=str(out / "tmp")):
        with beam.Pipeline() as p:
            raw = p | beam.Create(records, reshuffle=False) | source.RawRecordToRecordBatch()
            transform_fn = (raw, source.TensorAdapterConfig()) | tft_beam.AnalyzeDataset(
                preprocessing.preprocessing_fn
            )
            _ = transform_fn | tft_beam.WriteTransformFn(str(out / "transform_graph"))
    # TFX's Transform also keeps the raw schema in the graph (TFTransformOutput.raw_metadata).
    metadata_io.write_metadata(
        dataset_metadata.DatasetMetadata(schema.load()),
        str(out / "transform_graph" / tft.TFTransformOutput.RAW_METADATA_DIR),
    )
    return out / "transform_graph"


@pytest.fixture(scope="session")
def tf_transform_output(transform_output_dir):
    import tensorflow_transform as tft

    return tft.TFTransformOutput(str(transform_output_dir))


@pytest.fixture(scope="session")
def trained_model(tf_transform_output, flight_rows):
    """A model fitted for two epochs on the transformed sample."""
    import tensorflow as tf
    import tf_keras

    from models.model import build_model, search_space
    from transforms import features as F

    tf_keras.utils.set_random_seed(0)
    raw = tf.io.parse_example(data.encode_examples(flight_rows), F.raw_feature_spec())
    transformed = tf_transform_output.transform_raw_features(raw)
    label = tf.reshape(transformed.pop(F.LABEL_KEY), [-1, 1])
    model = build_model(search_space(), tf_transform_output)
    model.fit(transformed, label, epochs=2, batch_size=64, verbose=0)
    return model


@pytest.fixture(scope="session")
def saved_model_dir(trained_model, tf_transform_output, tmp_path_factory) -> pathlib.Path:
    """The trained model exported as the Trainer exports it (read-only for tests)."""
    from models import export

    out = tmp_path_factory.mktemp("saved_model") / "model"
    export.export(trained_model, tf_transform_output, str(out))
    return out


_TIERS = ("unit", "component", "e2e")


def pytest_collection_modifyitems(items):
    """Every test belongs to exactly one tier (pytest.ini), so `-m unit` means what it says."""
    untiered = [
        item.nodeid
        for item in items
        if sum(item.get_closest_marker(t) is not None for t in _TIERS) != 1
    ]
    if untiered:
        raise pytest.UsageError(
            "tests without exactly one tier marker (unit, component, e2e): " + ", ".join(untiered)
        )
