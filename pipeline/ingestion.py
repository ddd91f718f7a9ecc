"""Ingestion of one monthly drop: read and check its tables, build that month's examples.

Plain functions (the ExampleGen executor in pipeline/components/example_gen.py is a thin
wrapper). Files are read through tf.io.gfile, so a landing zone on gs:// works as a local one.
"""

from __future__ import annotations

import io

import pandas as pd

from pipeline import data, landing
from pipeline.months import Month


def _read_table(uri: str, table: str, month: Month) -> pd.DataFrame:
    import tensorflow as tf  # deferred: heavy import

    path = f"{uri}/{landing.DROP_FILES[table]}"
    if not tf.io.gfile.exists(path):
        raise data.DataError(f"month {month}: {path}: file not found")
    text_columns = {c: str for c, kind in data.REQUIRED_COLUMNS[table].items() if kind == "text"}
    try:
        with tf.io.gfile.GFile(path, "rb") as f:  # pandas cannot read a GFile directly
            content = io.BytesIO(f.read())
        frame = pd.read_csv(content, dtype=text_columns, low_memory=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise data.DataError(f"month {month}: {path}: not a readable CSV file ({exc})") from exc
    try:
        return data.check_columns(frame, table, path)
    except data.DataError as exc:
        raise data.DataError(f"month {month}: {exc}") from None


def _check_of_month(frame: pd.DataFrame, table: str, rows: str, uri: str, month: Month) -> None:
    """DataError naming the file, how many `rows` (e.g. "flight(s)") belong to other months
    (columns year and month; "no month" where either is missing) and which."""
    other = frame[(frame["year"] != month.year) | (frame["month"] != month.month)]
    if other.empty:
        return
    found = sorted(
        {
            f"{int(y):04d}-{int(m):02d}" if pd.notna(y) and pd.notna(m) else "no month"
            for y, m in zip(other.year, other.month, strict=True)
        }
    )
    raise data.DataError(
        f"month {month}: {uri}/{landing.DROP_FILES[table]}: {len(other)} {rows} of "
        f"{', '.join(found)} (columns year, month); a drop holds the {table} of its own month "
        "only"
    )


def read_drop(landing_root: str, month: Month) -> data.Tables:
    """The month's three tables, checked; errors name the month, the file and the column.

    The previous month's weather, when its drop exists, is put in front of this month's so
    that weather windows of the first hours of the month look back across the boundary.
    Raises DataError for a missing file or column, a column of the wrong type (text or a
    fraction where whole numbers belong), flights or weather readings of another month, a
    scheduled flight listed twice (data.FLIGHT_KEY), or a flight without a value it needs
    (data.FLIGHT_VALUES_REQUIRED)."""
    import tensorflow as tf  # deferred: heavy import

    uri = landing.drop_uri(landing_root, month)
    flights = _read_table(uri, data.FLIGHTS, month)
    weather = _read_table(uri, data.WEATHER, month)
    planes = _read_table(uri, data.PLANES, month)
    if flights.empty:
        raise data.DataError(f"month {month}: {uri}/flights.csv holds no flights")
    _check_of_month(flights, data.FLIGHTS, "flight(s)", uri, month)
    # Weather of another month would match no flight: the month would train without weather.
    _check_of_month(weather, data.WEATHER, "reading(s)", uri, month)
    source = f"{uri}/{landing.DROP_FILES[data.FLIGHTS]}"
    try:
        data.check_unique_flights(flights, source)
        data.check_required_values(flights, source)
    except data.DataError as exc:
        raise data.DataError(f"month {month}: {exc}") from None
    previous = landing.drop_uri(landing_root, month.shift(-1))
    if tf.io.gfile.exists(f"{previous}/{landing.DROP_FILES[data.WEATHER]}"):
        earlier = _read_table(previous, data.WEATHER, month.shift(-1))
        weather = pd.concat([earlier, weather], ignore_index=True)
    return data.Tables(flights, weather, planes)


def month_examples(
    landing_root: str, month: Month, rows_per_month: int | None = None, seed: int = 0
) -> pd.DataFrame:
    """One row per flight of `month` (the registry's features and the label), optionally a
    reproducible sample of `rows_per_month` rows drawn after the join (so schedule
    congestion counts every flight of the month)."""
    rows = data.build_examples(read_drop(landing_root, month))
    if rows_per_month is not None and len(rows) > rows_per_month:
        rows = rows.sample(rows_per_month, random_state=seed).sort_index()
    return rows.reset_index(drop=True)
