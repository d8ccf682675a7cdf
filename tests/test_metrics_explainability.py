"""USR/USN, FMR, FCR and DIV on a hand-computed example."""

from __future__ import annotations

import pytest

from pepler_cli.evaluation.metrics.explainability import (
    feature_coverage_ratio,
    feature_diversity,
    feature_matching_ratio,
    features_in,
    unique_sentence_count,
    unique_sentence_ratio,
)
from pepler_cli.evaluation.metrics.tokens import normalize
from pepler_cli.evaluation.scoring import score_predictions
from pepler_cli.predictions import Prediction

FEATURES = {"room", "staff", "location", "front desk"}
GENERATED = ["the room is clean", "the staff and room", "nice front desk", "the  room is clean "]
TRUE_FEATURES = ["room", "location", "front desk", "room"]
# Features found (tokens in FEATURES): A = {room}, B = {staff, room}, C = {} ("front desk" is two tokens,
# so a multi-word feature never matches), D = {room}.
MENTIONED = [features_in(normalize(text), FEATURES) for text in GENERATED]


def test_features_are_single_token_matches() -> None:
    assert MENTIONED == [{"room"}, {"staff", "room"}, set(), {"room"}]


def test_unique_sentences_compare_token_sequences() -> None:
    # Texts 1 and 4 differ only in spaces, so they are the same token sequence: 3 distinct of 4.
    generated = [normalize(text) for text in GENERATED]
    assert unique_sentence_count(generated) == 3
    assert unique_sentence_ratio(generated) == 0.75


def test_feature_matching_ratio() -> None:
    # room in A: yes; location in B: no; "front desk" in C: no; room in D: yes -> 2/4
    assert feature_matching_ratio(MENTIONED, TRUE_FEATURES) == 0.5


def test_feature_coverage_ratio() -> None:
    # {room, staff} covered of 4 features -> 2/4
    assert feature_coverage_ratio(MENTIONED, FEATURES) == 0.5


def test_feature_diversity() -> None:
    # Pairs: AB 1, AC 0, AD 1, BC 0, BD 1, CD 0 -> 3 shared over C(4, 2) = 6 pairs -> 0.5.
    # Linear form: room is in 3 explanations -> C(3, 2) = 3; staff in 1 -> 0; 3 / 6.
    assert feature_diversity(MENTIONED) == 0.5


def test_feature_diversity_needs_two_explanations() -> None:
    with pytest.raises(ValueError, match="two"):
        feature_diversity([{"room"}])


def test_score_predictions_explainability() -> None:
    predictions = [
        Prediction("u", "i", "ref", text, feature) for text, feature in zip(GENERATED, TRUE_FEATURES)
    ]
    scores = score_predictions(predictions, FEATURES, None)
    assert (scores["usn"], scores["usr"], scores["fmr"], scores["fcr"], scores["div"]) == (
        3,
        0.75,
        0.5,
        0.5,
        0.5,
    )


def test_score_predictions_leaves_out_div_for_one_prediction() -> None:
    scores = score_predictions([Prediction("u", "i", "a room", "a room", "room")], FEATURES, None)
    assert "div" not in scores
    assert scores["usr"] == 1.0
