"""Raw rows -> request columns: what cannot become a request is refused naming the row and
the feature, before anything is sent."""

from __future__ import annotations

import pytest

from transforms import codec

pytestmark = pytest.mark.unit

ROW = {
    "carrier": "UA",
    "origin": "EWR",
    "dest": "IAH",
    "distance": 1400.0,
    "sched_dep_time": 515,
    "sched_arr_time": 819,
    "month": 11,
    "day_of_week": 3,
    "origin_hour_flights": 20.0,
    "origin_day_flights": 300.0,
    "dest_day_flights": 12.0,
}


def test_a_complete_row_becomes_one_value_per_feature():
    columns = codec.columns_from_rows([ROW])
    assert columns["distance"].tolist() == [1400.0] and columns["sched_dep_time"].tolist() == [515]
    assert columns["plane_type"].tolist() == [""]  # optional, absent: the text marker


@pytest.mark.parametrize(
    "row, message",
    [
        (5, "row 0: expected an object of feature values, got 5"),
        ("x", "row 0: expected an object of feature values, got 'x'"),
        ({**ROW, "sched_dep_time": 10**23}, "feature 'sched_dep_time' is an int64; 10000"),
        ({**ROW, "sched_dep_time": -(2**63) - 1}, "feature 'sched_dep_time' is an int64"),
        ({**ROW, "distance": 10**400}, "feature 'distance' expects float, got 1000"),
        ({**ROW, "day_of_week": 2.5}, "feature 'day_of_week' expects int, got 2.5"),
        ({k: v for k, v in ROW.items() if k != "origin"}, "row 0: required feature 'origin'"),
    ],
)
def test_rows_that_cannot_become_a_request_are_refused_naming_the_feature(row, message):
    with pytest.raises(codec.InvalidRow, match=message):
        codec.columns_from_rows([row])


def test_the_int64_range_ends_are_accepted():
    columns = codec.columns_from_rows([{**ROW, "sched_dep_time": 2**63 - 1}])
    assert columns["sched_dep_time"].tolist() == [2**63 - 1]
