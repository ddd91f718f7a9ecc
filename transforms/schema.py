"""The curated schema: derived from the feature registry, shipped as package data.

ImportSchemaGen and the Kubeflow image read the file `schema/schema.pbtxt`; the registry
(transforms/features.py) is its source. After changing the registry, regenerate the file with
`.venv/bin/python -m transforms.schema` and review the diff; a test fails while the two
disagree.

What the registry states becomes TFDV schema terms (tensorflow_metadata schema.proto):
dtype -> type (BYTES/INT/FLOAT); required -> presence min_fraction 1 and shape [1]; optional ->
presence min_count 0, min_fraction MIN_PRESENCE, and value_count [1, 1]; plausible range ->
int_domain/float_domain; closed `domain` -> a string_domain ExampleValidator enforces;
`max_values` -> unique_constraints.max (more distinct values in a month:
FEATURE_TYPE_HIGH_UNIQUE); DRIFT_THRESHOLDS -> drift_comparator (month to month),
SKEW_THRESHOLDS -> skew_comparator (served rows vs training, checked by serving/monitor.py):
L-infinity for categoricals, Jensen-Shannon divergence for numerics; the label is a bool,
absent in the SERVING environment (default_environment TRAINING and SERVING, the label
not_in_environment SERVING).
"""

from __future__ import annotations

import pathlib
import sys

from transforms import features as F

SCHEMA_DIR = pathlib.Path(__file__).parent / "schema"
SCHEMA_FILE = SCHEMA_DIR / "schema.pbtxt"
TRAINING, SERVING = "TRAINING", "SERVING"
_HEADER = (
    "# Generated from transforms/features.py by `python -m transforms.schema`; "
    "do not edit by hand.\n"
)


EXAMPLE_COUNT_RATIO = (0.8, 1.25)
"""Allowed ratio of a month's examples to the previous month's: 2013's run from 0.924
(Jan -> Feb) to 1.156 (Feb -> Mar); a month with a third of its flights (0.34) is stopped.
(Within a sampled run every month has `rows_per_month` rows: the ratio is then 1.)"""


def build():
    """The schema the registry states, as a tensorflow_metadata Schema proto."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    types = {str: schema_pb2.BYTES, int: schema_pb2.INT, float: schema_pb2.FLOAT}
    schema = schema_pb2.Schema(default_environment=[TRAINING, SERVING])
    for f in F.FEATURES:
        entry = schema.feature.add(name=f.name, type=types[f.dtype])
        if f.optional:
            entry.presence.min_count = 0
            if f.name in F.MIN_PRESENCE:
                entry.presence.min_fraction = F.MIN_PRESENCE[f.name]
            entry.value_count.min = entry.value_count.max = 1
        else:
            entry.presence.min_fraction, entry.presence.min_count = 1.0, 1
            entry.shape.dim.add(size=1)
        if f.domain:
            entry.domain = f.name
            schema.string_domain.add(name=f.name, value=f.domain)
        if f.max_values is not None:  # TFDV: FEATURE_TYPE_HIGH_UNIQUE above it
            entry.unique_constraints.max = f.max_values
        if f.dtype is float:  # NaN and infinities never reach training (absent = missing)
            entry.float_domain.disallow_nan = entry.float_domain.disallow_inf = True
        if f.min_value is not None or f.max_value is not None:
            domain = entry.int_domain if f.dtype is int else entry.float_domain
            if f.min_value is not None:
                domain.min = f.min_value
            if f.max_value is not None:
                domain.max = f.max_value
    for entry in schema.feature:
        for thresholds, comparator in (
            (F.DRIFT_THRESHOLDS, entry.drift_comparator),
            (F.SKEW_THRESHOLDS, entry.skew_comparator),
        ):
            if (threshold := thresholds.get(entry.name)) is None:
                continue
            if F.BY_NAME[entry.name].kind is F.Kind.CATEGORICAL:
                comparator.infinity_norm.threshold = threshold
            else:
                comparator.jensen_shannon_divergence.threshold = threshold
    count = schema.dataset_constraints.num_examples_drift_comparator
    count.min_fraction_threshold, count.max_fraction_threshold = EXAMPLE_COUNT_RATIO
    label = schema.feature.add(name=F.LABEL_KEY, type=schema_pb2.INT, not_in_environment=[SERVING])
    label.bool_domain.SetInParent()
    label.presence.min_fraction, label.presence.min_count = 1.0, 1
    label.shape.dim.add(size=1)
    return schema


def load():
    """The schema file as a tensorflow_metadata Schema proto."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    return text_format.Parse(SCHEMA_FILE.read_text(), schema_pb2.Schema())


def write(path: pathlib.Path = SCHEMA_FILE) -> None:
    """Writes build() as text proto to `path`."""
    from google.protobuf import text_format

    path.write_text(_HEADER + text_format.MessageToString(build()))


if __name__ == "__main__":
    write(pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else SCHEMA_FILE)
    print(f"wrote {sys.argv[1] if len(sys.argv) > 1 else SCHEMA_FILE}")
