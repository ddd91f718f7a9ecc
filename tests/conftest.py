"""Shared fixtures: a small real sample of the flights and a tf.Transform analysis of it."""

from __future__ import annotations

import os
import pathlib
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=DeprecationWarning)

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from pipeline import data  # noqa: E402


@pytest.fixture(scope="session")
def flight_rows() -> pd.DataFrame:
    """600 real flights of 2013 (a reproducible sample), joined and labelled."""
    examples = data.build_examples(data.load_tables(data.package_data_dir()))
    return examples.sample(600, random_state=7).reset_index(drop=True)


@pytest.fixture(scope="session")
def transform_output_dir(flight_rows, tmp_path_factory) -> pathlib.Path:
    """A transform graph analyzed by tf.Transform on Beam over `flight_rows`."""
    import apache_beam as beam
    import tensorflow_transform.beam as tft_beam
    from tfx_bsl.public import tfxio

    from transforms import preprocessing, schema

    out = tmp_path_factory.mktemp("transform")
    records = data.encode_examples(flight_rows)
    source = tfxio.TFExampleRecord(file_pattern=str(out / "unused*"), schema=schema.load())
    with tft_beam.Context(temp_dir=str(out / "tmp")):
        with beam.Pipeline() as p:
            raw = p | beam.Create(records, reshuffle=False) | source.RawRecordToRecordBatch()
            transform_fn = ((raw, source.TensorAdapterConfig())
                            | tft_beam.AnalyzeDataset(preprocessing.preprocessing_fn))
            _ = transform_fn | tft_beam.WriteTransformFn(str(out / "transform_graph"))
    return out / "transform_graph"


@pytest.fixture(scope="session")
def tf_transform_output(transform_output_dir):
    import tensorflow_transform as tft

    return tft.TFTransformOutput(str(transform_output_dir))
