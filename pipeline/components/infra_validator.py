"""Load-and-query infra validation: the candidate answers TF Serving warmup requests in a
fresh process before it may be pushed."""

# No `from __future__ import annotations` here: TFX parses the component signature at runtime.

import json
import os

import tensorflow as tf
from tfx import v1 as tfx
from tfx.utils import path_utils

from pipeline.components.examples import read_examples
from pipeline.constants import EVAL_SPLIT
from serving import warmup

INFRA_BLESSED, INFRA_NOT_BLESSED = "INFRA_BLESSED", "INFRA_NOT_BLESSED"  # TFX's marker files


@tfx.dsl.components.component
def LoadAndQueryValidator(
    model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
    examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
    blessing: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.InfraBlessing],
    timeout_seconds: tfx.dsl.components.Parameter[int] = 600,
) -> None:
    """Load-and-query check before a push: TFX's InfraValidator in LOAD_AND_QUERY mode,
    without a model server binary (not obtainable here; see serving/README.md).

    Builds TF Serving warmup requests from real eval examples, then loads the candidate in a
    fresh process and replays them. The blessing carries TFX's `blessed` property, a marker
    file, the report and the warmup file the Pusher ships with the model.

    Only a problem of the model (its contract, loading, an answer) makes it not blessed, with
    that cause as the reason. When the validation itself fails (the process crashed, was
    killed or timed out), serving.warmup.InfraFailure fails this step: nothing is recorded or
    cached, and the next run validates again.
    """
    model_dir = path_utils.serving_model_path(model.uri, path_utils.is_old_model_artifact(model))
    logs = warmup.build(read_examples(examples, EVAL_SPLIT, warmup.EXAMPLES_NEEDED))
    warmup_path = os.path.join(blessing.uri, warmup.WARMUP_FILE)
    warmup.write(warmup_path, logs)
    report = warmup.load_and_query_in_fresh_process(model_dir, warmup_path, timeout_seconds)
    with tf.io.gfile.GFile(os.path.join(blessing.uri, "report.json"), "w") as f:
        json.dump(report.__dict__, f, indent=2, allow_nan=False)
    with tf.io.gfile.GFile(
        os.path.join(blessing.uri, INFRA_BLESSED if report.ok else INFRA_NOT_BLESSED), "w"
    ) as f:
        f.write("\n".join(report.problems))
    blessing.set_int_custom_property("blessed", int(report.ok))
    blessing.set_string_custom_property(
        "reason",
        "; ".join(report.problems)[:4000]
        if report.problems
        else f"{report.requests} requests answered",
    )
    blessing.set_int_custom_property("warmup_requests", len(logs))
