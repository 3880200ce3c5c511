"""A figure measured in several interleaved rounds: shown as its median with the lowest
and highest round, e.g. ``32,298 (31,900-32,700)``."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Spread:
    values: tuple[float, ...]

    @classmethod
    def of(cls, values: Iterable[float]) -> Spread:
        return cls(tuple(v for v in values if not math.isnan(v)))

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else math.nan

    @property
    def low(self) -> float:
        return min(self.values) if self.values else math.nan

    @property
    def high(self) -> float:
        return max(self.values) if self.values else math.nan

    def show(self, digits: int = 0, suffix: str = "") -> str:
        """The median, then the range where there is more than one round."""
        if not self.values:
            return "n/a"
        median = f"{self.median:,.{digits}f}{suffix}"
        if len(self.values) == 1:
            return median
        return f"{median} ({self.low:,.{digits}f}-{self.high:,.{digits}f})"


def ratio(numerators: Iterable[float], denominators: Iterable[float]) -> Spread:
    """Round by round (the rounds are interleaved, so round i of each was measured
    under the same conditions), the ratio of two figures."""
    return Spread.of(
        n / d if d > 0 and not math.isnan(n) else math.nan
        for n, d in zip(numerators, denominators, strict=False)
    )


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (``share`` in 0..1) of ``values``."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]
