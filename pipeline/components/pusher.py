"""TFX's Pusher with an atomic push that also ships the warmup requests."""

import os

from tfx import v1 as tfx
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import executor_spec
from tfx.types import artifact_utils
from tfx.utils import proto_utils

from serving import push, warmup


class AtomicPushExecutor(pusher_executor.Executor):
    """TFX's Pusher executor with an atomic copy that also ships the warmup requests, and that
    never publishes a model twice.

    TFX copies files straight into the integer version directory, which a polling TF Serving
    may pick up half-written; `serving.push` renames a complete staging directory instead.
    A model that a version already holds (same SavedModel fingerprint) is recorded as pushed
    to that version (`already_pushed` = 1) and nothing is written: on Vertex, TFX's
    LatestBlessedModelStrategy hands an unchanged re-run its own model as the baseline, the
    Evaluator re-blesses it, and TFX's Pusher would publish a duplicate version.
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
        model_dir, base = self.GetModelPath(input_dict), destination.filesystem.base_directory
        version = push.version_holding(model_dir, base)
        pushed_model.set_int_custom_property("already_pushed", int(version is not None))
        if version is None:
            version, target = push.push(
                model_dir, base, os.path.join(infra_blessing.uri, warmup.WARMUP_FILE)
            )
        else:
            target = os.path.join(base, str(version))
        self._MarkPushed(pushed_model, pushed_destination=target, pushed_version=str(version))


class AtomicPusher(tfx.components.Pusher):
    """Pusher that requires both blessings and pushes atomically (see AtomicPushExecutor)."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(AtomicPushExecutor)

    def __init__(self, model, model_blessing, infra_blessing, base_directory: str):
        super().__init__(
            model=model,
            model_blessing=model_blessing,
            infra_blessing=infra_blessing,
            push_destination=tfx.proto.PushDestination(
                filesystem=tfx.proto.PushDestination.Filesystem(base_directory=base_directory)
            ),
        )
