"""A gate on ExampleValidator's anomalies: nothing downstream trains on or pushes bad data."""

# No `from __future__ import annotations` here: TFX parses the component signature at runtime.

import os

import tensorflow as tf
from tfx import v1 as tfx
from tfx.types import artifact_utils

ANOMALIES_FILE = "SchemaDiff.pb"  # what ExampleValidator writes per split


class AnomaliesFound(RuntimeError):
    """The examples do not match the curated schema; the message names each anomaly."""


def describe_anomalies(anomalies_uri: str, split_names: list[str]) -> list[str]:
    """One line per anomaly: split, feature, what TFDV found."""
    from tensorflow_data_validation.utils import anomalies_util

    lines = []
    for split in split_names:
        path = os.path.join(anomalies_uri, f"Split-{split}", ANOMALIES_FILE)
        anomalies = anomalies_util.load_anomalies_binary(path)
        for feature, info in sorted(anomalies.anomaly_info.items()):
            lines.append(
                f"split '{split}', feature '{feature}': {info.short_description}: "
                f"{info.description}"
            )
        if anomalies.HasField("dataset_anomaly_info"):
            info = anomalies.dataset_anomaly_info
            lines.append(f"split '{split}', dataset: {info.short_description}: {info.description}")
    return lines


@tfx.dsl.components.component
def AnomaliesGate(
    anomalies: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
    approved: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
) -> None:
    """Fails when any split has an anomaly, naming each one; otherwise re-publishes the
    (empty) anomalies it approved, split by split, as `approved`.

    Transform waits on `approved`; because it is an output, the gate's execution is cached
    like any other component's.
    """
    split_names = artifact_utils.decode_split_names(anomalies.split_names)
    problems = describe_anomalies(anomalies.uri, split_names)
    if problems:
        raise AnomaliesFound(
            "the examples do not match the curated schema "
            "(transforms/schema/schema.pbtxt):\n  " + "\n  ".join(problems)
        )
    approved.split_names = anomalies.split_names
    for split in split_names:
        target = os.path.join(approved.uri, f"Split-{split}")
        tf.io.gfile.makedirs(target)
        tf.io.gfile.copy(
            os.path.join(anomalies.uri, f"Split-{split}", ANOMALIES_FILE),
            os.path.join(target, ANOMALIES_FILE),
            overwrite=True,
        )
