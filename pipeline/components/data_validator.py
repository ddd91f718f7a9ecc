"""Validation of every month before anything trains on it: against the curated schema, and
against the previous month (drift), with TFDV; the run stops naming the month and feature.

One component for the run's months (they arrive as numbered inputs, see windows.py): each
month's statistics are validated with `tfdv.validate_statistics(statistics, schema,
previous_statistics=<the month before, when the run holds it>)`. The schema's drift
comparators (Jensen-Shannon divergence for numerics, L-infinity for categoricals, and the
number of examples; see transforms/schema.py) decide what counts as drift. Schema anomalies
always stop the run; drift stops it when `drift_action` is `block`, and is recorded (the
`findings.json` file and the summary) when it is `warn`.
"""

from __future__ import annotations

import json
import os
from typing import ClassVar

from tfx import types
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from pipeline.components.windows import month_channels, month_inputs, month_keys
from pipeline.config import DriftAction
from pipeline.constants import MONTH_SPLIT
from pipeline.months import Month
from transforms.features import DELAY_THRESHOLD_MINUTES, LABEL_CLASSES, LABEL_KEY

ANOMALIES_FILE = "SchemaDiff.pb"  # as ExampleValidator names it, per split
FINDINGS_FILE = "findings.json"
DRIFT_FINDINGS_PROPERTY = "drift_findings"


class AnomaliesFound(RuntimeError):
    """A month does not match the curated schema, or its label holds one class only; the
    message names each anomaly."""


class DriftFound(RuntimeError):
    """A month drifted from the previous one beyond a threshold (drift_action=block)."""


def findings(anomalies, month: Month) -> list[dict]:
    """One dict per anomaly of one month: month, feature (or "dataset"), kind ("schema" or
    "drift", TFDV's COMPARATOR_* reasons), and TFDV's description (which states the metric,
    its value and the threshold for drift)."""
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    def kind(info) -> str:
        names = {anomalies_pb2.AnomalyInfo.Type.Name(r.type) for r in info.reason}
        return "drift" if names and all(n.startswith("COMPARATOR_") for n in names) else "schema"

    def description(info) -> str:
        # TFDV runs the reasons' descriptions together without a separator.
        return "; ".join(r.description for r in info.reason) or info.description

    result = [
        dict(month=str(month), feature=feature, kind=kind(info), description=description(info))
        for feature, info in sorted(anomalies.anomaly_info.items())
    ]
    if anomalies.HasField("dataset_anomaly_info"):
        info = anomalies.dataset_anomaly_info
        result.append(
            dict(
                month=str(month), feature="dataset", kind=kind(info), description=description(info)
            )
        )
    return result


def label_findings(statistics, month: Month) -> list[dict]:
    """A "label" finding when the month's label holds one class only (`statistics`: the
    month's DatasetFeatureStatisticsList). The schema cannot say it (a bool domain allows
    either value alone), yet such a month is a broken drop, not news: 15% to 36% of 2013's
    flights were delayed or cancelled in each month. Training on it teaches the model nothing true;
    evaluated on it, no AUC exists, so no candidate could be judged."""
    for dataset in statistics.datasets:
        for feature in dataset.features:
            if list(feature.path.step) != [LABEL_KEY] or not feature.HasField("num_stats"):
                continue
            low, high = feature.num_stats.min, feature.num_stats.max
            if dataset.num_examples and low == high and low in (0, 1):
                only, never = LABEL_CLASSES[int(low)], LABEL_CLASSES[1 - int(low)]
                return [
                    dict(
                        month=str(month),
                        feature=LABEL_KEY,
                        kind="label",
                        description=(
                            f"the label holds one class only: all {dataset.num_examples:,} "
                            f"flights are '{only}', none '{never}' (the label comes from "
                            f"flights.csv's arr_delay: >= {DELAY_THRESHOLD_MINUTES} minutes "
                            "or missing for a cancelled flight)"
                        ),
                    )
                ]
    return []


def describe(finding: dict) -> str:
    feature = finding["feature"]
    what = "the dataset" if feature == "dataset" else f"feature '{feature}'"
    return f"month {finding['month']}, {what}: {finding['description']}"


class DataValidatorSpec(ComponentSpec):
    PARAMETERS: ClassVar[dict] = {
        "months": ExecutionParameter(type=str),  # JSON ["YYYY-MM", ...], one per month_<i>
        "drift_action": ExecutionParameter(type=str),
    }
    INPUTS: ClassVar[dict] = {
        "schema": ChannelParameter(type=standard_artifacts.Schema),
        **month_inputs(standard_artifacts.ExampleStatistics),
    }
    OUTPUTS: ClassVar[dict] = {
        "anomalies": ChannelParameter(type=standard_artifacts.ExampleAnomalies)
    }


class DataValidatorExecutor(base_executor.BaseExecutor):
    def Do(self, input_dict, output_dict, exec_properties) -> None:
        import tensorflow_data_validation as tfdv
        from tfx.components.statistics_gen import stats_artifact_utils
        from tfx.utils import io_utils

        months = [Month.parse(m) for m in json.loads(exec_properties["months"])]
        action = DriftAction(exec_properties["drift_action"])
        schema = io_utils.SchemaReader().read(
            io_utils.get_only_uri_in_dir(artifact_utils.get_single_uri(input_dict["schema"]))
        )
        statistics = {
            month: stats_artifact_utils.load_statistics(
                artifact_utils.get_single_instance(input_dict[key]), MONTH_SPLIT
            ).proto()
            for month, key in zip(months, month_keys(len(months)), strict=True)
        }
        output = artifact_utils.get_single_instance(output_dict["anomalies"])
        output.split_names = artifact_utils.encode_split_names([str(m) for m in months])
        found = []
        for month in sorted(months):
            anomalies = tfdv.validate_statistics(
                statistics[month], schema, previous_statistics=statistics.get(month.shift(-1))
            )
            path = os.path.join(output.uri, f"Split-{month}", ANOMALIES_FILE)
            io_utils.write_bytes_file(path, anomalies.SerializeToString())
            found += findings(anomalies, month) + label_findings(statistics[month], month)
        io_utils.write_string_file(
            os.path.join(output.uri, FINDINGS_FILE), json.dumps(found, indent=2)
        )
        drift = [f for f in found if f["kind"] == "drift"]
        output.set_int_custom_property(DRIFT_FINDINGS_PROPERTY, len(drift))
        problems = [describe(f) for f in found if f["kind"] != "drift"]
        if problems:
            raise AnomaliesFound(
                "the examples do not match the curated schema "
                "(transforms/schema/schema.pbtxt) or hold one label class only:\n  "
                + "\n  ".join(problems)
            )
        if drift and action is DriftAction.BLOCK:
            raise DriftFound(
                "a month drifted from the month before beyond the schema's thresholds "
                "(drift_action=block; set it to warn to go on):\n  "
                + "\n  ".join(describe(f) for f in drift)
            )


class DataValidator(base_component.BaseComponent):
    """Validates each month's statistics against the schema and the previous month."""

    SPEC_CLASS = DataValidatorSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(DataValidatorExecutor)

    def __init__(
        self,
        schema: types.BaseChannel,
        statistics: dict[Month, types.BaseChannel],
        drift_action: DriftAction,
    ):
        months = sorted(statistics)
        super().__init__(
            spec=DataValidatorSpec(
                months=json.dumps([str(m) for m in months]),
                drift_action=drift_action.value,
                schema=schema,
                anomalies=types.Channel(type=standard_artifacts.ExampleAnomalies),
                **month_channels([statistics[m] for m in months]),
            )
        )


def read_findings(anomalies_uri: str) -> list[dict]:
    """The findings a DataValidator recorded ([] when it wrote none)."""
    import tensorflow as tf

    path = os.path.join(anomalies_uri, FINDINGS_FILE)
    if not tf.io.gfile.exists(path):
        return []
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)
