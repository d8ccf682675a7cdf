"""Explainability: USR/USN, FMR, FCR and DIV (EVALUATION.md), each in one pass over the explanations."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet

Tokens = Sequence[str]


def features_in(tokens: Iterable[str], feature_set: AbstractSet[str]) -> frozenset[str]:
    """The features an explanation mentions: its tokens that are features.

    A multi-word feature never matches: that is what the paper measured.
    """
    return frozenset(token for token in tokens if token in feature_set)


def unique_sentence_count(explanations: Sequence[Tokens]) -> int:
    """USN: how many distinct token sequences were generated."""
    return len({tuple(tokens) for tokens in explanations})


def unique_sentence_ratio(explanations: Sequence[Tokens]) -> float:
    """USR: distinct generated sequences over all of them."""
    return unique_sentence_count(explanations) / _nonempty(explanations, "USR")


def feature_matching_ratio(mentioned: Sequence[AbstractSet[str]], true_features: Sequence[str]) -> float:
    """FMR: share of explanations that mention the ground-truth feature of their pair."""
    hits = sum(feature in found for found, feature in zip(mentioned, true_features, strict=True))
    return hits / _nonempty(mentioned, "FMR")


def feature_coverage_ratio(mentioned: Iterable[AbstractSet[str]], feature_set: AbstractSet[str]) -> float:
    """FCR: distinct features mentioned anywhere over the size of the dataset's feature set."""
    if not feature_set:
        raise ValueError("FCR needs a non-empty feature set")
    covered: set[str] = set().union(*mentioned)
    return len(covered) / len(feature_set)


def feature_diversity(mentioned: Sequence[AbstractSet[str]]) -> float:
    """DIV: mean size of the feature overlap over all unordered pairs of explanations (lower is better).

    A feature mentioned by n_f explanations is shared by C(n_f, 2) pairs, so summing that over features
    gives the pair total in linear time instead of the O(N^2) loop.
    """
    n = len(mentioned)
    if n < 2:
        raise ValueError("DIV needs at least two explanations")
    mentions = Counter(feature for found in mentioned for feature in found)
    shared = sum(k * (k - 1) // 2 for k in mentions.values())
    return shared / (n * (n - 1) // 2)


def _nonempty(items: Sequence[object], metric: str) -> int:
    if not items:
        raise ValueError(f"{metric} needs at least one explanation")
    return len(items)
