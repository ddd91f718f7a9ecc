"""Months as the pipeline names them: `YYYY-MM` in the landing zone and on the console, span
`YYYYMM` (e.g. 201301) on the Examples artifacts in ML Metadata.

A leaf module: importing it loads nothing else.
"""

from __future__ import annotations

import dataclasses
import re

_TEXT = re.compile(r"^(\d{4})-(\d{2})$")


@dataclasses.dataclass(frozen=True, order=True)
class Month:
    """One calendar month; orders by time."""

    year: int
    month: int  # 1-12

    def __post_init__(self):
        if not 1 <= self.month <= 12:
            raise ValueError(f"month must be 1-12, got {self.month} (year {self.year})")

    @classmethod
    def parse(cls, text: str) -> Month:
        """`"2013-01"` -> Month(2013, 1); ValueError naming the text otherwise."""
        match = _TEXT.match(str(text).strip())
        if not match or not 1 <= int(match.group(2)) <= 12:
            raise ValueError(
                f"a month is written YYYY-MM with MM 01-12 (e.g. 2013-01), got {text!r}"
            )
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def from_span(cls, span: int) -> Month:
        """The month of an Examples artifact's span (YYYYMM)."""
        return cls(span // 100, span % 100)

    @property
    def span(self) -> int:
        """TFX span number of this month's Examples: YYYYMM, e.g. 201301."""
        return self.year * 100 + self.month

    def shift(self, months: int) -> Month:
        """The month `months` later (earlier when negative)."""
        index = self.year * 12 + self.month - 1 + months
        return Month(index // 12, index % 12 + 1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def months_before(month: Month, count: int) -> tuple[Month, ...]:
    """The `count` months immediately before `month`, oldest first."""
    return tuple(month.shift(-i) for i in range(count, 0, -1))


def describe(months: tuple[Month, ...]) -> str:
    """`2013-01..2013-10` for a run of months, `2013-11` for one."""
    first, last = min(months), max(months)
    return str(first) if first == last else f"{first}..{last}"
