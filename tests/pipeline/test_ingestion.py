"""Ingestion of one drop: checks that name the month, file and column; weather windows across
the month boundary; sampling after the join."""

from __future__ import annotations

import pandas as pd
import pytest
import raw_rows

from pipeline import data, ingestion, landing
from pipeline.months import Month
from transforms import features as F

pytestmark = pytest.mark.unit

FEB, MAR = Month(2013, 2), Month(2013, 3)


def _flight(**overrides) -> dict:
    """A flight leaving 2013-03-01 at 00:30, in the first hour of the month."""
    early = dict(day=1, dep_time=40.0, sched_dep_time=30, dep_delay=10.0, arr_time=300.0)
    return raw_rows.flight(**(early | dict(sched_arr_time=310, hour=0, minute=30) | overrides))


def _weather(**overrides) -> dict:
    return raw_rows.weather(**(dict(day=1, hour=0) | overrides))


PLANES = [raw_rows.plane()]

# The last hours of February and the first of March at EWR; the flight leaves 2013-03-01 00:30.
FEB_EVENING = [
    _weather(month=2, day=28, hour=h, precip=p, visib=v, wind_speed=w)
    for h, p, v, w in [
        (20, 1.0, 10.0, 5.0),
        (21, 0.1, 3.0, 25.0),
        (22, 0.2, 10.0, 5.0),
        (23, 0.3, 10.0, 5.0),
    ]
]
MAR_MIDNIGHT = [_weather(precip=0.05, visib=8.0, wind_speed=12.0)]


def _drop(root, month: Month, flights=(), weather=(), planes=PLANES, columns=None):
    """Writes a drop as CSV files; `columns` maps a table to its header when a table is empty."""
    folder = root / str(month)
    folder.mkdir(parents=True)
    for table, rows in ((data.FLIGHTS, flights), (data.WEATHER, weather), (data.PLANES, planes)):
        frame = pd.DataFrame(list(rows), columns=(columns or {}).get(table))
        frame.to_csv(folder / landing.DROP_FILES[table], index=False)
    return folder


def _good_march(root):
    return _drop(root, MAR, [_flight()], MAR_MIDNIGHT)


def test_windows_of_the_first_hours_look_back_into_the_previous_drop(tmp_path):
    _drop(tmp_path, FEB, [_flight(month=2, day=28, hour=20, sched_dep_time=2000)], FEB_EVENING)
    _good_march(tmp_path)

    tables = ingestion.read_drop(str(tmp_path), MAR)
    assert tables.flights["month"].tolist() == [3]  # February's flights stay in February
    assert len(tables.weather) == len(FEB_EVENING) + 1

    row = ingestion.month_examples(str(tmp_path), MAR).iloc[0]
    assert row["precip_4h"] == pytest.approx(0.1 + 0.2 + 0.3 + 0.05)  # Feb 28 21h-23h, Mar 1 0h
    assert row["precip_12h"] == pytest.approx(1.0 + 0.1 + 0.2 + 0.3 + 0.05)
    assert row["visib_min_4h"] == 3.0
    assert row["wind_speed_max_4h"] == 25.0
    assert row["visib"] == 8.0  # the departure hour's own reading


def test_without_the_previous_drop_windows_hold_only_the_month_own_hours(tmp_path):
    _good_march(tmp_path)
    row = ingestion.month_examples(str(tmp_path), MAR).iloc[0]
    assert row["precip_4h"] == pytest.approx(0.05)
    assert row["precip_12h"] == pytest.approx(0.05)
    assert row["visib_min_4h"] == 8.0
    assert row["wind_speed_max_4h"] == 12.0


def test_month_examples_hold_the_registry_features_and_the_label(tmp_path):
    _drop(tmp_path, MAR, [_flight(), _flight(flight=2, arr_delay=30.0)], MAR_MIDNIGHT)
    rows = ingestion.month_examples(str(tmp_path), MAR)
    assert list(rows.columns) == [f.name for f in F.FEATURES] + [F.LABEL_KEY]
    assert rows[F.LABEL_KEY].tolist() == [0, 1]
    assert rows["plane_age"].tolist() == [10.0, 10.0]


def _error(tmp_path) -> str:
    with pytest.raises(data.DataError) as caught:
        ingestion.read_drop(str(tmp_path), MAR)
    return str(caught.value)


@pytest.mark.parametrize("table", [data.FLIGHTS, data.WEATHER, data.PLANES])
def test_a_missing_file_names_the_month_and_the_file(tmp_path, table):
    (_good_march(tmp_path) / f"{table}.csv").unlink()
    assert _error(tmp_path) == f"month 2013-03: {tmp_path}/2013-03/{table}.csv: file not found"


def test_a_missing_column_names_the_month_file_and_column(tmp_path):
    flights = [{k: v for k, v in _flight().items() if k != "distance"}]
    _drop(tmp_path, MAR, flights, MAR_MIDNIGHT)
    message = _error(tmp_path)
    assert message.startswith(
        f"month 2013-03: {tmp_path}/2013-03/flights.csv: missing column(s) distance;"
    )


def test_text_in_a_numeric_column_names_the_month_file_column_and_value(tmp_path):
    weather = [_weather(hour=0), _weather(hour=1, temp="warm")]
    _drop(tmp_path, MAR, [_flight()], weather)
    assert _error(tmp_path) == (
        f"month 2013-03: {tmp_path}/2013-03/weather.csv: column 'temp' must hold numbers, "
        "found 'warm' on data row 2"
    )


def test_flights_of_another_month_are_refused(tmp_path):
    _drop(tmp_path, MAR, [_flight(), _flight(month=4, day=2), _flight(year=2012)], MAR_MIDNIGHT)
    assert _error(tmp_path) == (
        f"month 2013-03: {tmp_path}/2013-03/flights.csv: 2 flight(s) of 2012-03, 2013-04 "
        "(columns year, month); a drop holds the flights of its own month only"
    )


def test_weather_of_another_month_is_refused(tmp_path):
    """March flights with April's weather would find no weather at all: the month would be
    trained on without it."""
    april = [_weather(month=4, hour=h) for h in range(3)]
    _drop(tmp_path, MAR, [_flight()], [*MAR_MIDNIGHT, *april])
    assert _error(tmp_path) == (
        f"month 2013-03: {tmp_path}/2013-03/weather.csv: 3 reading(s) of 2013-04 (columns "
        "year, month); a drop holds the weather of its own month only"
    )


@pytest.mark.parametrize(
    "table, column, value",
    [
        (data.FLIGHTS, "sched_dep_time", 30.5),
        (data.FLIGHTS, "day", 1.25),
        (data.WEATHER, "hour", 0.5),
        (data.PLANES, "seats", 149.5),
    ],
)
def test_a_fraction_where_whole_numbers_belong_is_refused(tmp_path, table, column, value):
    """A fractional clock time would be truncated into an int feature (00:30.5 -> 00:30), a
    fractional hour would match no weather; neither may pass silently."""
    rows = {
        data.FLIGHTS: [_flight(flight=2), _flight(**{column: value})],
        data.WEATHER: [_weather(hour=1), _weather(**{column: value})],
        data.PLANES: [raw_rows.plane(tailnum="N2"), raw_rows.plane(**{column: value})],
    }
    tables = {data.FLIGHTS: [_flight()], data.WEATHER: MAR_MIDNIGHT, data.PLANES: PLANES}
    tables[table] = rows[table]
    _drop(tmp_path, MAR, tables[data.FLIGHTS], tables[data.WEATHER], tables[data.PLANES])
    assert _error(tmp_path) == (
        f"month 2013-03: {tmp_path}/2013-03/{table}.csv: column '{column}' must hold whole "
        f"numbers, found {value!r} on data row 2"
    )


def test_a_flight_without_a_value_it_needs_is_named_with_file_column_and_row(tmp_path):
    flights = [_flight(), _flight(flight=2, carrier=None), _flight(flight=3, carrier=None)]
    _drop(tmp_path, MAR, flights, MAR_MIDNIGHT)
    assert _error(tmp_path) == (
        f"month 2013-03: {tmp_path}/2013-03/flights.csv: column 'carrier' has no value in 2 "
        "row(s), first on data row 2; every flight needs it"
    )


def test_a_file_cut_off_in_its_last_row_says_so(tmp_path):
    path = _good_march(tmp_path) / "flights.csv"
    header, row = path.read_text().splitlines()
    path.write_text(f"{header}\n{row}\n{row.replace(',1,', ',2,', 1)[:40]}\n")
    assert _error(tmp_path).endswith(
        "on data row 2 (the last row: is the file cut off?); every flight needs it"
    )


def test_a_flights_file_without_rows_is_refused(tmp_path):
    _drop(tmp_path, MAR, [], MAR_MIDNIGHT, columns={data.FLIGHTS: list(_flight())})
    assert _error(tmp_path) == f"month 2013-03: {tmp_path}/2013-03/flights.csv holds no flights"


def test_an_empty_file_is_not_a_readable_csv(tmp_path):
    (_good_march(tmp_path) / "flights.csv").write_bytes(b"")
    message = _error(tmp_path)
    assert message.startswith(
        f"month 2013-03: {tmp_path}/2013-03/flights.csv: not a readable CSV file"
    )


def test_a_broken_previous_drop_names_the_previous_month(tmp_path):
    _drop(tmp_path, FEB, [_flight(month=2, day=28)], [_weather(month=2, day=28, visib="far")])
    _good_march(tmp_path)
    message = _error(tmp_path)
    assert message.startswith(f"month 2013-02: {tmp_path}/2013-02/weather.csv: column 'visib'")


def _busy_month(root, count: int = 40):
    """`count` flights from EWR in the same hour of one day, with distinct distances."""
    flights = [_flight(hour=9, sched_dep_time=900 + i, distance=100 + i) for i in range(count)]
    weather = [_weather(hour=h) for h in range(24)]
    _drop(root, MAR, flights, weather)


def test_sampling_is_reproducible_and_follows_the_seed(tmp_path):
    _busy_month(tmp_path)
    first = ingestion.month_examples(str(tmp_path), MAR, rows_per_month=5, seed=1)
    again = ingestion.month_examples(str(tmp_path), MAR, rows_per_month=5, seed=1)
    other = ingestion.month_examples(str(tmp_path), MAR, rows_per_month=5, seed=2)
    assert len(first) == 5 and list(first.index) == list(range(5))
    pd.testing.assert_frame_equal(first, again)
    assert first["distance"].tolist() != other["distance"].tolist()
    assert first["distance"].is_monotonic_increasing  # kept in the drop's order

    full = ingestion.month_examples(str(tmp_path), MAR)
    assert len(full) == 40
    assert set(first["distance"]) < set(full["distance"])
    everything = ingestion.month_examples(str(tmp_path), MAR, rows_per_month=100)
    pd.testing.assert_frame_equal(everything, full)


def test_sampling_happens_after_the_join_so_congestion_counts_every_flight(tmp_path):
    _busy_month(tmp_path)
    rows = ingestion.month_examples(str(tmp_path), MAR, rows_per_month=3)
    assert rows["origin_hour_flights"].tolist() == [40.0, 40.0, 40.0]
    assert rows["origin_day_flights"].tolist() == [40.0, 40.0, 40.0]
    assert rows["dest_day_flights"].tolist() == [40.0, 40.0, 40.0]


def test_text_that_is_not_utf8_is_refused_naming_the_month_and_file(tmp_path):
    path = _good_march(tmp_path) / "flights.csv"
    path.write_bytes(path.read_bytes().replace(b"IAH", b"\xff\x58\xfe"))
    message = _error(tmp_path)
    assert message.startswith(
        f"month 2013-03: {tmp_path}/2013-03/flights.csv: not a readable CSV file"
    )
    assert "utf-8" in message


def test_a_truncated_csv_is_refused_naming_the_month_and_file(tmp_path):
    path = _good_march(tmp_path) / "flights.csv"
    text = path.read_text()
    path.write_text(text[: text.index("\n") + 1] + '1,2,"unterminated')
    message = _error(tmp_path)
    assert message.startswith(f"month 2013-03: {tmp_path}/2013-03/flights.csv:")


def test_a_flight_listed_twice_is_refused_naming_the_rows(tmp_path):
    """A drop delivered with repeated rows (an upstream export appended twice) would train on
    them twice and double the congestion counts; the same flight number at another time or
    from another airport is another flight."""
    flights = [
        _flight(),
        _flight(flight=2),
        _flight(sched_dep_time=40, minute=40),
        _flight(origin="JFK"),
        _flight(flight=2, arr_delay=25.0),  # the same scheduled flight, other values
        _flight(),
    ]
    _drop(tmp_path, MAR, flights, MAR_MIDNIGHT)
    assert _error(tmp_path) == (
        f"month 2013-03: {tmp_path}/2013-03/flights.csv: 2 row(s) repeat a flight listed "
        "before (same year, month, day, carrier, flight, origin, sched_dep_time), first on "
        "data row 5: 2013-03-01 UA 2 from EWR at 0030, as on data row 2; a drop lists each "
        "scheduled flight once"
    )


def test_flights_whose_key_misses_a_value_are_not_taken_for_repeats(tmp_path):
    """Two flights without a flight number (or scheduled time) are no evidence of one flight;
    the required-value checks name them instead of a crash on the missing number."""
    flights = [
        _flight(flight=None, dest="BOS"),
        _flight(flight=None, dest="ORD"),
        _flight(flight=2, sched_dep_time=None),
        _flight(flight=2, sched_dep_time=None),
        _flight(flight=3.0),  # read as 3.0 beside a missing number: still flight 3
        _flight(flight=3),
    ]
    _drop(tmp_path, MAR, flights, MAR_MIDNIGHT)
    assert "first on data row 6: 2013-03-01 UA 3 from EWR at 0030, as on data row 5" in (
        _error(tmp_path)
    )
    without_number = [flights[0], flights[1], flights[4]]  # a flight number is not required
    _drop(tmp_path / "complete-ones-once", MAR, without_number, MAR_MIDNIGHT)
    tables = ingestion.read_drop(str(tmp_path / "complete-ones-once"), MAR)
    assert len(tables.flights) == 3


def test_a_flight_without_year_or_month_is_named_as_of_another_month(tmp_path):
    _drop(tmp_path, MAR, [_flight(), _flight(flight=2, year=None)], MAR_MIDNIGHT)
    assert _error(tmp_path) == (
        f"month 2013-03: {tmp_path}/2013-03/flights.csv: 1 flight(s) of no month "
        "(columns year, month); a drop holds the flights of its own month only"
    )


def test_the_real_year_lists_each_scheduled_flight_once():
    flights = data.load_tables(data.package_data_dir()).flights
    assert len(flights) == 336_776
    assert data.check_unique_flights(flights, "flights") is flights
