"""TFX user functions: `tuner_fn` for Tuner and `run_fn` for Trainer.

Both read `custom_config` (see `TrainingConfig`), so the pipeline's typed config reaches them
and a changed setting invalidates the component's cache.
"""

from __future__ import annotations

import dataclasses

import keras_tuner
import tensorflow as tf
import tensorflow_transform as tft
from absl import logging
from tf_keras import callbacks as keras_callbacks
from tf_keras import utils as keras_utils
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from models import export
from models.model import AUC_METRIC, build_model, search_space
from transforms import features as F

OBJECTIVE = f"val_{AUC_METRIC}"


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """What Tuner and Trainer need beyond TFX's own arguments."""

    batch_size: int = 512
    max_epochs: int = 8
    early_stopping_patience: int = 2
    tuner_trials: int = 4
    tuner_epochs: int = 2
    seed: int = 0

    @classmethod
    def from_custom_config(cls, custom_config: dict | None) -> "TrainingConfig":
        return cls(**(custom_config or {}))


def _dataset(fn_args, files: list[str], tf_transform_output: tft.TFTransformOutput,
             config: TrainingConfig) -> tf.data.Dataset:
    """One pass over transformed examples as (features, label[batch, 1]) batches."""
    options = tfxio.TensorFlowDatasetOptions(batch_size=config.batch_size,
                                             label_key=F.LABEL_KEY, num_epochs=1,
                                             shuffle_seed=config.seed)
    dataset = fn_args.data_accessor.tf_dataset_factory(
        files, options, tf_transform_output.transformed_metadata.schema)
    return dataset.map(lambda x, y: (x, tf.reshape(y, [-1, 1]))).prefetch(tf.data.AUTOTUNE)


def _early_stopping(config: TrainingConfig) -> keras_callbacks.EarlyStopping:
    return keras_callbacks.EarlyStopping(monitor=OBJECTIVE, mode="max", restore_best_weights=True,
                                   patience=config.early_stopping_patience)


class _DefaultsFirstOracle(keras_tuner.oracles.RandomSearchOracle):
    """Random search whose first trial is the defaults, so tuning never misses them."""

    def populate_space(self, trial_id):
        if not self.trials:
            return {"status": keras_tuner.engine.trial.TrialStatus.RUNNING,
                    "values": self.hyperparameters.values}
        return super().populate_space(trial_id)


class _Tuner(keras_tuner.Tuner):
    """Runs each trial as a black-box objective.

    KerasTuner 1.4 checks models against Keras 3; ours is tf_keras, so the trial builds and
    fits the model itself and reports the best validation AUC.
    """

    def __init__(self, tf_transform_output: tft.TFTransformOutput, **kwargs):
        super().__init__(**kwargs)
        self._tf_transform_output = tf_transform_output

    def run_trial(self, trial, x, validation_data, epochs, callbacks=()):
        model = build_model(trial.hyperparameters, self._tf_transform_output)
        history = model.fit(x, validation_data=validation_data, epochs=epochs,
                            callbacks=list(callbacks), verbose=2)
        return {OBJECTIVE: max(history.history[OBJECTIVE])}


def tuner_fn(fn_args: tfx.components.FnArgs) -> tfx.components.TunerFnResult:
    config = TrainingConfig.from_custom_config(fn_args.custom_config)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    oracle = _DefaultsFirstOracle(
        objective=keras_tuner.Objective(OBJECTIVE, "max"), max_trials=config.tuner_trials,
        hyperparameters=search_space(), allow_new_entries=False, tune_new_entries=False,
        seed=config.seed)
    tuner = _Tuner(tf_transform_output, oracle=oracle, directory=fn_args.working_dir,
                   project_name="flight_delay_tuning", overwrite=True)
    return tfx.components.TunerFnResult(tuner=tuner, fit_kwargs={
        "x": _dataset(fn_args, fn_args.train_files, tf_transform_output, config),
        "validation_data": _dataset(fn_args, fn_args.eval_files, tf_transform_output, config),
        "epochs": config.tuner_epochs,
        "callbacks": [_early_stopping(config)],
    })


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    config = TrainingConfig.from_custom_config(fn_args.custom_config)
    keras_utils.set_random_seed(config.seed)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    hp = (keras_tuner.HyperParameters.from_config(fn_args.hyperparameters)
          if fn_args.hyperparameters else search_space())
    logging.info("Training with hyperparameters %s", hp.values)

    model = build_model(hp, tf_transform_output)
    model.fit(_dataset(fn_args, fn_args.train_files, tf_transform_output, config),
              validation_data=_dataset(fn_args, fn_args.eval_files, tf_transform_output, config),
              epochs=config.max_epochs, verbose=2,
              callbacks=[_early_stopping(config),
                         keras_callbacks.TensorBoard(log_dir=fn_args.model_run_dir,
                                               update_freq="epoch")])
    export.export(model, tf_transform_output, fn_args.serving_model_dir)
