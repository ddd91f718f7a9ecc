"""DataValidator on real TFDV statistics of full 2013 months: real consecutive months pass;
drift (temp in Celsius, a third of the flights) stops the run or is recorded; a schema anomaly
always stops it. Every message names the month and the feature."""

from __future__ import annotations

import json
import os
import shutil

import pandas as pd
import pytest
from tfx import types
from tfx.types import artifact_utils, standard_artifacts

from artifacts import make_artifact
from pipeline import data
from pipeline.components.data_validator import (
    ANOMALIES_FILE,
    DRIFT_FINDINGS_PROPERTY,
    FINDINGS_FILE,
    AnomaliesFound,
    DataValidator,
    DataValidatorExecutor,
    DriftFound,
    read_findings,
)
from pipeline.config import DriftAction
from pipeline.months import Month
from transforms import schema

pytestmark = pytest.mark.component

JAN, FEB, MAR = Month(2013, 1), Month(2013, 2), Month(2013, 3)


def _statistics(rows: pd.DataFrame):
    """TFDV statistics of the rows' tf.Examples, with StatisticsGen's default options."""
    import tensorflow_data_validation as tfdv
    from tensorflow_data_validation.statistics import stats_impl
    from tfx_bsl.coders import example_coder

    batch = example_coder.ExamplesToRecordBatchDecoder().DecodeBatch(data.encode_examples(rows))
    return stats_impl.generate_statistics_in_memory(batch, tfdv.StatsOptions())


@pytest.fixture(scope="module")
def months() -> dict[str, pd.DataFrame]:
    """Full January-March 2013 as ingestion builds them, and altered copies."""
    tables = data.load_tables(data.package_data_dir())
    first = data.Tables(
        tables.flights[tables.flights["month"] <= 3],
        tables.weather[tables.weather["month"] <= 3],
        tables.planes,
    )
    rows = data.build_examples(first)
    jan, feb, mar = (rows[rows["month"] == m].reset_index(drop=True) for m in (1, 2, 3))
    celsius = feb.assign(temp=(feb["temp"] - 32) * 5 / 9)
    unknown_carrier = feb.copy()
    unknown_carrier.loc[:9, "carrier"] = "ZZ"
    # A February drop delivered with March's weather.csv: no flight finds its hour's weather.
    feb_weather_of_march = data.build_examples(
        data.Tables(
            first.flights[first.flights["month"] == 2],
            first.weather[first.weather["month"] == 3],
            first.planes,
        )
    )
    # A February weather.csv that stops on the 14th: half the month finds no weather.
    feb_weather = first.weather[first.weather["month"] == 2]
    feb_half_weather = data.build_examples(
        data.Tables(
            first.flights[first.flights["month"] == 2],
            feb_weather[feb_weather["day"] <= 14],
            first.planes,
        )
    )
    return {
        "jan": jan,
        "feb": feb,
        "feb_weather_of_march": feb_weather_of_march,
        "feb_half_weather": feb_half_weather,
        "mar": mar,
        "feb_celsius": celsius,
        "feb_unknown_carrier": unknown_carrier,
        "mar_third": mar.sample(frac=1 / 3, random_state=0).sort_index(),
    }


@pytest.fixture(scope="module")
def statistics(months):
    return {name: _statistics(rows) for name, rows in months.items()}


@pytest.fixture()
def schema_artifact(tmp_path):
    """The curated schema as ImportSchemaGen leaves it: one file in the artifact's folder."""
    folder = tmp_path / "schema"
    folder.mkdir()
    shutil.copy(schema.SCHEMA_FILE, folder / "schema.pbtxt")
    return make_artifact(standard_artifacts.Schema, folder)


def _statistics_artifact(root, statistics):
    """ExampleStatistics as StatisticsGen writes them: Split-month/FeatureStats.pb."""
    split = root / "Split-month"
    split.mkdir(parents=True)
    (split / "FeatureStats.pb").write_bytes(statistics.SerializeToString())
    artifact = make_artifact(standard_artifacts.ExampleStatistics, root)
    artifact.split_names = artifact_utils.encode_split_names(["month"])
    return artifact


def _validate(tmp_path, schema_artifact, by_month: dict, action=DriftAction.BLOCK):
    """Runs the executor as the component wires it; returns the anomalies artifact."""
    component = DataValidator(
        schema=types.Channel(type=standard_artifacts.Schema),
        statistics={m: types.Channel(type=standard_artifacts.ExampleStatistics) for m in by_month},
        drift_action=action,
    )
    inputs = {"schema": [schema_artifact]}
    for i, month in enumerate(sorted(by_month)):
        artifact = _statistics_artifact(tmp_path / "statistics" / str(month), by_month[month])
        inputs[f"month_{i}"] = [artifact]
    anomalies = make_artifact(standard_artifacts.ExampleAnomalies, tmp_path / "anomalies")
    DataValidatorExecutor().Do(inputs, {"anomalies": [anomalies]}, component.exec_properties)
    return anomalies


def _anomalies(artifact, month: Month):
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    path = os.path.join(artifact.uri, f"Split-{month}", ANOMALIES_FILE)
    with open(path, "rb") as f:
        return anomalies_pb2.Anomalies.FromString(f.read())


def test_real_consecutive_months_pass(tmp_path, schema_artifact, statistics):
    by_month = {JAN: statistics["jan"], FEB: statistics["feb"], MAR: statistics["mar"]}
    anomalies = _validate(tmp_path, schema_artifact, by_month)

    assert read_findings(anomalies.uri) == []
    assert anomalies.get_int_custom_property(DRIFT_FINDINGS_PROPERTY) == 0
    names = ["2013-01", "2013-02", "2013-03"]
    assert artifact_utils.decode_split_names(anomalies.split_names) == names
    for month in (JAN, FEB, MAR):
        result = _anomalies(anomalies, month)
        assert not result.anomaly_info and not result.HasField("dataset_anomaly_info")
    # Each month after the first was compared with the month before it.
    assert not _anomalies(anomalies, JAN).drift_skew_info
    compared = {i.path.step[0] for i in _anomalies(anomalies, MAR).drift_skew_info}
    assert {"temp", "carrier", "distance"} <= compared


def test_temperature_in_celsius_is_drift_that_stops_the_run(tmp_path, schema_artifact, statistics):
    by_month = {JAN: statistics["jan"], FEB: statistics["feb_celsius"]}
    with pytest.raises(DriftFound) as caught:
        _validate(tmp_path, schema_artifact, by_month)
    message = str(caught.value)
    assert "drift_action=block" in message
    assert "month 2013-02, feature 'temp': The approximate Jensen-Shannon divergence" in message
    assert "above the threshold 0.6." in message
    value = float(message.split("current and previous is ")[1].split(" ")[0])
    assert 0.9 < value <= 1.0
    assert message.count("month 2013-") == 1  # nothing else drifted
    # The findings are recorded before the run stops.
    assert [
        (f["month"], f["feature"], f["kind"]) for f in read_findings(tmp_path / "anomalies")
    ] == [("2013-02", "temp", "drift")]


def test_with_warn_drift_is_recorded_and_the_run_goes_on(tmp_path, schema_artifact, statistics):
    by_month = {JAN: statistics["jan"], FEB: statistics["feb_celsius"]}
    anomalies = _validate(tmp_path, schema_artifact, by_month, DriftAction.WARN)

    found = json.loads((tmp_path / "anomalies" / FINDINGS_FILE).read_text())
    assert len(found) == 1
    assert found[0]["month"] == "2013-02"
    assert found[0]["feature"] == "temp"
    assert found[0]["kind"] == "drift"
    assert "Jensen-Shannon divergence" in found[0]["description"]
    assert anomalies.get_int_custom_property(DRIFT_FINDINGS_PROPERTY) >= 1
    assert "temp" in _anomalies(anomalies, FEB).anomaly_info
    assert not _anomalies(anomalies, JAN).anomaly_info


def test_a_schema_anomaly_stops_the_run_even_with_warn(tmp_path, schema_artifact, statistics):
    by_month = {JAN: statistics["jan"], FEB: statistics["feb_unknown_carrier"]}
    with pytest.raises(AnomaliesFound) as caught:
        _validate(tmp_path, schema_artifact, by_month, DriftAction.WARN)
    message = str(caught.value)
    assert "transforms/schema/schema.pbtxt" in message
    assert (
        "month 2013-02, feature 'carrier': Examples contain values missing from the schema: ZZ"
        in message
    )
    found = read_findings(tmp_path / "anomalies")
    assert [(f["feature"], f["kind"]) for f in found] == [("carrier", "schema")]


def test_a_month_without_weather_stops_the_run_naming_the_features(
    tmp_path, schema_artifact, statistics
):
    """Every weather feature falls below its presence floor (features.MIN_PRESENCE); plane
    features, which come from planes.csv, do not."""
    by_month = {JAN: statistics["jan"], FEB: statistics["feb_weather_of_march"]}
    with pytest.raises(AnomaliesFound) as caught:
        _validate(tmp_path, schema_artifact, by_month, DriftAction.WARN)
    message = str(caught.value)
    assert "month 2013-02, feature 'temp': The feature was not present in any examples." in (
        message
    )
    found = read_findings(tmp_path / "anomalies")
    assert {f["feature"] for f in found if f["kind"] == "schema"} == {
        "temp",
        "dewp",
        "humid",
        "wind_dir",
        "wind_speed",
        "precip",
        "visib",
        "pressure",
        "precip_4h",
        "precip_12h",
        "visib_min_4h",
        "wind_speed_max_4h",
    }


def test_a_month_with_half_its_weather_stops_the_run(tmp_path, schema_artifact, statistics):
    by_month = {JAN: statistics["jan"], FEB: statistics["feb_half_weather"]}
    with pytest.raises(AnomaliesFound) as caught:
        _validate(tmp_path, schema_artifact, by_month, DriftAction.WARN)
    line = next(
        line for line in str(caught.value).splitlines() if "month 2013-02, feature 'temp'" in line
    )
    assert "minimum fraction = 0.8" in line
    actual = float(line.split("actual = ")[1].split()[0])
    assert 0.45 < actual < 0.55  # 14 of February's 28 days


def test_a_feature_with_two_anomalies_lists_them_apart(tmp_path, schema_artifact, months):
    """Half the weather, and in Celsius: temp is both too rarely present and drifted. TFDV's
    own description runs the two texts together without a separator."""
    rows = months["feb_half_weather"]
    by_month = {JAN: _statistics(months["jan"])}
    by_month[FEB] = _statistics(rows.assign(temp=(rows["temp"] - 32) * 5 / 9))
    with pytest.raises(AnomaliesFound):
        _validate(tmp_path, schema_artifact, by_month, DriftAction.WARN)
    (temp,) = [f for f in read_findings(tmp_path / "anomalies") if f["feature"] == "temp"]
    presence, drift = temp["description"].split("; ")
    assert presence.startswith("The feature was present in fewer examples than expected")
    assert drift.startswith("The approximate Jensen-Shannon divergence between current and")


def test_a_month_with_a_third_of_the_flights_is_flagged_on_the_example_count(
    tmp_path, schema_artifact, statistics
):
    by_month = {FEB: statistics["feb"], MAR: statistics["mar_third"]}
    with pytest.raises(DriftFound) as caught:
        _validate(tmp_path, schema_artifact, by_month)
    message = str(caught.value)
    assert "month 2013-03, the dataset: The ratio of num examples" in message
    assert "below the threshold 0.8" in message
    found = read_findings(tmp_path / "anomalies")
    assert [(f["month"], f["feature"], f["kind"]) for f in found] == [
        ("2013-03", "dataset", "drift")
    ]


def test_a_month_is_compared_only_with_the_calendar_month_before(
    tmp_path, schema_artifact, statistics
):
    """Without February in the run, March's third is not compared (with January) at all."""
    by_month = {JAN: statistics["jan"], MAR: statistics["mar_third"]}
    anomalies = _validate(tmp_path, schema_artifact, by_month)
    assert read_findings(anomalies.uri) == []
    assert not _anomalies(anomalies, MAR).drift_skew_info


def test_findings_of_a_validator_that_wrote_none_are_empty(tmp_path):
    assert read_findings(str(tmp_path)) == []


def _with_value(rows: pd.DataFrame, feature: str, value: float, count: int = 3):
    """Statistics of tf.Examples whose `feature` holds `value` in `count` rows, written
    straight into the examples (ingestion from CSV turns NaN into 'absent')."""
    import tensorflow as tf
    import tensorflow_data_validation as tfdv
    from tensorflow_data_validation.statistics import stats_impl
    from tfx_bsl.coders import example_coder

    records = []
    for i, record in enumerate(data.encode_examples(rows)):
        example = tf.train.Example.FromString(record)
        if i < count:
            example.features.feature[feature].float_list.value[:] = [value]
        records.append(example.SerializeToString())
    batch = example_coder.ExamplesToRecordBatchDecoder().DecodeBatch(records)
    return stats_impl.generate_statistics_in_memory(batch, tfdv.StatsOptions())


@pytest.mark.parametrize("feature", ["distance", "wind_gust"], ids=["required", "optional"])
@pytest.mark.parametrize(
    "value, named", [(float("nan"), "NaN"), (float("inf"), "Inf"), (float("-inf"), "Inf")]
)
def test_non_finite_numbers_stop_the_run_before_transform_naming_month_and_feature(
    tmp_path, schema_artifact, statistics, months, feature, value, named
):
    rows = months["feb"].dropna(subset=[feature]).head(400)
    by_month = {FEB: _with_value(rows, feature, value)}
    with pytest.raises(AnomaliesFound) as caught:
        _validate(tmp_path, schema_artifact, by_month, DriftAction.WARN)
    assert f"month 2013-02, feature '{feature}'" in str(caught.value)
    assert named in str(caught.value)


@pytest.mark.parametrize("label, only", [(1, "delayed"), (0, "on_time")])
def test_a_month_whose_label_holds_one_class_stops_the_run_naming_it(
    tmp_path, schema_artifact, months, label, only
):
    rows = months["feb"].head(500).assign(delayed=label)
    by_month = {FEB: _statistics(rows)}
    with pytest.raises(AnomaliesFound) as caught:
        _validate(tmp_path, schema_artifact, by_month, DriftAction.WARN)
    message = str(caught.value)
    assert "month 2013-02, feature 'delayed': the label holds one class only: all 500 " in message
    assert f"flights are '{only}'" in message and "arr_delay" in message
    found = read_findings(tmp_path / "anomalies")
    assert [(f["month"], f["feature"], f["kind"]) for f in found] == [
        ("2013-02", "delayed", "label")
    ]


@pytest.mark.parametrize(
    "feature, new_values, cap", [("dest", 160, 150), ("plane_manufacturer", 60, 50)]
)
def test_a_flood_of_new_categories_stops_the_run_naming_month_and_feature(
    tmp_path, schema_artifact, months, feature, new_values, cap
):
    """A month whose open categorical holds more distinct values than 2013 ever did (e.g.
    codes re-keyed upstream into one per row) is stopped, even when no single new value is
    frequent enough for the L-infinity drift comparator to see it."""
    rows = months["feb"].dropna(subset=[feature]).head(600).reset_index(drop=True)
    rows.loc[: new_values - 1, feature] = [f"NEW{i:03d}" for i in range(new_values)]
    by_month = {FEB: _statistics(rows)}
    with pytest.raises(AnomaliesFound) as caught:
        _validate(tmp_path, schema_artifact, by_month, DriftAction.WARN)
    message = str(caught.value)
    assert f"month 2013-02, feature '{feature}'" in message
    assert f"Expected no more than {cap} unique values" in message
