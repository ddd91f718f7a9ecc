"""TFX's Pusher, publishing a model's serving version and its TFLite variants together."""

import os
from typing import ClassVar

from tfx import types
from tfx import v1 as tfx
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import artifact_utils, standard_component_specs
from tfx.types.component_spec import ChannelParameter, ExecutionParameter
from tfx.utils import proto_utils

from mobile import publish
from pipeline.components.mobile_export import MobileModels
from serving import push, warmup

MOBILE_MODELS_KEY = "mobile_models"
MOBILE_MODEL_DIR_KEY = "mobile_model_dir"


class AtomicPusherSpec(standard_component_specs.PusherSpec):
    """TFX's PusherSpec plus MobileExport's variants and where they are published."""

    PARAMETERS: ClassVar[dict] = {
        **standard_component_specs.PusherSpec.PARAMETERS,
        MOBILE_MODEL_DIR_KEY: ExecutionParameter(type=str, optional=True),
    }
    INPUTS: ClassVar[dict] = {
        **standard_component_specs.PusherSpec.INPUTS,
        MOBILE_MODELS_KEY: ChannelParameter(type=MobileModels, optional=True),
    }


class AtomicPushExecutor(pusher_executor.Executor):
    """Publishes a model blessed by the Evaluator and the InfraValidator as one version: the
    SavedModel with its warmup requests for TF Serving (`<base_directory>/<version>/`) and,
    given `mobile_models`, the TFLite variants that passed their gate
    (`<mobile_model_dir>/<the same version>/`), with serving.push.publish.

    Both or neither: the variants are converted and gated before this runs (MobileExport), and
    the mobile folder is published first, the serving one last; if the serving one fails, the
    mobile one is removed again. A process killed between the two is completed, not rolled
    back: the re-run publishes the same model, finds the version that holds it (by the marker
    in each folder) and writes only the missing folder. Idempotent: a model that a version
    already holds is recorded as pushed to that version and nothing is rewritten
    (`already_pushed` = 1 when the serving folder held it): on Vertex, TFX's
    LatestBlessedModelStrategy hands an unchanged re-run its own model as the baseline, the
    Evaluator re-blesses it, and TFX's Pusher would publish a duplicate version.

    `pushed_model` gets TFX's `pushed`, `pushed_destination` and `pushed_version`, plus
    `already_pushed` and `mobile_destination` (empty when no variant was published).

    Raises FileExistsError when the version folder exists holding another model, and what
    reading the model or writing the destinations raises.
    """

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        pushed_model = artifact_utils.get_single_instance(output_dict["pushed_model"])
        if not self.CheckBlessing(input_dict):  # Evaluator's and InfraValidator's blessings
            self._MarkNotPushed(pushed_model)
            return
        destination = tfx.proto.PushDestination()
        proto_utils.json_to_proto(exec_properties["push_destination"], destination)
        model = artifact_utils.get_single_instance(input_dict["model"])
        infra_blessing = artifact_utils.get_single_instance(input_dict["infra_blessing"])
        model_dir = self.GetModelPath(input_dict)
        folders = [
            push.saved_model_folder(
                model_dir,
                destination.filesystem.base_directory,
                os.path.join(infra_blessing.uri, warmup.WARMUP_FILE),
            )
        ]
        if input_dict.get(MOBILE_MODELS_KEY):
            variants = publish.folder(
                artifact_utils.get_single_instance(input_dict[MOBILE_MODELS_KEY]).uri,
                exec_properties[MOBILE_MODEL_DIR_KEY],
            )
            if variants:
                folders.insert(0, variants)
        published = push.publish(folders, push.identity(model_dir, model.uri))
        pushed_model.set_int_custom_property("already_pushed", int(not published.written[-1]))
        pushed_model.set_string_custom_property(
            "mobile_destination", published.targets[0] if len(folders) > 1 else ""
        )
        self._MarkPushed(
            pushed_model,
            pushed_destination=published.targets[-1],
            pushed_version=str(published.version),
        )


class AtomicPusher(base_component.BaseComponent):
    """Pusher that requires both blessings and publishes the serving version and the mobile
    variants together (see AtomicPushExecutor)."""

    SPEC_CLASS = AtomicPusherSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(AtomicPushExecutor)

    def __init__(
        self,
        model,
        model_blessing,
        infra_blessing,
        base_directory: str,
        mobile_models=None,
        mobile_model_dir: str | None = None,
    ):
        """Raises ValueError when only one of `mobile_models` and `mobile_model_dir` is given."""
        if (mobile_models is None) != (mobile_model_dir is None):
            raise ValueError("mobile_models and mobile_model_dir go together")
        super().__init__(
            spec=AtomicPusherSpec(
                model=model,
                model_blessing=model_blessing,
                infra_blessing=infra_blessing,
                push_destination=tfx.proto.PushDestination(
                    filesystem=tfx.proto.PushDestination.Filesystem(base_directory=base_directory)
                ),
                mobile_models=mobile_models,
                mobile_model_dir=mobile_model_dir,
                pushed_model=types.Channel(type=tfx.types.standard_artifacts.PushedModel),
            )
        )
