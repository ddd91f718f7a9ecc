"""TFX's Pusher, publishing a model's serving version and its TFLite variants together, each
with the version's model card."""

import functools
import json
import os
from collections.abc import Callable
from typing import ClassVar

import tensorflow as tf
from tfx import types
from tfx import v1 as tfx
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter, ExecutionParameter
from tfx.utils import io_utils, proto_utils

from mobile import publish
from pipeline import model_card
from pipeline.components.mobile_export import MobileModels
from pipeline.components.windows import window_spans
from serving import push, warmup

MOBILE_MODELS_KEY = "mobile_models"
MOBILE_MODEL_DIR_KEY = "mobile_model_dir"
EVALUATION_KEY = "evaluation"  # the Evaluator's; given, every version gets a model card
HYPERPARAMETERS_KEY = "hyperparameters"  # the Tuner's best; absent: the search space defaults
TRAINING_EXAMPLES_KEY = "training_examples"  # the TrainingWindow's (spans per split)
EVALUATION_EXAMPLES_KEY = "evaluation_examples"  # the EvaluationWindow's


class AtomicPusherSpec(standard_component_specs.PusherSpec):
    """TFX's PusherSpec plus MobileExport's variants and where they are published, and the
    model card's inputs (see AtomicPushExecutor)."""

    PARAMETERS: ClassVar[dict] = {
        **standard_component_specs.PusherSpec.PARAMETERS,
        MOBILE_MODEL_DIR_KEY: ExecutionParameter(type=str, optional=True),
    }
    INPUTS: ClassVar[dict] = {
        **standard_component_specs.PusherSpec.INPUTS,
        MOBILE_MODELS_KEY: ChannelParameter(type=MobileModels, optional=True),
        EVALUATION_KEY: ChannelParameter(type=standard_artifacts.ModelEvaluation, optional=True),
        HYPERPARAMETERS_KEY: ChannelParameter(
            type=standard_artifacts.HyperParameters, optional=True
        ),
        TRAINING_EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples, optional=True),
        EVALUATION_EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples, optional=True),
    }


def _hyperparameters(input_dict) -> dict:
    """What the Trainer trained with: the Tuner's best values, or (without a Tuner) the search
    space's defaults, as models.training.run_fn does."""
    if input_dict.get(HYPERPARAMETERS_KEY):
        uri = artifact_utils.get_single_uri(input_dict[HYPERPARAMETERS_KEY])
        with tf.io.gfile.GFile(io_utils.get_only_uri_in_dir(uri)) as f:
            return dict(json.load(f)["values"])  # keras_tuner.HyperParameters.get_config()
    from models.model import search_space

    return dict(search_space().values)


def _card_files(input_dict, serving_base: str, mobile_base: str | None) -> Callable:
    """version -> the model card's files (pipeline.model_card.files), from the Evaluator's
    evaluation and blessing, the hyperparameters and the windows' spans and rows; read once,
    built once per version."""
    blessing = artifact_utils.get_single_instance(input_dict["model_blessing"])
    evaluation = model_card.read_evaluation(
        artifact_utils.get_single_uri(input_dict[EVALUATION_KEY]),
        blessed=blessing.get_int_custom_property("blessed") == 1,
        baseline_model=blessing.get_string_custom_property("baseline_model"),
    )
    datasets = []
    for key in (TRAINING_EXAMPLES_KEY, EVALUATION_EXAMPLES_KEY):
        if input_dict.get(key):
            window = artifact_utils.get_single_instance(input_dict[key])
            datasets += model_card.count_rows(window.uri, window_spans(window))
    hyperparameters = _hyperparameters(input_dict)

    @functools.cache
    def files(version: int) -> dict[str, bytes]:
        card = model_card.build(
            version=version,
            evaluation=evaluation,
            datasets=datasets,
            hyperparameters=hyperparameters,
            serving_dir=os.path.join(serving_base, str(version)),
            mobile_dir=os.path.join(mobile_base, str(version)) if mobile_base else None,
        )
        return model_card.files(card)

    return files


def _with_card(folder: push.Folder, directory: str, card_files: Callable) -> push.Folder:
    """`folder` with the version's model card in `directory`, written just before the folder's
    completion file (so a version holds its card or is incomplete)."""

    def content(version: int, model: dict) -> list[tuple[str, push.Source]]:
        files = folder.content(version, model)
        card = [(os.path.join(directory, n), b) for n, b in card_files(version).items()]
        return [*files[:-1], *card, files[-1]]

    return push.Folder(folder.base_dir, folder.marker, content)


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

    Given the Evaluator's `evaluation`, each folder also gets the version's model card
    (pipeline.model_card: model_card.json, .md, .html; the serving folder under
    `assets.extra/model_card/`, the mobile one beside the variants), written inside the
    publication so it appears with the version or not at all. It is filled from the inputs:
    the evaluation and the blessing (metrics per slice, champion), `hyperparameters` (the
    Tuner's; without them the search space's defaults, which the Trainer then used) and
    `training_examples` / `evaluation_examples` (the windows: months and rows per split).
    A re-run that finds the model published writes no card either.

    Raises FileExistsError when the version folder exists holding another model,
    pipeline.model_card.InvalidModelCard when the card does not follow the schema, and what
    reading the inputs or writing the destinations raises.
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
        if input_dict.get(EVALUATION_KEY):
            card_files = _card_files(
                input_dict,
                destination.filesystem.base_directory,
                folders[0].base_dir if len(folders) > 1 else None,
            )
            directories = [model_card.MOBILE_CARD_DIR] * (len(folders) - 1)
            directories.append(model_card.SERVING_CARD_DIR)
            folders = [
                _with_card(folder, directory, card_files)
                for folder, directory in zip(folders, directories, strict=True)
            ]
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
        evaluation=None,
        hyperparameters=None,
        training_examples=None,
        evaluation_examples=None,
    ):
        """`evaluation` (the Evaluator's) turns on the model card, which `hyperparameters` (the
        Tuner's best) and `training_examples` / `evaluation_examples` (the windows) fill in.

        Raises ValueError when only one of `mobile_models` and `mobile_model_dir` is given.
        """
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
                evaluation=evaluation,
                hyperparameters=hyperparameters,
                training_examples=training_examples,
                evaluation_examples=evaluation_examples,
                pushed_model=types.Channel(type=tfx.types.standard_artifacts.PushedModel),
            )
        )
