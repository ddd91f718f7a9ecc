"""Raw rows -> request columns: what cannot become a request is refused naming the row and
the feature, before anything is sent."""

from __future__ import annotations

import numpy as np
import pytest

from transforms import codec
from transforms import features as F

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


@pytest.mark.parametrize("value", [float("nan"), "nan", float("inf"), "-inf", "1e400", "Infinity"])
def test_a_required_float_must_be_finite(value):
    with pytest.raises(codec.InvalidRow) as error:
        codec.columns_from_rows([{**ROW, "distance": value}])
    assert f"row 0: feature 'distance' is {value!r}" in str(error.value)
    assert codec.NON_FINITE_RULES[False] in str(error.value)


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), "inf", "1e400"])
def test_an_optional_float_may_not_be_infinite(value):
    with pytest.raises(codec.InvalidRow) as error:
        codec.columns_from_rows([{**ROW, "plane_age": value}])
    assert f"row 0: feature 'plane_age' is {value!r}" in str(error.value)
    assert codec.NON_FINITE_RULES[True] in str(error.value)


@pytest.mark.parametrize("value", [float("nan"), "nan", np.float32("nan"), None, ""])
def test_nan_in_an_optional_float_means_absent(value):
    columns = codec.columns_from_rows([{**ROW, "plane_age": value}])
    assert np.isnan(columns["plane_age"][0])
    (row,) = codec.rows_from_columns(columns)
    assert codec.is_missing(F.BY_NAME["plane_age"], row["plane_age"])  # left out of a tf.Example


def test_a_float_beyond_float32_is_refused_before_it_becomes_infinite():
    with pytest.raises(codec.InvalidRow, match="feature 'distance' is a float32; 1e"):
        codec.columns_from_rows([{**ROW, "distance": 1e39}])
    largest = float(np.finfo(np.float32).max)
    assert codec.columns_from_rows([{**ROW, "distance": largest}])["distance"][0] == largest
