"""Popularity bias of feature use: do the explanations crowd onto the features training made frequent?

Computed the same way for the generated explanations and for the references, so the two can be compared.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet


def top_features(feature_counts: Mapping[str, int], fraction: float = 0.1) -> frozenset[str]:
    """The ceil(fraction × m) most frequent training features, m being how many have a count above 0.

    Ties are broken by feature name (the alphabetically first wins), so the set never depends on the order of
    ``feature_counts``. fraction × m is rounded to 9 decimals before the ceiling: 0.1 × 30 is
    3.0000000000000004 in floating point and must give 3 features, not 4.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"the top fraction must lie in (0, 1], not {fraction}")
    used = [(feature, count) for feature, count in feature_counts.items() if count > 0]
    size = math.ceil(round(fraction * len(used), 9))
    ranked = sorted(used, key=lambda pair: (-pair[1], pair[0]))
    return frozenset(feature for feature, _ in ranked[:size])


def top_feature_share(
    mentioned: Sequence[AbstractSet[str]], feature_counts: Mapping[str, int], fraction: float = 0.1
) -> float:
    """Share of all feature mentions that go to the most frequent training features (``top_features``).

    share = Σ_k |G_k ∩ T| / Σ_k |G_k|, with G_k the features explanation k mentions and T the top
    ceil(fraction × m) training features. 0.0 when no explanation mentions a feature.
    """
    top = top_features(feature_counts, fraction)
    on_top = total = 0
    for found in mentioned:
        on_top += len(top.intersection(found))
        total += len(found)
    return on_top / total if total else 0.0


def mention_counts(mentioned: Sequence[AbstractSet[str]], feature_set: AbstractSet[str]) -> list[int]:
    """How many explanations mention each feature of ``feature_set``, zeros included (``gini``'s input)."""
    counts = Counter(feature for found in mentioned for feature in found)
    return [counts[feature] for feature in feature_set]


def gini(counts: Sequence[int]) -> float:
    """Gini coefficient of feature use, from the mention count of every feature in the feature set.

    G = Σ_{i=1..n} (2i − n − 1) x_(i) / (n Σ_i x_i), with x_(1) ≤ … ≤ x_(n) the counts sorted ascending. 0 when
    every feature is mentioned equally often; (n − 1)/n, its maximum, when one feature gets every mention.
    The features never mentioned must be passed as zeros: leaving them out hides the inequality. 0.0 when all
    counts are 0 (or there are none): there is no use to be unequal.
    """
    if any(count < 0 for count in counts):
        raise ValueError("Gini needs counts of at least 0")
    total = sum(counts)
    if total == 0:
        return 0.0
    n = len(counts)
    weighted = sum((2 * i - n - 1) * x for i, x in enumerate(sorted(counts), start=1))
    return weighted / (n * total)
