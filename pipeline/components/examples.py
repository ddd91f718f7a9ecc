"""Reading a sample of an Examples artifact's split, for components that need real rows."""

from __future__ import annotations

import os

import tensorflow as tf
from tfx.types import artifact_utils

_SHUFFLE_BUFFER = 400_000  # more than a year of flights
_READ_BATCH = 8192  # records per tensor: one Python step per record cost ~85 us each


def read_examples(examples, split: str, count: int, shuffle: bool = False) -> list[bytes]:
    """`count` serialized tf.Examples of one split of an Examples artifact: the first ones,
    or (shuffle) a reproducible sample from across the split.

    Raises FileNotFoundError naming the pattern when the split has no files.
    """
    pattern = os.path.join(artifact_utils.get_split_uri([examples], split), "*")
    files = sorted(tf.io.gfile.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no example files match {pattern}")
    compression = "GZIP" if files[0].endswith(".gz") else ""
    dataset = tf.data.TFRecordDataset(files, compression_type=compression)
    if shuffle:  # spans are written in month order; a buffer this size mixes the months
        dataset = dataset.shuffle(_SHUFFLE_BUFFER, seed=0, reshuffle_each_iteration=False)
    records: list[bytes] = []
    for batch in dataset.take(count).batch(_READ_BATCH):
        records.extend(batch.numpy().tolist())
    return records
