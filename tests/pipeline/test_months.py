"""Months: `YYYY-MM` text, `YYYYMM` spans, shifting across year boundaries."""

from __future__ import annotations

import pytest

from pipeline.months import Month, describe, months_before

pytestmark = pytest.mark.unit


def test_parse_and_format_round_trip():
    month = Month.parse("2013-01")
    assert month == Month(2013, 1)
    assert str(month) == "2013-01"
    assert str(Month.parse(" 2024-12 ")) == "2024-12"
    assert str(Month(987, 3)) == "0987-03"


def test_span_is_yyyymm_and_back():
    assert Month(2013, 1).span == 201301
    assert Month(2013, 12).span == 201312
    assert Month.from_span(201302) == Month(2013, 2)
    assert Month.from_span(Month(2014, 10).span) == Month(2014, 10)


@pytest.mark.parametrize(
    "start, months, expected",
    [
        ("2013-01", -1, "2012-12"),
        ("2012-12", 1, "2013-01"),
        ("2013-11", 3, "2014-02"),
        ("2013-03", -15, "2011-12"),
        ("2013-06", 0, "2013-06"),
        ("2013-01", 24, "2015-01"),
    ],
)
def test_shift_crosses_year_boundaries(start, months, expected):
    assert str(Month.parse(start).shift(months)) == expected


def test_months_order_by_time():
    assert Month(2012, 12) < Month(2013, 1) < Month(2013, 2)
    assert sorted([Month(2013, 2), Month(2012, 11), Month(2013, 1)]) == [
        Month(2012, 11),
        Month(2013, 1),
        Month(2013, 2),
    ]


def test_months_before_are_oldest_first_and_cross_the_year():
    assert months_before(Month(2013, 2), 3) == (Month(2012, 11), Month(2012, 12), Month(2013, 1))
    assert months_before(Month(2013, 2), 0) == ()


def test_describe_a_run_of_months_and_a_single_month():
    assert describe((Month(2013, 3), Month(2013, 1), Month(2013, 2))) == "2013-01..2013-03"
    assert describe((Month(2013, 11),)) == "2013-11"


@pytest.mark.parametrize(
    "text", ["2013-1", "201301", "13-01", "2013/01", "Jan 2013", "", "2013-01-01"]
)
def test_bad_text_is_rejected_with_the_expected_format(text):
    with pytest.raises(
        ValueError, match=r"a month is written YYYY-MM with MM 01-12 \(e\.g\. 2013-01\), got "
    ):
        Month.parse(text)


@pytest.mark.parametrize("text", ["2013-00", "2013-13"])
def test_month_number_outside_1_to_12_is_rejected_naming_the_text(text):
    with pytest.raises(ValueError, match=rf"with MM 01-12 \(e\.g\. 2013-01\), got '{text}'"):
        Month.parse(text)
