"""RMSE and MAE with predictions clipped into the dataset's rating range."""

from __future__ import annotations

import math

import pytest

from pepler_cli.evaluation.metrics.rating import clip, mae, rmse
from pepler_cli.evaluation.scoring import score_predictions
from pepler_cli.predictions import Prediction

RATINGS = [5.0, 3.0, 1.0]
PREDICTED = [5.6, 3.5, 0.2]


def test_clip() -> None:
    assert clip(5.6, (1.0, 5.0)) == 5.0
    assert clip(0.2, (1.0, 5.0)) == 1.0
    assert clip(3.5, (1.0, 5.0)) == 3.5
    assert clip(9.0, None) == 9.0


def test_errors_after_clipping() -> None:
    # clipped into [1, 5]: 5.6 -> 5, 3.5, 0.2 -> 1; errors 0, 0.5, 0
    # RMSE = sqrt(0.25 / 3); MAE = 0.5 / 3
    assert rmse(RATINGS, PREDICTED, (1.0, 5.0)) == pytest.approx(math.sqrt(0.25 / 3))
    assert mae(RATINGS, PREDICTED, (1.0, 5.0)) == pytest.approx(0.5 / 3)


def test_errors_without_clipping() -> None:
    # errors 0.6, 0.5, -0.8: RMSE = sqrt((0.36 + 0.25 + 0.64) / 3) = sqrt(1.25 / 3); MAE = 1.9 / 3
    assert rmse(RATINGS, PREDICTED, None) == pytest.approx(math.sqrt(1.25 / 3))
    assert mae(RATINGS, PREDICTED, None) == pytest.approx(1.9 / 3)


def test_score_predictions_reports_rating_error_only_with_every_rating() -> None:
    full = [Prediction("u", "i", "a", "a", "a", r, p) for r, p in zip(RATINGS, PREDICTED)]
    scores = score_predictions(full, {"a"}, (1.0, 5.0))
    assert scores["rmse"] == pytest.approx(math.sqrt(0.25 / 3))
    assert scores["mae"] == pytest.approx(0.5 / 3)

    partial = [*full[:2], Prediction("u", "i", "a", "a", "a", 1.0, None)]
    assert "rmse" not in score_predictions(partial, {"a"}, (1.0, 5.0))
    text_only = [Prediction("u", "i", "a", "a", "a")] * 2
    assert {"rmse", "mae"}.isdisjoint(score_predictions(text_only, {"a"}, None))
