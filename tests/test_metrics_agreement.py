"""The fast library must agree with the naive reference implementation on every metric.

The tolerance is 1e-9, not just 1e-6: only that tight does a dropped +1e-8 in the ROUGE F show up.
"""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import pytest

from pepler_cli.evaluation.scoring import ALL_KEYS, score_predictions
from pepler_cli.predictions import Prediction


def _load_reference():
    # pytest runs with --import-mode=importlib, so a sibling module is loaded by its path.
    path = Path(__file__).with_name("reference_evaluation.py")
    spec = importlib.util.spec_from_file_location("reference_evaluation", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


evaluate = _load_reference().evaluate

FEATURES = {"room", "staff", "location", "bed", "breakfast", "price", "Room", "front desk"}
WORDS = [
    "the", "the", "the", "a", "is", "was", "and", "very", "great", "clean", "friendly", "nice",
    "room", "staff", "location", "bed", "breakfast", "price", "Room", "front", "desk",
]  # fmt: skip
PUNCTUATION = [",", ",,", ".", "...", "!", "!!", "?", "?!", ":", "::", ";", ";;", ":;", "(", ")", "-", "'"]
CLITIC_WORDS = [
    "don't", "DON'T", "it's", "I'm", "we've", "they're", "he'd", "you'll", "can't", "isn't",
    "rock\u2019s", "x'sy", "n't", "'s", "''",
]  # fmt: skip
SEPARATORS = [" ", " ", " ", " ", "", "  ", "\t", "\u00a0", "\u2003", "\n"]


def random_text(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.08:
        return ""
    if roll < 0.11:
        return rng.choice([" ", "\t", " \u00a0 "])
    pieces = []
    for _ in range(rng.randint(1, 12)):
        kind = rng.random()
        pool = WORDS if kind < 0.65 else PUNCTUATION if kind < 0.85 else CLITIC_WORDS
        pieces.append(rng.choice(pool))
        pieces.append(rng.choice(SEPARATORS))
    return "".join(pieces)


def random_predictions(rng: random.Random, n: int, with_ratings: bool = True) -> list[Prediction]:
    predictions: list[Prediction] = []
    for _ in range(n):
        reference = random_text(rng)
        roll = rng.random()
        if roll < 0.2:
            generated = reference  # perfect matches
        elif roll < 0.4 and predictions:
            generated = rng.choice(predictions).generated  # repeats, for USR
        else:
            generated = random_text(rng)
        rating = float(rng.randint(1, 5)) if with_ratings else None
        predicted = rng.uniform(-1.0, 7.0) if with_ratings else None  # some outside [1, 5], to be clipped
        feature = rng.choice(sorted(FEATURES))
        predictions.append(Prediction("u", "i", reference, generated, feature, rating, predicted))
    return predictions


def naive(predictions: list[Prediction], rating_range: tuple[float, float] | None) -> dict[str, float]:
    pairs = [vars(p) for p in predictions]
    return evaluate(pairs, FEATURES, rating_range)


def assert_agree(fast: dict[str, float], slow: dict[str, float]) -> None:
    assert set(fast) == set(slow)
    assert set(fast) <= set(ALL_KEYS)
    for key, expected in slow.items():
        assert fast[key] == pytest.approx(expected, rel=0, abs=1e-9), key


def test_agrees_on_a_large_random_corpus() -> None:
    predictions = random_predictions(random.Random(20231), 1500)
    assert_agree(score_predictions(predictions, FEATURES, (1.0, 5.0)), naive(predictions, (1.0, 5.0)))


@pytest.mark.parametrize("seed", range(60))
def test_agrees_on_small_corpora(seed: int) -> None:
    # Small corpora reach the edge cases: BLEU-4 with no matching 4-gram, all-empty sides, N = 1 (no DIV).
    rng = random.Random(seed)
    predictions = random_predictions(rng, rng.randint(1, 6), with_ratings=seed % 3 != 0)
    rating_range = None if seed % 5 == 0 else (1.0, 5.0)
    assert_agree(score_predictions(predictions, FEATURES, rating_range), naive(predictions, rating_range))


def test_agrees_when_every_text_is_empty() -> None:
    predictions = [Prediction("u", "i", "", "", "room"), Prediction("u", "i", "", " ", "bed")]
    fast = score_predictions(predictions, FEATURES, None)
    assert_agree(fast, naive(predictions, None))
    assert fast["bleu_1"] == 0.0
    assert fast["rouge_1_precision"] == 100.0
