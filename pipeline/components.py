"""Custom pipeline pieces: a gate on ExampleValidator's anomalies, the baseline resolver,
load-and-query infra validation and an atomic Pusher."""

# No `from __future__ import annotations` here: TFX parses the component signature at runtime.

import json
import os

import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import executor_spec
from tfx.types import artifact, artifact_utils
from tfx.utils import path_utils, proto_utils

from mobile import convert
from serving import push, warmup

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


INFRA_BLESSED, INFRA_NOT_BLESSED = "INFRA_BLESSED", "INFRA_NOT_BLESSED"  # TFX's marker files
WARMUP_EXAMPLES_SPLIT = "eval"
_SHUFFLE_BUFFER = 400_000  # more than a year of flights


def _read_examples(examples, split: str, count: int, shuffle: bool = False) -> list:
    """`count` serialized tf.Examples of one split of an Examples artifact: the first ones,
    or (shuffle) a reproducible sample from across the split."""
    pattern = os.path.join(artifact_utils.get_split_uri([examples], split), "*")
    files = sorted(tf.io.gfile.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no example files match {pattern}")
    compression = "GZIP" if files[0].endswith(".gz") else ""
    dataset = tf.data.TFRecordDataset(files, compression_type=compression)
    if shuffle:  # spans are written in month order; a buffer this size mixes the months
        dataset = dataset.shuffle(_SHUFFLE_BUFFER, seed=0, reshuffle_each_iteration=False)
    return list(dataset.take(count).as_numpy_iterator())


@tfx.dsl.components.component
def InfraValidator(
    model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
    examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
    blessing: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.InfraBlessing],
    timeout_seconds: tfx.dsl.components.Parameter[int] = 600,
) -> None:
    """Load-and-query check before a push, like TFX's InfraValidator without a model server.

    Builds TF Serving warmup requests from real eval examples, then loads the candidate in a
    fresh process and replays them. The blessing carries TFX's `blessed` property, a marker
    file, the report and the warmup file the Pusher ships with the model.
    """
    model_dir = path_utils.serving_model_path(model.uri, path_utils.is_old_model_artifact(model))
    logs = warmup.build(_read_examples(examples, WARMUP_EXAMPLES_SPLIT, warmup.EXAMPLES_NEEDED))
    warmup_path = os.path.join(blessing.uri, warmup.WARMUP_FILE)
    warmup.write(warmup_path, logs)
    report = warmup.load_and_query_in_fresh_process(model_dir, warmup_path, timeout_seconds)
    with tf.io.gfile.GFile(os.path.join(blessing.uri, "report.json"), "w") as f:
        json.dump(report.__dict__, f, indent=2)
    with tf.io.gfile.GFile(os.path.join(
            blessing.uri, INFRA_BLESSED if report.ok else INFRA_NOT_BLESSED), "w") as f:
        f.write("\n".join(report.problems))
    blessing.set_int_custom_property("blessed", int(report.ok))
    blessing.set_string_custom_property("reason", "; ".join(report.problems)[:4000]
                                        if report.problems else
                                        f"{report.requests} requests answered")
    blessing.set_int_custom_property("warmup_requests", len(logs))


class AtomicPushExecutor(pusher_executor.Executor):
    """TFX's Pusher executor with an atomic copy that also ships the warmup requests.

    TFX copies files straight into the integer version directory, which a polling TF Serving
    may pick up half-written; `serving.push` renames a complete staging directory instead.
    """

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        pushed_model = artifact_utils.get_single_instance(output_dict["pushed_model"])
        if not self.CheckBlessing(input_dict):  # Evaluator's and InfraValidator's blessings
            self._MarkNotPushed(pushed_model)
            return
        destination = tfx.proto.PushDestination()
        proto_utils.json_to_proto(exec_properties["push_destination"], destination)
        infra_blessing = artifact_utils.get_single_instance(input_dict["infra_blessing"])
        version, target = push.push(self.GetModelPath(input_dict),
                                    destination.filesystem.base_directory,
                                    os.path.join(infra_blessing.uri, warmup.WARMUP_FILE))
        self._MarkPushed(pushed_model, pushed_destination=target, pushed_version=str(version))


class AtomicPusher(tfx.components.Pusher):
    """Pusher that requires both blessings and pushes atomically (see AtomicPushExecutor)."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(AtomicPushExecutor)

    def __init__(self, model, model_blessing, infra_blessing, base_directory: str):
        super().__init__(model=model, model_blessing=model_blessing,
                         infra_blessing=infra_blessing,
                         push_destination=tfx.proto.PushDestination(
                             filesystem=tfx.proto.PushDestination.Filesystem(
                                 base_directory=base_directory)))


class MobileModels(artifact.Artifact):
    """TFLite variants of one model with their metrics and contract (MobileExport's output)."""

    TYPE_NAME = "flight_delay.MobileModels"  # KFP v2 wants custom types as <namespace>.<Title>


@tfx.dsl.components.component
def MobileExport(
    model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
    transform_graph: tfx.dsl.components.InputArtifact[
        tfx.types.standard_artifacts.TransformGraph],
    examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
    model_blessing: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelBlessing],
    pushed_model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.PushedModel],
    mobile_models: tfx.dsl.components.OutputArtifact[MobileModels],
    mobile_model_dir: tfx.dsl.components.Parameter[str],
    data_span: tfx.dsl.components.Parameter[str],
    config_json: tfx.dsl.components.Parameter[str],
) -> None:
    """TFLite variants of a blessed, pushed model, published under the serving version.

    Every variant is converted and measured into `mobile_models` (kept for audit, linked to
    the model in ML Metadata); only those that pass their gate are published. An unblessed or
    unpushed model gets nothing converted.
    """
    config = convert.MobileConfig(**json.loads(config_json))
    if model_blessing.get_int_custom_property("blessed") != 1:
        reason = "the model was not blessed"
    elif pushed_model.get_int_custom_property("pushed") != 1:
        reason = "the model was not pushed for serving"
    else:
        reason = ""
    if reason:
        mobile_models.set_int_custom_property("published", 0)
        mobile_models.set_string_custom_property("reason", reason)
        return
    version = int(pushed_model.get_string_custom_property("pushed_version"))
    eval_examples = _read_examples(examples, "eval", config.eval_rows)
    representative = _read_examples(examples, "train", config.representative_rows,
                                    shuffle=True)
    results, baseline = convert.build_variants(
        path_utils.serving_model_path(model.uri, path_utils.is_old_model_artifact(model)),
        transform_graph.uri, eval_examples, representative, mobile_models.uri, config)
    contract = convert.contract(tft.TFTransformOutput(transform_graph.uri), version, data_span)
    for name, doc in (("metrics.json", convert.metrics(results, baseline)),
                      ("contract.json", contract)):
        with tf.io.gfile.GFile(os.path.join(mobile_models.uri, name), "w") as f:
            json.dump(doc, f, indent=2)
    destination = convert.publish(results, mobile_models.uri, mobile_model_dir, version,
                                  contract, baseline)
    mobile_models.set_int_custom_property("published", int(destination is not None))
    mobile_models.set_int_custom_property("version", version)
    mobile_models.set_string_custom_property("destination", destination or "")
    mobile_models.set_string_custom_property(
        "reason", "" if destination else "no variant passed its gate")
