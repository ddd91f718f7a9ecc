"""TFLite variants of a blessed model, converted and gated before the Pusher publishes them
with the serving version."""

# No `from __future__ import annotations` here: TFX parses the component signature at runtime.

import json

import tensorflow_transform as tft
from tfx import v1 as tfx
from tfx.types import artifact
from tfx.utils import path_utils

from mobile import gates, publish
from mobile.config import MobileConfig
from pipeline.components.examples import read_examples
from pipeline.constants import EVAL_SPLIT, TRAIN_SPLIT


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
    infra_blessing: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.InfraBlessing],
    mobile_models: tfx.dsl.components.OutputArtifact[MobileModels],
    data_span: tfx.dsl.components.Parameter[str],
    config_json: tfx.dsl.components.Parameter[str],
) -> None:
    """TFLite variants of a model blessed by the Evaluator and the InfraValidator, converted
    and gated for the Pusher, which publishes those that passed with the serving version (both
    or neither); nothing is published here.

    `examples` (split `eval`) measures each variant; `representative_examples` (split `train`,
    the training window) is the representative dataset of the quantized variants. Every variant
    is converted and measured into `mobile_models` (kept for audit, linked to the model in ML
    Metadata) with metrics.json and contract.json (mobile.publish.write); its `reason` says why
    nothing will be published, if so. A model missing either blessing gets nothing converted.

    Raises what reading the examples or converting the model raises (e.g. examples that do
    not parse): the run stops before the Pusher, so no serving version is published without
    its variants. A variant that fails to convert or to run is only rejected (mobile.gates).
    """
    config = MobileConfig(**json.loads(config_json))
    if model_blessing.get_int_custom_property("blessed") != 1:
        mobile_models.set_string_custom_property("reason", "the model was not blessed")
        return
    if infra_blessing.get_int_custom_property("blessed") != 1:
        mobile_models.set_string_custom_property("reason", "the model failed infra validation")
        return
    model_dir = path_utils.serving_model_path(model.uri, path_utils.is_old_model_artifact(model))
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
    contract = publish.contract(tft.TFTransformOutput(transform_graph.uri), data_span)
    publish.write(mobile_models.uri, results, baseline, contract)
    passed = any(r.published for r in results)
    mobile_models.set_string_custom_property(
        "reason", "" if passed else "no variant passed its gate"
    )
