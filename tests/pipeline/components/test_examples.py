"""Reading a sample of an Examples artifact's split: the first records in file order, or a
reproducible sample from across the split, read in batches."""

from __future__ import annotations

import pytest
import tensorflow as tf

from artifacts import examples_artifact
from pipeline.components import examples as E

pytestmark = pytest.mark.unit

RECORDS = [f"record-{i:05d}".encode() for i in range(int(E._READ_BATCH * 1.5))]


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    return examples_artifact(tmp_path_factory.mktemp("examples"), {"eval": RECORDS})


@pytest.mark.parametrize("count", [3, E._READ_BATCH, E._READ_BATCH + 7, 10 * len(RECORDS)])
def test_the_first_records_in_file_order_across_batches(artifact, count):
    assert E.read_examples(artifact, "eval", count) == RECORDS[:count]


def test_a_shuffled_sample_is_the_one_the_seeded_shuffle_gives(artifact):
    sample = E.read_examples(artifact, "eval", E._READ_BATCH + 100, shuffle=True)
    files = tf.io.gfile.glob(f"{artifact.uri}/Split-eval/*")
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP")
    dataset = dataset.shuffle(E._SHUFFLE_BUFFER, seed=0, reshuffle_each_iteration=False)
    assert sample == list(dataset.take(E._READ_BATCH + 100).as_numpy_iterator())
    assert sample != RECORDS[: len(sample)] and set(sample) <= set(RECORDS)
    assert E.read_examples(artifact, "eval", 50, shuffle=True) == sample[:50]


def test_a_split_without_files_is_named(tmp_path):
    from tfx.types import artifact_utils

    artifact = examples_artifact(tmp_path, {"eval": RECORDS[:1]})
    (tmp_path / "Split-train").mkdir()
    artifact.split_names = artifact_utils.encode_split_names(["eval", "train"])
    with pytest.raises(FileNotFoundError, match=r"no example files match .*Split-train"):
        E.read_examples(artifact, "train", 1)
