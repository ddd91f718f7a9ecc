"""`create_pipeline(config)`: the TFX graph, identical for every orchestrator."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping

import tensorflow_model_analysis as tfma
from tfx import v1 as tfx
from tfx.extensions.google_cloud_ai_platform.tuner.executor import (
    REMOTE_TRIALS_WORKING_DIR_KEY,
    TUNING_ARGS_KEY,
)

from models.constants import EXAMPLES_SIGNATURE, OUTPUT_KEY
from pipeline import eval_metrics
from pipeline.components.baseline import LatestBlessedBaselineStrategy
from pipeline.components.data_validator import DataValidator
from pipeline.components.example_gen import MonthlyExampleGen
from pipeline.components.infra_validator import LoadAndQueryValidator
from pipeline.components.mobile_export import MobileExport
from pipeline.components.pusher import AtomicPusher
from pipeline.components.windows import ExamplesWindow
from pipeline.config import Baseline, PipelineConfig, Resources, VertexTraining
from pipeline.constants import (
    EVAL_METRICS,
    EVAL_SPLIT,
    GATED_METRIC,
    TRAIN_SPLIT,
    VALIDATION_SPLIT,
    NodeId,
    month_node,
)
from transforms import features as F
from transforms import schema

# User functions by dotted path: the installed package is imported, nothing is rebuilt per run.
PREPROCESSING_FN = "transforms.preprocessing.preprocessing_fn"
TUNER_FN = "models.training.tuner_fn"
RUN_FN = "models.training.run_fn"


def eval_config(config: PipelineConfig) -> tfma.EvalConfig:
    """Metrics overall and per carrier/origin/month; the overall AUC must clear a floor and
    must not fall behind the latest blessed model (small slices are reported, not gated).
    The ROC curve and the reliability diagram are computed as plots for the run report.
    Accuracy, calibration and the means are read off the AUC's histogram
    (pipeline/eval_metrics.py): one combiner per example instead of three."""
    plots = {
        "ConfusionMatrixPlot": {"num_thresholds": 200},  # the ROC curve
        "CalibrationPlot": {"num_buckets": 20},  # the reliability diagram
    }
    auc_threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": config.min_eval_auc}),
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER,
            absolute={"value": -config.max_auc_drop},
        ),
    )
    return tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(
                signature_name=EXAMPLES_SIGNATURE, label_key=F.LABEL_KEY, prediction_key=OUTPUT_KEY
            )
        ],
        slicing_specs=[tfma.SlicingSpec()]
        + [tfma.SlicingSpec(feature_keys=[key]) for key in F.SLICE_KEYS],
        metrics_specs=[
            tfma.MetricsSpec(
                metrics=[
                    tfma.MetricConfig(
                        class_name=name,
                        per_slice_thresholds=[
                            tfma.PerSliceMetricThreshold(
                                slicing_specs=[tfma.SlicingSpec()], threshold=auc_threshold
                            )
                        ],
                    )
                    if name == GATED_METRIC
                    else tfma.MetricConfig(
                        class_name=name,
                        module=eval_metrics.__name__ if name in eval_metrics.DERIVED else "",
                    )
                    for name in EVAL_METRICS
                ]
                + [
                    tfma.MetricConfig(class_name=name, config=json.dumps(plot_config))
                    for name, plot_config in plots.items()
                ]
            )
        ],
    )


def _vertex_config(vertex: VertexTraining, job_key: str) -> dict:
    """custom_config keys that make TFX's Vertex Tuner/Trainer run our image as a CustomJob."""
    job = {
        "project": vertex.project,
        "worker_pool_specs": [
            {
                "machine_spec": {"machine_type": vertex.machine_type},
                "replica_count": 1,
                "container_spec": {"image_uri": vertex.image},
            }
        ],
    }
    if vertex.replica_count > 1:  # chief plus workers, for MultiWorkerMirroredStrategy
        job["worker_pool_specs"].append(
            {**job["worker_pool_specs"][0], "replica_count": vertex.replica_count - 1}
        )
    return {
        tfx.extensions.google_cloud_ai_platform.ENABLE_VERTEX_KEY: True,
        tfx.extensions.google_cloud_ai_platform.VERTEX_REGION_KEY: vertex.region,
        job_key: job,
    }


def _set_resources(components, resources: Mapping[str, Resources]) -> None:
    """CPU/memory per node id, as KFP v2 / Vertex reads them (platform_config). Requests equal
    limits: Beam and TensorFlow size their thread pools to the CPUs they see."""
    from kfp.pipeline_spec import pipeline_spec_pb2

    by_id = {c.id: c for c in components}
    unknown = sorted(set(resources) - set(by_id))
    if unknown:
        raise ValueError(
            f"resources for unknown components {unknown}; components are {sorted(by_id)}"
        )
    spec = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec
    for node_id, r in resources.items():
        by_id[node_id].with_platform_config(
            spec(
                cpu_limit=r.cpu,
                memory_limit=r.memory_gib,
                cpu_request=r.cpu,
                memory_request=r.memory_gib,
            )
        )


def create_pipeline(config: PipelineConfig) -> tfx.dsl.Pipeline:
    """The pipeline's TFX graph; node ids are pipeline.constants.NodeId.

    One ExampleGen and one StatisticsGen per month of the run (ids `ExampleGen_2013_01`, ...),
    so a month ingested before is a cache hit; the DataValidator checks every month against
    the schema and the month before; the training window (older months -> `train`, the last
    -> `validation`) feeds Transform, Tuner and Trainer; the evaluation window (`eval`) feeds
    only the Evaluator, InfraValidator and MobileExport: nothing upstream of the candidate
    reads an evaluation month.
    """
    examples, statistics = {}, {}
    components = []
    for month in config.months:
        example_gen = MonthlyExampleGen(config.landing_root, month, config.rows_per_month).with_id(
            month_node(NodeId.EXAMPLE_GEN, month)
        )
        statistics_gen = tfx.components.StatisticsGen(
            examples=example_gen.outputs["examples"]
        ).with_id(month_node(NodeId.STATISTICS_GEN, month))
        examples[month] = example_gen.outputs["examples"]
        statistics[month] = statistics_gen.outputs["statistics"]
        components += [example_gen, statistics_gen]
    schema_gen = tfx.components.ImportSchemaGen(
        schema_file=config.schema_file or str(schema.SCHEMA_FILE)
    ).with_id(NodeId.SCHEMA_GEN)
    data_validator = DataValidator(
        schema=schema_gen.outputs["schema"], statistics=statistics, drift_action=config.drift_action
    ).with_id(NodeId.DATA_VALIDATOR)
    training_window = ExamplesWindow(
        [examples[m] for m in config.window_months],
        {TRAIN_SPLIT: config.train_months, VALIDATION_SPLIT: [config.validation_month]},
    ).with_id(NodeId.TRAINING_WINDOW)
    evaluation_window = ExamplesWindow(
        [examples[m] for m in config.eval_months], {EVAL_SPLIT: config.eval_months}
    ).with_id(NodeId.EVALUATION_WINDOW)

    transform = tfx.components.Transform(
        examples=training_window.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        preprocessing_fn=PREPROCESSING_FN,
        splits_config=tfx.proto.SplitsConfig(analyze=[TRAIN_SPLIT]),
        # The Tuner and Trainer apply the transform graph to the raw window themselves
        # (models/training.py _load): materializing transformed examples was half of Transform.
        materialize=False,
        disable_statistics=True,
    ).with_id(NodeId.TRANSFORM)  # StatisticsGen profiles the data
    transform.add_upstream_node(data_validator)

    training_args = dict(
        examples=training_window.outputs["examples"],
        transform_graph=transform.outputs["transform_graph"],
        train_args=tfx.proto.TrainArgs(splits=[TRAIN_SPLIT]),
        eval_args=tfx.proto.EvalArgs(splits=[VALIDATION_SPLIT]),
    )
    custom_config = dataclasses.asdict(config.training)
    components += [schema_gen, data_validator, training_window, evaluation_window, transform]
    hyperparameters = None
    vertex = config.vertex_training
    if config.tune:
        if vertex:
            tuner = tfx.extensions.google_cloud_ai_platform.Tuner(
                tuner_fn=TUNER_FN,
                **training_args,
                tune_args=tfx.proto.TuneArgs(num_parallel_trials=vertex.parallel_tuning_trials),
                custom_config={
                    **custom_config,
                    **_vertex_config(vertex, TUNING_ARGS_KEY),
                    REMOTE_TRIALS_WORKING_DIR_KEY: (
                        f"{config.pipeline_root.rstrip('/')}/tuner_trials"
                    ),
                },
            )
        else:
            tuner = tfx.components.Tuner(
                tuner_fn=TUNER_FN, custom_config=custom_config, **training_args
            )
        components.append(tuner.with_id(NodeId.TUNER))
        hyperparameters = tuner.outputs["best_hyperparameters"]
    if vertex:
        trainer = tfx.extensions.google_cloud_ai_platform.Trainer(
            run_fn=RUN_FN,
            hyperparameters=hyperparameters,
            **training_args,
            custom_config={
                **custom_config,
                **_vertex_config(vertex, tfx.extensions.google_cloud_ai_platform.TRAINING_ARGS_KEY),
            },
        )
    else:
        trainer = tfx.components.Trainer(
            run_fn=RUN_FN,
            hyperparameters=hyperparameters,
            custom_config=custom_config,
            **training_args,
        )
    trainer = trainer.with_id(NodeId.TRAINER)

    models = dict(
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    )
    if config.baseline is Baseline.LATEST_BLESSED:
        baseline_resolver = tfx.dsl.Resolver(
            strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy, **models
        )
    else:
        baseline_resolver = tfx.dsl.Resolver(
            strategy_class=LatestBlessedBaselineStrategy,
            candidate=trainer.outputs["model"],
            **models,
        )
    baseline_resolver = baseline_resolver.with_id(NodeId.BASELINE_RESOLVER)
    evaluator = tfx.components.Evaluator(
        examples=evaluation_window.outputs["examples"],
        example_splits=[EVAL_SPLIT],
        model=trainer.outputs["model"],
        baseline_model=baseline_resolver.outputs["model"],
        eval_config=eval_config(config),
    ).with_id(NodeId.EVALUATOR)
    infra_validator = LoadAndQueryValidator(
        model=trainer.outputs["model"], examples=evaluation_window.outputs["examples"]
    ).with_id(NodeId.INFRA_VALIDATOR)
    components += [trainer, baseline_resolver, evaluator, infra_validator]
    mobile_models = None
    if config.mobile_model_dir:
        mobile_export = MobileExport(
            model=trainer.outputs["model"],
            transform_graph=transform.outputs["transform_graph"],
            examples=evaluation_window.outputs["examples"],
            representative_examples=training_window.outputs["examples"],
            model_blessing=evaluator.outputs["blessing"],
            infra_blessing=infra_validator.outputs["blessing"],
            data_span=config.data_span,
            config_json=json.dumps(dataclasses.asdict(config.mobile)),
        ).with_id(NodeId.MOBILE_EXPORT)
        components.append(mobile_export)
        mobile_models = mobile_export.outputs["mobile_models"]
    # The variants are converted and gated before the push: the Pusher publishes the serving
    # version and the variants together, or neither.
    components.append(
        AtomicPusher(
            model=trainer.outputs["model"],
            model_blessing=evaluator.outputs["blessing"],
            infra_blessing=infra_validator.outputs["blessing"],
            base_directory=config.serving_model_dir,
            mobile_models=mobile_models,
            mobile_model_dir=config.mobile_model_dir or None,
            # The model card's inputs (pipeline/model_card.py).
            evaluation=evaluator.outputs["evaluation"],
            hyperparameters=hyperparameters,
            training_examples=training_window.outputs["examples"],
            evaluation_examples=evaluation_window.outputs["examples"],
        ).with_id(NodeId.PUSHER)
    )
    if config.resources:
        _set_resources(components, config.resources)

    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=config.pipeline_root,
        components=components,
        enable_cache=config.enable_cache,
        metadata_connection_config=(
            tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_path)
            if config.metadata_path
            else None
        ),
        beam_pipeline_args=list(config.beam_pipeline_args),
    )
