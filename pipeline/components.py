"""Custom pipeline pieces: a gate on ExampleValidator's anomalies and the baseline resolver."""

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
            lines.append(f"split '{split}', feature '{feature}': {info.short_description}: "
                         f"{info.description}")
        if anomalies.HasField("dataset_anomaly_info"):
            info = anomalies.dataset_anomaly_info
            lines.append(f"split '{split}', dataset: {info.short_description}: "
                         f"{info.description}")
    return lines


@tfx.dsl.components.component
def AnomaliesGate(
    anomalies: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
    checked: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
) -> None:
    """Fails when any split has an anomaly, so nothing downstream trains on or pushes bad data.

    `checked` re-publishes the anomalies it approved; Transform waits on it, and because it is
    an output the gate's execution can be cached like any other component's.
    """
    split_names = artifact_utils.decode_split_names(anomalies.split_names)
    problems = describe_anomalies(anomalies.uri, split_names)
    if problems:
        raise AnomaliesFound("the examples do not match the curated schema "
                             "(transforms/schema/schema.pbtxt):\n  " + "\n  ".join(problems))
    checked.split_names = anomalies.split_names
    with tf.io.gfile.GFile(os.path.join(checked.uri, "APPROVED"), "w") as f:
        f.write("\n".join(split_names))


class LatestBlessedBaselineStrategy(tfx.dsl.experimental.ResolverStrategy):
    """The newest blessed model other than the candidate being evaluated.

    TFX's LatestBlessedModelStrategy would hand an unchanged re-run its own (cached) model as
    the baseline: Evaluator's inputs change, it re-runs, and Pusher pushes the same model again
    as a new version. Excluding the candidate keeps such a re-run fully cached.
    """

    def resolve_artifacts(self, store, input_dict):
        candidate_ids = {model.id for model in input_dict["candidate"]}
        blessings = {blessing.get_int_custom_property("current_model_id"): blessing
                     for blessing in input_dict["model_blessing"]
                     if blessing.get_int_custom_property("blessed") == 1}
        result = {"model": [], "model_blessing": [], "candidate": input_dict["candidate"]}
        for model in sorted(input_dict["model"], key=lambda m: m.id, reverse=True):
            if model.id in blessings and model.id not in candidate_ids:
                result.update(model=[model], model_blessing=[blessings[model.id]])
                break
        return result
