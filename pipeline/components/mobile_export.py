"""TFLite variants of a blessed, pushed model, published under the serving version."""

# No `from __future__ import annotations` here: TFX parses the component signature at runtime.

import json
import os

import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx
from tfx.types import artifact
from tfx.utils import path_utils

from mobile import gates, publish
from mobile.config import MobileConfig
from pipeline.components.examples import read_examples
from pipeline.constants import EVAL_SPLIT, TRAIN_SPLIT
from serving import push


class MobileModels(artifact.Artifact):
    """TFLite variants of one model with their metrics and contract (MobileExport's output)."""

    # KFP v2 wants `<module>.<Class>` with one dot, and TFX's v2 entrypoint imports it to
    # rebuild the class: pipeline/__init__.py resolves `pipeline.MobileModels` lazily.
    TYPE_NAME = "pipeline.MobileModels"


@tfx.dsl.components.component
def MobileExport(
    model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
    transform_graph: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.TransformGraph],
    examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
    representative_examples: tfx.dsl.components.InputArtifact[
        tfx.types.standard_artifacts.Examples
    ],
    model_blessing: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelBlessing],
    pushed_model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.PushedModel],
    mobile_models: tfx.dsl.components.OutputArtifact[MobileModels],
    mobile_model_dir: tfx.dsl.components.Parameter[str],
    data_span: tfx.dsl.components.Parameter[str],
    config_json: tfx.dsl.components.Parameter[str],
) -> None:
    """TFLite variants of a blessed, pushed model, published under the serving version.

    `examples` (split `eval`) measures each variant; `representative_examples` (split `train`,
    the training window) is the representative dataset of the quantized variants. Every variant
    is converted and measured into `mobile_models` (kept for audit, linked to the model in ML
    Metadata); only those that pass their gate are published. An unblessed or unpushed model
    gets nothing converted.
    """
    config = MobileConfig(**json.loads(config_json))
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
    model_dir = path_utils.serving_model_path(model.uri, path_utils.is_old_model_artifact(model))
    identity = push.fingerprint(model_dir)
    mobile_models.set_int_custom_property("version", version)
    existing = publish.published_for(mobile_model_dir, version, identity)
    if existing:  # e.g. a re-run after a crash, or a model the Pusher found already pushed
        mobile_models.set_int_custom_property("published", 1)
        mobile_models.set_string_custom_property("destination", existing)
        mobile_models.set_string_custom_property("reason", "already published for this model")
        return
    eval_examples = read_examples(examples, EVAL_SPLIT, config.eval_rows)
    representative = read_examples(
        representative_examples, TRAIN_SPLIT, config.representative_rows, shuffle=True
    )
    results, baseline = gates.build_variants(
        model_dir,
        transform_graph.uri,
        eval_examples,
        representative,
        mobile_models.uri,
        config,
    )
    contract = publish.contract(
        tft.TFTransformOutput(transform_graph.uri), version, data_span, identity
    )
    for name, doc in (
        ("metrics.json", publish.metrics(results, baseline)),
        (publish.CONTRACT_FILE, contract),
    ):
        with tf.io.gfile.GFile(os.path.join(mobile_models.uri, name), "w") as f:
            json.dump(doc, f, indent=2)
    destination = publish.publish(
        results, mobile_models.uri, mobile_model_dir, version, contract, baseline
    )
    mobile_models.set_int_custom_property("published", int(destination is not None))
    mobile_models.set_string_custom_property("destination", destination or "")
    mobile_models.set_string_custom_property(
        "reason", "" if destination else "no variant passed its gate"
    )
