"""Rating error: RMSE and MAE with predictions clipped into the dataset's rating range, as the paper did."""

from __future__ import annotations

import math
from collections.abc import Sequence

Range = tuple[float, float]  # (min, max) of the whole dataset's ratings


def clip(value: float, rating_range: Range | None) -> float:
    """``value`` moved into [min, max]; unchanged when no range is given."""
    if rating_range is None:
        return value
    low, high = rating_range
    return min(max(value, low), high)


def _errors(ratings: Sequence[float], predicted: Sequence[float], rating_range: Range | None) -> list[float]:
    if not ratings:
        raise ValueError("rating error needs at least one rating")
    return [clip(p, rating_range) - r for r, p in zip(ratings, predicted, strict=True)]


def rmse(ratings: Sequence[float], predicted: Sequence[float], rating_range: Range | None) -> float:
    """Root mean squared error after clipping the predictions into ``rating_range``."""
    errors = _errors(ratings, predicted, rating_range)
    return math.sqrt(sum(e * e for e in errors) / len(errors))


def mae(ratings: Sequence[float], predicted: Sequence[float], rating_range: Range | None) -> float:
    """Mean absolute error after clipping the predictions into ``rating_range``."""
    errors = _errors(ratings, predicted, rating_range)
    return sum(abs(e) for e in errors) / len(errors)
